"""`GuestBackups`: the local backup layer of the Proxmox host, and the drill that proves it restores.

- A vzdump job (`proxmoxve.backup.Job`, an API object in /etc/pve/jobs.cfg) backs up every stateful
  guest to the pool's backup storage on a schedule, keeping daily/weekly/monthly archives (retention
  as data). Snapshot mode: the guests keep running; the archive is zstd-compressed.
- A host-side check (daily) and restore drill (monthly) run as systemd timers installed by one
  idempotent command. The check reads the age of each guest's newest archive; the drill restores
  the smallest guest's newest archive into a scratch VM id, times it, and removes the scratch VM.
  Both write `homelab_backup_last_success_timestamp_seconds{job=...}` and
  `homelab_backup_last_status{job=...}` (1 ok, 0 failed) into node-exporter's textfile collector
  directory, which the monitoring stack scrapes and alerts on (failed, or not run for too long).

Threat model: the drill creates and destroys a VM on the host. It only ever destroys the scratch
VM id it was given, and only when that VM carries the drill's tag; an existing VM at that id
without the tag makes the drill fail instead. Nothing here deletes an archive: pruning is
vzdump's own retention (`prune_backups`).
"""

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_proxmoxve as pve
from pulumi_command import remote

from components.monitoring.rules import DRILL_JOB
from components.monitoring.textfile import metric_function

DRILL_TAG = "homelab-restore-drill"
SCRIPT_PATH = "/usr/local/sbin/homelab-backup-check"
UNIT = "homelab-backup"


@dataclass(frozen=True)
class Retention:
    """vzdump's keep-* options; 0 disables a kind."""

    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 3

    def prune_backups(self) -> dict[str, str]:
        kept = {"keep-daily": self.keep_daily, "keep-weekly": self.keep_weekly, "keep-monthly": self.keep_monthly}
        return {k: str(v) for k, v in kept.items() if v > 0}


@dataclass(frozen=True)
class DrillSettings:
    scratch_vm_id: int
    """A VM id no guest uses: the drill restores into it and removes it again."""
    textfile_dir: str = "/var/lib/prometheus/node-exporter"
    max_age_hours: int = 36
    """The newest archive of a guest older than this fails the daily check."""
    check_calendar: str = "*-*-* 07:00:00"
    drill_calendar: str = "*-*-01 05:00:00"
    """systemd OnCalendar of the monthly restore drill (first of the month)."""


class GuestBackupsArgs(TypedDict):
    """Inputs of `GuestBackups`."""

    node_name: str
    connection: pulumi.Input[remote.ConnectionArgs]
    storage_id: pulumi.Input[str]
    """The pool's backup (vzdump) storage."""
    storage_path: str
    """Where that storage lives on the host (`/tank/backups`); archives are under `dump/`."""
    scratch_storage_id: pulumi.Input[str]
    """VM storage the drill restores into."""
    vm_ids: Sequence[int]
    """Every stateful guest."""
    schedule: str
    """systemd calendar event of the vzdump job (e.g. `*-*-* 01:30`)."""
    retention: Retention
    drill: DrillSettings


def _q(value: str) -> str:
    return shlex.quote(value)


def check_script(storage_path: str, vm_ids: Sequence[int], drill: DrillSettings) -> str:
    """`homelab-backup-check check|drill`: freshness of every guest's archive, or a timed restore."""
    ids = " ".join(str(int(i)) for i in sorted(vm_ids))
    dump_dir = f"{storage_path.rstrip('/')}/dump"
    return f"""#!/bin/bash
# Managed by Pulumi (homelab GuestBackups). Usage: {SCRIPT_PATH} check|drill
set -euo pipefail
mode=${{1:-check}}
dump_dir={_q(dump_dir)}
textfile_dir={_q(drill.textfile_dir)}
vm_ids=({ids})
max_age=$(( {int(drill.max_age_hours)} * 3600 ))
scratch={int(drill.scratch_vm_id)}
tag={_q(DRILL_TAG)}
storage=${{STORAGE:-}}  # the VM storage the drill restores into (set by the systemd unit)

{metric_function()}
newest() {{  # the newest archive of one guest, or nothing
  find "$dump_dir" -maxdepth 1 -name "vzdump-qemu-$1-*.vma.zst" -printf '%T@ %p\\n' 2>/dev/null \\
    | sort -n | tail -n 1 | cut -d' ' -f2-
}}

check() {{
  local ok=1 id archive age
  for id in "${{vm_ids[@]}}"; do
    archive=$(newest "$id")
    if [ -z "$archive" ]; then echo "guest $id: no archive in $dump_dir" >&2; ok=0; continue; fi
    age=$(( $(date +%s) - $(stat -c %Y "$archive") ))
    if [ "$age" -gt "$max_age" ]; then echo "guest $id: newest archive is $age s old" >&2; ok=0; fi
  done
  metric vzdump "$ok"
  [ "$ok" = 1 ]
}}

drill() {{
  local smallest="" size best=0 id archive started
  for id in "${{vm_ids[@]}}"; do
    archive=$(newest "$id")
    [ -n "$archive" ] || continue
    size=$(stat -c %s "$archive")
    if [ -z "$smallest" ] || [ "$size" -lt "$best" ]; then smallest=$archive; best=$size; fi
  done
  if [ -z "$smallest" ]; then echo "no archive to restore" >&2; metric {DRILL_JOB} 0; return 1; fi
  if [ -z "$storage" ]; then echo "STORAGE (scratch VM storage) unset" >&2; metric {DRILL_JOB} 0; return 1; fi
  if qm config "$scratch" >/dev/null 2>&1; then
    if ! qm config "$scratch" | grep -q "^tags:.*$tag"; then
      echo "VM $scratch exists and is not a drill VM: refusing to touch it" >&2
      metric {DRILL_JOB} 0
      return 1
    fi
    qm destroy "$scratch" --purge >/dev/null
  fi
  started=$(date +%s)
  if zstd -q -t "$smallest" \\
    && qmrestore "$smallest" "$scratch" --storage "$storage" --unique 1 >/dev/null \\
    && qm set "$scratch" --tags "$tag" --onboot 0 >/dev/null \\
    && qm config "$scratch" >/dev/null; then
    echo "restored $smallest in $(( $(date +%s) - started )) s"
    qm destroy "$scratch" --purge >/dev/null
    metric {DRILL_JOB} 1
  else
    echo "restore of $smallest failed" >&2
    if qm config "$scratch" 2>/dev/null | grep -q "^tags:.*$tag"; then
      qm destroy "$scratch" --purge >/dev/null || true
    fi
    metric {DRILL_JOB} 0
    return 1
  fi
}}

case "$mode" in
  check) check ;;
  drill) drill ;;
  *) echo "usage: $0 check|drill" >&2; exit 2 ;;
esac
"""


def _unit(description: str, argument: str, scratch_storage: str) -> str:
    return (
        "[Unit]\n"
        f"Description={description}\n"
        "After=zfs-mount.service pve-cluster.service\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"Environment=STORAGE={scratch_storage}\n"
        f"ExecStart={SCRIPT_PATH} {argument}\n"
    )


def _timer(description: str, calendar: str) -> str:
    return (
        f"[Unit]\nDescription={description}\n\n"
        f"[Timer]\nOnCalendar={calendar}\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )


def install_script(script: str, drill: DrillSettings, scratch_storage: str) -> str:
    """Write the check script and its two timers; idempotent (files are rewritten, timers re-enabled)."""
    files = {
        SCRIPT_PATH: script,
        f"/etc/systemd/system/{UNIT}-check.service": _unit(
            "homelab: age of every guest's newest vzdump archive", "check", scratch_storage
        ),
        f"/etc/systemd/system/{UNIT}-check.timer": _timer("homelab: daily backup check", drill.check_calendar),
        f"/etc/systemd/system/{UNIT}-drill.service": _unit("homelab: monthly restore drill", "drill", scratch_storage),
        f"/etc/systemd/system/{UNIT}-drill.timer": _timer("homelab: monthly restore drill", drill.drill_calendar),
    }
    # The file contents are meant to reach the host unexpanded.
    lines = ["# shellcheck disable=SC2016", "set -eu"]
    for path, content in files.items():
        lines.append(f"printf '%s' {_q(content)} > {_q(path)}")
    lines += [
        f"chmod 0755 {SCRIPT_PATH}",
        "systemctl daemon-reload",
        f"systemctl enable --now {UNIT}-check.timer {UNIT}-drill.timer",
    ]
    return "\n".join(lines)


def uninstall_script() -> str:
    units = [f"{UNIT}-check.timer", f"{UNIT}-drill.timer"]
    return "\n".join(
        [
            f"systemctl disable --now {' '.join(units)} 2>/dev/null || true",
            f"rm -f {SCRIPT_PATH} /etc/systemd/system/{UNIT}-check.* /etc/systemd/system/{UNIT}-drill.*",
            "systemctl daemon-reload",
        ]
    )


class GuestBackups(pulumi.ComponentResource):
    """A vzdump job for every stateful guest, and the check/drill that proves the archives restore."""

    job_id: pulumi.Output[str]

    def __init__(self, name: str, args: GuestBackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:proxmox:GuestBackups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vm_ids = sorted(set(args["vm_ids"]))
        if not vm_ids:
            raise ValueError("GuestBackups needs at least one VM id")
        drill = args["drill"]
        if drill.scratch_vm_id in vm_ids:
            raise ValueError(f"scratch VM id {drill.scratch_vm_id} is one of the backed-up guests")
        job = pve.backup.Job(
            f"{name}-vzdump",
            resource_id=f"homelab-{name}",
            node=args["node_name"],
            storage=args["storage_id"],
            schedule=args["schedule"],
            vmids=[str(i) for i in vm_ids],
            mode="snapshot",
            compress="zstd",
            enabled=True,
            prune_backups=args["retention"].prune_backups(),
            mailnotification="failure",
            repeat_missed=True,
            notes_template="{{guestname}} ({{vmid}}) homelab",
            opts=child,
        )
        self.job_id = job.resource_id
        script = check_script(args["storage_path"], vm_ids, drill)
        remote.Command(
            f"{name}-check",
            connection=args["connection"],
            create=pulumi.Output.from_input(args["scratch_storage_id"]).apply(
                lambda storage: install_script(script, drill, storage)
            ),
            delete=uninstall_script(),
            # Replace = undo then redo, or the old delete would remove what the new create wrote.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(delete_before_replace=True)),
        )
        self.register_outputs({"job_id": self.job_id})
