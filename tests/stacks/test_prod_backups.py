"""The prod stack's local backup layer and its data-protection view, from the real Pulumi.prod.yaml."""

import pytest

from homelab.stackrun import run_stack
from stacks.config import ConfigError
from tests.policies.previews import preview
from tests.stacks.helpers import count_registrations, section


def test_vzdump_job_covers_every_prod_node_and_writes_to_the_pool():
    recording = preview("prod").recording
    job = recording.get("proxmoxve:backup/job:Job", "guests-vzdump")
    nodes = section("prod", "cluster")["nodes"]
    assert job.inputs["vmids"] == sorted(str(n["vm_id"]) for n in nodes.values())
    assert job.inputs["storage"] == section("prod", "zfs")["backup_storage_id"]
    assert job.inputs["pruneBackups"] == {"keep-daily": "7", "keep-weekly": "4", "keep-monthly": "3"}
    # The gaming VM holds replaceable games only: not in the job.
    assert str(section("prod", "gaming")["vm_id"]) not in job.inputs["vmids"]
    # Ordered after the pool (depends_on a component expands to its children, the pool command first).
    pool = recording.get("command:remote:Command", "tank-pool")
    assert pool.urn in recording.get("homelab:proxmox:GuestBackups", "guests").dependencies


def test_protection_output_lists_class_and_copies_per_holder():
    output = preview("prod").recording.outputs["backup_protection"]
    assert output.known and not output.secret
    rows = {row["holder"]: row for row in output.value}
    assert rows["grafana"]["class"] == "important"
    assert rows["komga"]["verdict"].startswith("local only by class")
    # The etcd snapshot job is composed (homelab:platform.etcd_backup): its offsite copy counts.
    assert rows["prod-etcd"]["copies"] == ["primary@home", "zfs-snapshot@home", "vzdump@home", "etcd-snapshot@oci"]
    assert all(row["location"] == "prod" for row in rows.values())


def test_scratch_vm_id_in_use_names_the_key_and_registers_nothing():
    with count_registrations() as seen, pytest.raises(ConfigError) as error:
        run_stack("prod", overrides={"backups": {"drill": {"scratch_vm_id": 201}}})
    assert str(error.value) == "homelab:backups.drill.scratch_vm_id: 201 is already used by prod-cp-1"
    assert seen == []


@pytest.mark.parametrize(
    ("backups", "expected"),
    [
        ({"vzdump": {"keep_daily": -1}}, "homelab:backups.vzdump.keep_daily: must be at least 0, got -1"),
        ({"classes": {"precious": {"local_keep": "7d", "offsite": False}}}, "homelab:backups.classes.precious"),
        (
            {"classes": {"critical": {"local_keep": "a week", "offsite": False}}},
            "homelab:backups.classes.critical.local_keep: ",
        ),
        (
            {"classes": {"critical": {"local_keep": "7d", "offsite": True}}},
            "offsite_keep is required when offsite is true",
        ),
    ],
)
def test_bad_backup_config_is_one_error_naming_the_key(backups, expected):
    with pytest.raises(ConfigError) as error:
        run_stack("prod", overrides={"backups": backups})
    assert expected in str(error.value)


def test_missing_backup_storage_names_the_key():
    zfs = section("prod", "zfs")
    del zfs["backup_storage_id"]
    with pytest.raises(ConfigError, match=r"^homelab:zfs\.backup_storage_id: is required"):
        run_stack("prod", overrides={"zfs": zfs})
