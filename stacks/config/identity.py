"""`homelab:identity`: how Authentik treats users of the `cloud` stack (docs/runbooks/identity.md)."""

import re
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from stacks.config.base import ConfigModel

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")

SmtpSecurity = Literal["starttls", "tls", "none"]
"""`starttls` (port 587, Authentik's `USE_TLS`), `tls` (implicit TLS, port 465, `USE_SSL`), or
`none` (a relay on a trusted network, never with a login)."""


class SmtpConfig(ConfigModel):
    """`homelab:identity.smtp`: the relay Authentik sends e-mail through (its global e-mail settings).

    Recovery links and admins' sign-up e-mails need it. The password is the stack secret
    `smtpPassword`, never a value here.
    """

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: SmtpSecurity = "starttls"
    from_address: str
    """The sender (`auth@example.net`); relays reject addresses outside their own domains."""
    username: str | None = Field(default=None, min_length=1)
    """The relay login; its password is the secret `smtpPassword`. Unset: the relay takes mail
    without a login."""
    timeout_seconds: int = Field(default=10, ge=1, le=120)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOSTNAME.match(value):
            raise ValueError("must be the relay's DNS name (smtp.example.net)")
        return value

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be an e-mail address (auth@example.net)")
        return value

    @field_validator("username")
    @classmethod
    def _never_in_clear(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("security") == "none":
            raise ValueError("a login over an unencrypted connection sends the password in clear; use starttls or tls")
        return value


class IdentityConfig(ConfigModel):
    """Second factor, password strength, client-secret rotation and how admins hear of sign-ups."""

    mfa_for_all: bool = True
    """Require TOTP or WebAuthn from every user; false requires it from the group `admin` only."""
    password_min_length: int = Field(default=12, ge=10, le=64)
    client_secret_generations: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=dict)
    """OIDC client (slug) -> generation of its derived secret; bump to rotate one client's secret."""
    smtp: SmtpConfig | None = None
    """Authentik's e-mail relay. Unset: no recovery e-mails, no e-mail to admins (the stack warns)."""
    ntfy_topic: str | None = Field(default="homelab-identity", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """The ntfy topic (on PROD's ntfy) sign-up notifications are pushed to; null turns the push off."""
    ntfy_token_generation: int = Field(default=1, ge=1, le=1000)
    """Generation of the derived ntfy publish token; bump to rotate it."""
