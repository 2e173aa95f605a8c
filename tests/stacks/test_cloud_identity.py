"""The identity layer of the `cloud` stack: bad input, Omni's start, exports, and what `dev` imports."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.oci.compose import OMNI_PROFILE, ComposeImages, ManagementServices, compose_document, omni_start_script
from homelab.cli import main
from homelab.engine import Recording
from homelab.render import StackResult
from homelab.stackrun import project_root, run_stack
from stacks.config.base import ConfigError
from tests.stacks.helpers import count_registrations, section

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
    rotated = run_stack("cloud", overrides={"identity": identity})
    secret = "authentik:index/providerOauth2:ProviderOauth2"
    before = {r.name: r.inputs["clientSecret"] for r in cloud.by_type(secret)}
    after = {r.name: r.inputs["clientSecret"] for r in rotated.by_type(secret)}
    assert {n for n in before if before[n] != after[n]} == {"authentik-oidc-grafana"}


@pytest.fixture(scope="module")
def cloud() -> Recording:
    return run_stack("cloud")


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


def test_dev_never_imports_the_authentik_sdk() -> None:
    code = "import sys, stacks.dev; print(json.dumps('pulumi_authentik' in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", f"import json; {code}"], capture_output=True, text=True, check=True, cwd=project_root()
    )
    assert json.loads(result.stdout) is False


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
