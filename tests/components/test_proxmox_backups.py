"""GuestBackups: the vzdump job of every stateful guest, and the check/drill writing backup metrics."""

import shutil
import subprocess

import pulumi
import pulumi_proxmoxve as pve
import pytest
from pulumi_command import remote

from components.proxmox.backups import (
    DRILL_TAG,
    DrillSettings,
    GuestBackups,
    Retention,
    check_script,
    install_script,
)

DRILL = DrillSettings(scratch_vm_id=990)


def program(vm_ids=(211, 201), drill=DRILL):
    def run():
        GuestBackups(
            "guests",
            {
                "node_name": "pve",
                "connection": remote.ConnectionArgs(host="192.168.68.51", user="root", private_key="not-a-key"),
                "storage_id": "tank-backups",
                "storage_path": "/tank/backups",
                "scratch_storage_id": "tank-vms",
                "vm_ids": list(vm_ids),
                "schedule": "*-*-* 01:30",
                "retention": Retention(keep_daily=7, keep_weekly=4, keep_monthly=0),
                "drill": drill,
            },
            opts=pulumi.ResourceOptions(providers=[pve.Provider("pve")]),
        )

    return run


def test_vzdump_job_backs_up_every_guest_with_retention_as_data(record):
    rec = record(program())
    component = rec.get("homelab:proxmox:GuestBackups", "guests")
    job = rec.get("proxmoxve:backup/job:Job", "guests-vzdump")
    assert job.parent == component.urn
    assert job.inputs["vmids"] == ["201", "211"]
    assert job.inputs["storage"] == "tank-backups"
    assert job.inputs["node"] == "pve"
    assert job.inputs["schedule"] == "*-*-* 01:30"
    assert job.inputs["mode"] == "snapshot" and job.inputs["compress"] == "zstd"
    # keep-monthly 0 is left out (vzdump reads an absent kind as "keep none of it").
    assert job.inputs["pruneBackups"] == {"keep-daily": "7", "keep-weekly": "4"}
    assert job.inputs["enabled"] is True


def test_check_and_drill_are_installed_idempotently_and_undone_first(record):
    rec = record(program())
    command = rec.get("command:remote:Command", "guests-check")
    create = command.inputs["create"]
    assert "systemctl enable --now homelab-backup-check.timer homelab-backup-drill.timer" in create
    assert "OnCalendar=*-*-01 05:00:00" in create and "Persistent=true" in create
    assert "Environment=STORAGE=tank-vms" in create
    assert "systemctl disable --now" in command.inputs["delete"]
    assert command.delete_before_replace is True


def test_script_writes_the_metrics_the_monitoring_alerts_on():
    script = check_script("/tank/backups", [201, 211], DRILL)
    assert 'homelab_backup_last_status{job=\\"$job\\"} $ok' in script
    assert 'homelab_backup_last_success_timestamp_seconds{job=\\"$job\\"} $now' in script
    assert "metric vzdump" in script and "metric restore-drill" in script
    assert "/var/lib/prometheus/node-exporter" in script
    # Written atomically: the collector never reads a half-written file.
    assert 'mv "$file.tmp" "$file"' in script
    assert "vm_ids=(201 211)" in script and "max_age=$(( 36 * 3600 ))" in script


def test_drill_only_destroys_its_own_tagged_scratch_vm():
    script = check_script("/tank/backups", [201], DRILL)
    destroys = [line for line in script.splitlines() if "qm destroy" in line]
    assert destroys and all('"$scratch"' in line for line in destroys)
    assert f"tag={DRILL_TAG}" in script
    assert "is not a drill VM: refusing to touch it" in script
    assert "--unique 1" in script
    assert "rm " not in script


@pytest.mark.parametrize(
    "script", [check_script("/tank/backups", [201, 211], DRILL), install_script("echo", DRILL, "tank-vms")]
)
def test_scripts_parse(script):
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-s", "bash", "-"], input=script, text=True, check=True)


def test_scratch_vm_id_must_not_be_a_guest(record):
    with pytest.raises(Exception, match="scratch VM id 201 is one of the backed-up guests"):
        record(program(drill=DrillSettings(scratch_vm_id=201)))
