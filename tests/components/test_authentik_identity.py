"""`AuthentikIdentity`: groups, sign-up, MFA, apps and service accounts, registered under the offline engine."""

from collections.abc import Callable
from types import SimpleNamespace

import pulumi
import pytest
import yaml

from components.authentik.identity import AuthentikIdentity, authentik_provider, ntfy_body_expression
from components.authentik.specs import NtfyPush, OidcClient, ProxyApp, SamlApp, ServiceAccount
from homelab.engine import Recording, run_program

AK = "authentik:index/"
APP = f"{AK}application:Application"
BINDING = f"{AK}policyBinding:PolicyBinding"
FSB = f"{AK}flowStageBinding:FlowStageBinding"
OIDC = f"{AK}providerOauth2:ProviderOauth2"
PROXY = f"{AK}providerProxy:ProviderProxy"
SAML = f"{AK}providerSaml:ProviderSaml"
TOKEN = f"{AK}token:Token"

CLIENTS = (
    OidcClient("grafana", "Grafana", ("admin",), ("https://grafana.example.net/login/generic_oauth",), "s" * 64),
    OidcClient(
        "immich",
        "Immich",
        ("family",),
        ("app.immich:///oauth-callback", "https://photos.example.net/auth/login"),
        "i" * 64,
    ),
)
PROXIES = (
    ProxyApp("baikal", "Baikal", ("family",), "https://dav.example.net", "http://dav.example.net", ("/dav.php",)),
    ProxyApp("n8n", "N8n", ("family",), "https://n8n.example.net", "http://n8n.example.net"),
)
SAMLS = (
    SamlApp("omni", "Omni", ("admin",), "https://omni.example.net/saml/acs", "https://omni.example.net/saml/metadata"),
)
ACCOUNTS = (ServiceAccount("ci-github", "CI", ("authentik_core.view_application",)),)
NTFY_TOKEN = "tk_ntfytokenvalue0000000000000000"


def _ntfy() -> NtfyPush:
    """Built inside the program: an Output belongs to the event loop of the run that awaits it."""
    return NtfyPush(
        "https://push.example.net/",
        "homelab-identity",
        pulumi.Output.secret(NTFY_TOKEN),
        "https://auth.example.net/if/admin/#/identity/users",
    )


TRANSPORT = f"{AK}eventTransport:EventTransport"
MAPPING = f"{AK}propertyMappingNotification:PropertyMappingNotification"


def program(
    mfa_for_all: bool = True,
    clients: tuple[OidcClient, ...] = CLIENTS,
    email: bool = True,
    ntfy: bool = True,
) -> Callable[[], None]:
    def run() -> None:
        ready = pulumi.CustomResource("command:remote:Command", "authentik-ready", {"create": "true"})
        provider = authentik_provider("authentik", "https://auth.example.net", pulumi.Output.secret("t" * 64), ready)
        identity = AuthentikIdentity(
            "authentik",
            {
                "authentik_host": "auth.example.net",
                "mfa_for_all": mfa_for_all,
                "password_min_length": 12,
                "email": email,
                "ntfy": _ntfy() if ntfy else None,
                "oidc_clients": clients,
                "proxy_apps": PROXIES,
                "saml_apps": SAMLS,
                "service_accounts": ACCOUNTS,
                "ready": [ready],
            },
            opts=pulumi.ResourceOptions(providers=[provider]),
        )
        pulumi.export("grafana", identity.oidc["grafana"].as_output())
        pulumi.export("tokens", identity.service_account_tokens)

    return run


def record(**kwargs: object) -> Recording:
    return run_program(program(**kwargs), project="homelab", stack="test")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def identity() -> Recording:
    return record()


def _bound_groups(rec: Recording, target_urn: str) -> set[str]:
    by_urn = rec.by_urn()
    groups: set[str] = set()
    for binding in rec.by_type(BINDING):
        if target_urn in binding.property_dependencies.get("target", ()):
            groups |= {by_urn[u].inputs["name"] for u in binding.property_dependencies.get("group", ())}
    return groups


def test_every_resource_is_a_child_using_the_explicit_provider(identity: Recording) -> None:
    component = identity.get("homelab:authentik:Identity", "authentik")
    provider = identity.get("pulumi:providers:authentik", "authentik")
    assert provider.is_secret("token")
    assert any(d.endswith("authentik-ready") for d in provider.dependencies)
    authentik = [r for r in identity.resources if r.type.startswith(AK)]
    assert len(authentik) > 60
    assert all(r.parent == component.urn and r.provider and r.provider.startswith(provider.urn) for r in authentik)


def test_groups_and_pending_bound_to_nothing(identity: Recording) -> None:
    groups = {r.inputs["name"]: r for r in identity.by_type(f"{AK}group:Group")}
    assert {"admin", "family", "pending"} <= set(groups)
    assert groups["admin"].inputs["isSuperuser"] is True
    assert not groups["family"].inputs["isSuperuser"]
    pending = groups["pending"].urn
    assert not [b for b in identity.by_type(BINDING) if pending in b.property_dependencies.get("group", ())]


def test_every_application_bound_to_exactly_its_groups(identity: Recording) -> None:
    apps = {a.inputs["slug"]: a for a in identity.by_type(APP)}
    assert set(apps) == {"grafana", "immich", "baikal", "n8n", "omni"}
    expected = {"grafana": {"admin"}, "immich": {"family"}, "baikal": {"family"}, "n8n": {"family"}, "omni": {"admin"}}
    assert {slug: _bound_groups(identity, app.urn) for slug, app in apps.items()} == expected
    # Numeric provider ids: the SDK wants a number for protocol_provider.
    assert all(isinstance(a.inputs["protocolProvider"], float) for a in apps.values())


def test_oidc_clients_are_strict_rs256_and_secret(identity: Recording) -> None:
    grafana = identity.get(OIDC, "authentik-oidc-grafana")
    assert grafana.inputs["clientType"] == "confidential"
    assert grafana.inputs["allowedRedirectUris"] == [
        {"matching_mode": "strict", "url": "https://grafana.example.net/login/generic_oauth"}
    ]
    assert grafana.is_secret("clientSecret") and "clientSecret" in grafana.additional_secret_outputs
    assert grafana.inputs["signingKey"]  # the instance's key pair: RS256 instead of HS256
    assert "signingKey" in grafana.property_dependencies or grafana.inputs["signingKey"]
    exported = identity.outputs["grafana"]
    assert exported.secret
    assert exported.value["issuer"] == "https://auth.example.net/application/o/grafana/"
    assert exported.value["client_id"] == "grafana"


def test_lookups_wait_for_the_server_and_never_read_the_private_key(identity: Recording) -> None:
    assert identity.invokes.count("authentik:index/getCertificateKeyPair:getCertificateKeyPair") == 1
    assert "authentik:index/getPropertyMappingProviderScope:getPropertyMappingProviderScope" in identity.invokes
    assert not [t for t in identity.invokes if "getFlow" in t or "getStage" in t]  # flows are owned, not looked up


def test_proxy_apps_use_the_embedded_outpost(identity: Recording) -> None:
    baikal = identity.get(PROXY, "authentik-proxy-baikal")
    assert baikal.inputs["mode"] == "proxy"
    assert baikal.inputs["externalHost"] == "https://dav.example.net"
    assert baikal.inputs["skipPathRegex"] == "^/dav\\.php(/.*)?$"
    outpost = yaml.safe_load(identity.get(f"{AK}blueprint:Blueprint", "authentik-embedded-outpost").inputs["content"])
    [entry] = outpost["entries"]
    assert entry["identifiers"] == {"managed": "goauthentik.io/outposts/embedded"}
    ids = {int(identity.get(PROXY, f"authentik-proxy-{s}").id) for s in ("baikal", "n8n")}
    assert set(entry["attrs"]["providers"]) == ids


def test_omni_saml_maps_the_email(identity: Recording) -> None:
    omni = identity.get(SAML, "authentik-saml-omni")
    assert omni.inputs["acsUrl"] == "https://omni.example.net/saml/acs"
    assert omni.inputs["signAssertion"] and omni.inputs["signResponse"]
    mapping = identity.get(f"{AK}propertyMappingProviderSaml:PropertyMappingProviderSaml", "authentik-saml-omni-email")
    assert mapping.inputs["samlName"] == "email"
    assert mapping.inputs["expression"] == "return request.user.email"


def _mfa_binding(rec: Recording) -> tuple[dict[str, object], str]:
    stage = rec.get(f"{AK}stageAuthenticatorValidate:StageAuthenticatorValidate", "authentik-mfa")
    [binding] = [b for b in rec.by_type(FSB) if stage.urn in b.property_dependencies.get("stage", ())]
    return dict(stage.inputs), binding.urn


def test_mfa_for_everyone_by_default(identity: Recording) -> None:
    stage, binding = _mfa_binding(identity)
    assert stage["notConfiguredAction"] == "configure"
    assert set(stage["deviceClasses"]) == {"totp", "webauthn"}  # type: ignore[arg-type]
    assert _bound_groups(identity, binding) == set()


def test_mfa_for_admins_only_when_configured() -> None:
    rec = record(mfa_for_all=False)
    _, binding = _mfa_binding(rec)
    assert _bound_groups(rec, binding) == {"admin"}


def test_sign_up_creates_inactive_pending_users_and_notifies_admins(identity: Recording) -> None:
    write = identity.get(f"{AK}stageUserWrite:StageUserWrite", "authentik-enrollment-write")
    assert write.inputs["createUsersAsInactive"] is True
    pending = identity.get(f"{AK}group:Group", "authentik-group-pending")
    assert pending.urn in write.property_dependencies["createUsersGroup"]
    invite = identity.get(f"{AK}stageUserWrite:StageUserWrite", "authentik-invitation-write")
    family = identity.get(f"{AK}group:Group", "authentik-group-family")
    assert (
        invite.inputs["createUsersAsInactive"] is False
        and family.urn in invite.property_dependencies["createUsersGroup"]
    )
    rule = identity.get(f"{AK}eventRule:EventRule", "authentik-notify-sign-up")
    admin = identity.get(f"{AK}group:Group", "authentik-group-admin")
    assert admin.urn in rule.property_dependencies["destinationGroup"]
    matcher = identity.get(f"{AK}policyEventMatcher:PolicyEventMatcher", "authentik-new-user")
    assert (matcher.inputs["action"], matcher.inputs["model"]) == ("model_created", "authentik_core.user")


def test_service_account_tokens_never_expire_and_stay_secret(identity: Recording) -> None:
    token = identity.get(TOKEN, "authentik-sa-ci-github-token")
    assert token.inputs["expiring"] is False and token.inputs["intent"] == "api"
    assert isinstance(token.inputs["user"], float)
    assert "key" in token.additional_secret_outputs
    user = identity.get(f"{AK}user:User", "authentik-sa-ci-github")
    assert user.inputs["type"] == "service_account"
    group = identity.get(f"{AK}group:Group", "authentik-sa-ci-github-group")
    assert not group.inputs.get("isSuperuser")
    perms = [p.inputs["permission"] for p in identity.by_type(f"{AK}rbacPermissionRole:RbacPermissionRole")]
    assert perms == ["authentik_core.view_application"]
    assert identity.outputs["tokens"].secret


def test_an_unknown_group_is_refused_before_any_application() -> None:
    bad = (OidcClient("x", "X", ("friends",), ("https://x.example.net/cb",), "x" * 64),)
    with pytest.raises(ValueError, match="groups must be a non-empty subset"):
        record(clients=bad)


def _rule_transports(rec: Recording) -> dict[str, dict[str, object]]:
    rule = rec.get(f"{AK}eventRule:EventRule", "authentik-notify-sign-up")
    by_urn = rec.by_urn()
    return {by_urn[u].inputs["mode"]: dict(by_urn[u].inputs) for u in rule.property_dependencies["transports"]}


def test_sign_ups_reach_admins_by_notification_centre_email_and_ntfy(identity: Recording) -> None:
    transports = _rule_transports(identity)
    assert set(transports) == {"local", "email", "webhook"}
    # Personal channels notify every admin; the shared ntfy topic gets one push.
    assert transports["local"]["sendOnce"] is False and transports["email"]["sendOnce"] is False
    assert transports["webhook"]["sendOnce"] is True
    assert transports["webhook"]["webhookUrl"] == "https://push.example.net/"  # no token in the URL
    # The email stage of the recovery flow uses Authentik's global SMTP settings.
    recovery_email = identity.get(f"{AK}stageEmail:StageEmail", "authentik-recovery-email")
    assert recovery_email.inputs["useGlobalSettings"] is True


def test_the_ntfy_token_travels_only_in_a_secret_header_mapping(identity: Recording) -> None:
    webhook = identity.get(TRANSPORT, "authentik-notify-ntfy")
    headers = identity.get(MAPPING, "authentik-ntfy-headers")
    body = identity.get(MAPPING, "authentik-ntfy-body")
    assert headers.urn in webhook.property_dependencies["webhookMappingHeaders"]
    assert body.urn in webhook.property_dependencies["webhookMappingBody"]
    assert headers.is_secret("expression") and "expression" in headers.additional_secret_outputs
    assert NTFY_TOKEN in headers.inputs["expression"]
    for record_ in identity.resources:
        for key, value in record_.inputs.items():
            if not record_.is_secret(key):
                assert NTFY_TOKEN not in str(value), (record_.name, key)
    component = identity.get("homelab:authentik:Identity", "authentik")
    assert {webhook.parent, headers.parent, body.parent} == {component.urn}


def test_the_ntfy_body_mapping_is_one_ntfy_json_message() -> None:
    event = SimpleNamespace(context={"model": {"app": "authentik_core", "model_name": "user", "name": "alice"}})
    request = SimpleNamespace(context={"notification": SimpleNamespace(event=event, body="ignored")})
    source = ntfy_body_expression("homelab-identity", "https://auth.example.net/if/admin/#/identity/users")
    # Authentik runs a mapping's expression as the body of a function with `request` in scope.
    namespace: dict[str, object] = {}
    exec("def mapping(request):\n" + "".join(f"    {line}\n" for line in source.splitlines()), namespace)
    message = namespace["mapping"](request)  # type: ignore[operator]
    assert message["topic"] == "homelab-identity"
    assert message["click"] == "https://auth.example.net/if/admin/#/identity/users"
    assert message["message"].startswith("alice signed up")


def test_without_a_relay_nothing_pretends_to_send_mail() -> None:
    rec = record(email=False, ntfy=False)
    assert set(_rule_transports(rec)) == {"local"}
    assert not rec.by_type(MAPPING)
    identification = rec.get(f"{AK}stageIdentification:StageIdentification", "authentik-identification")
    assert "recoveryFlow" not in identification.inputs  # no "Forgot password?" link to a mail never sent
    # The recovery flow stays on the brand: an admin's recovery link needs it, and needs no e-mail.
    brand = rec.get(f"{AK}brand:Brand", "authentik-brand")
    recovery = rec.get(f"{AK}flow:Flow", "authentik-flow-recovery")
    assert recovery.urn in brand.property_dependencies["flowRecovery"]


def test_with_a_relay_the_sign_in_page_offers_recovery(identity: Recording) -> None:
    identification = identity.get(f"{AK}stageIdentification:StageIdentification", "authentik-identification")
    recovery = identity.get(f"{AK}flow:Flow", "authentik-flow-recovery")
    assert recovery.urn in identification.property_dependencies["recoveryFlow"]
