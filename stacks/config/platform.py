"""Typed config of the platform layer on a cluster: `homelab:platform` (docs/decisions/platform-ownership.md).

One section per concern, each optional so a stack enables only what runs on its cluster:

- `secrets`: cert-manager, External Secrets with the Bitwarden SDK server and the cluster's one
  `ClusterSecretStore` (which namespaces may use it, which Bitwarden secrets exist);
- `argocd`: Argo CD (PROD only), its OIDC client (read from the identity stack) and the clusters
  it deploys to;
- `longhorn`: replicated block storage (PROD);
- `twingate`: the cluster's Twingate connector;
- `velero`: Velero with file-system backup to the offsite bucket (stacks/velero.py);
- `namespaces`: the application namespaces the platform creates, each with a default-deny policy.

Chart versions are exact (`1.2.3` or `v1.2.3`): a range would let a preview and the following `up`
install different charts.
"""

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from stacks.config.base import ConfigModel

_EXACT = re.compile(r"^v?\d+\.\d+\.\d+$")
_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_BW_KEY = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")


def _exact_version(value: str) -> str:
    if not _EXACT.match(value):
        raise ValueError("must be an exact chart version like 1.2.3 (no range, no 'latest')")
    return value


def _k8s_name(value: str) -> str:
    if not _K8S_NAME.match(value):
        raise ValueError("must be a Kubernetes name (lower-case letters, digits, '-', at most 63)")
    return value


def _uuid(value: str) -> str:
    if not _UUID.match(value):
        raise ValueError("must be a lower-case UUID like 00000000-0000-0000-0000-000000000000")
    return value


def _https(value: str) -> str:
    if not re.match(r"^https://[a-z0-9.-]+(:\d+)?(/.*)?$", value):
        raise ValueError("must be an https:// URL")
    return value.rstrip("/")


def _bw_key(value: str) -> str:
    if not _BW_KEY.match(value):
        raise ValueError("must be a lower-case key like grafana-admin-password")
    return value


ExactVersion = Annotated[str, AfterValidator(_exact_version)]
K8sName = Annotated[str, AfterValidator(_k8s_name)]
Uuid = Annotated[str, AfterValidator(_uuid)]
HttpsUrl = Annotated[str, AfterValidator(_https)]
BitwardenKey = Annotated[str, AfterValidator(_bw_key)]


class BitwardenConfig(ConfigModel):
    """The Bitwarden Secrets Manager project this cluster's store reads (one store = one project)."""

    organization_id: Uuid
    project_id: Uuid
    api_url: HttpsUrl = "https://api.bitwarden.com"
    """`https://api.bitwarden.eu` for the EU cloud (a wrong region answers `400 invalid_client`)."""
    identity_url: HttpsUrl = "https://identity.bitwarden.com"
    allowed_namespaces: list[K8sName] = Field(min_length=1)
    """Namespaces whose ExternalSecrets the ClusterSecretStore serves; any other is refused."""
    keys: dict[BitwardenKey, Uuid] = Field(default_factory=dict)
    """The Bitwarden secrets apps may name: key used by the catalog -> the secret's UUID."""


class SecretsConfig(ConfigModel):
    cert_manager_version: ExactVersion
    external_secrets_version: ExactVersion
    bitwarden: BitwardenConfig
    refresh_interval: str = "1h"
    """How often an ExternalSecret re-reads Bitwarden. The SDK server logs in on every request, so
    at least an hour (`1h`, `2h`, `24h`)."""


class ArgoClusterConfig(ConfigModel):
    """A cluster Argo CD deploys to, registered with the `argocd-manager` ServiceAccount token that
    cluster's own stack exports (`argocd_cluster`)."""

    stack: str = Field(min_length=1)
    """The stack that owns the cluster (`dev`, `cloud`, or `<org>/homelab/dev`)."""
    environment: Literal["dev", "cloud"]


class ArgoCdConfig(ConfigModel):
    chart_version: ExactVersion
    app_version: ExactVersion
    """The Argo CD version the chart ships (its CRDs are applied before it), e.g. `v3.4.4`."""
    hostname: str = Field(min_length=3)
    """Public hostname of the UI (`argocd.<domain>`, served through the tunnel)."""
    repo_url: HttpsUrl
    """This repository, as Argo CD clones it."""
    revision: str = Field(default="main", min_length=1)
    path: str = "gitops"
    """Folder of this repository the root ApplicationSet reads; must exist."""
    identity_stack: str = "cloud"
    """Stack exporting `oidc_argocd` ({issuer, client_id, client_secret})."""
    admin_group: str = "admin"
    clusters: dict[K8sName, ArgoClusterConfig] = Field(default_factory=dict)


class LonghornConfig(ConfigModel):
    chart_version: ExactVersion
    replica_count: int = Field(default=1, ge=1, le=3)
    """Replicas of each volume; at most the number of workers (PROD has one)."""
    default_class: bool = True


class TwingateNfsConfig(ConfigModel):
    """A home NFS export this cluster mounts through the headless client (`nfs-media` class)."""

    server: ipaddress.IPv4Address
    """The export's address: one of the home site's Twingate Resources (TCP 2049), by IP so the
    nodes need no Twingate DNS."""
    share: str = Field(pattern=r"^/[A-Za-z0-9._/-]+$")
    """Exported path (`/tank/media`)."""
    csi_chart_version: ExactVersion
    """csi-driver-nfs chart version (`v4.11.0`)."""
    class_name: K8sName = "nfs-media"


class TwingateClientConfig(ConfigModel):
    """The headless Twingate client on this cluster's nodes (CLOUD), with the key of the service
    account the cloud stack creates."""

    image: str = Field(min_length=3)
    """Client image pinned to an exact tag (`twingate/client:<version>`)."""
    nfs_media: TwingateNfsConfig | None = None


class TwingateConfig(ConfigModel):
    network: K8sName
    """The Twingate tenant (`<network>.twingate.com`)."""
    remote_network: str = Field(min_length=1)
    """Remote Network this connector serves (created by Pulumi)."""
    location: Literal["ON_PREMISE", "OTHER", "AWS", "AZURE", "GOOGLE_CLOUD"] = "ON_PREMISE"
    image: str = Field(min_length=3)
    """Connector image pinned to an exact tag (`twingate/connector:1.80.0`)."""
    resources: dict[K8sName, str] = Field(default_factory=dict)
    """Twingate Resources behind this connector: key -> address (IP, CIDR or DNS name)."""
    access_group: str | None = None
    """Twingate group ID allowed to reach the resources (created in the admin console)."""
    client: TwingateClientConfig | None = None
    """CLOUD only: the headless client through which the nodes reach home Resources (NFS media)."""


class VeleroConfig(ConfigModel):
    """Velero (components/k8s/velero.py): its secret is `veleroRepositoryPassword`."""

    chart_version: ExactVersion
    """The `vmware-tanzu/velero` chart, e.g. `12.1.0`."""
    app_version: ExactVersion
    """The Velero version that chart ships (its CRDs are applied before it from the manifest lock), e.g. `v1.18.1`."""
    plugin_image: str = Field(min_length=3)
    """`velero/velero-plugin-for-aws:<tag>`, at least v1.14.3 (OCI and OVH refuse older plugins' checksums)."""
    prefix: K8sName | None = None
    """Folder of this cluster's backups in the bucket, under `velero/` (default: the stack's environment)."""


class PlatformConfig(ConfigModel):
    """`homelab:platform`."""

    secrets: SecretsConfig | None = None
    argocd: ArgoCdConfig | None = None
    longhorn: LonghornConfig | None = None
    twingate: TwingateConfig | None = None
    velero: VeleroConfig | None = None
    etcd_backup: bool = False
    """Daily etcd snapshots to the offsite bucket (components/k8s/etcd_backup.py); secret `etcdSnapshotKey`."""
    namespaces: list[K8sName] = Field(default_factory=list)
    """Application namespaces the platform creates (restricted Pod Security, default-deny ingress)."""
    argocd_access: bool = False
    """This cluster is a destination of PROD's Argo CD: create its `argocd-manager` account and
    export `argocd_cluster` (DEV, CLOUD)."""
