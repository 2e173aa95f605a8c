"""`homelab:identity`: how Authentik treats users of the `cloud` stack (docs/runbooks/identity.md)."""

from typing import Annotated

from pydantic import Field

from stacks.config.base import ConfigModel


class IdentitySettings(ConfigModel):
    """Second factor, password strength and client-secret rotation."""

    mfa_for_all: bool = True
    """Require TOTP or WebAuthn from every user; false requires it from the group `admin` only."""
    password_min_length: int = Field(default=12, ge=10, le=64)
    client_secret_generations: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=dict)
    """OIDC client (slug) -> generation of its derived secret; bump to rotate one client's secret."""
