"""The explicit Cloudflare provider every Cloudflare resource of a stack uses."""

import pulumi
import pulumi_cloudflare as cloudflare


def cloudflare_provider(name: str, api_token: pulumi.Input[str]) -> cloudflare.Provider:
    """A provider authenticated with a scoped API token.

    The token needs Account: Cloudflare Tunnel Edit and Access: Apps and Policies Edit, and
    Zone: DNS Edit and Zone Read on the zone (a Tunnel Read token cannot fetch the tunnel token).
    """
    return cloudflare.Provider(name, api_token=pulumi.Output.secret(api_token))
