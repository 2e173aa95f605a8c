"""What the Proxmox VE provider (pulumi_proxmoxve 8.6.0, bpg) would answer for the resources we use."""

import uuid
from typing import Any

from homelab.simulate import fake_hex, resource_output


def _mac(seed: str) -> str:
    raw = fake_hex(seed, 10)
    # BC:24:11 is the prefix Proxmox VE assigns to generated NIC addresses.
    return "BC:24:11:" + ":".join(raw[i : i + 2].upper() for i in range(4, 10, 2))


@resource_output("proxmoxve:index/vmLegacy:VmLegacy")
def _vm(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    nics = inputs.get("networkDevices") or []
    macs = [_mac(f"{name}/{i}") for i in range(len(nics))]
    addresses: list[list[str]] = [["127.0.0.1"]]
    init = inputs.get("initialization") or {}
    for config in init.get("ipConfigs") or []:
        address = ((config or {}).get("ipv4") or {}).get("address", "")
        if address and address != "dhcp":
            addresses.append([address.split("/")[0]])
    return {
        "vmId": inputs.get("vmId", 100),
        "macAddresses": macs,
        "networkInterfaceNames": ["lo", *[f"eth{i}" for i in range(len(nics))]],
        "ipv4Addresses": addresses,
        "ipv6Addresses": [["::1"]] + [[] for _ in nics],
    }


@resource_output("proxmoxve:download/file:File")
def _file(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"size": 1_325_400_064, "fileName": inputs.get("fileName", f"{name}.img")}


@resource_output("proxmoxve:hardware/mapping/pci:Pci")
def _pci(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"name": inputs.get("name", name)}


@resource_output("proxmoxve:network/linux/bridge:Bridge")
def _bridge(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"name": inputs.get("name", name), "autostart": inputs.get("autostart", True)}


@resource_output("proxmoxve:user/token:Token")
def _token(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    user = inputs.get("userId", "unknown@pve")
    token = inputs.get("tokenName", name)
    secret = uuid.UUID(fake_hex(f"{user}!{token}"))
    return {"value": f"{user}!{token}={secret}"}
