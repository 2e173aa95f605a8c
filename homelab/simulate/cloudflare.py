"""What the Cloudflare provider (pulumi_cloudflare 6.23.1) would answer: zone, Access aud, token."""

import base64
import json
from typing import Any

from homelab.simulate import fake_hex, invoke, resource_output


@resource_output("cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication")
def _access_application(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"aud": fake_hex(f"aud:{name}", 64)}


@resource_output("cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared")
def _tunnel(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"status": "inactive", "remoteConfig": inputs.get("configSrc") == "cloudflare"}


@resource_output("cloudflare:index/dnsRecord:DnsRecord")
def _dns_record(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"proxiable": True}


@invoke("cloudflare:index/getZone:getZone")
def _zone(args: dict[str, Any]) -> dict[str, Any]:
    name = (args.get("filter") or {}).get("name", "example.net")
    zone_id = fake_hex(f"zone:{name}", 32)
    return {
        "id": zone_id,
        "zoneId": zone_id,
        "name": name,
        "status": "active",
        "nameServers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
    }


@invoke("cloudflare:index/getZeroTrustTunnelCloudflaredToken:getZeroTrustTunnelCloudflaredToken")
def _tunnel_token(args: dict[str, Any]) -> dict[str, Any]:
    account = str(args.get("accountId", ""))
    tunnel = str(args.get("tunnelId", ""))
    # Shaped like the real token: base64 of {"a": account, "t": tunnel, "s": secret}.
    payload = {"a": account, "t": tunnel, "s": base64.b64encode(bytes.fromhex(fake_hex(f"s:{tunnel}", 64))).decode()}
    token = base64.b64encode(json.dumps(payload).encode()).decode()
    return {"id": tunnel, "accountId": account, "tunnelId": tunnel, "token": token}


@resource_output("cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken")
def _service_token(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    # Cloudflare answers `<32 hex>.access` for the id and 64 hex for the secret (shown once, at create).
    return {
        "clientId": f"{fake_hex(f'client:{name}', 32)}.access",
        "clientSecret": fake_hex(f"secret:{name}:{inputs.get('clientSecretVersion', 1)}", 64),
        "expiresAt": "",
    }
