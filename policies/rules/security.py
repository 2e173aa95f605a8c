"""Security rules: TLS verification, secrets, hardened hosts (NFR-006, NFR-007)."""

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.rules.base import Rule, resource_rule

# Providers whose `insecure` flag turns off TLS certificate verification.
TLS_PROVIDER_TYPES = (
    "pulumi:providers:proxmoxve",
    "pulumi:providers:authentik",
)


@resource_rule(
    id="SEC-02",
    slug="provider-disallow-insecure-tls",
    nfr="NFR-006",
    topic="security",
    description="Providers verify the TLS certificate of the API they manage (NFR-006: no credentials sent "
    "to an endpoint nobody has authenticated).",
    fix="remove `insecure: true` from the provider settings in the stack config and give the API a "
    "certificate the machine trusts (or add its CA to the system trust store).",
)
def provider_tls_verified(
    args: ResourceValidationArgs, report: Callable[[str], None], config: Mapping[str, Any]
) -> None:
    if args.resource_type in TLS_PROVIDER_TYPES and args.props.get("insecure") in (True, "true"):
        report(f"provider '{args.name}' skips TLS verification (insecure=true).")


RULES: tuple[Rule, ...] = (provider_tls_verified,)
