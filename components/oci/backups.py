"""`OffsiteBucket` and `VolumeBackups`: the OCI side of the backup design (FR-024, NFR-011).

- `OffsiteBucket`: an Object Storage bucket for backups that must leave their site (the home's
  etcd snapshots and Velero backups; the management VM's nightly dumps). Private
  (`NoPublicAccess`), versioned, encrypted at rest by Object Storage (AES-256, Oracle-managed keys;
  the dumps are additionally encrypted client-side before upload), with a lifecycle policy that
  deletes current objects and previous versions after the class's offsite retention and aborts
  abandoned multipart uploads. The bucket is protected and retained: removing it from the program
  never deletes a backup. Optionally it issues the S3 credentials (a Customer Secret Key) the
  writers use, returned only as a secret output.
- `VolumeBackups`: a custom volume backup policy (one weekly full backup, kept six days, so no
  more than one backup per volume exists at a time) assigned to the volumes that hold data. Always
  Free includes five volume backups in total; the stack counts them in the quota ledger.

Threat model: the bucket holds every critical dump; a public bucket, an unversioned overwrite or a
lifecycle rule that deletes too early are the failures guarded against here and by DAT-06/DAT-07.
The Customer Secret Key can read and write every bucket its user can: give it to the backup writers
only (Velero, the dump timer), never to an application.
"""

from collections.abc import Mapping
from typing import NotRequired, TypedDict

import pulumi
import pulumi_oci.core as oci_core
import pulumi_oci.identity as oci_identity
import pulumi_oci.objectstorage as oci_objectstorage

SELF_EXPIRING_PREFIXES = ("velero/",)
"""Folders whose writer expires its own objects: Velero deletes a backup when its TTL passes, and
Kopia's maintenance deletes repository blobs no snapshot references. Deleting them by age would
break the repository (a blob written once is referenced by every later snapshot that deduplicates
against it; `kopia.repository` is written once at creation), so the age rule for current objects
skips these folders. Replaced and deleted versions still expire everywhere."""
SECONDS_PER_DAY = 86_400
WEEKLY_KEEP_SECONDS = 6 * SECONDS_PER_DAY
"""Shorter than the period, so the previous weekly backup is gone before the next one is taken."""


class OffsiteBucketArgs(TypedDict):
    """Inputs of `OffsiteBucket`."""

    compartment_id: pulumi.Input[str]
    namespace: pulumi.Input[str]
    bucket_name: str
    keep_days: int
    """Current objects and previous versions are deleted this many days after they were written or replaced."""
    freeform_tags: Mapping[str, str]
    credentials_user_id: NotRequired[pulumi.Input[str]]
    """Issue a Customer Secret Key (S3 credentials) for this user; at most two exist per user."""


class OffsiteBucket(pulumi.ComponentResource):
    """A private, versioned backup bucket with retention as a lifecycle policy."""

    bucket_name: pulumi.Output[str]
    access_key_id: pulumi.Output[str] | None
    secret_access_key: pulumi.Output[str] | None

    def __init__(self, name: str, args: OffsiteBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:OffsiteBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = args["keep_days"]
        if not 1 <= keep <= 3650:
            raise ValueError(f"keep_days must be between 1 and 3650, got {keep}")
        bucket = oci_objectstorage.Bucket(
            f"{name}-bucket",
            compartment_id=args["compartment_id"],
            namespace=args["namespace"],
            name=args["bucket_name"],
            access_type="NoPublicAccess",
            versioning="Enabled",
            storage_tier="Standard",
            freeform_tags=dict(args["freeform_tags"]),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True, retain_on_delete=True)),
        )
        oci_objectstorage.ObjectLifecyclePolicy(
            f"{name}-lifecycle",
            namespace=args["namespace"],
            bucket=bucket.name,
            rules=lifecycle_rules(keep),
            opts=child,
        )
        self.bucket_name = bucket.name
        self.access_key_id = None
        self.secret_access_key = None
        user = args.get("credentials_user_id")
        if user is not None:
            key = oci_identity.CustomerSecretKey(
                f"{name}-s3-key",
                user_id=user,
                display_name=f"homelab {name} backups (S3)",
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(additional_secret_outputs=["key"])),
            )
            self.access_key_id = pulumi.Output.secret(key.id)
            self.secret_access_key = pulumi.Output.secret(key.key)
        self.register_outputs({"bucket_name": self.bucket_name})


def lifecycle_rules(keep_days: int) -> list[oci_objectstorage.ObjectLifecyclePolicyRuleArgs]:
    """Delete objects (outside the self-expiring folders) and replaced versions after `keep_days`;
    abort multipart uploads after a day."""
    return [
        oci_objectstorage.ObjectLifecyclePolicyRuleArgs(
            name="delete-expired-backups",
            action="DELETE",
            target="objects",
            is_enabled=True,
            time_amount=str(keep_days),
            time_unit="DAYS",
            object_name_filter=oci_objectstorage.ObjectLifecyclePolicyRuleObjectNameFilterArgs(
                exclusion_patterns=[f"{prefix}*" for prefix in SELF_EXPIRING_PREFIXES]
            ),
        ),
        oci_objectstorage.ObjectLifecyclePolicyRuleArgs(
            name="delete-previous-versions",
            action="DELETE",
            target="previous-object-versions",
            is_enabled=True,
            time_amount=str(keep_days),
            time_unit="DAYS",
        ),
        oci_objectstorage.ObjectLifecyclePolicyRuleArgs(
            name="abort-stale-uploads",
            action="ABORT",
            target="multipart-uploads",
            is_enabled=True,
            time_amount="1",
            time_unit="DAYS",
        ),
    ]


class VolumeBackupsArgs(TypedDict):
    """Inputs of `VolumeBackups`."""

    compartment_id: pulumi.Input[str]
    volume_ids: Mapping[str, pulumi.Input[str]]
    """Block or boot volumes to back up, keyed by a stable name."""
    free_backups: int
    """How many volume backups the account may hold for free (Always Free: 5)."""
    freeform_tags: Mapping[str, str]
    day_of_week: NotRequired[str]
    hour_of_day: NotRequired[int]


class VolumeBackups(pulumi.ComponentResource):
    """One weekly full backup of each volume, never more backups than the free allowance."""

    policy_id: pulumi.Output[str]

    def __init__(self, name: str, args: VolumeBackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:VolumeBackups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        volumes = args["volume_ids"]
        if len(volumes) > args["free_backups"]:
            raise ValueError(
                f"{len(volumes)} volumes need {len(volumes)} backups; only {args['free_backups']} are free"
            )
        policy = oci_core.VolumeBackupPolicy(
            f"{name}-policy",
            compartment_id=args["compartment_id"],
            display_name=f"homelab-{name}-weekly",
            schedules=[
                oci_core.VolumeBackupPolicyScheduleArgs(
                    backup_type="FULL",
                    period="ONE_WEEK",
                    day_of_week=args.get("day_of_week", "SUNDAY"),
                    hour_of_day=args.get("hour_of_day", 3),
                    offset_type="STRUCTURED",
                    retention_seconds=WEEKLY_KEEP_SECONDS,
                    time_zone="UTC",
                )
            ],
            freeform_tags=dict(args["freeform_tags"]),
            opts=child,
        )
        for key, volume_id in sorted(volumes.items()):
            oci_core.VolumeBackupPolicyAssignment(
                f"{name}-{key}",
                asset_id=volume_id,
                policy_id=policy.id,
                opts=child,
            )
        self.policy_id = policy.id
        self.register_outputs({"policy_id": self.policy_id})
