"""Identity rules: Authentik applications, their gates, Access by group, MFA for admins (NFR-007).

Authentik resources are linked by ids the provider assigns (an application's `uuid`, a provider's
numeric id), unknown at a first preview; the rules therefore follow the program's recorded property
dependencies (`target` of a binding, `protocolProvider` of an application), which are known.
"""

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from policies.rules import registry as reg
from policies.rules.base import Rule, stack_rule
from policies.rules.walk import get, items, mapping, of_type

StackReport = Callable[[str, str | None], None]
Config = Mapping[str, Any]

AK_APPLICATION = "authentik:index/application:Application"
AK_POLICY_BINDING = "authentik:index/policyBinding:PolicyBinding"
AK_GROUP = "authentik:index/group:Group"
AK_FLOW = "authentik:index/flow:Flow"
AK_FLOW_STAGE_BINDING = "authentik:index/flowStageBinding:FlowStageBinding"
AK_MFA_STAGE = "authentik:index/stageAuthenticatorValidate:StageAuthenticatorValidate"
AK_BRAND = "authentik:index/brand:Brand"
AK_OIDC = "authentik:index/providerOauth2:ProviderOauth2"
AK_PROXY = "authentik:index/providerProxy:ProviderProxy"
AK_PROVIDERS = frozenset({AK_OIDC, AK_PROXY, "authentik:index/providerSaml:ProviderSaml"})

# Access include selectors that name people one by one (or everyone) rather than an IdP group.
RAW_INCLUDES = ("email", "emailDomain", "emailList", "everyone", "ip", "ipList", "anyValidServiceToken")


def _dependents(
    resources: list[PolicyResource], target: PolicyResource, prop: str, types: set[str]
) -> list[PolicyResource]:
    """Resources of `types` whose `prop` input derives from `target`."""
    return [
        r for r in of_type(resources, types) if any(d.urn == target.urn for d in r.property_dependencies.get(prop, []))
    ]


def _source(resource: PolicyResource, prop: str, types: set[str] | frozenset[str]) -> list[PolicyResource]:
    """The resources of `types` that `resource`'s `prop` input derives from."""
    return [d for d in resource.property_dependencies.get(prop, []) if d.resource_type in types]


def _bound_groups(resources: list[PolicyResource], target: PolicyResource) -> list[tuple[PolicyResource, str | None]]:
    """Each binding on `target` with the name of the group it binds (None: a policy or user binding)."""
    found: list[tuple[PolicyResource, str | None]] = []
    for binding in _dependents(resources, target, "target", {AK_POLICY_BINDING}):
        groups = _source(binding, "group", {AK_GROUP})
        found.append((binding, str(get(groups[0].props, "name")) if groups else None))
    return found


@stack_rule(
    id="IDN-01",
    slug="authentik-application-missing-policy-binding",
    nfr="NFR-007",
    topic="security",
    description="Every Authentik application has at least one policy binding: an application without one is open "
    "to every authenticated user, including sign-ups nobody approved (NFR-007).",
    fix="bind the application to the groups it serves: `ak.PolicyBinding(target=app.uuid, group=group.id, "
    "order=0)` (the catalog entry's `groups`).",
    severity=Severity.CRITICAL,
)
def applications_are_bound(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    resources = list(args.resources)
    for app in of_type(resources, {AK_APPLICATION}):
        if not _dependents(resources, app, "target", {AK_POLICY_BINDING}):
            report(f"Authentik application '{get(app.props, 'slug')}' has no policy binding.", app.urn)


@stack_rule(
    id="IDN-02",
    slug="authentik-admin-application-enforce-admin-group-only",
    nfr="NFR-007",
    topic="security",
    description="Every admin application (the catalog's admin services and Cloudflare Access's own client) is "
    "bound to the admin group and to nothing else (NFR-007: admin tools for administrators only).",
    fix="remove every binding of the application except `PolicyBinding(target=app.uuid, group=<admin group>.id)`; "
    "family access belongs to a Tier-1 app, not an admin one.",
    severity=Severity.CRITICAL,
    config={
        "adminApplications": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Slugs of the Authentik applications reserved to the admin group.",
        },
        "adminGroup": {"type": "string", "default": "admin", "description": "Name of the admin group."},
    },
)
def admin_applications_admin_only(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    resources = list(args.resources)
    admin_slugs = set(config["adminApplications"])
    for app in of_type(resources, {AK_APPLICATION}):
        slug = str(get(app.props, "slug"))
        if slug not in admin_slugs:
            continue
        bound = _bound_groups(resources, app)
        if not bound:
            report(f"admin application '{slug}' is not bound to group '{config['adminGroup']}'.", app.urn)
        for binding, group in bound:
            if group != config["adminGroup"]:
                what = f"group '{group}'" if group else "a policy or user"
                report(f"admin application '{slug}' is also bound to {what} ({binding.name}).", binding.urn)


@stack_rule(
    id="IDN-03",
    slug="tunnel-enforce-tier1-sso-gate",
    nfr="NFR-007",
    topic="security",
    description="Every Tier-1 hostname is reached only through its Authentik gate: a proxy-gated app's ingress "
    "goes to the outpost and its proxy provider names the hostname; an OIDC app has a provider whose redirect "
    "URIs are on the hostname; both have an application, and the hostname's DNS record waits for it (NFR-007).",
    fix="derive the app from the catalog (`sso` oidc/proxy): route a proxy-gated hostname to the outpost, "
    "create its provider and application, and make the DNS record depend on the application "
    "(`GatedRecords`).",
    severity=Severity.CRITICAL,
    config={
        "tier1Hostnames": {
            "type": "object",
            "additionalProperties": {"type": "string", "enum": ["oidc", "proxy"]},
            "default": {},
            "description": "Tier-1 hostname -> the kind of its Authentik gate (oidc or proxy).",
        },
        "outpostOrigins": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["http://authentik-server:9000"],
            "description": "Ingress services that are Authentik outposts.",
        },
    },
)
def tier1_behind_sso(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    resources = list(args.resources)
    outposts = set(config["outpostOrigins"])
    ingress_rules = [
        (tunnel, rule)
        for tunnel in of_type(resources, {reg.CF_TUNNEL_CONFIG})
        for rule in items(get(tunnel.props, "config.ingresses"))
    ]
    records = of_type(resources, reg.CF_DNS_TYPES)
    apps = of_type(resources, {AK_APPLICATION})
    for hostname, kind in sorted(mapping(config["tier1Hostnames"]).items()):
        rules = [(t, r) for t, r in ingress_rules if str(get(r, "hostname", "")).lower() == hostname.lower()]
        if not rules:
            continue  # served by another stack's tunnel
        if kind == "proxy":
            for tunnel, rule in rules:
                if str(get(rule, "service")) not in outposts:
                    report(
                        f"Tier-1 hostname {hostname} is routed to {get(rule, 'service')}, not to the outpost.",
                        tunnel.urn,
                    )
            providers = [
                p
                for p in of_type(resources, {AK_PROXY})
                if str(get(p.props, "externalHost")).rstrip("/") == f"https://{hostname}"
            ]
        else:
            providers = [
                p
                for p in of_type(resources, {AK_OIDC})
                if any(
                    str(get(u, "url", "")).startswith(f"https://{hostname}/")
                    for u in items(get(p.props, "allowedRedirectUris"))
                )
            ]
        gates = [
            a
            for a in apps
            if any(p.urn == d.urn for p in providers for d in a.property_dependencies.get("protocolProvider", []))
        ]
        if not gates:
            report(f"Tier-1 hostname {hostname} has no Authentik {kind} application.", rules[0][0].urn)
            continue
        for record in records:
            if str(get(record.props, "name", "")).lower() != hostname.lower():
                continue
            if not any(d.urn == g.urn for g in gates for d in record.dependencies):
                report(
                    f"DNS record for Tier-1 hostname {hostname} does not wait for its Authentik application.",
                    record.urn,
                )


@stack_rule(
    id="IDN-04",
    slug="cloudflare-access-enforce-idp-group",
    nfr="NFR-007",
    topic="security",
    description="Every allow policy of a Cloudflare Access application admits an identity-provider group "
    "(Authentik's `groups` claim), never raw e-mail addresses, domains, addresses or everyone (NFR-007: "
    "membership is managed in one place, with MFA).",
    fix='include `{oidc: {claim_name: "groups", claim_value: "admin", identity_provider_id: idp.id}}` instead of '
    "`email`/`email_domain`/`everyone` selectors, and manage membership in Authentik.",
    severity=Severity.HIGH,
)
def access_admits_idp_group(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    resources = list(args.resources)
    used = {
        d.urn for app in of_type(resources, {reg.CF_ACCESS_APP}) for d in app.property_dependencies.get("policies", [])
    }
    for policy in of_type(resources, {reg.CF_ACCESS_POLICY}):
        if policy.urn not in used or str(get(policy.props, "decision", "")).lower() != "allow":
            continue
        includes = items(get(policy.props, "includes"))
        raw = sorted({key for include in includes for key in mapping(include) if key in RAW_INCLUDES})
        groups = [i for i in includes if any(k in mapping(i) for k in ("oidc", "saml", "group"))]
        if raw:
            report(
                f"Access policy '{policy.name}' admits by {', '.join(raw)} instead of an identity-provider group.",
                policy.urn,
            )
        elif not groups:
            report(f"Access policy '{policy.name}' names no identity-provider group.", policy.urn)


@stack_rule(
    id="IDN-05",
    slug="authentik-admin-enforce-mfa",
    nfr="NFR-007",
    topic="security",
    description="Authentik's authentication flow (the one its brands use) validates a second factor with "
    "`not_configured_action` configure or deny, for everyone or at least for the admin group (NFR-007: 2FA "
    "for administrators).",
    fix='bind a StageAuthenticatorValidate (not_configured_action="configure", TOTP/WebAuthn) to the brand\'s '
    "authentication flow, with no policy binding (everyone) or a binding to the admin group.",
    severity=Severity.CRITICAL,
    config={
        "adminGroup": {"type": "string", "default": "admin", "description": "Name of the admin group."},
        "enforcingActions": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["configure", "deny"],
            "description": "`not_configured_action` values that stop a user without a second factor.",
        },
    },
)
def admins_use_mfa(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    resources = list(args.resources)
    brands = of_type(resources, {AK_BRAND})
    if not brands and not of_type(resources, {AK_APPLICATION}):
        return  # no Authentik in this stack
    if not brands:
        report("Authentik applications exist but no brand selects an authentication flow.", None)
    for brand in brands:
        flows = _source(brand, "flowAuthentication", {AK_FLOW})
        if not flows:
            report(f"brand '{brand.name}' uses an authentication flow this stack does not manage.", brand.urn)
            continue
        if not any(
            _enforces_mfa(resources, binding, config)
            for binding in _dependents(resources, flows[0], "target", {AK_FLOW_STAGE_BINDING})
        ):
            slug, group = get(flows[0].props, "slug"), config["adminGroup"]
            report(f"authentication flow '{slug}' does not require a second factor from '{group}'.", flows[0].urn)


def _enforces_mfa(resources: list[PolicyResource], binding: PolicyResource, config: Config) -> bool:
    stages = _source(binding, "stage", {AK_MFA_STAGE})
    if not stages:
        return False
    stage = stages[0]
    if str(get(stage.props, "notConfiguredAction")) not in config["enforcingActions"] or not items(
        get(stage.props, "deviceClasses")
    ):
        return False
    bound = _bound_groups(resources, binding)
    return not bound or any(group == config["adminGroup"] for _, group in bound)


RULES: tuple[Rule, ...] = (
    applications_are_bound,
    admin_applications_admin_only,
    tier1_behind_sso,
    access_admits_idp_group,
    admins_use_mfa,
)
