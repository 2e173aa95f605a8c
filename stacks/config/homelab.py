"""Typed config of the homelab stacks (`dev`, `prod`): the Proxmox host and its Talos clusters.

Every section is a frozen model that rejects unknown keys; numbers carry their unit in the name.
Cross-field rules (addresses inside the LAN, one checksum per Talos version, Talos/Kubernetes
compatibility) are checked here, so a bad value fails as one line naming its key before any
resource is registered.
"""

import ipaddress
import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from stacks.backups import HomeBackupsConfig
from stacks.catalog import CatalogConfig, build_catalog
from stacks.config.base import ConfigModel, Problem
from stacks.config.monitoring import DevTelemetryConfig, MonitoringConfig, threshold_problems
from stacks.config.platform import PlatformConfig
from stacks.config.versions import KubernetesVersion, TalosVersion, version_pair_problem
from stacks.cost import CostConfig

HostMode = Literal["normal", "testing", "gaming"]

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_BY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PCI_ID = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")
_PCI_PATH = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}$")
_PVE_PRIVILEGE = re.compile(r"^[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)+$")
_SSH_HOST_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}$")


def _hostname(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError("must be a lower-case DNS label (a-z, 0-9, '-', at most 63 characters)")
    return value


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError("must be an IPv4 address like 192.168.68.61") from None
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise ValueError("must be an IPv4 network in CIDR form like 192.168.68.0/24") from None
    return value


def _by_id(value: str) -> str:
    if value.startswith("/") or not _BY_ID.match(value):
        raise ValueError("must be a name under /dev/disk/by-id (e.g. ata-WDC_WD201KFGX-68BKJN0_8LH2XK7A)")
    return value


def _sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise ValueError("must be a lower-case hex SHA-256 digest (64 characters)")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
IPv4 = Annotated[str, AfterValidator(_ipv4)]
Cidr = Annotated[str, AfterValidator(_cidr)]
DiskById = Annotated[str, AfterValidator(_by_id)]
Sha256 = Annotated[str, AfterValidator(_sha256)]
VmId = Annotated[int, Field(ge=100, le=999_999_999)]


class ProxmoxConfig(ConfigModel):
    """`homelab:proxmox` — how Pulumi reaches the Proxmox node."""

    endpoint: str
    node_name: Hostname
    ssh_address: IPv4
    ssh_username: str = "root"
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_host_key: str = Field(pattern=_SSH_HOST_KEY.pattern)
    """The host's SSH public key, `<type> <base64>` (`cat /etc/ssh/ssh_host_ed25519_key.pub` on the
    host's console): every SSH connection (host commands, the provider's disk import) refuses any
    other key (docs/runbooks/host-bring-up.md)."""
    insecure: bool = False
    """Skip TLS verification of the API (only for a host still on its self-signed certificate)."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?/?$", value):
            raise ValueError("must be the API URL, e.g. https://192.168.68.51:8006/")
        return value


class NetworkConfig(ConfigModel):
    """`homelab:network` — the home LAN the host and the nodes live on."""

    cidr: Cidr
    gateway: IPv4
    nameservers: list[IPv4] = Field(min_length=1)
    bridge: str = Field(default="vmbr0", pattern=r"^vmbr\d{1,4}$")
    vlan_id: int | None = Field(default=None, ge=1, le=4094)

    @property
    def prefix_length(self) -> int:
        return ipaddress.IPv4Network(self.cidr).prefixlen

    def contains(self, address: str) -> bool:
        return ipaddress.IPv4Address(address) in ipaddress.IPv4Network(self.cidr)


class NodeConfig(ConfigModel):
    """One Talos node (`homelab:cluster.nodes.<name>`)."""

    role: Literal["controlplane", "worker"]
    address: IPv4
    vm_id: VmId
    cores: int = Field(ge=1, le=64)
    memory_mb: int = Field(ge=2048, le=262144)
    """Talos needs at least 2 GB (control planes 2 GB, workers 1 GB; 2 GB keeps both safe)."""
    disk_gb: int = Field(ge=10, le=16384)
    install_disk: str = Field(default="/dev/sda", pattern=r"^/dev/[a-z0-9/]+$")


class ClusterConfig(ConfigModel):
    """`homelab:cluster` — the stack's Talos cluster on the Proxmox host."""

    name: Hostname
    endpoint: IPv4
    """Kubernetes API endpoint address: one control-plane node's own address (no VIP is configured)."""
    talos_version: TalosVersion
    kubernetes_version: KubernetesVersion
    config_contract: str | None = None
    extensions: list[str] = Field(default_factory=list)
    image_sha256: dict[str, Sha256]
    """SHA-256 of `nocloud-amd64.raw.zst` per Talos version, for this cluster's schematic."""
    cpu_type: Literal["host", "x86-64-v2-AES"] = "x86-64-v2-AES"
    vm_datastore_id: str = Field(default="local-zfs", min_length=1)
    image_datastore_id: str = Field(default="local", min_length=1)
    protect_vms: bool = True
    modes: list[HostMode] = Field(min_length=1)
    nodes: dict[Hostname, NodeConfig] = Field(min_length=1)

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: list[str]) -> list[str]:
        for ext in value:
            if not re.match(r"^[a-z0-9-]+/[a-z0-9-]+$", ext):
                raise ValueError(f"extension {ext!r} must be an official name like siderolabs/iscsi-tools")
        return value


class GpuConfig(ConfigModel):
    mapping_name: Hostname
    pci_path: str = Field(pattern=_PCI_PATH.pattern)
    device_id: str = Field(pattern=_PCI_ID.pattern)
    subsystem_id: str = Field(pattern=_PCI_ID.pattern)
    iommu_group: int = Field(ge=0, le=1024)
    vfio_ids: list[str] = Field(min_length=1)

    @field_validator("vfio_ids")
    @classmethod
    def _vfio_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _PCI_ID.match(item):
                raise ValueError(f"{item!r} must be a vendor:device id like 10de:2684")
        return value


class ApiConsumerConfig(ConfigModel):
    """A least-privilege Proxmox identity for one consumer; create it only when something uses it."""

    user_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*@pve$")
    privileges: list[str] = Field(min_length=1)
    path: str = Field(default="/", pattern=r"^/[A-Za-z0-9/_.-]*$")
    """Where the role applies: `/storage/<id>` for a storage consumer (a CSI driver), never `/` for
    anything beyond `*.Audit`."""
    comment: str = ""

    @field_validator("privileges")
    @classmethod
    def _privileges(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _PVE_PRIVILEGE.match(item):
                raise ValueError(f"{item!r} is not a Proxmox privilege name like VM.Audit")
        return value

    @field_validator("path")
    @classmethod
    def _scoped(cls, value: str, info: ValidationInfo) -> str:
        writes = sorted(p for p in info.data.get("privileges", []) if not p.endswith(".Audit"))
        if value == "/" and writes:
            raise ValueError(
                f"grants {', '.join(writes)} on the whole host; scope it to what the consumer needs "
                "(e.g. /storage/tank-vms)"
            )
        return value


class HostConfig(ConfigModel):
    """`homelab:host` — the Proxmox node itself (owned by the prod stack)."""

    memory_mb: int = Field(ge=4096)
    cores: int = Field(ge=1, le=512)
    reserved_memory_mb: int = Field(ge=1024)
    """What Proxmox VE itself needs (pveproxy, corosync-less single node, page cache headroom)."""
    cpu_vendor: Literal["amd", "intel"]
    bridge_address: str
    """Host address on the bridge in CIDR form (`192.168.68.51/24`)."""
    bridge_ports: list[str] = Field(min_length=1)
    gpu: GpuConfig | None = None
    api_consumers: dict[Hostname, ApiConsumerConfig] = Field(default_factory=dict)
    apt_repository: Literal["no-subscription", "enterprise"] = "no-subscription"
    """`no-subscription` disables the enterprise repositories (401 without a subscription) and adds
    pve-no-subscription; `enterprise` leaves a subscribed host's sources alone."""

    @field_validator("bridge_address")
    @classmethod
    def _bridge_address(cls, value: str) -> str:
        try:
            ipaddress.IPv4Interface(value)
        except ValueError:
            raise ValueError("must be an address with prefix like 192.168.68.51/24") from None
        if "/" not in value:
            raise ValueError("must include the prefix length, like 192.168.68.51/24")
        return value


class SnapshotConfig(ConfigModel):
    hourly: int = Field(default=0, ge=0, le=168)
    daily: int = Field(default=0, ge=0, le=366)
    weekly: int = Field(default=0, ge=0, le=104)
    monthly: int = Field(default=0, ge=0, le=120)


class DatasetConfig(ConfigModel):
    quota_gb: int | None = Field(default=None, ge=1)
    recordsize: Literal["16K", "64K", "128K", "512K", "1M"] | None = None
    snapshots: SnapshotConfig | None = None
    nfs_export: bool = False


class ZfsConfig(ConfigModel):
    """`homelab:zfs` — the data mirror."""

    pool_name: Hostname
    disk_ids: list[DiskById]
    ashift: int = Field(default=12, ge=9, le=16)
    compression: Literal["lz4", "zstd", "on", "off"] = "lz4"
    arc_max_gb: int = Field(ge=1, le=256)
    import_foreign_pool: bool = False
    """Import the pool with `-f` although another host (a previous installation) last used it. Set it
    for the one `up` after reinstalling Proxmox, then remove it (docs/runbooks/host-bring-up.md)."""
    scrub: Literal["weekly", "monthly"] = "weekly"
    datasets: dict[Hostname, DatasetConfig] = Field(min_length=1)
    vm_dataset: Hostname
    vm_storage_id: Hostname
    backup_dataset: Hostname | None = None
    backup_storage_id: Hostname | None = None
    nfs_clients: list[Cidr] = Field(default_factory=list)

    @field_validator("disk_ids")
    @classmethod
    def _mirror(cls, value: list[str]) -> list[str]:
        if len(value) != 2:
            raise ValueError(f"a mirror needs exactly 2 disk ids, found {len(value)}")
        if len(set(value)) != 2:
            raise ValueError("the two disk ids are the same disk")
        return value

    @field_validator("nfs_clients")
    @classmethod
    def _nfs_clients(cls, value: list[str]) -> list[str]:
        for cidr in value:
            if ipaddress.IPv4Network(cidr).prefixlen < 16:
                raise ValueError(f"{cidr} is wider than a /16; export to the cluster subnet only")
        return value


class GamingConfig(ConfigModel):
    """`homelab:gaming` — the Windows VM with the GPU."""

    vm_id: VmId
    name: Hostname = "gaming"
    cores: int = Field(ge=2, le=64)
    memory_mb: int = Field(ge=8192, le=262144)
    disk_gb: int = Field(ge=64, le=16384)
    install_iso: str | None = Field(default=None, pattern=r"^[a-z0-9-]+:iso/[A-Za-z0-9._-]+\.iso$")
    modes: list[HostMode] = Field(default_factory=lambda: ["gaming"], min_length=1)


class CiliumConfig(ConfigModel):
    """`homelab:cilium` — chart and Gateway API versions (values live in components/talos)."""

    chart_version: str = Field(pattern=r"^1\.\d+\.\d+$")
    gateway_api_version: str = Field(pattern=r"^v1\.\d+\.\d+$")


class StorageConfig(ConfigModel):
    """`homelab:storage` — Kubernetes storage classes."""

    local_path_version: str | None = Field(default=None, pattern=r"^v0\.\d+\.\d+$")
    nfs_csi_chart_version: str | None = Field(default=None, pattern=r"^v?4\.\d+\.\d+$")
    nfs_server: IPv4 | None = None
    nfs_media_dataset: Hostname = "media"
    """ZFS dataset (exported over NFS) behind the `nfs-media` class."""


class CapacityConfig(ConfigModel):
    """`homelab:capacity` — where the prod stack finds the dev stack's guests."""

    dev_stack: str = Field(default="dev", pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$")
    """`dev` with a local backend; `<org>/homelab/dev` with Pulumi Cloud."""


class TunnelConnectorConfig(ConfigModel):
    """`homelab:tunnel` — the home end of the `prod` Cloudflare Tunnel, running in the PROD cluster.

    cloudflared dials out, so the home router opens no port (NFR-007). The tunnel itself and its
    token belong to the `cloud` stack, which owns every Cloudflare resource.
    """

    enabled: bool = True
    """Off until the `cloud` stack exists (bring-up order: cloud, dev, prod)."""
    cloud_stack: str = Field(default="cloud", pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$")
    """`cloud` with a self-managed backend; `<org>/homelab/cloud` with Pulumi Cloud."""
    image: str = Field(
        default="docker.io/cloudflare/cloudflared:2025.8.1", pattern=r"^[^\s:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})$"
    )
    """An exact tag or digest, never `latest`."""
    replicas: int = Field(default=2, ge=1, le=4)

    @field_validator("image")
    @classmethod
    def _pinned(cls, image: str) -> str:
        if image.endswith(":latest"):
            raise ValueError("must be pinned to an exact tag or digest, not latest")
        return image


class DevConfig(ConfigModel):
    """The `dev` stack: the DEV cluster (1 node) on the shared Proxmox host."""

    proxmox: ProxmoxConfig
    network: NetworkConfig
    cluster: ClusterConfig
    cilium: CiliumConfig
    storage: StorageConfig = StorageConfig()
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    telemetry: DevTelemetryConfig = Field(default_factory=DevTelemetryConfig)


class ProdConfig(ConfigModel):
    """The `prod` stack: the host, the ZFS pool, the PROD cluster and the gaming VM."""

    proxmox: ProxmoxConfig
    network: NetworkConfig
    host: HostConfig
    zfs: ZfsConfig
    cluster: ClusterConfig
    gaming: GamingConfig
    cilium: CiliumConfig
    storage: StorageConfig
    capacity: CapacityConfig = CapacityConfig()
    tunnel: TunnelConnectorConfig = TunnelConnectorConfig()
    backups: HomeBackupsConfig = HomeBackupsConfig()
    cost: CostConfig = CostConfig()
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    catalog: CatalogConfig | None = None
    """The same catalog domain (and overrides) as the `cloud` stack: monitoring probes every service."""
    monitoring: MonitoringConfig = MonitoringConfig()


def network_problems(network: NetworkConfig) -> Iterator[Problem]:
    if not network.contains(network.gateway):
        yield "network.gateway", f"{network.gateway} is outside network.cidr {network.cidr}"


def _contract_minor(contract: str) -> int | None:
    match = re.match(r"^v1\.(\d+)$", contract)
    return int(match.group(1)) if match else None


def cluster_problems(
    network: NetworkConfig, cluster: ClusterConfig, host_addresses: frozenset[str] = frozenset()
) -> Iterator[Problem]:
    pair = version_pair_problem(cluster.talos_version, cluster.kubernetes_version)
    if pair is not None:
        yield "cluster.kubernetes_version", pair
    if cluster.talos_version not in cluster.image_sha256:
        yield (
            "cluster.image_sha256",
            f"has no entry for {cluster.talos_version}; add the SHA-256 of the Image Factory "
            "nocloud-amd64.raw.zst for this version (docs/runbooks/talos-upgrade.md)",
        )
    if not any(n.role == "controlplane" for n in cluster.nodes.values()):
        yield "cluster.nodes", "needs at least one node with role controlplane"
    if not network.contains(cluster.endpoint):
        yield "cluster.endpoint", f"{cluster.endpoint} is outside network.cidr {network.cidr}"
    if cluster.config_contract is not None:
        contract = _contract_minor(cluster.config_contract)
        if contract is None:
            yield "cluster.config_contract", f"{cluster.config_contract!r} must look like v1.10 (a Talos minor)"
        elif contract > int(cluster.talos_version.split(".")[1]):
            yield (
                "cluster.config_contract",
                f"{cluster.config_contract} is newer than talos_version {cluster.talos_version}: "
                "the nodes would reject configuration they do not understand",
            )
    seen_addresses: dict[str, str] = {}
    seen_ids: dict[int, str] = {}
    for name, node in sorted(cluster.nodes.items()):
        key = f"cluster.nodes.{name}"
        if not network.contains(node.address):
            yield f"{key}.address", f"{node.address} is outside network.cidr {network.cidr}"
        if node.address == network.gateway:
            yield f"{key}.address", f"{node.address} is the gateway"
        if node.address in host_addresses:
            yield f"{key}.address", f"{node.address} is the Proxmox host's own address"
        if node.address in seen_addresses:
            yield f"{key}.address", f"{node.address} is already used by node {seen_addresses[node.address]}"
        if node.vm_id in seen_ids:
            yield f"{key}.vm_id", f"{node.vm_id} is already used by node {seen_ids[node.vm_id]}"
        seen_addresses[node.address] = name
        seen_ids[node.vm_id] = name
    control_plane_addresses = sorted(n.address for n in cluster.nodes.values() if n.role == "controlplane")
    if control_plane_addresses and cluster.endpoint not in control_plane_addresses:
        # Nothing in the generated machine configuration serves a shared VIP, so an address that
        # is not a control plane's own would leave the Kubernetes API unreachable.
        yield (
            "cluster.endpoint",
            f"{cluster.endpoint} is not a control-plane node address ({', '.join(control_plane_addresses)})",
        )


def zfs_problems(zfs: ZfsConfig) -> Iterator[Problem]:
    for field_name, key in (("vm_dataset", zfs.vm_dataset), ("backup_dataset", zfs.backup_dataset)):
        if key is not None and key not in zfs.datasets:
            yield f"zfs.{field_name}", f"dataset {key!r} is not defined under zfs.datasets"
    if any(d.nfs_export for d in zfs.datasets.values()) and not zfs.nfs_clients:
        yield "zfs.nfs_clients", "a dataset is exported over NFS but no client network is listed"


def dev_problems(config: DevConfig) -> Iterator[Problem]:
    yield from network_problems(config.network)
    yield from cluster_problems(config.network, config.cluster, frozenset({config.proxmox.ssh_address}))
    if config.storage.local_path_version is None:
        yield "storage.local_path_version", "is required: the dev cluster's local-path class needs it"


def monitoring_problems(config: ProdConfig) -> Iterator[Problem]:
    monitoring = config.monitoring
    if not monitoring.enabled:
        return
    yield from threshold_problems(monitoring)
    if config.catalog is None:
        yield "catalog", "is required while monitoring is enabled: probes are generated from the service catalog"
    else:
        services = {s.name for s in build_catalog(config.catalog.domain, config.catalog.services).services}
        for key in sorted(set(monitoring.probes) - services):
            yield (
                f"monitoring.probes.{key}",
                f"no catalog service is named {key!r} (probes follow the catalog; add the service there first)",
            )
    if monitoring.storage_class == "nfs-media":
        yield "monitoring.storage_class", "must not be the NFS media class (TSDB and Loki need a local block volume)"
    workers = [n for n in config.cluster.nodes.values() if n.role == "worker"]
    if not workers:
        yield "cluster.nodes", "needs a worker node for the monitoring volumes"
    elif monitoring.prometheus_disk_share + monitoring.loki_disk_share > 0.7:
        yield (
            "monitoring.loki_disk_share",
            "prometheus_disk_share + loki_disk_share must leave at least 30 % of the worker disk to the workloads",
        )


def prod_problems(config: ProdConfig) -> Iterator[Problem]:
    yield from network_problems(config.network)
    host_address = str(ipaddress.IPv4Interface(config.host.bridge_address).ip)
    yield from cluster_problems(config.network, config.cluster, frozenset({config.proxmox.ssh_address, host_address}))
    yield from zfs_problems(config.zfs)
    if config.storage.nfs_csi_chart_version is None:
        yield "storage.nfs_csi_chart_version", "is required: the nfs-media class needs the NFS CSI driver"
    if config.storage.nfs_server is None:
        yield "storage.nfs_server", "is required: the nfs-media class needs the NFS server address"
    media = config.zfs.datasets.get(config.storage.nfs_media_dataset)
    if media is None or not media.nfs_export:
        yield (
            "storage.nfs_media_dataset",
            f"{config.storage.nfs_media_dataset!r} must be a zfs.datasets entry with nfs_export: true",
        )
    yield from monitoring_problems(config)
    node_ids = {n.vm_id: name for name, n in config.cluster.nodes.items()}
    if config.gaming.vm_id in node_ids:
        yield "gaming.vm_id", f"{config.gaming.vm_id} is already used by node {node_ids[config.gaming.vm_id]}"
    if config.gaming.cores > config.host.cores:
        yield "gaming.cores", f"{config.gaming.cores} exceeds the host's {config.host.cores} cores"
    for name, node in sorted(config.cluster.nodes.items()):
        if node.cores > config.host.cores:
            yield f"cluster.nodes.{name}.cores", f"{node.cores} exceeds the host's {config.host.cores} cores"
    yield from backup_problems(config)
    if config.gaming.memory_mb >= config.host.memory_mb:
        yield "gaming.memory_mb", f"{config.gaming.memory_mb} does not fit the host's {config.host.memory_mb} MB"


def backup_problems(config: ProdConfig) -> Iterator[Problem]:
    """The local backup layer needs the pool's backup storage and a free scratch VM id."""
    if config.zfs.backup_dataset is None:
        yield "zfs.backup_dataset", "is required: the vzdump job of every stateful guest writes to it"
    if config.zfs.backup_storage_id is None:
        yield "zfs.backup_storage_id", "is required: the vzdump job names the pool's backup storage"
    scratch = config.backups.drill.scratch_vm_id
    used = {n.vm_id: name for name, n in config.cluster.nodes.items()} | {config.gaming.vm_id: "gaming"}
    if scratch in used:
        yield "backups.drill.scratch_vm_id", f"{scratch} is already used by {used[scratch]}"
