"""The service catalog: the one place a service is declared.

Each entry says where a service runs (`prod`: the PROD cluster at home, `cloud`: the management VM or
the CLOUD cluster on OCI), how users authenticate (`sso` Tier 1 behind Authentik, `native` Tier 2
with the app's own accounts, `admin` for the group `admin` only, `public` for what must answer
before anyone is logged in, `machine` for an endpoint only a collector reaches, with a Cloudflare
Access service token and no person ever), its hostname, its internal upstream and its health probe. Tunnel
ingress, DNS records, Cloudflare Access applications and the Authentik applications are derived
from it, so adding a service is one entry in `SEED` (or, for a stack-specific service, one entry
under `homelab:catalog.services`).

`sso` says which Authentik provider gates an app: `oidc` (the app logs users in itself against
Authentik; `redirect_uris` are its callback paths, matched strictly), `proxy` (Authentik's outpost
sits in front and the tunnel routes the hostname to it, never to the app; `open_paths` are passed
through to the app's own login, e.g. CalDAV clients) or `saml` (Omni).

The catalog lives in code because entries are reviewed like code and typed; the stack config can
add services, change fields of a seeded one or disable it, and the whole result is validated once.
"""

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator

from stacks.config.base import NAMESPACE, ConfigError, ConfigModel

Location = Literal["prod", "cloud"]
Tier = Literal["sso", "native", "admin", "public", "machine"]
DataClass = Literal["critical", "important", "media"]
"""What losing a service's data costs (FR-025); drives every backup target (stacks/backups.py)."""
SsoKind = Literal["oidc", "proxy", "saml"]

ADMIN_GROUP = "admin"
FAMILY_GROUP = "family"
PENDING_GROUP = "pending"
GROUPS = (ADMIN_GROUP, FAMILY_GROUP)
"""The groups a service can admit; `pending` (sign-ups awaiting approval) admits to nothing."""
IDENTITY_SLUGS = ("cloudflare-access",)
"""Authentik application slugs the identity layer itself uses (a service may not take them)."""

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CLUSTER_DNS_SUFFIXES = (".svc.cluster.local", ".svc")


class Service(ConfigModel):
    """One service of the homelab as users reach it."""

    name: str
    location: Location
    tier: Tier
    hostname: str
    """A label under the catalog domain (`grafana` -> `grafana.<domain>`) or a full name under it."""
    upstream: str
    """Where the tunnel connector sends requests: `http(s)://<host>:<port>`, host being a cluster
    Service name (`*.svc.cluster.local`), a Docker Compose service name or an RFC 1918 address."""
    path: str | None = None
    """Only requests under this path prefix (e.g. `/if/admin`); the hostname's other paths are served
    by the entry without a path."""
    groups: tuple[str, ...] = ()
    """Authentik groups allowed in (`admin` for admin apps)."""
    health_path: str = "/"
    data_class: DataClass | None = None
    """`critical`, `important` or `media` for a service that holds data; None for a stateless one."""
    sso: SsoKind | None = None
    """The Authentik provider that gates the app (required for tier `sso`)."""
    redirect_uris: tuple[str, ...] = ()
    """OIDC callbacks: paths under the hostname (`/auth/callback`), full https URLs under the
    catalog domain, loopback URLs of a CLI (`http://localhost:8085/...`) or a mobile app's scheme
    (`app.immich:///oauth-callback`)."""
    open_paths: tuple[str, ...] = ()
    """Proxy-gated apps: path prefixes the outpost passes without an Authentik login (clients that
    cannot follow a browser login, authenticated by the app itself)."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """Keys of the app's Kubernetes Secret `<name>-secrets` -> the Bitwarden secret each is read from
    (a key of `homelab:platform.secrets.bitwarden.keys`); one ExternalSecret per service."""

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lower-case letters, digits and dashes (at most 40)")
        return value

    @field_validator("path", "health_path")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or any(c in value for c in " ?#*^$")):
            raise ValueError("must be an absolute URL path without query, spaces or pattern characters")
        return value

    @field_validator("path")
    @classmethod
    def _path_prefix(cls, value: str | None) -> str | None:
        # `/api` and `/api/` are the same prefix for the tunnel, Access and the Gateway: normalise, so
        # the duplicate check sees them as one (the Gateway would otherwise refuse them late).
        if value is None:
            return None
        prefix = value.rstrip("/")
        if not prefix:
            raise ValueError("'/' is the whole hostname: leave path unset instead")
        return prefix

    @field_validator("upstream")
    @classmethod
    def _internal_upstream(cls, value: str) -> str:
        problem = upstream_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def is_admin(self) -> bool:
        return self.tier == "admin" or ADMIN_GROUP in self.groups

    @property
    def is_machine(self) -> bool:
        """Reached by collectors with a Cloudflare Access service token, never by a person."""
        return self.tier == "machine"

    @property
    def namespace(self) -> str | None:
        """The cluster namespace of a cluster-hosted service (`<svc>.<namespace>.svc...`), else None."""
        host = urlsplit(self.upstream).hostname or ""
        labels = host.split(".")
        return labels[1] if len(labels) >= 3 and labels[2] == "svc" else None


class ServiceOverrideConfig(ConfigModel):
    """A stack's change to the catalog: a new service (all of location, tier, hostname, upstream
    given) or new values for some fields of a seeded one."""

    enabled: bool = True
    location: Location | None = None
    tier: Tier | None = None
    hostname: str | None = None
    upstream: str | None = None
    path: str | None = None
    groups: tuple[str, ...] | None = None
    health_path: str | None = None
    data_class: DataClass | None = None
    sso: SsoKind | None = None
    redirect_uris: tuple[str, ...] | None = None
    open_paths: tuple[str, ...] | None = None
    secrets: dict[str, str] | None = None


class CatalogConfig(ConfigModel):
    """`homelab:catalog`: the domain every hostname lives under, and the stack's changes."""

    domain: str
    services: dict[str, ServiceOverrideConfig] = Field(default_factory=dict)

    @field_validator("domain")
    @classmethod
    def _domain_is_dns_name(cls, value: str) -> str:
        labels = value.split(".")
        if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
            raise ValueError("must be a lower-case DNS name such as example.net")
        return value


def upstream_problem(url: str) -> str | None:
    """Why `url` is not an internal upstream, or None if it is."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    if port is None:
        return "must name the port explicitly (e.g. http://grafana.monitoring.svc.cluster.local:80)"
    if parts.path not in ("", "/") or parts.query:
        return "must not carry a path or query (set `path` or `health_path` instead)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.endswith(_CLUSTER_DNS_SUFFIXES) or _LABEL.match(host):
            return None
        return (
            f"host {host!r} is not internal: use a cluster Service name, a Compose service name or an RFC 1918 address"
        )
    if address.is_private and not address.is_loopback and not address.is_link_local:
        return None
    return f"address {host} is not internal (only RFC 1918 addresses are allowed)"


def _svc(service: str, namespace: str, port: int) -> str:
    return f"http://{service}.{namespace}.svc.cluster.local:{port}"


_ADMIN = (ADMIN_GROUP,)
_FAMILY = (FAMILY_GROUP,)

SEED: tuple[Service, ...] = (
    # Management VM (Docker Compose on OCI): identity and cluster management.
    Service(name="authentik", location="cloud", tier="public", hostname="auth",
            upstream="http://authentik-server:9000", health_path="/-/health/live/", data_class="critical"),
    Service(name="authentik-admin", location="cloud", tier="admin", hostname="auth", path="/if/admin",
            upstream="http://authentik-server:9000", groups=_ADMIN, health_path="/-/health/live/"),
    # Authentik's system API (version, workers, settings): admins only. The rest of /api/v3 serves
    # every user's login and settings pages, and is authorised by Authentik itself.
    Service(name="authentik-api", location="cloud", tier="admin", hostname="auth", path="/api/v3/admin",
            upstream="http://authentik-server:9000", groups=_ADMIN, health_path="/-/health/live/"),
    Service(name="omni", location="cloud", tier="admin", hostname="omni",
            upstream="http://omni:8080", groups=_ADMIN, health_path="/healthz", data_class="critical", sso="saml"),
    # CLOUD cluster (PRD 4.1): family services that must stay up when the house is offline.
    Service(name="nextcloud", location="cloud", tier="sso", hostname="cloud",
            upstream=_svc("nextcloud", "nextcloud", 8080), groups=_FAMILY, health_path="/status.php",
            data_class="critical", sso="oidc", redirect_uris=("/apps/user_oidc/code",)),
    Service(name="immich", location="cloud", tier="sso", hostname="photos",
            upstream=_svc("immich-server", "immich", 2283), groups=_FAMILY, health_path="/api/server/ping",
            data_class="critical", sso="oidc",
            redirect_uris=("app.immich:///oauth-callback", "/auth/login", "/user-settings")),
    Service(name="vaultwarden", location="cloud", tier="sso", hostname="vault",
            upstream=_svc("vaultwarden", "vaultwarden", 80), groups=_FAMILY, health_path="/alive",
            data_class="critical", sso="oidc", redirect_uris=("/identity/connect/oidc-signin",),
            secrets={"ADMIN_TOKEN": "vaultwarden-admin-token"}),
    # No OIDC: Baïkal's web admin behind the proxy outpost; CalDAV/CardDAV clients cannot follow a
    # browser login, so the DAV endpoints keep Baïkal's own authentication.
    Service(name="baikal", location="cloud", tier="sso", hostname="dav",
            upstream=_svc("baikal", "baikal", 80), groups=_FAMILY, health_path="/", data_class="critical",
            sso="proxy", open_paths=("/dav.php", "/.well-known/caldav", "/.well-known/carddav")),
    # n8n's OIDC is Enterprise-only: the proxy outpost in front, n8n's own login behind it.
    Service(name="n8n", location="cloud", tier="sso", hostname="n8n",
            upstream=_svc("n8n", "n8n", 5678), groups=_FAMILY, health_path="/healthz", data_class="important",
            sso="proxy"),
    Service(name="navidrome", location="cloud", tier="native", hostname="music",
            upstream=_svc("navidrome", "navidrome", 4533), groups=_FAMILY, health_path="/ping", data_class="media"),
    Service(name="mealie", location="cloud", tier="native", hostname="recipes",
            upstream=_svc("mealie", "mealie", 9000), groups=_FAMILY, health_path="/api/app/about",
            data_class="important"),
    Service(name="invidious", location="cloud", tier="native", hostname="videos",
            upstream=_svc("invidious", "invidious", 3000), groups=_FAMILY, health_path="/api/v1/stats"),
    Service(name="glance", location="cloud", tier="native", hostname="home",
            upstream=_svc("glance", "glance", 8080), groups=_FAMILY, health_path="/api/healthz"),
    # Stremio clients cannot pass a Cloudflare Access login; Comet guards its configuration page
    # with its own password (FR-014).
    Service(name="comet", location="cloud", tier="native", hostname="comet",
            upstream=_svc("comet", "comet", 8000), groups=_FAMILY, health_path="/health"),
    # PROD cluster at home, reached through the home connector (no port on the home router).
    Service(name="audiobookshelf", location="prod", tier="native", hostname="books",
            upstream=_svc("audiobookshelf", "audiobookshelf", 80), groups=_FAMILY, health_path="/healthcheck",
            data_class="media"),
    Service(name="komga", location="prod", tier="native", hostname="comics",
            upstream=_svc("komga", "komga", 25600), groups=_FAMILY, health_path="/actuator/health", data_class="media"),
    Service(name="romm", location="prod", tier="native", hostname="games",
            upstream=_svc("romm", "romm", 8080), groups=_FAMILY, health_path="/api/heartbeat", data_class="media",
            secrets={"ROMM_AUTH_SECRET_KEY": "romm-auth-secret-key"}),
    Service(name="argocd", location="prod", tier="admin", hostname="argocd",
            upstream=_svc("argocd-server", "argocd", 80), groups=_ADMIN, health_path="/healthz",
            data_class="important", sso="oidc", redirect_uris=("/auth/callback", "http://localhost:8085/auth/callback")),
    Service(name="grafana", location="prod", tier="admin", hostname="grafana",
            upstream=_svc("kube-prometheus-stack-grafana", "monitoring", 80), groups=_ADMIN,
            health_path="/api/health", data_class="important", sso="oidc", redirect_uris=("/login/generic_oauth",)),
    Service(name="prometheus", location="prod", tier="admin", hostname="prometheus",
            upstream=_svc("kube-prometheus-stack-prometheus", "monitoring", 9090), groups=_ADMIN,
            health_path="/-/healthy", data_class="important"),
    Service(name="alertmanager", location="prod", tier="admin", hostname="alerts",
            upstream=_svc("kube-prometheus-stack-alertmanager", "monitoring", 9093), groups=_ADMIN,
            health_path="/-/healthy"),
    Service(name="ntfy", location="prod", tier="admin", hostname="ntfy",
            upstream=_svc("ntfy", "ntfy", 80), groups=_ADMIN, health_path="/v1/health"),
    # The ntfy phone app can pass neither Access nor SSO: ntfy's API on its own hostname, gated by
    # ntfy itself (deny-all, per-topic tokens); its web UI stays the admin app above.
    Service(name="ntfy-push", location="prod", tier="native", hostname="push",
            upstream=_svc("ntfy", "ntfy", 80), health_path="/v1/health"),
    # The cloud's collectors (CLOUD cluster, management VM) write to PROD through the home tunnel:
    # only the two write paths, only with the telemetry service token (Cloudflare Access).
    Service(name="telemetry-metrics", location="prod", tier="machine", hostname="telemetry", path="/api/v1/write",
            upstream=_svc("kube-prometheus-stack-prometheus", "monitoring", 9090), health_path="/-/ready"),
    Service(name="telemetry-logs", location="prod", tier="machine", hostname="telemetry",
            path="/loki/api/v1/push", upstream=_svc("loki-gateway", "monitoring", 80), health_path="/"),
)  # fmt: skip


@dataclass(frozen=True)
class Catalog:
    """A validated catalog: every hostname resolved under `domain`."""

    domain: str
    services: tuple[Service, ...]

    def at(self, location: Location) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.location == location)

    def ordered(self, location: Location) -> tuple[Service, ...]:
        """Ingress order for one tunnel: by hostname, path-scoped entries before their hostname's
        entry without a path, and a longer path before a shorter one it lies under (`/if/admin`
        before `/if`): cloudflared uses the first rule that matches."""

        def key(s: Service) -> tuple[str, bool, int, str, str]:
            depth = len(s.path.split("/")) if s.path else 0
            return (s.hostname, s.path is None, -depth, s.path or "", s.name)

        return tuple(sorted(self.at(location), key=key))

    def by_name(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


def _qualify(hostname: str, domain: str) -> str:
    return hostname if "." in hostname else f"{hostname}.{domain}"


def _error(where: str, message: str) -> ConfigError:
    return ConfigError(f"{NAMESPACE}:catalog.services.{where}: {message}")


def _merge(seed: Iterable[Service], overrides: Mapping[str, ServiceOverrideConfig]) -> list[Service]:
    merged: dict[str, Service] = {s.name: s for s in seed}
    for name, override in overrides.items():
        changes = override.model_dump(exclude_unset=True, exclude={"enabled"})
        if not override.enabled:
            merged.pop(name, None)
            continue
        base = merged.get(name)
        try:
            if base is None:
                missing = [k for k in ("location", "tier", "hostname", "upstream") if k not in changes]
                if missing:
                    raise _error(name, f"a new service needs {', '.join(missing)}")
                merged[name] = Service.model_validate({"name": name, **changes})
            else:
                merged[name] = Service.model_validate({**base.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise _error(f"{name}.{field}", f"{message[:1].lower()}{message[1:]}") from None
    return list(merged.values())


def redirect_uri(service: Service, uri: str) -> str:
    """A redirect URI as Authentik matches it: a path is taken under the service's hostname."""
    return f"https://{service.hostname}{uri}" if uri.startswith("/") else uri


def _redirect_problem(uri: str, domain: str) -> str | None:
    if uri.startswith("/"):
        return None if not any(c in uri for c in " ?#*") else f"{uri!r} must be a plain path"
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.scheme == "https":
        if host == domain or host.endswith(f".{domain}"):
            return None
        return f"{uri!r} is outside the catalog domain {domain!r}"
    if parts.scheme == "http":
        # RFC 8252: a native client's loopback listener (Argo CD's CLI); anything else must be https.
        return None if host in ("localhost", "127.0.0.1") else f"{uri!r} must use https"
    if re.match(r"^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$", parts.scheme):
        return None  # a mobile app's private-use scheme (reverse-DNS, RFC 8252 7.1)
    return f"{uri!r} is neither a path, an https URL under {domain!r} nor an app scheme"


def _identity_problem(s: Service, domain: str) -> tuple[str, str] | None:
    """The first identity-layer inconsistency of one service, as (key, message)."""
    unknown = [g for g in s.groups if g not in GROUPS]
    if unknown:
        return "groups", f"group {unknown[0]!r} does not exist (known: {', '.join(GROUPS)})"
    if s.name in IDENTITY_SLUGS:
        return "name", f"slug {s.name!r} is already used by the identity layer"
    if s.tier == "sso" and s.sso not in ("oidc", "proxy"):
        return "sso", "a Tier-1 (sso) app needs its provider kind: oidc or proxy"
    if s.tier in ("native", "public", "machine") and s.sso is not None:
        return "sso", f"a {s.tier!r} service has no Authentik gate; remove sso or change the tier"
    if s.is_machine and s.groups:
        return "groups", "a machine endpoint admits a service token, not a group of people"
    if s.is_machine and s.path is None:
        return "path", "a machine endpoint names the one API path collectors write to"
    if s.sso == "oidc" and not s.redirect_uris:
        return "redirect_uris", "an OIDC app needs at least one redirect URI"
    if s.sso != "oidc" and s.redirect_uris:
        return "redirect_uris", "only OIDC apps have redirect URIs"
    if s.sso != "proxy" and s.open_paths:
        return "open_paths", "only proxy-gated apps have open paths"
    if s.sso == "proxy" and s.location != "cloud":
        return "location", "a proxy-gated app must run in `cloud` (the outpost runs on the management VM)"
    if s.sso is not None and s.path is not None:
        return "path", "an Authentik-gated app owns its whole hostname (no path)"
    for uri in s.redirect_uris:
        problem = _redirect_problem(uri, domain)
        if problem is not None:
            return "redirect_uris", problem
    for path in s.open_paths:
        if not path.startswith("/") or any(c in path for c in " ?#*^$") or path.rstrip("/") == "":
            return "open_paths", f"{path!r} must be an absolute path prefix other than '/'"
    return None


def build_catalog(
    domain: str,
    overrides: Mapping[str, ServiceOverrideConfig] | None = None,
    seed: Iterable[Service] = SEED,
) -> Catalog:
    """Merge the seed with a stack's overrides and validate the result; raises one `ConfigError`."""
    services = [s.model_copy(update={"hostname": _qualify(s.hostname, domain)}) for s in _merge(seed, overrides or {})]
    seen: dict[tuple[str, str | None], str] = {}
    for s in services:
        if not (s.hostname == domain or s.hostname.endswith(f".{domain}")):
            raise _error(f"{s.name}.hostname", f"{s.hostname!r} is not under the catalog domain {domain!r}")
        if not all(_LABEL.match(label) for label in s.hostname.split(".")):
            raise _error(f"{s.name}.hostname", f"{s.hostname!r} is not a valid DNS name")
        if s.tier == "public" and s.is_admin:
            raise _error(
                f"{s.name}.tier",
                f"admin services are never public (group {ADMIN_GROUP!r}); use tier 'admin'",
            )
        if s.tier == "admin" and ADMIN_GROUP not in s.groups:
            raise _error(f"{s.name}.groups", f"an admin service must be limited to group {ADMIN_GROUP!r}")
        problem = _identity_problem(s, domain)
        if problem is not None:
            raise _error(f"{s.name}.{problem[0]}", problem[1])
        key = (s.hostname, s.path)
        if key in seen:
            where = s.hostname + (s.path or "")
            raise _error(f"{s.name}.hostname", f"{where!r} is already used by service {seen[key]!r}")
        seen[key] = s.name
    hostnames_with_root = {s.hostname for s in services if s.path is None}
    for s in services:
        # A machine hostname serves only its write paths; everything else is the tunnel's 404.
        if s.path is not None and s.hostname not in hostnames_with_root and not s.is_machine:
            raise _error(f"{s.name}.path", f"{s.hostname!r} has no entry without a path to serve its other paths")
        if not s.is_machine and any(o.hostname == s.hostname and o.is_machine for o in services):
            raise _error(f"{s.name}.tier", f"{s.hostname!r} mixes machine endpoints with entries for people")
        if s.path is not None and any(o.hostname == s.hostname and o.location != s.location for o in services):
            raise _error(f"{s.name}.location", f"every entry of {s.hostname!r} must use the same tunnel")
    return Catalog(domain=domain, services=tuple(sorted(services, key=lambda s: s.name)))
