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
- `ntfy_identity_publisher`: secret `{topic, token}` when `homelab:identity.ntfy_topic` is set. The
  `cloud` stack owns this ntfy token (derived from `secretSeed`) and Authentik pushes sign-up
  notifications with it; the `prod` stack, which runs ntfy and already reads `cloud`, grants it
  write access to that topic alone (docs/decisions/identity-notifications.md). No cycle: `cloud`
  never reads `prod`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

from components.authentik.specs import NtfyPush, OidcClient, ProxyApp, SamlApp, ServiceAccount
from components.oci.compose import SmtpRelay
from stacks.catalog import ADMIN_GROUP, Catalog, Service, redirect_uri
from stacks.config.base import NAMESPACE, ConfigError, SecretSpec
from stacks.config.identity import IdentityConfig

IDENTITY_SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "smtpPassword",
        "the password of homelab:identity.smtp.username at the e-mail relay (only with a relay login)",
        required=False,
    ),
)
NTFY_PUSH_SERVICE = "ntfy-push"
"""The catalog entry of ntfy's token-gated API hostname (PROD), where Authentik publishes."""
NTFY_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
"""32 symbols (no modulo bias from a byte), all in ntfy's token alphabet (lower-case letters, digits)."""
NTFY_TOKEN_SYMBOLS = 29
"""ntfy tokens are `tk_` + 29 characters."""
NO_SMTP_WARNING = (
    "homelab:identity.smtp is not set: Authentik cannot send e-mail. The sign-in page offers no "
    "self-service password reset (an admin creates recovery links by hand), and admins hear of sign-ups "
    "only in Authentik's notification centre{push}. Set homelab:identity.smtp (docs/runbooks/identity.md#e-mail)."
)

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
    settings: IdentityConfig,
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


def smtp_relay(settings: IdentityConfig, password_set: bool) -> SmtpRelay | None:
    """Authentik's e-mail relay from `homelab:identity.smtp` and the `smtpPassword` secret, or one
    `ConfigError` naming the key; no relay is a warning that says what does not work."""
    smtp = settings.smtp
    if smtp is None:
        if password_set:
            raise ConfigError(
                f"{NAMESPACE}:smtpPassword: is set but {NAMESPACE}:identity.smtp is not; configure the relay "
                "or remove the secret (`pulumi config rm smtpPassword`)"
            )
        push = " and by ntfy push" if settings.ntfy_topic is not None else ""
        pulumi.log.warn(NO_SMTP_WARNING.format(push=push))
        return None
    if smtp.username is not None and not password_set:
        raise ConfigError(
            f"{NAMESPACE}:smtpPassword: required secret is not set while {NAMESPACE}:identity.smtp.username is; "
            "run `pulumi config set --secret smtpPassword <value>`"
        )
    if smtp.username is None and password_set:
        raise ConfigError(
            f"{NAMESPACE}:identity.smtp.username: is not set, so the secret smtpPassword would never be used; "
            "set the relay login or remove the secret"
        )
    return SmtpRelay(
        host=smtp.host,
        port=smtp.port,
        from_address=smtp.from_address,
        use_tls=smtp.security == "starttls",
        use_ssl=smtp.security == "tls",
        username=smtp.username,
        timeout_seconds=smtp.timeout_seconds,
    )


def ntfy_token(raw: bytes) -> str:
    """An ntfy access token (`tk_` + 29 symbols) from at least 29 derived bytes."""
    if len(raw) < NTFY_TOKEN_SYMBOLS:
        raise ValueError(f"ntfy_token needs {NTFY_TOKEN_SYMBOLS} bytes, got {len(raw)}")
    return "tk_" + "".join(NTFY_TOKEN_ALPHABET[b % 32] for b in raw[:NTFY_TOKEN_SYMBOLS])


def ntfy_push(settings: IdentityConfig, catalog: Catalog, token: pulumi.Input[str]) -> NtfyPush | None:
    """Where Authentik pushes sign-up notifications (None when `ntfy_topic` is null), or one
    `ConfigError` naming the key when the catalog has no ntfy push hostname."""
    if settings.ntfy_topic is None:
        return None
    if NTFY_PUSH_SERVICE not in {s.name for s in catalog.services}:
        raise ConfigError(
            f"{NAMESPACE}:identity.ntfy_topic: the catalog has no {NTFY_PUSH_SERVICE!r} entry (ntfy's token-gated "
            "API on PROD) to push to; add it back or set ntfy_topic to null"
        )
    return NtfyPush(
        url=f"https://{catalog.by_name(NTFY_PUSH_SERVICE).hostname}/",
        topic=settings.ntfy_topic,
        token=token,
        click_url=f"https://{catalog.by_name('authentik').hostname}/if/admin/#/identity/users",
    )
