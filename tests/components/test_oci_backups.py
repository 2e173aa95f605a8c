"""OffsiteBucket and VolumeBackups: private, versioned, retained bucket with retention; free volume backups."""

import pulumi
import pulumi_oci as oci
import pytest

from components.oci.backups import WEEKLY_KEEP_SECONDS, OffsiteBucket, VolumeBackups

TAGS = {"managed-by": "pulumi", "stack": "cloud", "role": "backups"}


def bucket_program(with_credentials=True, keep_days=30):
    def run():
        args = {
            "compartment_id": "ocid1.compartment.oc1..aaaa",
            "namespace": "axtenancy",
            "bucket_name": "homelab-backups",
            "keep_days": keep_days,
            "freeform_tags": TAGS,
        }
        if with_credentials:
            args["credentials_user_id"] = "ocid1.user.oc1..aaaa"
        bucket = OffsiteBucket("offsite", args, opts=pulumi.ResourceOptions(providers=[oci.Provider("oci")]))
        if bucket.secret_access_key is not None:
            pulumi.export("secret", bucket.secret_access_key)

    return run


def test_bucket_is_private_versioned_protected_and_retained(record):
    rec = record(bucket_program())
    component = rec.get("homelab:oci:OffsiteBucket", "offsite")
    bucket = rec.get("oci:ObjectStorage/bucket:Bucket", "offsite-bucket")
    assert bucket.parent == component.urn
    assert bucket.inputs["accessType"] == "NoPublicAccess"
    assert bucket.inputs["versioning"] == "Enabled"
    assert bucket.inputs["freeformTags"]["role"] == "backups"
    assert bucket.protect and bucket.retain_on_delete


def test_lifecycle_deletes_objects_and_versions_after_the_retention(record):
    rec = record(bucket_program(keep_days=45))
    policy = rec.get("oci:ObjectStorage/objectLifecyclePolicy:ObjectLifecyclePolicy", "offsite-lifecycle")
    rules = {(r["target"], r["action"]): r for r in policy.inputs["rules"]}
    assert rules[("objects", "DELETE")]["timeAmount"] == "45"
    assert rules[("previous-object-versions", "DELETE")]["timeAmount"] == "45"
    assert rules[("multipart-uploads", "ABORT")]["timeAmount"] == "1"
    assert all(r["isEnabled"] and r["timeUnit"] == "DAYS" for r in rules.values())
    assert policy.inputs["bucket"] == "homelab-backups"


def test_s3_credentials_are_secret(record):
    rec = record(bucket_program())
    key = rec.get("oci:Identity/customerSecretKey:CustomerSecretKey", "offsite-s3-key")
    assert key.inputs["userId"] == "ocid1.user.oc1..aaaa"
    assert "key" in key.additional_secret_outputs
    assert rec.outputs["secret"].secret
    assert not record(bucket_program(with_credentials=False)).by_type(
        "oci:Identity/customerSecretKey:CustomerSecretKey"
    )


def test_retention_out_of_range_is_refused(record):
    with pytest.raises(Exception, match="keep_days must be between 1 and 3650, got 0"):
        record(bucket_program(keep_days=0))


def volumes_program(count=1, free=5):
    def run():
        VolumeBackups(
            "volumes",
            {
                "compartment_id": "ocid1.compartment.oc1..aaaa",
                "volume_ids": {f"v{i}": f"ocid1.volume.oc1..{i}" for i in range(count)},
                "free_backups": free,
                "freeform_tags": TAGS,
            },
            opts=pulumi.ResourceOptions(providers=[oci.Provider("oci")]),
        )

    return run


def test_weekly_full_backup_kept_less_than_a_week(record):
    rec = record(volumes_program(count=2))
    policy = rec.get("oci:Core/volumeBackupPolicy:VolumeBackupPolicy", "volumes-policy")
    (schedule,) = policy.inputs["schedules"]
    assert schedule["backupType"] == "FULL" and schedule["period"] == "ONE_WEEK"
    assert schedule["retentionSeconds"] == WEEKLY_KEEP_SECONDS < 7 * 86400
    assignments = rec.by_type("oci:Core/volumeBackupPolicyAssignment:VolumeBackupPolicyAssignment")
    assert sorted(a.inputs["assetId"] for a in assignments) == ["ocid1.volume.oc1..0", "ocid1.volume.oc1..1"]


def test_more_volumes_than_free_backups_is_refused(record):
    with pytest.raises(Exception, match="6 volumes need 6 backups; only 5 are free"):
        record(volumes_program(count=6))
    record(volumes_program(count=5))  # boundary: exactly the allowance
