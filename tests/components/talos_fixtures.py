"""Shared builders for the Talos/Proxmox component tests."""

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_proxmoxve as pve

from components.proxmox.talos_vms import ProxmoxTalosSubstrate
from components.talos.cluster import TalosCluster, TalosClusterArgs, talos_provider
from components.talos.substrate import StaticNetwork, TalosNode

NETWORK = StaticNetwork(prefix_length=24, gateway="192.168.68.1", nameservers=("192.168.68.1",))
CHECKSUM = "ab" * 32

PROD_NODES = {
    "prod-cp-1": TalosNode("prod-cp-1", "controlplane", "192.168.68.71", 2, 4096, 50),
    "prod-worker-1": TalosNode("prod-worker-1", "worker", "192.168.68.72", 6, 12288, 200),
}
DEV_NODES = {"dev-cp-1": TalosNode("dev-cp-1", "controlplane", "192.168.68.61", 2, 4096, 50)}


def proxmox_substrate(
    nodes: Mapping[str, TalosNode], environment: str = "prod", **overrides: Any
) -> ProxmoxTalosSubstrate:
    settings: dict[str, Any] = {
        "environment": environment,
        "node_name": "pve",
        "network": NETWORK,
        "vm_ids": {name: 200 + i for i, name in enumerate(sorted(nodes))},
        "image_sha256": CHECKSUM,
        "modes": ("normal", "testing"),
        **overrides,
    }
    return ProxmoxTalosSubstrate(**settings)


def cluster_program(
    nodes: Mapping[str, TalosNode] = PROD_NODES,
    talos_version: str = "v1.10.6",
    extensions: tuple[str, ...] = (),
    substrate: Any = None,
    capture: Callable[[TalosCluster], None] | None = None,
) -> Callable[[], None]:
    def program() -> None:
        providers = [talos_provider("talos"), pve.Provider("pve", endpoint="https://192.168.68.51:8006/")]
        args: TalosClusterArgs = {
            "cluster_name": "homelab-prod",
            "endpoint_host": next(n.address for n in nodes.values() if n.role == "controlplane"),
            "talos_version": talos_version,
            "kubernetes_version": "1.33.3",
            "nodes": nodes,
            "substrate": substrate or proxmox_substrate(nodes),
            "extensions": list(extensions),
            "network": NETWORK,
        }
        cluster = TalosCluster("talos", args, opts=pulumi.ResourceOptions(providers=providers))
        pulumi.export("kubeconfig", cluster.kubeconfig)
        pulumi.export("talosconfig", cluster.talosconfig)
        pulumi.export("node_addresses", cluster.node_addresses)
        pulumi.export("endpoint", cluster.endpoint)
        if capture is not None:
            capture(cluster)

    return program
