"""Pass / violate / unknown (and config-override / boundary) cases of the identity rules (IDN-01..05)."""

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import StackValidationArgs

from tests.policies.cases import (
    ACCESS_POLICY,
    CATCH_ALL,
    DNS,
    MFA,
    TUNNEL_CONFIG,
    access_app,
    access_policy,
    case,
    tunnel_config,
)
from tests.policies.helpers import UNKNOWN, Res, stack_args

APP = "authentik:index/application:Application"
BINDING = "authentik:index/policyBinding:PolicyBinding"
GROUP = "authentik:index/group:Group"
OIDC = "authentik:index/providerOauth2:ProviderOauth2"
PROXY = "authentik:index/providerProxy:ProviderProxy"
FLOW = "authentik:index/flow:Flow"
FSB = "authentik:index/flowStageBinding:FlowStageBinding"
MFA_STAGE = "authentik:index/stageAuthenticatorValidate:StageAuthenticatorValidate"
BRAND = "authentik:index/brand:Brand"
OUTPOST = "http://authentik-server:9000"


def group(name: str) -> Res:
    return Res(GROUP, f"group-{name}", {"name": name})


def app(slug: str, provider: str | None = None, **props: Any) -> Res:
    return Res(
        APP,
        f"app-{slug}",
        {"slug": slug, "name": slug, "protocolProvider": UNKNOWN, **props},
        inputs_from={"protocolProvider": [provider]} if provider else {},
    )


def binding(slug: str, group_name: str | None, name: str | None = None) -> Res:
    sources: dict[str, Sequence[str]] = {"target": [f"app-{slug}"]}
    props: dict[str, Any] = {"target": UNKNOWN, "order": 0}
    if group_name is not None:
        sources["group"] = [f"group-{group_name}"]
        props["group"] = UNKNOWN
    else:
        props["policy"] = "expression-policy-id"
    return Res(BINDING, name or f"bind-{slug}-{group_name or 'policy'}", props, inputs_from=sources)


def S(resources: Sequence[Res], config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    return stack_args(resources, config)


# --- IDN-01 ------------------------------------------------------------------------------------
case("IDN-01", "pass", "bound-to-family", lambda: S([group("family"), app("immich"), binding("immich", "family")]))
case("IDN-01", "pass", "no-authentik", lambda: S([]))
case(
    "IDN-01",
    "violate",
    "unbound-application",
    lambda: S([group("family"), app("immich"), app("nextcloud"), binding("immich", "family")]),
    "Authentik application 'nextcloud' has no policy binding.",
)
case(
    "IDN-01",
    "pass",
    "boundary-expression-policy-binding-counts",
    lambda: S([app("immich"), binding("immich", None)]),
)
case(
    "IDN-01",
    "unknown",
    "binding-target-computed",
    # The target uuid is unknown at a first preview; the recorded dependency still links them.
    lambda: S([group("family"), app("immich", uuid=UNKNOWN), binding("immich", "family")]),
)
case(
    "IDN-01",
    "unknown",
    "slug-computed",
    lambda: S([Res(APP, "app-immich", {"slug": UNKNOWN, "name": "Immich"})]),
    cannot_run=True,
)

# --- IDN-02 ------------------------------------------------------------------------------------
ADMIN_APPS = {"adminApplications": ["grafana"], "adminGroup": "admin"}
case(
    "IDN-02",
    "pass",
    "admin-only",
    lambda: S([group("admin"), app("grafana"), binding("grafana", "admin")], ADMIN_APPS),
)
case(
    "IDN-02",
    "violate",
    "also-bound-to-family",
    lambda: S(
        [group("admin"), group("family"), app("grafana"), binding("grafana", "admin"), binding("grafana", "family")],
        ADMIN_APPS,
    ),
    "admin application 'grafana' is also bound to group 'family' (bind-grafana-family).",
)
case(
    "IDN-02",
    "violate",
    "unbound",
    lambda: S([app("grafana")], ADMIN_APPS),
    "admin application 'grafana' is not bound to group 'admin'.",
)
case(
    "IDN-02",
    "violate",
    "boundary-policy-binding-is-not-the-group",
    lambda: S([group("admin"), app("grafana"), binding("grafana", "admin"), binding("grafana", None)], ADMIN_APPS),
    "admin application 'grafana' is also bound to a policy or user (bind-grafana-policy).",
)
case(
    "IDN-02",
    "pass",
    "config-override-renamed-admin-group",
    lambda: S(
        [group("ops"), app("grafana"), binding("grafana", "ops")],
        {"adminApplications": ["grafana"], "adminGroup": "ops"},
    ),
)
case(
    "IDN-02",
    "pass",
    "config-default-knows-no-admin-app",
    lambda: S([group("family"), app("grafana"), binding("grafana", "family")]),
)
case(
    "IDN-02",
    "unknown",
    "group-name-computed",
    lambda: S([Res(GROUP, "group-admin", {"name": UNKNOWN}), app("grafana"), binding("grafana", "admin")], ADMIN_APPS),
    cannot_run=True,
)

# --- IDN-03 ------------------------------------------------------------------------------------
TIER1 = {"tier1Hostnames": {"dav.example.org": "proxy", "cloud.example.org": "oidc"}}


def ingress(hostname: str, service: str) -> dict[str, Any]:
    return {"hostname": hostname, "service": service}


def tier1_stack(
    dav_service: str = OUTPOST,
    dav_dns_waits: bool = True,
    nextcloud_redirect: str = "https://cloud.example.org/apps/user_oidc/code",
    with_nextcloud_app: bool = True,
    config: Mapping[str, Any] = TIER1,
) -> StackValidationArgs:
    resources = [
        Res(
            TUNNEL_CONFIG,
            "tunnel-ingress",
            tunnel_config(
                ingress("dav.example.org", dav_service),
                ingress("cloud.example.org", "http://10.0.1.20:80"),
                CATCH_ALL,
            ),
        ),
        Res(
            PROXY, "proxy-baikal", {"externalHost": "https://dav.example.org", "internalHost": "http://dav.example.org"}
        ),
        app("baikal", "proxy-baikal"),
        Res(
            OIDC,
            "oidc-nextcloud",
            {"clientId": "nextcloud", "allowedRedirectUris": [{"matchingMode": "strict", "url": nextcloud_redirect}]},
        ),
        Res(
            DNS,
            "dns-baikal",
            {"name": "dav.example.org", "type": "CNAME"},
            inputs_from={"": ["app-baikal"]} if dav_dns_waits else {},
        ),
        Res(
            DNS,
            "dns-nextcloud",
            {"name": "cloud.example.org", "type": "CNAME"},
            inputs_from={"": ["app-nextcloud"]} if with_nextcloud_app else {},
        ),
    ]
    if with_nextcloud_app:
        resources.append(app("nextcloud", "oidc-nextcloud"))
    return S(resources, config)


case("IDN-03", "pass", "proxy-and-oidc-gated", tier1_stack)
case(
    "IDN-03",
    "violate",
    "proxy-app-routed-straight-to-the-app",
    lambda: tier1_stack(dav_service="http://baikal.baikal.svc.cluster.local:80"),
    "Tier-1 hostname dav.example.org is routed to http://baikal.baikal.svc.cluster.local:80, not to the outpost.",
)
case(
    "IDN-03",
    "violate",
    "dns-published-before-the-gate",
    lambda: tier1_stack(dav_dns_waits=False),
    "DNS record for Tier-1 hostname dav.example.org does not wait for its Authentik application.",
)
case(
    "IDN-03",
    "violate",
    "oidc-app-missing",
    lambda: tier1_stack(with_nextcloud_app=False),
    "Tier-1 hostname cloud.example.org has no Authentik oidc application.",
)
case(
    "IDN-03",
    "violate",
    "boundary-redirect-on-a-lookalike-host",
    lambda: tier1_stack(nextcloud_redirect="https://cloud.example.org.evil.net/apps/user_oidc/code"),
    "Tier-1 hostname cloud.example.org has no Authentik oidc application.",
)
case(
    "IDN-03",
    "pass",
    "config-override-other-outpost-origin",
    lambda: tier1_stack(
        dav_service="http://ak-outpost.authentik.svc:9000",
        config={**TIER1, "outpostOrigins": ["http://ak-outpost.authentik.svc:9000"]},
    ),
)
case("IDN-03", "pass", "config-default-no-tier1", lambda: tier1_stack(dav_service="http://baikal:80", config={}))
case(
    "IDN-03",
    "unknown",
    "redirect-uris-computed",
    lambda: S(
        [
            Res(TUNNEL_CONFIG, "tunnel-ingress", tunnel_config(ingress("cloud.example.org", "http://10.0.1.20:80"))),
            Res(OIDC, "oidc-nextcloud", {"clientId": "nextcloud", "allowedRedirectUris": UNKNOWN}),
        ],
        TIER1,
    ),
    cannot_run=True,
)

# --- IDN-04 ------------------------------------------------------------------------------------
OIDC_GROUP = [{"oidc": {"claimName": "groups", "claimValue": "admin", "identityProviderId": "idp"}}]


def idp_policy(includes: Any, decision: str = "allow") -> Res:
    policy = access_policy(MFA, decision)
    return Res(ACCESS_POLICY, policy.name, {**policy.props, "includes": includes})


case("IDN-04", "pass", "oidc-group", lambda: S([idp_policy(OIDC_GROUP), access_app()]))
case(
    "IDN-04",
    "violate",
    "raw-emails",
    lambda: S([idp_policy([{"email": {"email": "admin@example.org"}}]), access_app()]),
    "Access policy 'admins' admits by email instead of an identity-provider group.",
)
case(
    "IDN-04",
    "violate",
    "boundary-group-plus-everyone",
    lambda: S([idp_policy([*OIDC_GROUP, {"everyone": {}}]), access_app()]),
    "Access policy 'admins' admits by everyone instead of an identity-provider group.",
)
case(
    "IDN-04",
    "violate",
    "no-group",
    lambda: S([idp_policy([{"authMethod": {"authMethod": "mfa"}}]), access_app()]),
    "Access policy 'admins' names no identity-provider group.",
)
case(
    "IDN-04",
    "pass",
    "boundary-deny-policy-and-unused-policy-ignored",
    lambda: S([idp_policy([{"email": {"email": "x@example.org"}}], decision="deny"), access_app()]),
)
case(
    "IDN-04",
    "unknown",
    "idp-id-computed",
    lambda: S(
        [
            idp_policy([{"oidc": {"claimName": "groups", "claimValue": "admin", "identityProviderId": UNKNOWN}}]),
            access_app(),
        ]
    ),
)
case(
    "IDN-04",
    "unknown",
    "includes-computed",
    lambda: S([idp_policy(UNKNOWN), access_app()]),
    cannot_run=True,
)

# --- IDN-05 ------------------------------------------------------------------------------------


def mfa_stack(
    action: str = "configure", bound_to: str | None = None, classes: Any = ("totp", "webauthn"), **config: Any
) -> StackValidationArgs:
    resources = [
        group("admin"),
        group("family"),
        Res(FLOW, "flow-auth", {"slug": "homelab-authentication", "designation": "authentication"}),
        Res(
            BRAND,
            "brand",
            {"domain": "auth.example.org", "flowAuthentication": UNKNOWN},
            inputs_from={"flowAuthentication": ["flow-auth"]},
        ),
        Res(
            MFA_STAGE,
            "mfa",
            {"notConfiguredAction": action, "deviceClasses": list(classes) if isinstance(classes, tuple) else classes},
        ),
        Res(
            FSB,
            "mfa-binding",
            {"order": 30, "target": UNKNOWN, "stage": UNKNOWN},
            inputs_from={"target": ["flow-auth"], "stage": ["mfa"]},
        ),
    ]
    if bound_to is not None:
        resources.append(
            Res(BINDING, "mfa-only-for", {"order": 0, "target": UNKNOWN, "group": UNKNOWN},
                inputs_from={"target": ["mfa-binding"], "group": [f"group-{bound_to}"]})
        )  # fmt: skip
    return S(resources, config or None)


case("IDN-05", "pass", "everyone", mfa_stack)
case("IDN-05", "pass", "admins-only", lambda: mfa_stack(bound_to="admin"))
case("IDN-05", "pass", "no-authentik", lambda: S([group("admin")]))
case(
    "IDN-05",
    "violate",
    "optional-mfa",
    lambda: mfa_stack(action="skip"),
    "authentication flow 'homelab-authentication' does not require a second factor from 'admin'.",
)
case(
    "IDN-05",
    "violate",
    "mfa-for-family-only",
    lambda: mfa_stack(bound_to="family"),
    "authentication flow 'homelab-authentication' does not require a second factor from 'admin'.",
)
case(
    "IDN-05",
    "violate",
    "boundary-no-device-class",
    lambda: mfa_stack(classes=()),
    "authentication flow 'homelab-authentication' does not require a second factor from 'admin'.",
)
case("IDN-05", "pass", "boundary-deny-enforces", lambda: mfa_stack(action="deny"))
case(
    "IDN-05",
    "violate",
    "config-override-deny-not-accepted",
    lambda: mfa_stack(action="deny", enforcingActions=["configure"]),
    "authentication flow 'homelab-authentication' does not require a second factor from 'admin'.",
)
case(
    "IDN-05",
    "violate",
    "applications-without-brand",
    lambda: S([group("admin"), app("grafana"), binding("grafana", "admin")]),
    "Authentik applications exist but no brand selects an authentication flow.",
)
case(
    "IDN-05",
    "unknown",
    "action-computed",
    lambda: mfa_stack(action=UNKNOWN),
    cannot_run=True,
)
