"""ZfsPool: adopt-or-create mirror, datasets, storage, host services; nothing ever destroys data."""

import itertools
import re
import shlex

import pulumi
import pytest
from pulumi_command import remote

from components.proxmox.zfs import (
    DatasetSpec,
    NfsSettings,
    SnapshotPolicy,
    ZedAlerts,
    ZfsPool,
    arc_script,
    datasets_script,
    nfs_exports,
    pool_script,
    sanoid_config,
    scrub_script,
    zed_script,
)

DISKS = ["ata-WDC_WD201KFGX-68BKJN0_2CKJ8VZN", "ata-WDC_WD201KFGX-68BKJN0_2CKJD4RP"]
DATASETS = {
    "media": DatasetSpec(quota_gb=12000, recordsize="1M", nfs_export=True, snapshots=SnapshotPolicy(daily=7, weekly=4)),
    "backups": DatasetSpec(recordsize="1M", snapshots=SnapshotPolicy(daily=7, weekly=8, monthly=6)),
    "vms": DatasetSpec(snapshots=SnapshotPolicy(hourly=24, daily=7)),
}
NFS = NfsSettings(clients=("192.168.68.0/24",))
DESTROY = re.compile(r"\b(zpool\s+(destroy|labelclear)|zfs\s+destroy|wipefs|sgdisk|dd\s+if=)")


def pool_program(disk_ids=DISKS, serialize_after=None):
    def program():
        extra = {"serialize_after": serialize_after} if serialize_after else {}
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
                "nfs": NFS,
                **extra,
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
        # VMs and backups reference the storage definitions: removing the component keeps them.
        assert rec.get(type_, name).protect and rec.get(type_, name).retain_on_delete, name


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


# --- issue 10: serialized host commands, recursive snapshots, safe import, alerts that arrive --------


def _commands(rec):
    return {c.name: c for c in rec.by_type("command:remote:Command")}


def test_package_installs_and_boot_chain_rebuilds_in_the_pool_run_one_after_another(record):
    # sanoid and nfs both run apt-get install, arc rebuilds the initramfs: dpkg's lock and /boot
    # are host-wide, so no two of them may run at the same time.
    rec = record(pool_program())
    commands = _commands(rec)
    chain = [commands[n] for n in ("tank-zed", "tank-snapshots", "tank-nfs", "tank-arc")]
    for earlier, later in itertools.pairwise(chain):
        assert rec.waits_for(later, earlier), f"{later.name} must wait for {earlier.name}"


def test_pool_host_commands_continue_a_chain_started_elsewhere(record):
    def program():
        first = remote.Command("host-apt", connection=remote.ConnectionArgs(host="h"), create="apt-get update")
        pool_program(serialize_after=[first])()

    rec = record(program)
    first = rec.get("command:remote:Command", "host-apt")
    for name in ("tank-zed", "tank-snapshots", "tank-nfs", "tank-arc"):
        assert rec.waits_for(rec.get("command:remote:Command", name), first), name


@pytest.mark.parametrize("name", ["tank-snapshots", "tank-nfs", "tank-zed"])
def test_package_installs_refresh_the_index_first_and_wait_for_the_lock(record, name):
    script = _commands(record(pool_program()))[name].inputs["create"]
    install = script.index(" install -y")
    update = script.index(" update\n")
    assert update < install
    assert "DPkg::Lock::Timeout=" in script[install - 120 : install]
    assert script.startswith("set -euo pipefail\n")


def _sanoid_sections(config: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in config.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line and current is not None:
            key, value = (part.strip() for part in line.split("=", 1))
            current[key] = value
    return sections


def test_sanoid_snapshots_every_dataset_with_its_children():
    # The VM dataset holds one zvol per VM disk: without `recursive` sanoid snapshots only the empty parent.
    sections = _sanoid_sections(sanoid_config("tank", DATASETS))
    assert set(sections) == {"tank/media", "tank/backups", "tank/vms"}
    for name, values in sections.items():
        assert values["recursive"] == "yes", name
        assert values["autosnap"] == "yes", name
    assert sections["tank/vms"]["hourly"] == "24"


def test_zed_mails_root_which_proxmox_forwards_to_its_notification_targets(record):
    script = _commands(record(pool_program()))["tank-zed"].inputs["create"]
    assert "ZED_EMAIL_ADDR=root" in script
    assert "@" not in script.split("ZED_EMAIL_ADDR=", 1)[1].split("\n", 1)[0]
    assert "proxmox-mail-forward" in script  # root's mail enters the notification system
    assert zed_script(ZedAlerts()).count("systemctl restart zfs-zed") == 1


# The pool script run by bash against a fake `zpool`, in each state the disks can be in.
FAKE_ZPOOL = r"""#!/usr/bin/env bash
set -u
s=$FAKE_STATE
echo "zpool $*" >> "$s/log"
case "$1" in
  list)
    [ -e "$s/imported" ] || { echo "cannot open '${!#}': no such pool" >&2; exit 1; }
    if [ "$4" = health ]; then echo ONLINE; else echo "${!#}"; fi ;;
  import)
    if [ "$#" -eq 3 ]; then
      if [ -e "$s/label" ]; then printf '   pool: %s\n     id: 42\n  state: ONLINE\n' "$(cat "$s/label")"; exit 0; fi
      echo "no pools available to import" >&2; exit 1
    fi
    if [ -e "$s/foreign" ] && [[ " $* " != *" -f "* ]]; then
      echo "cannot import 'tank': pool was previously in use from another system." >&2; exit 1
    fi
    touch "$s/imported" ;;
  create) touch "$s/imported" ;;
esac
"""


def _run_pool_script(tmp_path, *, imported=False, label=None, foreign=False, allow_foreign=False):
    import subprocess

    state, fake_bin, disks = tmp_path / "state", tmp_path / "bin", tmp_path / "by-id"
    for d in (state, fake_bin, disks):
        d.mkdir()
    (fake_bin / "zpool").write_text(FAKE_ZPOOL)
    (fake_bin / "zpool").chmod(0o755)
    for disk in DISKS:
        (disks / disk).touch()
    for flag, present in (("imported", imported), ("foreign", foreign)):
        if present:
            (state / flag).touch()
    if label:
        (state / "label").write_text(label)
    script = pool_script("tank", DISKS, 12, "lz4", import_foreign=allow_foreign).replace(
        "/dev/disk/by-id/", f"{disks}/"
    )
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "FAKE_STATE": str(state)}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=False)
    log = (state / "log").read_text().splitlines()
    return result, log


def test_pool_script_adopts_an_imported_pool(tmp_path):
    result, log = _run_pool_script(tmp_path, imported=True)
    assert result.returncode == 0, result.stderr
    assert "health=ONLINE" in result.stdout
    assert not any(line.startswith(("zpool import", "zpool create")) for line in log)


def test_pool_script_creates_only_on_disks_without_a_label(tmp_path):
    result, log = _run_pool_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("zpool create") for line in log)


def test_pool_script_imports_its_own_exported_pool(tmp_path):
    result, log = _run_pool_script(tmp_path, label="tank")
    assert result.returncode == 0, result.stderr
    assert "imported existing pool tank" in result.stdout
    assert not any(line.startswith("zpool create") for line in log)


def test_a_refused_import_shows_why_and_never_falls_through_to_create(tmp_path):
    # After a reinstall the new hostid differs: the import is refused; creating would fail too and
    # the old runbook then said to wipe the disks.
    result, log = _run_pool_script(tmp_path, label="tank", foreign=True)
    assert result.returncode == 1
    assert "previously in use from another system" in result.stderr  # zpool's own error, shown
    assert "homelab:zfs.import_foreign_pool" in result.stderr
    assert not any(line.startswith("zpool create") for line in log)


def test_a_foreign_pool_is_imported_only_with_the_explicit_opt_in(tmp_path):
    result, log = _run_pool_script(tmp_path, label="tank", foreign=True, allow_foreign=True)
    assert result.returncode == 0, result.stderr
    assert "zpool import -d" in "\n".join(log) and any(" -f tank" in line for line in log)
    assert not any(line.startswith("zpool create") for line in log)
    assert " -f" not in pool_script("tank", DISKS, 12, "lz4")
