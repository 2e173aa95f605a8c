"""The identity layer of the `cloud` stack: bad input, Omni's start, exports, and what `dev` imports."""

import base64
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.oci.compose import OMNI_PROFILE, ComposeImages, ManagementServices, compose_document, omni_start_script
from homelab.cli import main
from homelab.engine import Recording, run_program
from homelab.render import StackResult
from homelab.stackrun import run_stack
from homelab.standins import stand_in
from stacks.config.base import ConfigError
from stacks.config.identity import IdentityConfig
from stacks.identity import smtp_relay
from tests.stacks.helpers import count_registrations, packages, section

NEW = {"location": "cloud", "hostname": "paper", "upstream": "http://paperless.paperless.svc.cluster.local:8000"}
BAD_ENTRIES = [
    ({"paperless": {**NEW, "tier": "vip"}}, "homelab:catalog.services.paperless.tier: "),
    (
        {"paperless": {**NEW, "tier": "sso", "groups": ["family"]}},
        "homelab:catalog.services.paperless.sso: a Tier-1 (sso) app needs its provider kind: oidc or proxy",
    ),
    (
        {"paperless": {**NEW, "tier": "sso", "groups": ["family"], "sso": "oidc"}},
        "homelab:catalog.services.paperless.redirect_uris: an OIDC app needs at least one redirect URI",
    ),
    (
        {"paperless": {**NEW, "tier": "sso", "groups": ["family"], "sso": "oidc", "redirect_uris": ["https://evil.org/cb"]}},
        "homelab:catalog.services.paperless.redirect_uris: 'https://evil.org/cb' is outside the catalog domain",
    ),
    (
        {"paperless": {**NEW, "tier": "sso", "groups": ["friends"], "sso": "proxy"}},
        "homelab:catalog.services.paperless.groups: group 'friends' does not exist (known: admin, family)",
    ),
    (
        {"cloudflare-access": {**NEW, "tier": "native", "groups": ["family"]}},
        "homelab:catalog.services.cloudflare-access.name: slug 'cloudflare-access' is already used by the identity",
    ),
    (
        {"paperless": {**NEW, "location": "prod", "tier": "sso", "groups": ["family"], "sso": "proxy"}},
        "homelab:catalog.services.paperless.location: a proxy-gated app must run in `cloud`",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("services", "message"), BAD_ENTRIES, ids=[m.split(": ")[0] for _, m in BAD_ENTRIES])
def test_bad_catalog_entry_is_one_error_naming_the_key_and_registers_nothing(
    services: dict[str, Any], message: str
) -> None:
    catalog = section("cloud", "catalog")
    catalog["services"] = services
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        run_stack("cloud", overrides={"catalog": catalog})
    assert str(caught.value).startswith(message), str(caught.value)
    assert seen == []


def test_rotating_an_unknown_client_names_the_key() -> None:
    identity = section("cloud", "identity")
    identity["client_secret_generations"] = {"nope": 2}
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        run_stack("cloud", overrides={"identity": identity})
    assert str(caught.value).startswith("homelab:identity.client_secret_generations.nope: no OIDC client 'nope'")
    assert seen == []


def test_cli_exits_2_on_a_bad_catalog_entry(isolated_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = isolated_project / "Pulumi.cloud.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["config"]["homelab:catalog"]["services"] = {"paperless": {**NEW, "tier": "sso", "groups": ["family"]}}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert main(["--project-dir", str(isolated_project), "exposure", "cloud"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "homelab:catalog.services.paperless.sso" in err


def test_rotation_changes_one_client_secret_only(cloud: Recording) -> None:
    identity = section("cloud", "identity")
    identity["client_secret_generations"] = {"grafana": 2}
    identity["ntfy_token_generation"] = 2  # one run for both rotations: each changes only its own value
    rotated = run_stack("cloud", overrides={"identity": identity})
    secret = "authentik:index/providerOauth2:ProviderOauth2"
    before = {r.name: r.inputs["clientSecret"] for r in cloud.by_type(secret)}
    after = {r.name: r.inputs["clientSecret"] for r in rotated.by_type(secret)}
    assert {n for n in before if before[n] != after[n]} == {"authentik-oidc-grafana"}
    old_token, new_token = (r.outputs["ntfy_identity_publisher"].value["token"] for r in (cloud, rotated))
    assert old_token != new_token and re.fullmatch(r"tk_[a-z2-7]{29}", new_token)


@pytest.fixture(scope="module")
def cloud(previewed: Callable[[str], StackResult]) -> Recording:
    """The committed cloud stack, update view (the session's preview: never edit it in place)."""
    recording = previewed("cloud").recording
    assert recording is not None
    return recording


def test_oidc_exports_for_prod_are_secret(cloud: Recording) -> None:
    for app in ("argocd", "grafana", "nextcloud", "immich", "vaultwarden"):
        output = cloud.outputs[f"oidc_{app}"]
        assert output.secret
        assert output.value["issuer"] == f"https://auth.example.net/application/o/{app}/"
        assert output.value["client_id"] == app
        assert len(output.value["client_secret"]) == 64
    assert cloud.outputs["authentik_service_tokens"].secret
    assert set(cloud.outputs["authentik_service_tokens"].value) == {"ci-github", "backup"}


def test_omni_starts_after_its_saml_application(cloud: Recording) -> None:
    start = cloud.get("command:remote:Command", "oci-mgmt-start-omni")
    app = cloud.get("authentik:index/application:Application", "authentik-app-omni")
    assert app.urn in start.dependencies
    assert "https://auth.example.net/application/saml/omni/metadata/" in start.inputs["create"]
    provider = cloud.get("pulumi:providers:authentik", "authentik")
    ready = cloud.get("command:remote:Command", "oci-mgmt-authentik-ready")
    assert ready.urn in provider.dependencies


def _services() -> ManagementServices:
    return ManagementServices(
        images=ComposeImages("a:1", "p:1", "r:1", "ghcr.io/siderolabs/omni:v1.4.7", "c:1"),
        authentik_hostname="auth.example.net",
        omni_hostname="omni.example.net",
        omni_account_id="00000000-0000-4000-8000-000000000001",
        omni_name="homelab",
        omni_initial_users=("admin@example.net",),
    )


def test_omni_has_the_flags_v1_4_requires_and_waits_in_a_profile() -> None:
    omni = compose_document(_services())["services"]["omni"]  # type: ignore[index]
    flags = omni["command"]
    # Omni >= 1.4 refuses to start without its SQLite store; every store lives on the data volume.
    assert "--sqlite-storage-path=/_out/secondary-storage/sqlite.db" in flags
    assert "--etcd-embedded=true" in flags and "--etcd-embedded-db-path=/_out/etcd/" in flags
    assert "--auth-saml-url=https://auth.example.net/application/saml/omni/metadata/" in flags
    assert omni["profiles"] == [OMNI_PROFILE]
    cloudflared = compose_document(_services())["services"]["cloudflared"]  # type: ignore[index]
    assert "omni" not in cloudflared["depends_on"]
    script = omni_start_script(_services().omni_saml_metadata_url)
    assert script.index("curl -fsS") < script.index("COMPOSE_PROFILES=omni") < script.index("systemctl restart")


def test_dev_never_imports_the_authentik_sdk(dev_run_modules: tuple[int, frozenset[str]]) -> None:
    # A fresh interpreter that imported and ran dev (one subprocess shared with test_dev.py).
    resources, modules = dev_run_modules
    assert resources > 0 and "stacks.dev" in modules
    assert packages(modules, "pulumi_authentik") == []


def test_first_preview_view_registers_the_same_identity_layer(previewed: Callable[[str], StackResult]) -> None:
    result = previewed("cloud")
    assert result.recording is not None and result.first_preview is not None
    first = result.first_preview.recording

    def authentik(rec: Recording) -> set[str]:
        return {r.name for r in rec.resources if r.type.startswith("authentik:")}

    assert authentik(first) == authentik(result.recording) and len(authentik(first)) > 90
    lookups = {"authentik:index/getCertificateKeyPair:getCertificateKeyPair",
               "authentik:index/getPropertyMappingProviderScope:getPropertyMappingProviderScope"}  # fmt: skip
    # The lookups wait for Authentik (invoke depends_on): a first preview of a fresh estate does not
    # run them, so it needs no Authentik; an update view does.
    assert not lookups & set(first.invokes)
    assert lookups <= set(result.recording.invokes)
    # Every identity rule decides in the first preview too (none met an unknown it needed).
    assert not {rule for rule in result.first_preview.not_evaluated() if rule.startswith("IDN-")}
    assert not [f for f in result.first_preview.findings if f.rule_id.startswith("IDN-") and f.kind == "violation"]


SMTP = {"host": "smtp.example.net", "from_address": "auth@example.net", "username": "auth"}
BAD_SMTP = [
    ({**SMTP, "security": "none"}, "homelab:identity.smtp.username: a login over an unencrypted connection"),
    ({**SMTP, "host": "smtp example"}, "homelab:identity.smtp.host: must be the relay's DNS name"),
    ({**SMTP, "from_address": "auth"}, "homelab:identity.smtp.from_address: must be an e-mail address"),
    ({**SMTP, "port": 0}, "homelab:identity.smtp.port: must be at least 1"),
    ({**SMTP, "tls": True}, "homelab:identity.smtp.tls: unknown key"),
    # A relay login without its password secret.
    (SMTP, "homelab:smtpPassword: required secret is not set while homelab:identity.smtp.username is"),
]


SMTP_IDS = ["security-none", "host", "from", "port", "unknown", "no-password"]


@pytest.mark.parametrize(("smtp", "message"), BAD_SMTP, ids=SMTP_IDS)
def test_bad_smtp_settings_are_one_error_naming_the_key(smtp: dict[str, Any], message: str) -> None:
    identity = section("cloud", "identity")
    identity["smtp"] = smtp
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        run_stack("cloud", overrides={"identity": identity})
    assert str(caught.value).startswith(message), str(caught.value)
    assert seen == []


def _with_smtp(project: Path, smtp: dict[str, Any] | None, password: bool) -> None:
    path = project / "Pulumi.cloud.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if smtp is not None:
        document["config"]["homelab:identity"]["smtp"] = smtp
    if password:
        # An encrypted value, as `pulumi config set --secret` writes it (offline: a marked stand-in).
        document["config"]["homelab:smtpPassword"] = {"secure": "v1:AAAA"}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")


def test_a_password_without_a_relay_login_names_the_key(isolated_project: Path) -> None:
    _with_smtp(isolated_project, {k: v for k, v in SMTP.items() if k != "username"}, password=True)
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        run_stack("cloud", isolated_project)
    assert str(caught.value).startswith("homelab:identity.smtp.username: is not set, so the secret smtpPassword")
    assert seen == []


def test_cli_exits_2_on_a_relay_login_without_its_password(
    isolated_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_smtp(isolated_project, SMTP, password=False)
    assert main(["--project-dir", str(isolated_project), "exposure", "cloud"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "homelab:smtpPassword" in err


def test_a_relay_reaches_authentik_with_its_password_only_in_the_secret_file(isolated_project: Path) -> None:
    _with_smtp(isolated_project, SMTP, password=True)
    rec = run_stack("cloud", isolated_project)
    staged = rec.get("command:remote:CopyToRemote", "oci-mgmt-compose-file")
    compose = yaml.safe_load(staged.inputs["source"]["text"])
    env = compose["services"]["authentik-worker"]["environment"]
    assert env["AUTHENTIK_EMAIL__HOST"] == "smtp.example.net" and env["AUTHENTIK_EMAIL__USE_TLS"] == "true"
    assert env["AUTHENTIK_EMAIL__PASSWORD"] == "file:///run/secrets/smtp_password"
    install = rec.get("command:remote:Command", "oci-mgmt-secrets")
    assert install.is_secret("stdin")
    lines = dict(line.split(" ", 1) for line in install.inputs["stdin"].splitlines())
    assert lines["smtp_password"] == base64.b64encode(stand_in("smtpPassword").encode()).decode()
    assert "offline-placeholder-smtp-password" not in json.dumps(staged.inputs)
    # With a relay: admins are e-mailed, and the sign-in page offers the password reset.
    transports = {r.inputs["mode"] for r in rec.by_type("authentik:index/eventTransport:EventTransport")}
    assert transports == {"local", "email", "webhook"}
    identification = rec.get("authentik:index/stageIdentification:StageIdentification", "authentik-identification")
    assert identification.inputs.get("recoveryFlow")


def test_the_committed_stack_has_no_relay_and_drops_what_needs_one(cloud: Recording) -> None:
    transports = {r.inputs["mode"] for r in cloud.by_type("authentik:index/eventTransport:EventTransport")}
    assert transports == {"local", "webhook"}
    identification = cloud.get("authentik:index/stageIdentification:StageIdentification", "authentik-identification")
    assert "recoveryFlow" not in identification.inputs
    install = cloud.get("command:remote:Command", "oci-mgmt-secrets")
    lines = dict(line.split(" ", 1) for line in install.inputs["stdin"].splitlines())
    assert lines["smtp_password"] == ""


def test_no_relay_is_a_warning_that_says_what_does_not_work(caplog: pytest.LogCaptureFixture) -> None:
    def program() -> None:
        assert smtp_relay(IdentityConfig(), password_set=False) is None

    with caplog.at_level(logging.WARNING):
        run_program(program, project="homelab", stack="test")
    [warning] = [r.getMessage() for r in caplog.records if "identity.smtp" in r.getMessage()]
    assert "no self-service password reset" in warning and "by ntfy push" in warning


def test_ntfy_publisher_is_a_secret_write_token_for_one_topic(cloud: Recording) -> None:
    output = cloud.outputs["ntfy_identity_publisher"]
    assert output.secret
    assert output.value["topic"] == "homelab-identity"
    assert re.fullmatch(r"tk_[a-z2-7]{29}", output.value["token"])
    webhook = cloud.get("authentik:index/eventTransport:EventTransport", "authentik-notify-ntfy")
    assert webhook.inputs["webhookUrl"] == "https://push.example.net/"
    headers = cloud.get(
        "authentik:index/propertyMappingNotification:PropertyMappingNotification", "authentik-ntfy-headers"
    )
    assert headers.is_secret("expression") and output.value["token"] in headers.inputs["expression"]


def test_turning_the_ntfy_push_off() -> None:
    identity = section("cloud", "identity")
    off = run_stack("cloud", overrides={"identity": {**identity, "ntfy_topic": None}})
    assert "ntfy_identity_publisher" not in off.outputs
    assert {r.inputs["mode"] for r in off.by_type("authentik:index/eventTransport:EventTransport")} == {"local"}


def test_a_push_topic_without_the_ntfy_push_hostname_names_the_key() -> None:
    catalog = section("cloud", "catalog")
    catalog["services"] = {"ntfy-push": {"enabled": False}}
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        run_stack("cloud", overrides={"catalog": catalog})
    assert str(caught.value).startswith("homelab:identity.ntfy_topic: the catalog has no 'ntfy-push' entry")
    assert seen == []
