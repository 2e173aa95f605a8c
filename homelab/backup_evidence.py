"""The evidence a data holder and a backup writer carry, so DAT-08 reads coverage from the graph.

Pure data (no Pulumi): the stacks write these labels and manifests, the policy pack reads them back.
Nothing here is a list of what is backed up; each resource says what it is:

- **Holders.** OCI volumes, boot volumes and instances carry the freeform tags `data-class`
  (`critical`, `important`, `media`) and `holds` (the space-separated names of the data holders on
  it: the management VM's data volume holds `authentik omni`; a CLOUD control plane holds
  `cloud-etcd`). Proxmox VMs carry the same two facts as tags, which are single words there:
  `data-class-<class>` and one `holds-<holder>` per holder (PROD's control planes: `holds-prod-etcd`).
  Kubernetes namespaces carry the label `homelab.dev/data-class`; the namespace is the holder (its
  volume claims are what Velero backs up).
- **Writers.** A `command:remote:Command` that installs a backup job carries, in its `triggers`, a
  manifest `{"backup": {"holds": [...], "targets": [...]}}`: the holders the job copies and the
  `https://<endpoint>/<bucket>` URLs it writes to. Triggers are the honest place for it: changing
  what a job copies or where replaces the command, which reinstalls the job with the new targets.
  A job that is a Kubernetes object (the etcd snapshot CronJob) carries the same manifest as JSON
  in its annotation `homelab.dev/backup`: changing it updates the object in place. Velero is read
  from its own objects: the chart's values (`configuration.backupStorageLocation`,
  `schedules`) or `Schedule` / `BackupStorageLocation` resources.
- **Sites.** Where a target is comes from its endpoint's host (`site_of`): the OCI and OVH S3
  endpoints are known host suffixes; anything else is no known site, so it never counts as offsite.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

DATA_CLASS_TAG = "data-class"
HOLDS_TAG = "holds"
NAMESPACE_LABEL = "homelab.dev/data-class"
MANIFEST_KEY = "backup"
ANNOTATION = "homelab.dev/backup"
VM_CLASS_TAG_PREFIX = "data-class-"
VM_HOLDS_TAG_PREFIX = "holds-"

SITE_ENDPOINTS: Mapping[str, Sequence[str]] = {
    "oci": ("oraclecloud.com", "oci.customer-oci.com"),
    "ovh": ("cloud.ovh.net", "cloud.ovh.us"),
}
"""Host suffixes of each provider's S3 endpoints (OCI: `<ns>.compat.objectstorage.<region>.oraclecloud.com`;
OVH: `s3.<region>.io.cloud.ovh.net`)."""


def holder_tags(data_class: str, holds: Iterable[str]) -> dict[str, str]:
    """Freeform tags of an OCI resource that holds the named holders' data."""
    return {DATA_CLASS_TAG: data_class, HOLDS_TAG: " ".join(sorted(holds))}


@dataclass(frozen=True)
class Holding:
    """What a machine holds: the most demanding data class among its holders, and their names."""

    data_class: str
    holds: tuple[str, ...]

    def oci_tags(self) -> dict[str, str]:
        """The freeform tags of an OCI instance or volume that holds this."""
        return holder_tags(self.data_class, self.holds)

    def vm_tags(self) -> list[str]:
        """The Proxmox tags of a VM that holds this (Proxmox tags are single words, sorted by Proxmox)."""
        return sorted({f"{VM_CLASS_TAG_PREFIX}{self.data_class}", *(f"{VM_HOLDS_TAG_PREFIX}{h}" for h in self.holds)})


def vm_holdings(tags: Iterable[str]) -> list[Holding]:
    """What a Proxmox VM's tags (`Holding.vm_tags`) declare: one holding per class tag (normally one;
    none when the VM declares no class)."""
    found = list(tags)
    holds = tuple(sorted(t.removeprefix(VM_HOLDS_TAG_PREFIX) for t in found if t.startswith(VM_HOLDS_TAG_PREFIX)))
    return [Holding(t.removeprefix(VM_CLASS_TAG_PREFIX), holds) for t in found if t.startswith(VM_CLASS_TAG_PREFIX)]


def target_url(endpoint: str, bucket: str) -> str:
    """The URL a backup job writes to (path-style, as OCI and OVH serve it)."""
    return f"{endpoint.rstrip('/')}/{bucket}"


def manifest(holds: Iterable[str], targets: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """The `triggers` entry of a backup job's install command."""
    return {MANIFEST_KEY: {"holds": sorted(holds), "targets": list(targets)}}


def annotation(holds: Iterable[str], targets: Iterable[str]) -> str:
    """The `homelab.dev/backup` annotation of a backup job that is a Kubernetes object."""
    return json.dumps(manifest(holds, targets), sort_keys=True)


def site_of(url: str, site_endpoints: Mapping[str, Sequence[str]] = SITE_ENDPOINTS) -> str | None:
    """The site (`oci`, `ovh`) an S3 endpoint or target URL is at, or None when no suffix matches."""
    host = (urlsplit(url).hostname or "").lower()
    for site, suffixes in site_endpoints.items():
        if any(host == s or host.endswith(f".{s}") for s in suffixes):
            return site
    return None
