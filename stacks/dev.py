"""The `dev` stack: the DEV Talos cluster (one control-plane + worker node) on the shared Proxmox host.

Composition only: config -> components -> outputs. The host itself (bridge, ZFS, GPU) belongs to
the `prod` stack; this stack only adds its guest and tells `prod` about it (`host_guests`) so the
host capacity ledger counts it.

With `homelab:telemetry.enabled` (the default) Alloy runs on every DEV node as on CLOUD (pod logs,
events, node metrics, Talos's own logs) and ships to PROD through the PROD tunnel's machine routes
with the cloud stack's service token, read from the cloud stack's outputs (stacks/telemetry.py).
"""

from collections.abc import Sequence
from dataclasses import replace

import pulumi

from components.command import command_provider
from components.k8s.namespaces import WorkloadNamespaces
from components.k8s.network_policy import IngressAllows
from components.k8s.storage import LocalPathStorage, local_path_talos_patch
from components.monitoring.logs import talos_logging_patches
from components.proxmox.provider import ProxmoxConnection, proxmox_provider
from components.proxmox.talos_vms import ProxmoxTalosSubstrate
from components.talos.cilium import Cilium
from components.talos.cluster import TalosCluster, TalosClusterArgs, talos_provider
from components.talos.kubernetes import kubernetes_provider
from components.talos.substrate import StaticNetwork, TalosNode
from homelab.backup_evidence import Holding
from stacks import telemetry
from stacks.capacity import cluster_guests, guests_as_output
from stacks.catalog import SEED
from stacks.config import ConfigError, SecretSpec, load_config
from stacks.config.base import raise_first_problem
from stacks.config.homelab import (
    CiliumConfig,
    ClusterConfig,
    DevConfig,
    NetworkConfig,
    ProxmoxConfig,
    dev_problems,
)
from stacks.platform import (
    PLATFORM_SECRETS,
    argocd_access,
    network_policies,
    platform_problems,
    policy_targets,
    secrets_layer,
)

__all__ = ["REFERENCES", "SECRETS", "build", "load"]

# The cloud stack issues the collectors' service token (`homelab:telemetry.cloud_stack`).
REFERENCES: tuple[str, ...] = ("cloud",)
# DEV has no tunnel connector: its apps are reached from the LAN (kubectl port-forward) and scraped.
DEV_APP_INGRESS = IngressAllows(from_namespaces=("monitoring",))

HOST_SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "proxmoxApiToken",
        "the Proxmox API token Pulumi uses, `user@realm!tokenid=secret`",
    ),
    SecretSpec(
        "proxmoxSshPrivateKey",
        "the unencrypted OpenSSH private key for root@<proxmox host> (disk import, host preparation)",
    ),
)
# Optional on DEV: read only when homelab:platform.secrets is enabled there.
SECRETS: tuple[SecretSpec, ...] = (*HOST_SECRETS, *(replace(spec, required=False) for spec in PLATFORM_SECRETS))


def proxmox_connection(config: ProxmoxConfig) -> ProxmoxConnection:
    return ProxmoxConnection(
        endpoint=config.endpoint,
        node_name=config.node_name,
        ssh_address=config.ssh_address,
        ssh_username=config.ssh_username,
        ssh_port=config.ssh_port,
        insecure=config.insecure,
        ssh_host_key=config.ssh_host_key,
    )


def static_network(config: NetworkConfig) -> StaticNetwork:
    return StaticNetwork(
        prefix_length=config.prefix_length, gateway=config.gateway, nameservers=tuple(config.nameservers)
    )


def talos_nodes(cluster: ClusterConfig) -> dict[str, TalosNode]:
    return {
        name: TalosNode(
            name=name,
            role=node.role,
            address=node.address,
            cores=node.cores,
            memory_mb=node.memory_mb,
            disk_gb=node.disk_gb,
            install_disk=node.install_disk,
        )
        for name, node in sorted(cluster.nodes.items())
    }


def talos_on_proxmox(
    *,
    environment: str,
    cluster: ClusterConfig,
    network: NetworkConfig,
    node_name: str,
    cilium: CiliumConfig,
    providers: Sequence[pulumi.ProviderResource],
    extra_config_patches: Sequence[str] = (),
    control_plane_config_patches: Sequence[str] = (),
    control_plane_holding: Holding | None = None,
) -> tuple[TalosCluster, pulumi.ProviderResource, Cilium]:
    """A Talos cluster on Proxmox VMs with Cilium, and the Kubernetes provider for what follows.
    `control_plane_holding`: the data its control planes hold (etcd, when the backup plan counts it)."""
    substrate = ProxmoxTalosSubstrate(
        environment=environment,
        node_name=node_name,
        network=static_network(network),
        vm_ids={name: node.vm_id for name, node in cluster.nodes.items()},
        image_sha256=cluster.image_sha256[cluster.talos_version],
        modes=tuple(cluster.modes),
        vm_datastore_id=cluster.vm_datastore_id,
        image_datastore_id=cluster.image_datastore_id,
        bridge=network.bridge,
        cpu_type=cluster.cpu_type,
        protect=cluster.protect_vms,
        vlan_id=network.vlan_id,
        control_plane_holding=control_plane_holding,
    )
    args: TalosClusterArgs = {
        "cluster_name": cluster.name,
        "endpoint_host": cluster.endpoint,
        "talos_version": cluster.talos_version,
        "kubernetes_version": cluster.kubernetes_version,
        "nodes": talos_nodes(cluster),
        "substrate": substrate,
        "extensions": cluster.extensions,
        "network": static_network(network),
        "extra_config_patches": list(extra_config_patches),
        "control_plane_config_patches": list(control_plane_config_patches),
    }
    if cluster.config_contract is not None:
        args["config_contract"] = cluster.config_contract
    talos = TalosCluster("talos", args, opts=pulumi.ResourceOptions(providers=list(providers)))
    k8s_provider = kubernetes_provider(
        f"{environment}-kubernetes",
        talos.kubeconfig,
        cluster_identifier=cluster.name,
        # A cluster that does not run in the host's normal mode (DEV) is usually powered off.
        may_be_powered_off="normal" not in cluster.modes,
    )
    cni = Cilium(
        "cilium",
        {
            "cluster_name": cluster.name,
            "chart_version": cilium.chart_version,
            "gateway_api_version": cilium.gateway_api_version,
        },
        opts=pulumi.ResourceOptions(providers=[k8s_provider]),
    )
    return talos, k8s_provider, cni


def export_cluster(talos: TalosCluster) -> None:
    pulumi.export("kubeconfig", talos.kubeconfig)
    pulumi.export("talosconfig", talos.talosconfig)
    pulumi.export("node_addresses", talos.node_addresses)
    pulumi.export("kubernetes_endpoint", talos.endpoint)
    pulumi.export("talos_schematic_id", talos.schematic_id)


def load() -> DevConfig:
    """The stack's config, validated: every check that needs no resource, before any is registered."""
    config = load_config(DevConfig, SECRETS)
    raise_first_problem(dev_problems(config))
    raise_first_problem(platform_problems(config.platform, SEED, "prod"))
    if config.telemetry.enabled and telemetry.NAMESPACE in config.platform.namespaces:
        raise ConfigError(
            f"homelab:platform.namespaces: {telemetry.NAMESPACE!r} is created by the collector while "
            "homelab:telemetry.enabled is true; remove it from the list"
        )
    return config


def build() -> None:
    config = load()
    secrets = pulumi.Config("homelab")
    connection = proxmox_connection(config.proxmox)
    proxmox = proxmox_provider(
        "proxmox", connection, secrets.require_secret("proxmoxApiToken"), secrets.require_secret("proxmoxSshPrivateKey")
    )
    talos_api = talos_provider("talos")
    shipping = config.telemetry.enabled

    talos, k8s_provider, cni = talos_on_proxmox(
        environment="dev",
        cluster=config.cluster,
        network=config.network,
        node_name=config.proxmox.node_name,
        cilium=config.cilium,
        # The command provider runs the cluster's one-time health gate.
        providers=[proxmox, talos_api, command_provider("command")],
        # Talos's service and kernel logs to the node-local collector.
        extra_config_patches=[local_path_talos_patch(), *(talos_logging_patches() if shipping else [])],
    )
    local_path_version = config.storage.local_path_version
    assert local_path_version is not None  # dev_problems() rejected a missing one
    LocalPathStorage(
        "storage",
        {"version": local_path_version, "default_class": True},
        opts=pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni]),
    )

    on_cluster = pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni])
    platform = config.platform
    apps = WorkloadNamespaces("workloads", {"names": platform.namespaces}, opts=on_cluster)
    eso = secrets_layer(platform, SEED, "prod", on_cluster)  # DEV mirrors PROD's apps
    layers: list[pulumi.Resource] = [apps, *([eso] if eso is not None else [])]
    platform_namespaces = ["cert-manager", "external-secrets"] if eso is not None else []
    if shipping:
        cloud_stack = config.telemetry.cloud_stack
        layers.append(
            telemetry.cluster_collector(
                "dev",
                telemetry.remote_from_reference(pulumi.StackReference(cloud_stack), cloud_stack),
                config.telemetry.alloy_chart,
                config.cluster.name,
                on_cluster,
                # Off in the host's normal mode by design: its silence must not page.
                intermittent="normal" not in config.cluster.modes,
            )
        )
        platform_namespaces.append(telemetry.NAMESPACE)
    network_policies(
        policy_targets(platform_namespaces, apps.names, DEV_APP_INGRESS),
        pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni, *layers]),
    )
    if platform.argocd_access:
        argocd_access(f"https://{config.cluster.endpoint}:6443", talos.kubeconfig, on_cluster)

    export_cluster(talos)
    # The prod stack owns the host and counts these guests in its capacity ledger.
    pulumi.export("host_guests", guests_as_output(cluster_guests("dev", config.cluster)))
