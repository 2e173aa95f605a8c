"""The `prod` stack: the Proxmox host, its ZFS mirror, the PROD Talos cluster and the gaming VM.

Composition only: config -> components -> outputs. This stack owns the host, so it also keeps the
host capacity ledger: its own guests plus the `dev` stack's (read through a stack reference).
"""

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_twingate as twingate

from components.cloudflare.connector import CloudflaredConnector
from components.command import command_provider
from components.k8s.etcd_backup import talos_access_patch
from components.k8s.longhorn import Longhorn, longhorn_talos_patch, missing_extensions
from components.k8s.namespaces import WorkloadNamespaces
from components.k8s.network_policy import IngressAllows
from components.k8s.storage import NfsMediaStorage
from components.k8s.twingate import TwingateSite, TwingateTarget
from components.monitoring.logs import talos_logging_patches
from components.monitoring.metrics import control_plane_metrics_patch
from components.proxmox.backups import DrillSettings, GuestBackups, Retention
from components.proxmox.gaming import GamingVm, GamingVmArgs
from components.proxmox.host import ApiConsumer, BridgeSpec, GpuPassthrough, ProxmoxHost, ProxmoxHostArgs
from components.proxmox.provider import proxmox_provider, ssh_connection
from components.proxmox.zfs import DatasetSpec, NfsSettings, SnapshotPolicy, ZfsPool, ZfsPoolArgs
from components.talos.cluster import talos_provider
from stacks.backups import etcd_holding, protection_rows, protections
from stacks.capacity import CapacityError, guests_from_output, ledger_for
from stacks.catalog import SEED, build_catalog
from stacks.config import ConfigError, load_config
from stacks.config.base import SecretSpec, raise_first_problem
from stacks.config.homelab import ProdConfig, ZfsConfig, prod_problems
from stacks.cost import estimate
from stacks.dev import HOST_SECRETS, export_cluster, proxmox_connection, talos_on_proxmox
from stacks.monitoring import NAMESPACES as MONITORING_NAMESPACES
from stacks.monitoring import SECRETS as MONITORING_SECRETS
from stacks.monitoring import MonitoringInputs, build_monitoring, telegram_secrets
from stacks.platform import (
    PLATFORM_SECRETS,
    TWINGATE_SECRETS,
    argocd_layer,
    network_policies,
    platform_problems,
    policy_targets,
    secrets_layer,
)
from stacks.velero import ETCD_SECRETS, bucket_from_reference, etcd_backup_layer, velero_layer
from stacks.velero import SECRETS as VELERO_SECRETS

__all__ = ["REFERENCES", "SECRETS", "build", "load"]

# The dev stack's `host_guests` feed the capacity ledger, and the cloud stack owns the `prod` tunnel
# whose token the home connector needs. Both names are configurable (`homelab:capacity.dev_stack`,
# `homelab:tunnel.cloud_stack`, e.g. `<org>/homelab/dev` with Pulumi Cloud).
REFERENCES: tuple[str, ...] = ("dev", "cloud")
SECRETS: tuple[SecretSpec, ...] = (
    *HOST_SECRETS,
    *PLATFORM_SECRETS,
    *TWINGATE_SECRETS,
    *MONITORING_SECRETS,
    *VELERO_SECRETS,
    *ETCD_SECRETS,
)
# Home apps are published by the `cloudflared` connector in this cluster and scraped by Prometheus.
APP_INGRESS = IngressAllows(from_namespaces=("cloudflared", "monitoring"))
NFS_PORTS = ("2049",)


def dataset_specs(zfs: ZfsConfig) -> dict[str, DatasetSpec]:
    return {
        key: DatasetSpec(
            quota_gb=ds.quota_gb,
            recordsize=ds.recordsize,
            snapshots=SnapshotPolicy(**ds.snapshots.model_dump()) if ds.snapshots else None,
            nfs_export=ds.nfs_export,
        )
        for key, ds in sorted(zfs.datasets.items())
    }


def _capacity(config: ProdConfig, dev_guests: Any) -> dict[str, Any]:
    ledger = ledger_for(config, guests_from_output(dev_guests, config.capacity.dev_stack))
    ledger.check()
    return ledger.summary()


def load() -> ProdConfig:
    """The stack's config, validated: every check that needs no resource, before any is registered
    and before the referenced stacks are read."""
    config = load_config(ProdConfig, SECRETS)
    raise_first_problem(prod_problems(config))
    raise_first_problem(platform_problems(config.platform, SEED, "prod"))
    if config.platform.longhorn is not None and (missing := missing_extensions(config.cluster.extensions)):
        raise ConfigError(f"homelab:cluster.extensions: Longhorn needs {', '.join(missing)} in the node image")
    # Prod's own guests must fit before anything is registered; dev's are added in build().
    try:
        ledger_for(config, ()).check()
    except CapacityError as exc:
        raise ConfigError(f"homelab:host.memory_mb: {exc}") from None
    return config


def build() -> None:
    config = load()
    references: dict[str, pulumi.StackReference] = {}

    def reference(name: str) -> pulumi.StackReference:
        """One StackReference per stack, however many layers read it."""
        if name not in references:
            references[name] = pulumi.StackReference(name)
        return references[name]

    # Missing alerting secrets fail here, before anything is registered.
    telegram = telegram_secrets(config.monitoring) if config.monitoring.enabled else None
    # The monitoring components create their own namespaces; a second owner would fail at `up`.
    owned = sorted(set(config.platform.namespaces) & set(MONITORING_NAMESPACES)) if config.monitoring.enabled else []
    if owned:
        raise ConfigError(
            f"homelab:platform.namespaces: {owned[0]!r} is created by the monitoring components "
            "while homelab:monitoring.enabled is true; remove it from the list"
        )

    secrets = pulumi.Config("homelab")
    ssh_key = secrets.require_secret("proxmoxSshPrivateKey")
    connection = proxmox_connection(config.proxmox)
    proxmox = proxmox_provider("proxmox", connection, secrets.require_secret("proxmoxApiToken"), ssh_key)
    ssh = ssh_connection(connection, ssh_key)
    # Host commands (package installs, ZFS, passthrough) and the cluster's one-time health gate need
    # the command provider explicitly (default providers are disabled).
    commands = command_provider("command")
    on_proxmox = pulumi.ResourceOptions(providers=[proxmox, commands])
    node = config.proxmox.node_name
    host_cfg = config.host

    host_args: ProxmoxHostArgs = {
        "node_name": node,
        "connection": ssh,
        "bridge": BridgeSpec(
            name=config.network.bridge,
            address=host_cfg.bridge_address,
            gateway=config.network.gateway,
            ports=tuple(host_cfg.bridge_ports),
        ),
        "cpu_vendor": host_cfg.cpu_vendor,
        "apt_repository": host_cfg.apt_repository,
        "api_consumers": {
            key: ApiConsumer(user_id=c.user_id, privileges=tuple(c.privileges), path=c.path, comment=c.comment)
            for key, c in host_cfg.api_consumers.items()
        },
    }
    if host_cfg.gpu is not None:
        gpu = host_cfg.gpu
        host_args["gpu"] = GpuPassthrough(
            mapping_name=gpu.mapping_name,
            pci_path=gpu.pci_path,
            device_id=gpu.device_id,
            subsystem_id=gpu.subsystem_id,
            iommu_group=gpu.iommu_group,
            vfio_ids=tuple(gpu.vfio_ids),
        )
    host = ProxmoxHost("host", host_args, opts=on_proxmox)

    zfs = config.zfs
    pool_args: ZfsPoolArgs = {
        "node_name": node,
        "connection": ssh,
        "pool_name": zfs.pool_name,
        "disk_ids": list(zfs.disk_ids),
        "datasets": dataset_specs(zfs),
        "vm_dataset": zfs.vm_dataset,
        "vm_storage_id": zfs.vm_storage_id,
        "arc_max_gb": zfs.arc_max_gb,
        "nfs": NfsSettings(clients=tuple(zfs.nfs_clients)),
        "import_foreign_pool": zfs.import_foreign_pool,
        # The pool's package installs and initramfs rebuild run after the host's own, never beside them.
        "serialize_after": [host.host_chain],
        "ashift": zfs.ashift,
        "compression": zfs.compression,
        "scrub": zfs.scrub,
    }
    if zfs.backup_dataset is not None:
        pool_args["backup_dataset"] = zfs.backup_dataset
    if zfs.backup_storage_id is not None:
        pool_args["backup_storage_id"] = zfs.backup_storage_id
    pool = ZfsPool(zfs.pool_name, pool_args, opts=on_proxmox)

    # Local backup layer (FR-024): every stateful guest (the PROD nodes; the gaming VM holds only
    # replaceable games, DEV nothing that is not in git) to the pool's backup storage.
    backups = config.backups
    assert zfs.backup_dataset is not None and zfs.backup_storage_id is not None  # prod_problems()
    GuestBackups(
        "guests",
        {
            "node_name": node,
            "connection": ssh,
            "storage_id": zfs.backup_storage_id,
            "storage_path": f"/{zfs.pool_name}/{zfs.backup_dataset}",
            "scratch_storage_id": pool.vm_storage_id,
            "vm_ids": [n.vm_id for n in config.cluster.nodes.values()],
            "schedule": backups.vzdump.schedule,
            "retention": Retention(
                keep_daily=backups.vzdump.keep_daily,
                keep_weekly=backups.vzdump.keep_weekly,
                keep_monthly=backups.vzdump.keep_monthly,
            ),
            "drill": DrillSettings(**backups.drill.model_dump()),
        },
        opts=pulumi.ResourceOptions.merge(on_proxmox, pulumi.ResourceOptions(depends_on=[pool])),
    )

    talos, k8s_provider, cni = talos_on_proxmox(
        environment="prod",
        cluster=config.cluster,
        network=config.network,
        node_name=node,
        cilium=config.cilium,
        providers=[proxmox, talos_provider("talos"), commands],
        extra_config_patches=[
            *([longhorn_talos_patch()] if config.platform.longhorn is not None else []),
            # Talos's service and kernel logs to the node-local agent (`stacks.monitoring`).
            *(talos_logging_patches() if config.monitoring.enabled else []),
        ],
        # The control plane's own metrics endpoints, scraped by kube-prometheus-stack.
        control_plane_config_patches=[
            *([control_plane_metrics_patch()] if config.monitoring.enabled else []),
            # The etcd snapshot job's Talos API access (os:etcd:backup only, from its namespace).
            *([talos_access_patch()] if config.platform.etcd_backup else []),
        ],
        # etcd is a critical data holder of the backup plan: its VMs say so (DAT-08's evidence).
        control_plane_holding=etcd_holding("prod"),
    )

    if host.gpu_mapping_name is not None:
        gaming_cfg = config.gaming
        gaming_args: GamingVmArgs = {
            "node_name": node,
            "vm_id": gaming_cfg.vm_id,
            "name": gaming_cfg.name,
            "gpu_mapping": host.gpu_mapping_name,
            "datastore_id": pool.vm_storage_id,
            "cores": gaming_cfg.cores,
            "memory_mb": gaming_cfg.memory_mb,
            "disk_gb": gaming_cfg.disk_gb,
            "modes": tuple(gaming_cfg.modes),
            "bridge": config.network.bridge,
        }
        if gaming_cfg.install_iso is not None:
            gaming_args["install_iso"] = gaming_cfg.install_iso
        GamingVm("gaming", gaming_args, opts=on_proxmox)

    storage = config.storage
    assert storage.nfs_csi_chart_version is not None and storage.nfs_server is not None  # prod_problems()
    NfsMediaStorage(
        "media-storage",
        {
            "chart_version": storage.nfs_csi_chart_version,
            "server": storage.nfs_server,
            "share": f"/{zfs.pool_name}/{storage.nfs_media_dataset}",
        },
        opts=pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni, pool]),
    )

    # The cloud stack owns the tunnel (its token) and the identity layer (Grafana's OIDC client).
    cloud = reference(config.tunnel.cloud_stack)
    if config.tunnel.enabled:
        CloudflaredConnector(
            "home-tunnel",
            {
                "token": pulumi.Output.secret(cloud.require_output("tunnel_token_prod")),
                "image": config.tunnel.image,
                "replicas": config.tunnel.replicas,
            },
            opts=pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni]),
        )

    monitoring: list[pulumi.Resource] = []
    if config.monitoring.enabled:
        assert config.catalog is not None  # prod_problems()
        monitoring = build_monitoring(
            MonitoringInputs(
                config=config,
                catalog=build_catalog(config.catalog.domain, config.catalog.services),
                k8s_provider=k8s_provider,
                cluster_ready=[cni],
                ssh=ssh,
                command_provider=commands,
                host_chain=pool.host_chain,
                cloud=cloud,
                telegram=telegram,
            )
        )

    _platform(config, k8s_provider, cni, reference, monitoring)

    export_cluster(talos)
    pulumi.export("host_reboot_required", host.reboot_required)
    pulumi.export("zfs_pool_health", pool.health)
    pulumi.export("nfs_exports", pool.nfs_exports)
    pulumi.export("proxmox_api_tokens", host.api_tokens)
    # The catalog's per-stack overrides live in the cloud stack: prod classifies from the seed.
    seed_catalog = build_catalog("homelab.invalid")
    layers = {"primary", "zfs-snapshot", "vzdump"} | ({"velero"} if config.platform.velero else set())
    layers |= {"etcd-snapshot"} if config.platform.etcd_backup else set()
    built = frozenset(layers)
    pulumi.export(
        "backup_protection",
        protection_rows(protections(seed_catalog, classes=backups.classes, location="prod", built=built)),
    )

    dev = reference(config.capacity.dev_stack)
    pulumi.export("host_capacity", dev.get_output("host_guests").apply(lambda guests: _capacity(config, guests)))
    gpu_modes = tuple(config.gaming.modes) if config.host.gpu is not None else ()
    # The cloud line prices what the cloud stack uses beyond the Always Free allowance (0 within it).
    cloud = reference(config.tunnel.cloud_stack)
    # The paid storage line adds the cloud stack's paid offsite target (OVH), priced there.
    pulumi.export(
        "cost_estimate",
        pulumi.Output.all(
            dev.get_output("host_guests"), cloud.get_output("always_free_usage"), cloud.get_output("offsite_storage")
        ).apply(
            lambda args: estimate(
                ledger_for(config, guests_from_output(args[0])),
                config.host.cores,
                gpu_modes,
                config.cost,
                args[1],
                offsite=args[2],
            )
        ),
    )


def _platform(
    config: ProdConfig,
    k8s_provider: pulumi.ProviderResource,
    cni: pulumi.Resource,
    reference: Any,
    monitoring: Sequence[pulumi.Resource],
) -> None:
    """Secrets, Argo CD, Longhorn, Twingate and the namespaces' network policies on PROD.

    `monitoring` holds the monitoring components when they are on: they create their own namespaces
    (`stacks.monitoring.NAMESPACES`), which get their default-deny and allows here, after them.
    """
    platform = config.platform
    on_cluster = pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni])
    layers: list[pulumi.Resource] = [*monitoring]
    platform_namespaces = ["cloudflared"] if config.tunnel.enabled else []
    if monitoring:
        platform_namespaces += MONITORING_NAMESPACES
    apps = WorkloadNamespaces("workloads", {"names": platform.namespaces}, opts=on_cluster)
    layers.append(apps)
    eso = secrets_layer(platform, SEED, "prod", on_cluster)
    if eso is not None:
        layers.append(eso)
        platform_namespaces += ["cert-manager", "external-secrets"]
    if platform.longhorn is not None:
        layers.append(
            Longhorn(
                "longhorn",
                {
                    "chart_version": platform.longhorn.chart_version,
                    "replica_count": platform.longhorn.replica_count,
                    "default_class": platform.longhorn.default_class,
                },
                opts=on_cluster,
            )
        )
        platform_namespaces.append("longhorn-system")
    if platform.argocd is not None:
        argocd = platform.argocd
        refs = {name: reference(name) for name in {argocd.identity_stack, *(c.stack for c in argocd.clusters.values())}}
        layers.append(argocd_layer(argocd, refs, on_cluster))
        platform_namespaces.append("argocd")
    if platform.twingate is not None:
        tg = platform.twingate
        provider = twingate.Provider(
            "twingate", api_token=pulumi.Config("homelab").require_secret("twingateApiToken"), network=tg.network
        )
        cloud_client = reference(config.tunnel.cloud_stack).get_output("twingate_service_account_id")
        layers.append(
            TwingateSite(
                "home",
                {
                    "network": tg.network,
                    "remote_network": tg.remote_network,
                    "location": tg.location,
                    "image": tg.image,
                    "kubernetes_provider": k8s_provider,
                    "targets": {key: TwingateTarget(address, NFS_PORTS) for key, address in tg.resources.items()},
                    "access_group_ids": [tg.access_group] if tg.access_group else [],
                    "access_service_account_ids": [cloud_client],
                },
                opts=pulumi.ResourceOptions(providers=[provider], depends_on=[cni]),
            )
        )
        platform_namespaces.append("twingate")
    if platform.velero is not None:
        # The offsite bucket and its S3 credentials are the cloud stack's (one Customer Secret Key).
        cloud_stack = config.tunnel.cloud_stack
        bucket = bucket_from_reference(reference(cloud_stack), cloud_stack)
        layers.append(
            velero_layer(
                platform.velero, "prod", build_catalog("homelab.invalid"), config.backups.classes, bucket, on_cluster
            )
        )
        platform_namespaces.append("velero")
    if platform.etcd_backup:
        cloud_stack = config.tunnel.cloud_stack
        cluster = config.cluster
        layers.append(
            etcd_backup_layer(
                "prod",
                cluster.name,
                cluster.talos_version,
                cluster.endpoint,
                config.backups.classes,
                [bucket_from_reference(reference(cloud_stack), cloud_stack)],
                on_cluster,
            )
        )
        platform_namespaces.append("etcd-backup")
    network_policies(
        policy_targets(platform_namespaces, apps.names, APP_INGRESS),
        pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni, *layers]),
    )
