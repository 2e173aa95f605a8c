"""What a tunnel routes, independent of the SDK (so the catalog and tests stay cheap to import)."""

import re
from dataclasses import dataclass

CATCH_ALL_SERVICE = "http_status:404"


@dataclass(frozen=True)
class TunnelRoute:
    """One public hostname (optionally a path under it) and the origin the connector forwards to."""

    key: str
    """Stable name of the route (the catalog's service name): names its DNS record and Access app."""
    hostname: str
    service: str
    """Origin URL as the connector sees it (`http://authentik-server:9000`)."""
    path: str | None = None
    """A path prefix (`/if/admin`) limiting the route; served before the hostname's other paths."""
    admin: bool = False
    """Put Cloudflare Access (admin e-mails, MFA) in front of this route."""
    machine: bool = False
    """Put Cloudflare Access in front of this route admitting only the tunnel's service tokens (a
    collector sends `CF-Access-Client-Id` / `CF-Access-Client-Secret`); no person gets in."""
    http_host_header: str | None = None
    """Host header sent to the origin (when the origin is a gateway routing by Host)."""
    deferred_dns: bool = False
    """The hostname's DNS record waits for a gate created later (see `GatedRecords`)."""

    @property
    def path_regex(self) -> str | None:
        """cloudflared matches `path` as a regular expression: the prefix and everything below it."""
        if self.path is None:
            return None
        return f"^{re.escape(self.path.rstrip('/'))}(/.*)?$"

    @property
    def access_domain(self) -> str:
        """The Access application's domain: the hostname, with the path when the route has one."""
        return self.hostname + (self.path.rstrip("/") if self.path else "")
