"""What the identity layer is asked to build, independent of the SDK (cheap to import and test).

The stack turns catalog entries into these specs; `AuthentikIdentity` turns the specs into
Authentik objects. Keeping them SDK-free lets the catalog, the policy config and the tests use
them without importing `pulumi_authentik`.
"""

from dataclasses import dataclass, field

import pulumi

OUTPOST_ORIGIN = "http://authentik-server:9000"
"""Where the cloud connector reaches Authentik's embedded outpost (Compose service, port 9000):
it answers every hostname that a proxy provider names as its external host."""

AMR_MFA = "mfa"


@dataclass(frozen=True)
class OidcClient:
    """One OAuth2/OIDC client (confidential, RS256, strict redirect URIs)."""

    slug: str
    """Application slug and client id (`grafana`): the issuer is `<authentik>/application/o/<slug>/`."""
    name: str
    groups: tuple[str, ...]
    """Groups admitted (one policy binding each)."""
    redirect_uris: tuple[str, ...]
    """Absolute URIs, matched strictly."""
    client_secret: pulumi.Input[str]
    """Derived from the stack seed, so the consuming app can be configured without reading it back."""
    launch_url: str | None = None


@dataclass(frozen=True)
class ProxyApp:
    """One app behind the embedded outpost (proxy mode): the tunnel routes its hostname to the outpost."""

    slug: str
    name: str
    groups: tuple[str, ...]
    external_host: str
    """`https://<hostname>`: the outpost answers requests for this host."""
    internal_host: str
    """Where the outpost forwards authenticated requests (reachable from the management VM)."""
    open_paths: tuple[str, ...] = ()
    """Path prefixes passed to the app without an Authentik login."""

    @property
    def skip_path_regex(self) -> str | None:
        """Authentik's `skip_path_regex`: one anchored pattern per line."""
        if not self.open_paths:
            return None
        return "\n".join(f"^{_escape(p.rstrip('/'))}(/.*)?$" for p in self.open_paths)


@dataclass(frozen=True)
class SamlApp:
    """One SAML application (Omni): the slug is part of the metadata URL the service downloads."""

    slug: str
    name: str
    groups: tuple[str, ...]
    acs_url: str
    audience: str
    email_attribute: str = "email"
    """The SAML attribute carrying the user's e-mail (Omni maps `email` to its user identity)."""
    launch_url: str | None = None


@dataclass(frozen=True)
class ServiceAccount:
    """A service account with a non-expiring API token and an RBAC role of exactly these permissions."""

    name: str
    purpose: str
    permissions: tuple[str, ...] = field(default_factory=tuple)
    """Global permissions (`authentik_core.view_application`); never superuser."""


def _escape(path: str) -> str:
    return "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in path)


@dataclass(frozen=True)
class NtfyPush:
    """Where Authentik pushes admin notifications: a topic on the self-hosted ntfy (PROD).

    Authentik's webhook transport POSTs JSON; ntfy takes a JSON message (with its `topic`) at its
    root URL and checks the bearer token's write access to that topic.
    """

    url: str
    """ntfy's public root URL (`https://push.example.net/`)."""
    topic: str
    token: pulumi.Input[str]
    """A write-only ntfy access token for `topic` (secret)."""
    click_url: str
    """Opened when the notification is tapped: where an admin approves the sign-up."""
