"""ZfsPool: adopt-or-create mirror, datasets, storage, host services; nothing ever destroys data."""

import re
import shlex

import pulumi
import pytest
from pulumi_command import remote

from components.proxmox.zfs import (
    DatasetSpec,
    NfsSettings,
    SnapshotPolicy,
    ZfsPool,
    arc_script,
    datasets_script,
    nfs_exports,
    pool_script,
    scrub_script,
)

DISKS = ["ata-WDC_WD201KFGX-68BKJN0_2CKJ8VZN", "ata-WDC_WD201KFGX-68BKJN0_2CKJD4RP"]
DATASETS = {
    "media": DatasetSpec(quota_gb=12000, recordsize="1M", nfs_export=True, snapshots=SnapshotPolicy(daily=7, weekly=4)),
    "backups": DatasetSpec(recordsize="1M", snapshots=SnapshotPolicy(daily=7, weekly=8, monthly=6)),
    "vms": DatasetSpec(snapshots=SnapshotPolicy(hourly=24, daily=7)),
}
NFS = NfsSettings(clients=("192.168.68.0/24",))
DESTROY = re.compile(r"\b(zpool\s+(destroy|labelclear)|zfs\s+destroy|wipefs|sgdisk|dd\s+if=)")


def pool_program(disk_ids=DISKS):
    def program():
        ZfsPool(
            "tank",
            {
                "node_name": "pve",
                "connection": remote.ConnectionArgs(host="192.168.68.51", user="root", private_key="not-a-key"),
                "pool_name": "tank",
                "disk_ids": disk_ids,
                "datasets": DATASETS,
                "vm_dataset": "vms",
                "vm_storage_id": "tank-vms",
                "backup_dataset": "backups",
                "backup_storage_id": "tank-backups",
                "arc_max_gb": 8,
                "zed_email": "homelab-alerts@example.org",
                "nfs": NFS,
            },
            opts=pulumi.ResourceOptions(providers=[__import__("pulumi_proxmoxve").Provider("pve")]),
        )

    return program


def test_pool_and_datasets_are_protected_and_retained(record):
    rec = record(pool_program())
    component = rec.get("homelab:proxmox:ZfsPool", "tank")
    for name in ("tank-pool", "tank-datasets"):
        command = rec.get("command:remote:Command", name)
        assert command.parent == component.urn
        assert command.protect and command.retain_on_delete, name
    for type_, name in [
        ("proxmoxve:storage/zfspool:Zfspool", "tank-vm-storage"),
        ("proxmoxve:storage/directory:Directory", "tank-backup-storage"),
    ]:
        assert rec.get(type_, name).protect


def test_no_delete_step_can_destroy_data(record):
    rec = record(pool_program())
    commands = rec.by_type("command:remote:Command")
    assert len(commands) >= 7
    for command in commands:
        for phase in ("create", "update", "delete"):
            script = command.inputs.get(phase) or ""
            assert not DESTROY.search(script), f"{command.name}.{phase}: {script}"
    assert "never destroys data" in rec.get("command:remote:Command", "tank-pool").inputs["delete"]


def test_pool_script_adopts_imports_or_creates_by_id_without_force():
    script = pool_script("tank", DISKS, 12, "lz4")
    assert "zpool list -H -o name tank" in script  # adopt a pool that is already imported
    assert "zpool import -d /dev/disk/by-id/ tank" in script  # e.g. after reinstalling Proxmox
    assert f"mirror /dev/disk/by-id/{DISKS[0]} /dev/disk/by-id/{DISKS[1]}" in script
    assert "-o ashift=12" in script and "-O compression=lz4" in script
    assert " -f" not in script  # never force over existing labels
    assert "!= ONLINE" in script  # an unhealthy pool stops the run


def test_missing_disk_fails_with_a_message_naming_it():
    script = pool_script("tank", DISKS, 12, "lz4")
    assert f"disk /dev/disk/by-id/{DISKS[1]} not found" in script
    assert "homelab:zfs.disk_ids" in script


def test_a_mirror_needs_two_disks():
    with pytest.raises(ValueError, match="two disk ids"):
        pool_script("tank", DISKS[:1], 12, "lz4")


def test_every_interpolated_value_is_shell_quoted():
    hostile = "tank; rm -rf /"
    script = pool_script(hostile, ["disk with space", "d2"], 12, "lz4")
    assert shlex.quote(hostile) in script
    assert shlex.quote("/dev/disk/by-id/disk with space") in script
    assert "rm -rf /\n" not in script.replace(shlex.quote(hostile), "")
    ds = datasets_script(hostile, {"media": DatasetSpec(quota_gb=1)}, NFS)
    assert shlex.quote(f"{hostile}/media") in ds


def test_datasets_get_quota_and_recordsize_idempotently():
    script = datasets_script("tank", DATASETS, NFS)
    assert "zfs list -H -o name tank/media >/dev/null 2>&1 || { zfs create tank/media" in script
    assert "zfs set quota=12000000000000 recordsize=1M tank/media" in script
    assert "zfs set quota=none tank/vms" in script


def test_host_services_scrub_arc_zed_snapshots(record):
    rec = record(pool_program())
    create = {c.name: c.inputs["create"] for c in rec.by_type("command:remote:Command")}
    assert "zfs-scrub-weekly@tank.timer" in create["tank-scrub"]
    assert "zfs_arc_max=8589934592" in create["tank-arc"]
    assert "ZED_EMAIL_ADDR=homelab-alerts@example.org" in create["tank-zed"]
    assert "[tank/media]" in create["tank-snapshots"] and "weekly = 4" in create["tank-snapshots"]
    assert "sanoid.timer" in create["tank-snapshots"]


def test_vm_storage_registers_the_vm_dataset(record):
    rec = record(pool_program())
    storage = rec.get("proxmoxve:storage/zfspool:Zfspool", "tank-vm-storage")
    assert storage.inputs["resourceId"] == "tank-vms"
    assert storage.inputs["zfsPool"] == "tank/vms"
    assert storage.inputs["contents"] == ["images", "rootdir"]
    assert rec.get("command:remote:Command", "tank-datasets").urn in storage.dependencies


def test_nfs_exports_only_media_and_only_to_the_cluster_subnet(record):
    exports = nfs_exports("tank", DATASETS, NFS)
    lines = [line for line in exports.splitlines() if not line.startswith("#")]
    assert lines == ["/tank/media 192.168.68.0/24(rw,sync,no_subtree_check,all_squash,anonuid=1000,anongid=1000)"]
    assert "no_root_squash" not in exports and "*(" not in exports
    rec = record(pool_program())
    assert "/etc/exports.d/homelab-tank.exports" in rec.get("command:remote:Command", "tank-nfs").inputs["create"]


def test_arc_cap_sorts_after_the_installers_zfs_conf():
    # modprobe applies /etc/modprobe.d in lexical order and the last zfs_arc_max wins; a ZFS-root
    # Proxmox install ships its own cap in zfs.conf, which must not override this one at boot.
    script = arc_script(8)
    target = re.search(r"> (/etc/modprobe\.d/\S+\.conf)", script)
    assert target is not None
    name = target.group(1).rsplit("/", 1)[1]
    assert name > "zfs.conf"
    assert "options zfs zfs_arc_max=8589934592" in script


def test_changing_the_scrub_interval_switches_the_other_timer_off():
    weekly = scrub_script("tank", "weekly")
    monthly = scrub_script("tank", "monthly")
    assert "enable --now zfs-scrub-weekly@tank.timer" in weekly
    assert "disable --now zfs-scrub-monthly@tank.timer" in weekly
    assert "enable --now zfs-scrub-monthly@tank.timer" in monthly
    assert "disable --now zfs-scrub-weekly@tank.timer" in monthly


def test_commands_that_undo_on_delete_undo_before_a_replacement_recreates_them(record):
    # Create-before-delete would run the old delete after the new create and silently switch off
    # exports, snapshots, scrubs or the ARC cap.
    rec = record(pool_program())
    for command in rec.by_type("command:remote:Command"):
        if command.name in ("tank-pool", "tank-datasets", "tank-zed"):
            continue  # their delete changes nothing
        assert command.delete_before_replace is True, command.name
