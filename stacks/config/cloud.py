"""Typed configuration of the `cloud` stack (OCI Always Free + Cloudflare).

Sections of `Pulumi.cloud.yaml`: `homelab:oci`, `homelab:network`, `homelab:management`,
`homelab:cluster`, `homelab:cloudflare`, `homelab:catalog`, `homelab:quota`, `homelab:rotation`,
`homelab:identity`.
Secrets are not part of the model; the stack lists the ones it reads in `stacks.cloud.SECRETS`.
"""

import ipaddress
import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field, field_validator

from stacks.backups import CloudBackupsConfig
from stacks.catalog import CatalogConfig
from stacks.config.base import ConfigModel, Problem
from stacks.config.homelab import CiliumConfig
from stacks.config.identity import IdentityConfig
from stacks.config.monitoring import TelemetryConfig
from stacks.config.platform import PlatformConfig
from stacks.config.versions import KubernetesVersion, TalosVersion, version_pair_problem
from stacks.quota import AlwaysFreeQuotaConfig

_REGION = re.compile(r"^[a-z]{2}-[a-z]+-\d$")
_FINGERPRINT = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")
_SSH_PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/]+={0,3}( \S+)?$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# An exact tag (never `latest`) or a digest: what runs must not change without a commit.
_IMAGE = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:(?!latest$)[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")
_DNS_LABEL = re.compile(r"^[a-z][a-z0-9]{0,14}$")
_NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")


def _ocid(kinds: tuple[str, ...], value: str) -> str:
    pattern = rf"^ocid1\.({'|'.join(kinds)})\.oc\d+\.[a-z0-9-]*\.[a-z0-9]{{20,}}$"
    if not re.match(pattern, value):
        raise ValueError(f"must be an OCID of kind {' or '.join(kinds)} (ocid1.{kinds[0]}.oc1..<id>)")
    return value


class OciConfig(ConfigModel):
    """`homelab:oci`: the tenancy and the API user Pulumi acts as (the key itself is a secret)."""

    region: str
    tenancy_ocid: str
    user_ocid: str
    fingerprint: str
    compartment_ocid: str
    availability_domain_number: int = Field(default=1, ge=1, le=3)
    """Which availability domain (1-3) hosts the instances; A1 capacity often exists in one only."""

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError("must be an OCI region identifier such as eu-paris-1")
        return value

    @field_validator("tenancy_ocid")
    @classmethod
    def _tenancy(cls, value: str) -> str:
        return _ocid(("tenancy",), value)

    @field_validator("user_ocid")
    @classmethod
    def _user(cls, value: str) -> str:
        return _ocid(("user",), value)

    @field_validator("compartment_ocid")
    @classmethod
    def _compartment(cls, value: str) -> str:
        return _ocid(("compartment", "tenancy"), value)

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str) -> str:
        if not _FINGERPRINT.match(value):
            raise ValueError("must be the API key fingerprint, 16 hex pairs separated by colons")
        return value


class OciNetworkConfig(ConfigModel):
    """`homelab:network`: the VCN and who may reach the admin endpoints."""

    vcn_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.20.0.0/16")
    subnet_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.20.1.0/24")
    """The node subnet: every address used in it is pinned by this config."""
    bastion_subnet_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.20.2.0/28")
    """The OCI Bastion's endpoint, whose address OCI allocates: a subnet of its own, so it can never
    take an address pinned in `subnet_cidr` before that address's instance exists."""
    dns_label: str = "homelab"
    admin_cidrs: tuple[ipaddress.IPv4Network, ...] = Field(min_length=1)
    """Where the administrators are (home /32): the only sources of Talos (50000), Kubernetes (6443)
    and OCI Bastion sessions."""

    @field_validator("admin_cidrs")
    @classmethod
    def _never_the_world(cls, value: tuple[ipaddress.IPv4Network, ...]) -> tuple[ipaddress.IPv4Network, ...]:
        for cidr in value:
            if cidr.prefixlen < 16:
                raise ValueError(f"{cidr} admits far more than an administrator's network (use /16 or narrower)")
        return value

    @field_validator("dns_label")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError("must start with a letter, letters and digits only, at most 15 characters")
        return value


class ComposeImagesConfig(ConfigModel):
    """Container images of the management VM, pinned to exact tags."""

    authentik: str = "ghcr.io/goauthentik/server:2025.8.1"
    postgres: str = "docker.io/library/postgres:16.9-alpine"
    redis: str = "docker.io/library/redis:7.4.5-alpine"
    omni: str = "ghcr.io/siderolabs/omni:v1.4.7"
    cloudflared: str = "docker.io/cloudflare/cloudflared:2025.8.1"

    @field_validator("authentik", "postgres", "redis", "omni", "cloudflared")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not _IMAGE.match(value) or (":" not in value.rsplit("/", 1)[-1] and "@sha256:" not in value):
            raise ValueError("must be a registry image with an exact tag or digest (never latest)")
        return value


class OmniConfig(ConfigModel):
    """Omni on the management VM."""

    account_id: str
    """A UUID naming this Omni installation (generate once with `uuidgen`; not a secret)."""
    name: str = "homelab"
    initial_users: tuple[str, ...] = Field(min_length=1)
    wireguard_public: bool = False
    """Open Omni's SideroLink WireGuard port to the internet so machines can register. The only
    public port the project knows; it must also be named as an exemption in the policy config."""
    wireguard_port: int = Field(default=50180, ge=1024, le=65535)

    @field_validator("account_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if not _UUID.match(value):
            raise ValueError("must be a lower-case UUID (uuidgen | tr A-Z a-z)")
        return value

    @field_validator("initial_users")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for email in value:
            if not _EMAIL.match(email):
                raise ValueError(f"{email!r} is not an e-mail address")
        return value


class ManagementConfig(ConfigModel):
    """`homelab:management`: the management VM (Authentik, PostgreSQL, Redis, Omni, cloudflared)."""

    ocpus: int = Field(default=1, ge=1, le=4)
    memory_gb: int = Field(default=4, ge=2, le=24)
    boot_volume_gb: int = Field(default=50, ge=50, le=200)
    data_volume_gb: int = Field(default=50, ge=50, le=200)
    address: ipaddress.IPv4Address = ipaddress.IPv4Address("10.20.1.10")
    ubuntu_version: Literal["22.04", "24.04"] = "24.04"
    ssh_public_key: str
    """The key Pulumi logs in with over the OCI Bastion (its private half is the secret
    `managementSshPrivateKey`)."""
    images: ComposeImagesConfig = Field(default_factory=ComposeImagesConfig)
    omni: OmniConfig

    @field_validator("ssh_public_key")
    @classmethod
    def _ssh_key(cls, value: str) -> str:
        if not _SSH_PUBLIC_KEY.match(value.strip()):
            raise ValueError("must be an OpenSSH public key line (ssh-ed25519 AAAA... comment)")
        return value.strip()


class CloudNodeConfig(ConfigModel):
    """One node of the CLOUD Talos cluster."""

    role: Literal["controlplane", "worker"] = "controlplane"
    ocpus: int = Field(default=1, ge=1, le=4)
    memory_gb: int = Field(default=8, ge=2, le=24)
    boot_volume_gb: int = Field(default=100, ge=50, le=200)
    address: ipaddress.IPv4Address
    reserved_public_ip: bool = False
    """Give the node a reserved (stable) public address: Comet's egress must keep one IP for
    Real-Debrid (FR-014)."""


class ApiEndpointConfig(ConfigModel):
    """`homelab:cluster.api_endpoint`: the network load balancer admins reach the CLOUD cluster's
    Kubernetes (6443) and Talos (50000) APIs through, from the admin CIDRs only."""

    private_address: ipaddress.IPv4Address = ipaddress.IPv4Address("10.20.1.5")
    """Its address in the subnet, pinned so it can never take a node's address first."""
    reserved_public_ip: bool = True
    """Keep the public address in a reserved IP that outlives the load balancer (kubeconfig,
    talosconfig and certificates name it). Set false only if the tenancy has no reserved IP left."""


class CloudClusterConfig(ConfigModel):
    """`homelab:cluster`: the CLOUD Talos cluster."""

    name: str = "homelab-cloud"
    # The same line as DEV and PROD: DEV validates what the other clusters run.
    talos_version: TalosVersion = "v1.10.6"
    kubernetes_version: KubernetesVersion = "1.33.3"
    image_bucket: str = "homelab-talos-images"
    gateway_port: int = Field(default=80, ge=1, le=65535)
    """Port of the cluster's Gateway on the nodes' VCN addresses: the cloud tunnel's connector on
    the management VM reaches CLOUD cluster services through it (Host header routing)."""
    nodes: dict[str, CloudNodeConfig] = Field(min_length=1)
    api_endpoint: ApiEndpointConfig = Field(default_factory=ApiEndpointConfig)

    @field_validator("image_bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.match(value):
            raise ValueError("must be a bucket name: lower-case letters, digits, dashes, underscores")
        return value

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, value: dict[str, CloudNodeConfig]) -> dict[str, CloudNodeConfig]:
        for name in value:
            if not _NODE_NAME.match(name):
                raise ValueError(f"node name {name!r} must be a DNS label")
        if not any(n.role == "controlplane" for n in value.values()):
            raise ValueError("needs at least one controlplane node")
        return value


class CloudflareConfig(ConfigModel):
    """`homelab:cloudflare`: the account holding the tunnels and Access (the token is a secret)."""

    account_id: str
    team_name: str
    """The Zero Trust team name (`<team>.cloudflareaccess.com`)."""
    session_duration: str = "12h"

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if not re.match(r"^[0-9a-f]{32}$", value):
            raise ValueError("must be the 32-hex-digit Cloudflare account id")
        return value

    @field_validator("team_name")
    @classmethod
    def _team(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", value):
            raise ValueError("must be the Zero Trust team name (a DNS label)")
        return value

    @field_validator("session_duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not re.match(r"^\d+(m|h)$", value):
            raise ValueError("must be a duration such as 30m or 12h")
        return value


DerivedSecret = Literal[
    "authentik_secret_key",
    "authentik_bootstrap_password",
    "authentik_bootstrap_token",
    "postgres_password",
    "tunnel_secret_prod",
    "tunnel_secret_cloud",
    "offsite_dump_key",
]
DERIVED_LENGTH_BYTES: dict[DerivedSecret, int] = {
    "authentik_secret_key": 48,
    "authentik_bootstrap_password": 24,
    "authentik_bootstrap_token": 32,
    "postgres_password": 24,
    "tunnel_secret_prod": 32,
    "tunnel_secret_cloud": 32,
    "offsite_dump_key": 32,
}
"""Length in bytes of each secret the stack derives from `secretSeed` (components/derived.py)."""


class CloudConfig(ConfigModel):
    """Typed config of the `cloud` stack."""

    oci: OciConfig
    network: OciNetworkConfig
    management: ManagementConfig
    cluster: CloudClusterConfig
    cloudflare: CloudflareConfig
    catalog: CatalogConfig
    cilium: CiliumConfig
    quota: AlwaysFreeQuotaConfig = Field(default_factory=AlwaysFreeQuotaConfig)
    backups: CloudBackupsConfig = Field(default_factory=CloudBackupsConfig)
    rotation: dict[DerivedSecret, int] = Field(default_factory=dict)
    """Bump a derived secret's generation to rotate it (see docs/decisions/derived-secrets.md)."""
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)


def cloud_problems(config: CloudConfig) -> Iterator[Problem]:
    """Cross-field checks of the cloud stack's config, each as (key, problem)."""
    volume_backups = config.backups.volume_backups
    # One weekly backup of the management VM's data volume and of each node's boot volume.
    wanted = 1 + len(config.cluster.nodes)
    if volume_backups.enabled and wanted > volume_backups.free_backups:
        yield (
            "backups.volume_backups.free_backups",
            f"the data volume and {len(config.cluster.nodes)} node boot volume(s) need {wanted} volume backups; "
            f"only {volume_backups.free_backups} are free (turn volume_backups off or run fewer nodes)",
        )
    pair = version_pair_problem(config.cluster.talos_version, config.cluster.kubernetes_version)
    if pair is not None:
        yield "cluster.kubernetes_version", pair
    network = config.network
    if not network.subnet_cidr.subnet_of(network.vcn_cidr):
        yield "network.subnet_cidr", f"{network.subnet_cidr} is not inside vcn_cidr {network.vcn_cidr}"
    if not network.bastion_subnet_cidr.subnet_of(network.vcn_cidr):
        yield "network.bastion_subnet_cidr", f"{network.bastion_subnet_cidr} is not inside vcn_cidr {network.vcn_cidr}"
    if network.bastion_subnet_cidr.overlaps(network.subnet_cidr):
        yield (
            "network.bastion_subnet_cidr",
            f"{network.bastion_subnet_cidr} overlaps subnet_cidr {network.subnet_cidr}; OCI picks the Bastion's "
            "address, so it must live outside the pinned subnet",
        )
    subnet = network.subnet_cidr
    # OCI keeps the first two and the last address of every subnet for itself.
    first_usable = subnet.network_address + 2
    last_usable = subnet.broadcast_address - 1
    taken: dict[ipaddress.IPv4Address, str] = {}
    owners = [
        ("management.address", config.management.address),
        *((f"cluster.nodes.{k}.address", n.address) for k, n in config.cluster.nodes.items()),
        ("cluster.api_endpoint.private_address", config.cluster.api_endpoint.private_address),
    ]
    for owner, address in owners:
        if not first_usable <= address <= last_usable:
            yield owner, f"{address} is not a usable address of subnet {subnet}"
        elif address in taken:
            yield owner, f"{address} is already used by {taken[address]}"
        taken[address] = owner
