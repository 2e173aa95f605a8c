"""The identity layer of the `cloud` stack, derived from the service catalog (no SDK imported here).

`identity_plan` reads the catalog and `homelab:identity` and says what Authentik must hold: one OIDC
client per `sso="oidc"` entry (plus Cloudflare Access's own client), one proxy application per
`sso="proxy"` entry, one SAML application per `sso="saml"` entry, and the service accounts. Each
app admits exactly the catalog entry's groups. The stack hands the plan to
`components.authentik.identity.AuthentikIdentity`; the policy config and the tests read the same
plan, so they never disagree with what is built.

Stack outputs of the `cloud` stack that other stacks consume (read them with a StackReference):

- `oidc_<slug>` for every OIDC client of the catalog (`oidc_argocd`, `oidc_grafana` for `prod`;
  `oidc_nextcloud`, `oidc_immich`, `oidc_vaultwarden` for the CLOUD cluster's apps), each a secret
  mapping `{issuer, client_id, client_secret}`; `issuer` is
  `https://<authentik>/application/o/<slug>/`, `client_id` is the slug, `client_secret` is derived
  from `secretSeed` (rotate with `homelab:identity.client_secret_generations.<slug>`). The groups
  claim (`groups`, from the `profile` scope) carries `admin`/`family`.
- `authentik_service_tokens`: secret mapping service-account name (`ci-github`, `backup`) -> API
  token (non-expiring).
"""

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

from components.authentik.specs import OidcClient, ProxyApp, SamlApp, ServiceAccount
from stacks.catalog import ADMIN_GROUP, Catalog, Service, redirect_uri
from stacks.config.base import NAMESPACE, ConfigError
from stacks.config.identity import IdentitySettings

ACCESS_CLIENT = "cloudflare-access"
"""The OIDC client Cloudflare Access uses to sign admins in (bound to `admin` only)."""

SERVICE_ACCOUNTS: tuple[ServiceAccount, ...] = (
    # The drift and PR-preview jobs read what this stack manages and change nothing.
    ServiceAccount(
        name="ci-github",
        purpose="GitHub Actions: read-only view of the Authentik objects this project manages",
        permissions=(
            "authentik_core.view_application",
            "authentik_core.view_group",
            "authentik_core.view_user",
            "authentik_flows.view_flow",
            "authentik_flows.view_flowstagebinding",
            "authentik_policies.view_policybinding",
            "authentik_providers_oauth2.view_oauth2provider",
            "authentik_providers_proxy.view_proxyprovider",
            "authentik_providers_saml.view_samlprovider",
            "authentik_blueprints.view_blueprintinstance",
        ),
    ),
    # The backup job exports accounts and group memberships next to the PostgreSQL dump, so a
    # restore can be checked against them; it can read users and groups and nothing else.
    ServiceAccount(
        name="backup",
        purpose="Backups: read-only export of users and group memberships",
        permissions=("authentik_core.view_user", "authentik_core.view_group"),
    ),
)


@dataclass(frozen=True)
class IdentityPlan:
    oidc: tuple[OidcClient, ...]
    proxy: tuple[ProxyApp, ...]
    saml: tuple[SamlApp, ...]
    service_accounts: tuple[ServiceAccount, ...]

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(a.slug for a in (*self.oidc, *self.proxy, *self.saml))


def _title(service: Service) -> str:
    return service.name.replace("-", " ").title()


def proxy_internal_host(service: Service, gateway_port: int) -> str:
    """Where the embedded outpost forwards: the app's own hostname, which the management VM's
    `authentik-server` resolves to the CLOUD cluster's Gateway (routing by that Host header)."""
    port = "" if gateway_port == 80 else f":{gateway_port}"
    return f"http://{service.hostname}{port}"


def identity_plan(
    catalog: Catalog,
    settings: IdentitySettings,
    team_name: str,
    gateway_port: int,
    client_secret: Callable[[str, int], pulumi.Input[str]],
) -> IdentityPlan:
    """Everything Authentik must hold, or one `ConfigError` naming the key."""
    gated = [s for s in catalog.services if s.sso is not None]
    clients = {s.name for s in gated if s.sso == "oidc"} | {ACCESS_CLIENT}
    for slug in settings.client_secret_generations:
        if slug not in clients:
            raise ConfigError(
                f"{NAMESPACE}:identity.client_secret_generations.{slug}: no OIDC client {slug!r} "
                f"(clients: {', '.join(sorted(clients))})"
            )

    def secret(slug: str) -> pulumi.Input[str]:
        return client_secret(slug, settings.client_secret_generations.get(slug, 1))

    oidc = [
        OidcClient(
            slug=s.name,
            name=_title(s),
            groups=s.groups,
            redirect_uris=tuple(redirect_uri(s, uri) for uri in s.redirect_uris),
            client_secret=secret(s.name),
            launch_url=f"https://{s.hostname}/",
        )
        for s in gated
        if s.sso == "oidc"
    ]
    oidc.append(
        OidcClient(
            slug=ACCESS_CLIENT,
            name="Cloudflare Access",
            groups=(ADMIN_GROUP,),
            redirect_uris=(f"https://{team_name}.cloudflareaccess.com/cdn-cgi/access/callback",),
            client_secret=secret(ACCESS_CLIENT),
        )
    )
    proxy = tuple(
        ProxyApp(
            slug=s.name,
            name=_title(s),
            groups=s.groups,
            external_host=f"https://{s.hostname}",
            internal_host=proxy_internal_host(s, gateway_port),
            open_paths=s.open_paths,
        )
        for s in gated
        if s.sso == "proxy"
    )
    saml = tuple(
        SamlApp(
            slug=s.name,
            name=_title(s),
            groups=s.groups,
            acs_url=f"https://{s.hostname}/saml/acs",
            audience=f"https://{s.hostname}/saml/metadata",
            launch_url=f"https://{s.hostname}/",
        )
        for s in gated
        if s.sso == "saml"
    )
    return IdentityPlan(oidc=tuple(oidc), proxy=proxy, saml=saml, service_accounts=SERVICE_ACCOUNTS)
