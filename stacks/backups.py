"""What must be backed up, how, and where its copies live (FR-024 3-2-1, FR-025 classification).

Every data holder declares a data class, and every backup target is derived from it:

- `critical` (configs, databases, photos, documents, the Pulumi state, etcd): a local copy and an
  offsite copy, restorable in under 4 hours;
- `important` (rebuildable, but a rebuild costs hours: dashboards, Argo CD state, metrics):
  a local copy, offsite only if the class policy says so;
- `media` (large, replaceable: films, music, comics): local snapshots only.

Data holders are the catalog services that declare `data_class` (adding a service with a class is
still one catalog entry) plus the platform's own state that is not a service (`PLATFORM`). Pure
data and functions: the stacks turn a `BackupPlan` into resources, the report and the policy pack
read the same plan, so what is shown is what is built.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from components.oci.dump import DUMPED as NIGHTLY_DUMP_HOLDERS
from homelab.backup_evidence import Holding, holder_tags
from homelab.state_backend import DEFAULT_BUCKET as STATE_BUCKET
from stacks.catalog import Catalog, DataClass, Location, Service
from stacks.config.base import ConfigModel

DATA_CLASSES: tuple[DataClass, ...] = ("critical", "important", "media")
Runs = Literal["cluster", "management-vm", "host", "state-bucket"]
Site = Literal["home", "oci", "ovh"]
Medium = Literal["zfs-mirror", "host-ssd", "oci-block-volume", "object-storage"]

_RETENTION = re.compile(r"^([1-9][0-9]{0,3})([dwmy])$")
_DAYS_PER_UNIT = {"d": 1, "w": 7, "m": 30, "y": 365}
_CLUSTER_SUFFIX = ".svc.cluster.local"


def retention_days(value: str) -> int:
    """`7d`, `4w`, `6m`, `1y` -> days (a month counts 30 days, a year 365)."""
    match = _RETENTION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a retention such as 7d, 4w, 6m or 1y")
    return int(match.group(1)) * _DAYS_PER_UNIT[match.group(2)]


def _retention(value: str) -> str:
    retention_days(value)
    return value


Retention = Annotated[str, AfterValidator(_retention)]


class ClassPolicyConfig(ConfigModel):
    """How one data class is protected (`homelab:backups.classes.<class>`)."""

    local_keep: Retention
    """How long local copies (vzdump archives, Velero backups, volume backups) are kept."""
    offsite: bool
    """Whether holders of this class get an offsite copy."""
    offsite_keep: Retention | None = None
    """How long offsite copies are kept (required when `offsite`)."""
    schedule: str = Field(default="0 3 * * *", pattern=r"^(\S+\s+){4}\S+$")
    """Cron schedule (UTC) of the Kubernetes-layer backup of this class."""

    @model_validator(mode="after")
    def _offsite_keep(self) -> "ClassPolicyConfig":
        if self.offsite and self.offsite_keep is None:
            raise ValueError("offsite_keep is required when offsite is true")
        return self


DEFAULT_CLASSES: Mapping[DataClass, ClassPolicyConfig] = {
    "critical": ClassPolicyConfig(local_keep="14d", offsite=True, offsite_keep="30d", schedule="0 2 * * *"),
    "important": ClassPolicyConfig(local_keep="7d", offsite=False, schedule="0 3 * * *"),
    "media": ClassPolicyConfig(local_keep="7d", offsite=False, schedule="0 4 * * 0"),
}


_CALENDAR = r"^[0-9*,./:~ -]+$"


class VzdumpConfig(ConfigModel):
    """`homelab:backups.vzdump` (prod): the nightly vzdump job of every stateful guest."""

    schedule: str = Field(default="*-*-* 01:30", pattern=_CALENDAR)
    """systemd calendar event (Proxmox job schedule syntax)."""
    keep_daily: int = Field(default=7, ge=0, le=366)
    keep_weekly: int = Field(default=4, ge=0, le=104)
    keep_monthly: int = Field(default=3, ge=0, le=120)


class DrillConfig(ConfigModel):
    """`homelab:backups.drill` (prod): the daily archive check and the monthly restore drill."""

    scratch_vm_id: int = Field(default=990, ge=100, le=999_999_999)
    textfile_dir: str = Field(default="/var/lib/prometheus/node-exporter", pattern=r"^/[A-Za-z0-9._/-]+$")
    """node-exporter's textfile collector directory on the host."""
    max_age_hours: int = Field(default=36, ge=1, le=24 * 14)
    check_calendar: str = Field(default="*-*-* 07:00:00", pattern=_CALENDAR)
    drill_calendar: str = Field(default="*-*-01 05:00:00", pattern=_CALENDAR)


class HomeBackupsConfig(ConfigModel):
    """`homelab:backups` of the prod stack: the local layer at home."""

    classes: dict[DataClass, ClassPolicyConfig] = Field(default_factory=dict)
    """Overrides of the class policies (defaults in stacks/backups.py)."""
    vzdump: VzdumpConfig = VzdumpConfig()
    drill: DrillConfig = DrillConfig()


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _bucket_name(value: str) -> str:
    # OCI accepts more (upper case, underscores), but a name must also work in a path-style S3 URL
    # and at OVH: 3-63 lower-case letters, digits, dots and dashes.
    if not _BUCKET.match(value) or ".." in value:
        raise ValueError("must be 3-63 lower-case letters, digits, dots and dashes, starting and ending alphanumeric")
    return value


BucketName = Annotated[str, AfterValidator(_bucket_name)]


class OciBucketConfig(ConfigModel):
    """`homelab:backups.oci_bucket` (cloud): the offsite bucket in OCI Object Storage."""

    name: BucketName = "homelab-backups"
    expected_gb: float = Field(default=8, gt=0, le=10_000)
    """What the bucket is expected to hold at most (counted in the Always Free ledger: 20 GB in total)."""
    issue_credentials: bool = True
    """Issue the S3 credentials (a Customer Secret Key of the stack's OCI user) the backup writers use."""


class OvhTargetConfig(ConfigModel):
    """`homelab:backups.ovh` (cloud): an OVH Object Storage bucket (S3 API) as the cloud's offsite.

    The bucket is created by the operator (OVH console, or `homelab state-backend init --endpoint`);
    its credentials are the secrets `ovhS3AccessKey` / `ovhS3SecretKey`.
    """

    endpoint: str = Field(pattern=r"^https://[a-z0-9.-]+(:[0-9]+)?$")
    region: str = Field(pattern=r"^[a-z0-9-]+$")
    bucket: BucketName
    expected_gb: float = Field(gt=0, le=100_000)
    free_gb: float = Field(default=0, ge=0)
    """OVH's free allowance is unverified: 0 counts every GB as paid (the budget rule checks it)."""
    price_per_gb_month: float = Field(default=0.007, ge=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    """The currency of `price_per_gb_month` (the prod stack's cost model converts it)."""


class VolumeBackupConfig(ConfigModel):
    """`homelab:backups.volume_backups` (cloud): weekly OCI volume backups of the volumes holding data."""

    enabled: bool = True
    free_backups: int = Field(default=5, ge=0, le=100)
    """Volume backups Always Free includes."""
    day_of_week: Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"] = "SUNDAY"
    hour_of_day: int = Field(default=3, ge=0, le=23)


class CloudBackupsConfig(ConfigModel):
    """`homelab:backups` of the cloud stack: the offsite layer."""

    classes: dict[DataClass, ClassPolicyConfig] = Field(default_factory=dict)
    oci_bucket: OciBucketConfig = OciBucketConfig()
    ovh: OvhTargetConfig | None = None
    dump_calendar: str = Field(default="*-*-* 02:15:00", pattern=_CALENDAR)
    """systemd OnCalendar (UTC) of the management database's nightly offsite dump."""
    state_bucket: BucketName | None = STATE_BUCKET
    """The Pulumi state bucket (`homelab state-backend`, in the offsite bucket's namespace and region)
    whose `.pulumi/` tree the nightly dump copies to its targets; null: not copied. The offsite
    bucket's S3 credentials must be able to read it."""
    volume_backups: VolumeBackupConfig = VolumeBackupConfig()


def offsite_storage(ovh: OvhTargetConfig | None) -> dict[str, Any]:
    """The `offsite_storage` output (the common budget output shape): what the paid offsite target
    holds against its free allowance, and what that costs a month in its own currency. The prod
    stack's cost model reads it into its `paid storage` line, and BUD-08 sets the total against the cap."""
    if ovh is None:
        return {"monthly": 0.0, "currency": "EUR", "within_quota": True, "problems": [], "warnings": []}
    paid_gb = max(0.0, ovh.expected_gb - ovh.free_gb)
    return {
        "ovh_gb": {"used": ovh.expected_gb, "quota": ovh.free_gb},
        "price_per_gb_month": ovh.price_per_gb_month,
        "monthly": round(paid_gb * ovh.price_per_gb_month, 4),
        "currency": ovh.currency,
        "within_quota": paid_gb == 0,
        "problems": [],
        "warnings": [f"ovh: {paid_gb:g} GB beyond the free allowance are paid"] if paid_gb else [],
    }


def class_policies(
    overrides: Mapping[DataClass, ClassPolicyConfig] | None = None,
) -> dict[DataClass, ClassPolicyConfig]:
    return {**DEFAULT_CLASSES, **(overrides or {})}


@dataclass(frozen=True)
class DataHolder:
    """Something whose loss loses data."""

    name: str
    data_class: DataClass
    location: Location
    runs: Runs
    what: str
    namespace: str | None = None
    """The Kubernetes namespace holding its volumes (cluster holders only)."""
    hostname: str | None = None
    """The public hostname of the catalog service (None for the platform's own state)."""


PLATFORM: tuple[DataHolder, ...] = (
    DataHolder("pulumi-state", "critical", "cloud", "state-bucket", "every stack's Pulumi state"),
    DataHolder("prod-etcd", "critical", "prod", "host", "the PROD cluster's etcd"),
    DataHolder("cloud-etcd", "critical", "cloud", "cluster", "the CLOUD cluster's etcd"),
)
"""The platform's own state that is not a catalog service (Authentik, Omni, Argo CD, Grafana and
Prometheus are catalog services and declare their class there)."""


def etcd_holder(location: Location) -> DataHolder | None:
    """The platform holder that is `location`'s etcd (None for a cluster whose etcd is not one: DEV)."""
    return next((h for h in PLATFORM if h.name == f"{location}-etcd"), None)


def etcd_holding(location: Location) -> Holding | None:
    """What `location`'s control planes hold, as their evidence tags carry it (None: nothing to declare)."""
    holder = etcd_holder(location)
    return None if holder is None else Holding(holder.data_class, (holder.name,))


DUMPED = frozenset(NIGHTLY_DUMP_HOLDERS)
"""Management-VM holders whose data the nightly dump carries (Authentik's database, Omni's etcd)."""


def volume_holder_tags(found: Iterable[DataHolder], runs: Runs) -> dict[str, str]:
    """The evidence tags of the volume holding every holder that `runs` there: their names and the most
    demanding of their classes (empty when none runs there)."""
    on_it = [h for h in found if h.runs == runs]
    if not on_it:
        return {}
    strictest = min((h.data_class for h in on_it), key=DATA_CLASSES.index)
    return holder_tags(strictest, (h.name for h in on_it))


def hostname_classes(catalog: Catalog) -> dict[str, DataClass]:
    """Hostname -> the data class of the service behind it (the `data_classes` output `homelab
    exposure` shows per public route); stateless services are absent."""
    return {s.hostname: s.data_class for s in catalog.services if s.data_class is not None}


def _namespace(service: Service) -> str | None:
    host = service.upstream.split("://", 1)[1].rsplit(":", 1)[0]
    if host.endswith(_CLUSTER_SUFFIX):
        return host.removesuffix(_CLUSTER_SUFFIX).split(".")[-1]
    return None


def holders(catalog: Catalog) -> tuple[DataHolder, ...]:
    """Every data holder: the classified catalog services, then the platform's own state."""
    found: list[DataHolder] = []
    for service in catalog.services:
        if service.data_class is None:
            continue
        namespace = _namespace(service)
        found.append(
            DataHolder(
                name=service.name,
                data_class=service.data_class,
                location=service.location,
                runs="cluster" if namespace else "management-vm",
                what=f"{service.name}'s data",
                namespace=namespace,
                hostname=service.hostname,
            )
        )
    return (*found, *PLATFORM)


@dataclass(frozen=True)
class Copy:
    """One place a holder's data exists."""

    layer: str
    """`primary`, `zfs-snapshot`, `vzdump`, `velero`, `volume-backup`, `nightly-dump`, `etcd-snapshot`,
    `bucket-version`, `state-dump`, `state-local`, `home-mirror`."""
    site: Site
    medium: Medium
    independent: bool = True
    """False for snapshots: they share the primary's blocks, so they do not count as a copy."""


@dataclass(frozen=True)
class Offsite:
    """The offsite targets that exist (`homelab:backups.offsite` of the cloud stack)."""

    oci_bucket: bool = True
    """The OCI Object Storage backup bucket (Always Free 20 GB): offsite for the home's data."""
    ovh_bucket: bool = False
    """The OVH Object Storage bucket: offsite for the cloud's data when configured."""
    home_mirror: bool = True
    """The Proxmox host pulls the OCI backup and state buckets into the pool nightly (outbound only):
    the cloud's offsite copy when OVH is not configured."""


def copies(holder: DataHolder, policy: ClassPolicyConfig, offsite: Offsite) -> tuple[Copy, ...]:
    """Where `holder`'s data lives once every backup layer has run."""
    far: list[Copy] = []
    if holder.location == "prod":
        primary = Copy("primary", "home", "host-ssd" if holder.runs in ("cluster", "host") else "zfs-mirror")
        local = [Copy("zfs-snapshot", "home", "zfs-mirror", independent=False), Copy("vzdump", "home", "zfs-mirror")]
        if policy.offsite and offsite.oci_bucket:
            far.append(Copy("etcd-snapshot" if holder.runs == "host" else "velero", "oci", "object-storage"))
        return (primary, *local, *far)
    if holder.runs == "state-bucket":
        primary = Copy("primary", "oci", "object-storage")
        local = [
            Copy("bucket-version", "oci", "object-storage", independent=False),
            # The dump keeps its newest copies on the management VM's data volume too (`state-local`).
            Copy("state-local", "oci", "oci-block-volume"),
        ]
        # The nightly dump's copy of the state tree (`state-dump`), wherever the dump writes.
        if policy.offsite:
            dumped: tuple[tuple[Site, bool], ...] = (("oci", offsite.oci_bucket), ("ovh", offsite.ovh_bucket))
            local += [Copy("state-dump", site, "object-storage") for site, on in dumped if on]
    else:
        primary = Copy("primary", "oci", "oci-block-volume")
        # The weekly volume backups cover the management VM's data volume and the CLOUD nodes' boot
        # volumes (etcd, local volumes): a copy on a second medium for both kinds of holder.
        local = [Copy("volume-backup", "oci", "object-storage")]
        if policy.offsite:
            layer = {"management-vm": "nightly-dump", "cluster": "velero"}[holder.runs]
            if holder.runs == "management-vm" and holder.name not in DUMPED:
                layer = f"{holder.name}-export"
            if holder.name == "cloud-etcd":
                layer = "etcd-snapshot"
            sites: list[Site] = []
            if offsite.oci_bucket:
                sites.append("oci")
            if offsite.ovh_bucket:
                sites.append("ovh")
            if layer == "velero" and offsite.ovh_bucket:
                # Velero writes to one bucket: OVH when configured (stacks.velero.cloud_bucket). The
                # etcd snapshots go there and to the OCI bucket (when it issues credentials).
                sites = ["ovh"]
            local += [Copy(layer, site, "object-storage") for site in sites]
    if policy.offsite and offsite.home_mirror and offsite.oci_bucket and not offsite.ovh_bucket:
        far.append(Copy("home-mirror", "home", "zfs-mirror"))
    return (primary, *local, *far)


@dataclass(frozen=True)
class Protection:
    """One holder's copies and whether they satisfy 3-2-1."""

    holder: DataHolder
    copies: tuple[Copy, ...]

    @property
    def counted(self) -> tuple[Copy, ...]:
        return tuple(c for c in self.copies if c.independent)

    @property
    def primary_site(self) -> Site:
        return self.copies[0].site

    @property
    def offsite(self) -> tuple[Copy, ...]:
        return tuple(c for c in self.counted if c.site != self.primary_site)

    @property
    def three_two_one(self) -> bool:
        counted = self.counted
        return len(counted) >= 3 and len({c.medium for c in counted}) >= 2 and bool(self.offsite)

    @property
    def verdict(self) -> str:
        if self.three_two_one:
            return "3-2-1"
        counted = self.counted
        missing: list[str] = []
        if len(counted) < 3:
            missing.append(f"{len(counted)} cop{'y' if len(counted) == 1 else 'ies'}")
        if len({c.medium for c in counted}) < 2:
            missing.append("one medium")
        if not self.offsite:
            missing.append("no offsite copy")
        reason = ", ".join(missing)
        if self.holder.data_class == "media":
            return f"local only by class ({reason})"
        return f"not 3-2-1 ({reason})"


def protections(
    catalog: Catalog,
    offsite: Offsite | None = None,
    classes: Mapping[DataClass, ClassPolicyConfig] | None = None,
    location: Location | None = None,
    built: frozenset[str] | None = None,
) -> tuple[Protection, ...]:
    """Each holder's protection. `built` names the layers the stack actually registers: a layer the
    design calls for but the stack does not build yet is left out, so the verdict never claims it."""
    policies = class_policies(classes)
    target = offsite or Offsite()
    found: list[Protection] = []
    for holder in holders(catalog):
        if location is not None and holder.location != location:
            continue
        kept = tuple(
            c for c in copies(holder, policies[holder.data_class], target) if built is None or c.layer in built
        )
        found.append(Protection(holder, kept))
    return tuple(found)


def namespaces_by_class(found: Iterable[DataHolder], location: Location) -> dict[DataClass, tuple[str, ...]]:
    """The Kubernetes namespaces of one cluster's holders, per class (what each Velero schedule covers)."""
    result: dict[DataClass, set[str]] = {}
    for holder in found:
        if holder.location == location and holder.runs == "cluster" and holder.namespace:
            result.setdefault(holder.data_class, set()).add(holder.namespace)
    return {cls: tuple(sorted(result[cls])) for cls in DATA_CLASSES if cls in result}


def protection_rows(found: Iterable[Protection]) -> list[dict[str, object]]:
    """Chart- and JSON-friendly rows: the `backup_protection` output and the report's table."""
    return [
        {
            "holder": p.holder.name,
            "hostname": p.holder.hostname,
            "class": p.holder.data_class,
            "location": p.holder.location,
            "copies": [f"{c.layer}@{c.site}" for c in p.copies],
            "three_two_one": p.three_two_one,
            "verdict": p.verdict,
        }
        for p in found
    ]
