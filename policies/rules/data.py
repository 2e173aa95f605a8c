"""Data protection: nothing data-bearing is deletable by accident, backups are encrypted (NFR-005).

`DATA_BEARING` is the registry shared with the graph check DAT-02 (retainOnDelete, which a Python
policy cannot see): the same predicate decides what must be protected and what must be retained.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from homelab.backup_evidence import (
    ANNOTATION,
    DATA_CLASS_TAG,
    HOLDS_TAG,
    MANIFEST_KEY,
    NAMESPACE_LABEL,
    SITE_ENDPOINTS,
    site_of,
    vm_holdings,
)
from policies.rules import registry as reg
from policies.rules.base import Rule, resource_rule, stack_rule
from policies.rules.walk import get, is_true, items, k8s_name, mapping, of_type

Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]
Config = Mapping[str, Any]

STATEFUL_TAGS = ["stateful"]
"""Tags of a guest whose disks must survive even the removal of the guest from the program."""
GUEST_DATA_TAGS = ["stateful", "kubernetes", "talos-node", "gaming"]
"""Tags of guests whose disks hold data worth a deliberate, reviewed deletion: Kubernetes nodes (etcd,
local volumes), the gaming VM (installs and saves). Not the management VM: its databases live on a
separate, protected and retained block volume, and the instance is disposable (a new login key
replaces it)."""
_CREATES_ZFS = re.compile(r"\bzpool\s+create\b|\bzfs\s+create\b")

# Types whose every instance holds data or an identity that cannot be recreated, with what is lost.
DATA_BEARING: Mapping[str, str] = {
    "proxmoxve:node/disk/zfs:Zfs": "the ZFS pool and every dataset on it",
    reg.OCI_VOLUME: "the block volume's data",
    reg.OCI_BOOT_VOLUME: "the boot volume's data",
    reg.OCI_BUCKET: "every object in the bucket",
    reg.TALOS_SECRETS: "the cluster's PKI (every node and client would need new credentials)",
    reg.CF_TUNNEL: "the tunnel identity every DNS record and connector points at",
    reg.K8S_PVC: "the claim's volume binding",
}
# Of those, the ones whose cloud object holds data, so deleting the resource must leave it in place.
RETAINED_TYPES = frozenset({"proxmoxve:node/disk/zfs:Zfs", reg.OCI_VOLUME, reg.OCI_BOOT_VOLUME, reg.OCI_BUCKET})


def is_stateful_guest(resource_type: str, props: Any, tags: Sequence[str] = STATEFUL_TAGS) -> bool:
    """A VM tagged `stateful`, or an OCI instance whose freeform tags say so (its boot volume holds data)."""
    wanted = [t.lower() for t in tags]
    if resource_type in reg.PVE_VM_TYPES or resource_type in reg.PVE_CONTAINER_TYPES:
        return any(str(t).lower() in wanted for t in items(get(props, "tags")))
    if resource_type == reg.OCI_INSTANCE:
        freeform = mapping(get(props, "freeformTags"))
        return any(str(k).lower() in wanted or str(freeform[k]).lower() in wanted for k in freeform)
    return False


def creates_zfs(resource_type: str, props: Any) -> bool:
    """A host command that creates a ZFS pool or datasets (the pool when the provider cannot)."""
    if resource_type != "command:remote:Command":
        return False
    create = get(props, "create")
    return isinstance(create, str) and _CREATES_ZFS.search(create) is not None


def data_bearing(resource_type: str, props: Any, tags: Sequence[str] = GUEST_DATA_TAGS) -> str | None:
    """What deleting this resource would lose, or None when it holds nothing."""
    if resource_type in DATA_BEARING:
        return DATA_BEARING[resource_type]
    if creates_zfs(resource_type, props):
        return "the ZFS pool or datasets it created"
    if is_stateful_guest(resource_type, props, tags):
        return "the guest's disks"
    return None


def must_retain(resource_type: str, props: Any, tags: Sequence[str] = STATEFUL_TAGS) -> bool:
    """Whether deleting the resource from the program must leave the cloud object (its data) in place."""
    return (
        resource_type in RETAINED_TYPES
        or creates_zfs(resource_type, props)
        or is_stateful_guest(resource_type, props, tags)
    )


@resource_rule(
    id="DAT-01",
    slug="stateful-resource-enforce-protect",
    nfr="NFR-005",
    topic="data",
    description="Data-bearing resources (ZFS pool, volumes, buckets, guests whose disks hold data, Talos machine "
    "secrets, the tunnel, volume claims) are `protect`ed, so no preview or refactor can delete them (NFR-005: "
    "zero data loss).",
    fix="create the resource with `opts=ResourceOptions(protect=True)` (and `retain_on_delete=True` where the "
    "cloud object holds data); to remove it on purpose, unprotect it in a reviewed change first.",
    config={
        "guestTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": GUEST_DATA_TAGS,
            "description": "VM tags / OCI freeform tag values that mark a guest whose disks hold data.",
        }
    },
)
def data_is_protected(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    lost = data_bearing(args.resource_type, args.props, config["guestTags"])
    if lost is not None and not args.opts.protect:
        report(f"'{args.name}' is not protected; deleting it loses {lost}.")


@resource_rule(
    id="DAT-03",
    slug="proxmox-vm-enable-protection-flag",
    nfr="NFR-005",
    topic="data",
    description="Stateful Proxmox guests also carry Proxmox's own `protection` lock, so neither the UI nor the "
    "API can remove them or their disks (NFR-005).",
    fix="set `protection=True` on the VM.",
    config={
        "statefulTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": STATEFUL_TAGS,
            "description": "VM tags that mark a guest whose disks hold data.",
        }
    },
)
def stateful_vm_locked(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type not in reg.PVE_VM_TYPES or not is_stateful_guest(
        args.resource_type, args.props, config["statefulTags"]
    ):
        return
    if not is_true(get(args.props, "protection")):
        report(f"stateful VM '{args.name}' lacks the Proxmox protection flag.")


@stack_rule(
    id="DAT-04",
    slug="kubernetes-storageclass-configure-retain",
    nfr="NFR-005",
    topic="data",
    description="Storage classes that stateful claims use keep the volume when the claim goes "
    "(`reclaimPolicy: Retain`; the API default is Delete) (NFR-005: deleting a claim never deletes data).",
    fix='set `reclaim_policy="Retain"` on the StorageClass (or point the claim at one that retains); a class '
    "managed outside this stack that retains belongs in `retainStorageClasses`.",
    config={
        "retainStorageClasses": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Classes managed outside this stack known to use reclaimPolicy Retain.",
        }
    },
)
def storage_classes_retain(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    classes: dict[str, tuple[str, str, bool]] = {}
    for sc in of_type(args.resources, {reg.K8S_STORAGE_CLASS}):
        name = k8s_name(sc.props, sc.name)
        default = get(sc.props, "metadata.annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        classes[name] = (sc.urn, str(get(sc.props, "reclaimPolicy", "Delete")), is_true(default))
    defaults = [name for name, (_, _, is_default) in classes.items() if is_default]
    claims: list[tuple[str, str, str | None]] = []
    for pvc in of_type(args.resources, {reg.K8S_PVC}):
        claims.append((pvc.urn, k8s_name(pvc.props, pvc.name), get(pvc.props, "spec.storageClassName")))
    for sts in of_type(args.resources, {reg.K8S_STATEFULSET}):
        for template in items(get(sts.props, "spec.volumeClaimTemplates")):
            claim = f"{k8s_name(sts.props, sts.name)}/{get(template, 'metadata.name', '?')}"
            claims.append((sts.urn, claim, get(template, "spec.storageClassName")))
    for urn, claim, class_name in claims:
        name = class_name or (defaults[0] if defaults else None)
        if name is None:
            report(f"claim {claim} uses the cluster's default storage class, which this stack does not declare.", urn)
        elif name in classes:
            if classes[name][1] != "Retain":
                report(f"claim {claim} uses storage class {name} with reclaimPolicy {classes[name][1]}.", urn)
        elif name not in config["retainStorageClasses"]:
            report(f"claim {claim} uses storage class {name}, not known to retain volumes.", urn)


@resource_rule(
    id="DAT-05",
    slug="backup-storage-enforce-encryption",
    nfr="NFR-005",
    topic="data",
    description="Backup targets encrypt client-side and pin the server's certificate: Proxmox Backup Server "
    "storage has an encryption key and a fingerprint (NFR-005: backups are private and verifiable).",
    fix="set `encryption_key` (from a secret) or `generate_encryption_key=True` and `fingerprint` on the PBS "
    "storage; keep a copy of the key outside the host.",
)
def backups_encrypted(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type not in reg.PVE_PBS_TYPES:
        return
    if not get(args.props, "encryptionKey") and not is_true(get(args.props, "generateEncryptionKey")):
        report(f"backup storage '{args.name}' stores backups unencrypted.")
    if not get(args.props, "fingerprint"):
        report(f"backup storage '{args.name}' does not pin the server's certificate fingerprint.")


@resource_rule(
    id="DAT-06",
    slug="oci-bucket-enforce-versioning-private",
    nfr="NFR-005",
    topic="data",
    description="Object storage buckets keep object versions and are never public (NFR-005: an overwrite or "
    "deletion can be undone, nothing leaks).",
    fix='set `versioning="Enabled"` and `access_type="NoPublicAccess"` on the bucket.',
)
def buckets_versioned_private(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.OCI_BUCKET:
        return
    if get(args.props, "versioning") != "Enabled":
        report(f"bucket '{args.name}' does not keep object versions.")
    access = get(args.props, "accessType", "NoPublicAccess")
    if access != "NoPublicAccess":
        report(f"bucket '{args.name}' is public ({access}).")


_DAYS_PER_UNIT = {"DAYS": 1, "YEARS": 365}


@stack_rule(
    id="DAT-07",
    slug="backup-enforce-retention",
    nfr="NFR-005",
    topic="data",
    description="Every backup target says how long it keeps backups: vzdump jobs prune old archives, "
    "backup buckets (freeform tag role=backups) have a lifecycle policy that deletes objects and previous versions, "
    "no sooner than `minKeepDays`, every volume backup schedule has a retention, and every Velero schedule a "
    "TTL of at least `minKeepDays` (NFR-005, FR-024).",
    fix="set `prune_backups` on the vzdump job; give the backup bucket an ObjectLifecyclePolicy with enabled DELETE "
    "rules for `objects` and `previous-object-versions` of at least minKeepDays days; set `retention_seconds` on "
    "each volume backup schedule; set `template.ttl` (e.g. `720h0m0s`) on each Velero schedule.",
    config={
        "minKeepDays": {
            "type": "integer",
            "minimum": 1,
            "default": 7,
            "description": "The shortest retention a backup bucket (objects, previous versions) or a Velero "
            "schedule (TTL) may apply.",
        }
    },
)
def backup_retention_set(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    for job in of_type(args.resources, {reg.PVE_BACKUP_JOB}):
        if not mapping(get(job.props, "pruneBackups")) and not get(job.props, "maxfiles"):
            report(f"vzdump job '{job.name}' never prunes: every archive is kept until the storage is full.", job.urn)
    policies = {str(get(p.props, "bucket")): p for p in of_type(args.resources, {reg.OCI_LIFECYCLE_POLICY})}
    minimum = int(config["minKeepDays"])
    for bucket in of_type(args.resources, {reg.OCI_BUCKET}):
        if mapping(get(bucket.props, "freeformTags")).get("role") != "backups":
            continue
        policy = policies.get(str(get(bucket.props, "name")))
        if policy is None:
            report(f"backup bucket '{bucket.name}' has no lifecycle policy: it keeps every backup forever.", bucket.urn)
            continue
        deletes = [
            r
            for r in items(get(policy.props, "rules"))
            if is_true(get(r, "isEnabled")) and get(r, "action") == "DELETE"
        ]
        for target in ("objects", "previous-object-versions"):
            days = [
                int(get(r, "timeAmount", 0)) * _DAYS_PER_UNIT.get(str(get(r, "timeUnit")), 1)
                for r in deletes
                if get(r, "target", "objects") == target
            ]
            if not days:
                report(f"backup bucket '{bucket.name}' never deletes {target}.", bucket.urn)
            elif min(days) < minimum:
                report(
                    f"backup bucket '{bucket.name}' deletes {target} after {min(days)} days, "
                    f"under the {minimum}-day minimum.",
                    bucket.urn,
                )
    for policy in of_type(args.resources, {reg.OCI_VOLUME_BACKUP_POLICY}):
        for schedule in items(get(policy.props, "schedules")):
            if int(get(schedule, "retentionSeconds", 0) or 0) <= 0:
                report(f"volume backup policy '{policy.name}' has a schedule without retention.", policy.urn)
    for schedule in of_type(args.resources, {reg.VELERO_SCHEDULE}):
        ttl = get(schedule.props, "spec.template.ttl")
        hours = _go_duration_hours(ttl)
        if hours is None:
            # Velero's default TTL (30 days) applies silently: say it in the program instead.
            report(f"Velero schedule '{schedule.name}' has no TTL (or one that does not parse: {ttl!r}).", schedule.urn)
        elif hours < minimum * 24:
            report(
                f"Velero schedule '{schedule.name}' keeps backups {hours:g} hours, under the {minimum}-day minimum.",
                schedule.urn,
            )


_GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _go_duration_hours(value: Any) -> float | None:
    """Hours of a Go duration such as `720h0m0s`; None if absent or not one."""
    if not isinstance(value, str) or not value:
        return None
    match = _GO_DURATION.match(value)
    if match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours + minutes / 60 + seconds / 3600


_OCI_HOLDER_TYPES = frozenset({reg.OCI_VOLUME, reg.OCI_BOOT_VOLUME, reg.OCI_INSTANCE})
_COMMAND = "command:remote:Command"
_VELERO_SCHEDULE = "kubernetes:velero.io/v1:Schedule"
_VELERO_LOCATION = "kubernetes:velero.io/v1:BackupStorageLocation"


def _holders(
    args: StackValidationArgs, cluster_site: str, host_site: str
) -> list[tuple[str, str, str, PolicyResource, bool]]:
    """(holder, class, site, resource, is_namespace) for every resource that declares a data class."""
    found: list[tuple[str, str, str, PolicyResource, bool]] = []
    for resource in of_type(args.resources, _OCI_HOLDER_TYPES):
        tags = mapping(get(resource.props, "freeformTags"))
        data_class = tags.get(DATA_CLASS_TAG)
        if data_class is None:
            continue
        for holder in str(tags.get(HOLDS_TAG) or resource.name).split():
            found.append((holder, str(data_class), "oci", resource, False))
    for vm in of_type(args.resources, reg.PVE_VM_TYPES):
        for holding in vm_holdings(str(t) for t in items(get(vm.props, "tags"))):
            for holder in holding.holds or (str(get(vm.props, "name") or vm.name),):
                found.append((holder, holding.data_class, host_site, vm, False))
    for namespace in of_type(args.resources, {reg.K8S_NAMESPACE}):
        data_class = mapping(get(namespace.props, "metadata.labels")).get(NAMESPACE_LABEL)
        if data_class is not None:
            found.append((k8s_name(namespace.props, namespace.name), str(data_class), cluster_site, namespace, True))
    return found


def _velero_coverage(args: StackValidationArgs) -> dict[str, set[str]]:
    """Namespace (or `*`) -> the S3 URLs of the storage locations Velero schedules back it up to."""
    locations: dict[str, str] = {}
    schedules: list[tuple[list[str], str]] = []
    for release in of_type(args.resources, reg.K8S_HELM_TYPES):
        if str(get(release.props, "chart", "")).rsplit("/", 1)[-1] != "velero":
            continue
        values = mapping(get(release.props, "values"))
        for bsl in items(get(values, "configuration.backupStorageLocation")):
            url = f"{get(bsl, 'config.s3Url', '')}/{get(bsl, 'bucket', '')}"
            locations[str(get(bsl, "name", "default"))] = url
        for schedule in mapping(get(values, "schedules")).values():
            included = [str(n) for n in items(get(schedule, "template.includedNamespaces"))]
            schedules.append((included, str(get(schedule, "template.storageLocation", "default"))))
    for bsl in of_type(args.resources, {_VELERO_LOCATION}):
        url = f"{get(bsl.props, 'spec.config.s3Url', '')}/{get(bsl.props, 'spec.objectStorage.bucket', '')}"
        locations[k8s_name(bsl.props, bsl.name)] = url
    for schedule in of_type(args.resources, {_VELERO_SCHEDULE}):
        included = [str(n) for n in items(get(schedule.props, "spec.template.includedNamespaces"))]
        schedules.append((included, str(get(schedule.props, "spec.template.storageLocation", "default"))))
    coverage: dict[str, set[str]] = {}
    for included, location in schedules:
        if location in locations:
            for namespace in included:
                coverage.setdefault(namespace, set()).add(locations[location])
    return coverage


def _annotated_manifest(props: Any) -> Any:
    text = mapping(get(props, "metadata.annotations")).get(ANNOTATION)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text).get(MANIFEST_KEY)
    except (ValueError, AttributeError):
        return None  # not a manifest: covers nothing


def _manifest_readers(args: StackValidationArgs) -> list[Callable[[], Any]]:
    """One reader per place a backup job's manifest may be: each install command's `triggers` entry,
    each Kubernetes object's `homelab.dev/backup` annotation (JSON). A reader raises
    UnknownValueError when its value is not known yet."""
    readers: list[Callable[[], Any]] = []
    for resource in args.resources:
        props = resource.props
        if resource.resource_type == _COMMAND:
            triggers = props.get("triggers") if isinstance(props, Mapping) else None
            if isinstance(triggers, Sequence) and not isinstance(triggers, str):
                readers += [lambda t=triggers, i=i: mapping(t[i]).get(MANIFEST_KEY) for i in range(len(triggers))]
        elif resource.resource_type.startswith("kubernetes:"):
            readers.append(lambda p=props: _annotated_manifest(p))
    return readers


def _job_coverage(args: StackValidationArgs) -> tuple[dict[str, set[str]], UnknownValueError | None]:
    """Holder -> the target URLs of the backup jobs whose manifest names it, and the first manifest
    not known at preview (it may cover a holder: a gap is then undecided)."""
    coverage: dict[str, set[str]] = {}
    unknown: UnknownValueError | None = None
    for read in _manifest_readers(args):
        try:
            job = mapping(read())
            targets = {str(t) for t in items(job.get("targets"))}
            holds = [str(h) for h in items(job.get("holds"))]
        except UnknownValueError as error:
            unknown = unknown or error
            continue
        for holder in holds:
            coverage.setdefault(holder, set()).update(targets)
    return coverage, unknown


@stack_rule(
    id="DAT-08",
    slug="critical-data-enforce-offsite-backup",
    nfr="NFR-005",
    topic="data",
    description="Every data holder of a class that must leave its site (FR-025: `critical`) is covered by a backup "
    "that writes to another site (FR-024: 3-2-1, one copy offsite; NFR-005: zero data loss). Holders are the "
    "resources that declare a data class (OCI freeform tag `data-class`, Proxmox VM tag `data-class-<class>`, "
    "namespace label `homelab.dev/data-class`); coverage is read from the backup jobs' manifests (install command "
    "`triggers`, Kubernetes annotation `homelab.dev/backup`) and Velero's schedules and storage locations, and a "
    "target's site from its S3 endpoint.",
    fix="add the holder to a backup job whose targets include a bucket at another site (the nightly dump on the "
    "management VM, a Velero schedule whose storage location is offsite), or configure the offsite target "
    "(`homelab:backups.ovh`); a holder that may stay on its site gets a class not in `offsiteClasses`.",
    config={
        "offsiteClasses": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["critical"],
            "description": "Data classes whose holders must have a backup at another site (FR-025).",
        },
        "siteEndpoints": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "default": {site: list(suffixes) for site, suffixes in SITE_ENDPOINTS.items()},
            "description": "Per site, the host suffixes of its S3 endpoints (a target at no listed host is at no "
            "known site and never counts as offsite).",
        },
        "clusterSite": {
            "type": "string",
            "default": "home",
            "description": "The site of this stack's Kubernetes cluster (the site of its namespaces' data).",
        },
        "hostSite": {
            "type": "string",
            "default": "home",
            "description": "The site of the Proxmox host (the site of its VMs' data).",
        },
    },
)
def critical_data_offsite(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    wanted = {str(c) for c in config["offsiteClasses"]}
    sites: Mapping[str, Any] = config["siteEndpoints"]
    holders = [h for h in _holders(args, str(config["clusterSite"]), str(config["hostSite"])) if h[1] in wanted]
    if not holders:
        return
    (jobs, unknown), velero = _job_coverage(args), _velero_coverage(args)
    for holder, data_class, site, resource, is_namespace in holders:
        targets = set(jobs.get(holder, set()))
        if is_namespace:
            targets |= velero.get(holder, set()) | velero.get("*", set())
        at = {site_of(t, {k: [str(s) for s in items(v)] for k, v in sites.items()}) for t in targets}
        if any(s is not None and s != site for s in at):
            continue
        if unknown is not None:
            raise unknown  # a trigger not known yet may be the job that covers it
        where = f"'{holder}' ({data_class}, on '{resource.name}' at {site})"
        if not targets:
            report(f"{where} is covered by no backup job.", resource.urn)
        else:
            seen = ", ".join(sorted(s or "no known site" for s in at))
            report(f"{where} is backed up only to {seen}: no copy leaves its site.", resource.urn)


RULES: tuple[Rule, ...] = (
    data_is_protected,
    stateful_vm_locked,
    storage_classes_retain,
    backups_encrypted,
    buckets_versioned_private,
    backup_retention_set,
    critical_data_offsite,
)
