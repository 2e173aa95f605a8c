"""`HostExporter`: the node exporter on the Proxmox host itself, so PROD sees the pool, disks and backups.

The ZFS pool, its disks and the host-side backup jobs live on the Proxmox host, which the Talos
node exporters never see. This installs Debian's `prometheus-node-exporter` on the host, listening on
the host's LAN address only (PROD scrapes it over the LAN; nothing is published), with:

- the ZFS collector (`node_zfs_zpool_state{zpool,state}`) and the systemd collector;
- the textfile collector directory `TEXTFILE_DIR`, fed by
  - Debian's smartmon collector timer (`smartmon_device_smart_healthy{disk}`),
  - a 5-minute timer summing the pool's device and scrub error counters (`homelab_zfs_pool_errors`),
  - a ZED zedlet recording each ZFS fault event (`homelab_zfs_zed_last_event_timestamp_seconds`):
    ZED events reach Alertmanager through Prometheus, not only the local mailer,
  - the backup jobs' results (`homelab_backup_last_status{job}`,
    `homelab_backup_last_success_timestamp_seconds{job}`), written there by the backups layer
    (`components/proxmox/backups.py`).

The install is one idempotent command; it runs after the host's own preparation commands (the
caller passes them as `after`), because both use apt and systemd on the same host.
"""

import re
import shlex
from collections.abc import Sequence
from typing import TypedDict

import pulumi
from pulumi_command import remote

from components.proxmox.hostshell import STRICT, ensure_packages

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
ZEDLET = "/etc/zfs/zed.d/all-homelab-textfile.sh"
POOL_METRICS = "/usr/local/sbin/homelab-zpool-metrics"
UNIT_DIR = "/etc/systemd/system"
_JOB = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")

ZEDLET_SCRIPT = r"""#!/bin/sh
# homelab: record the time of each ZFS fault event for Prometheus (textfile collector).
# ZED runs every all-*.sh zedlet with the event in ZEVENT_* variables.
set -eu
subclass="${ZEVENT_SUBCLASS:-}"
case "$subclass" in
  ''|history_event|config_sync|pool_import|sysevent.fs.zfs.*) exit 0 ;;
esac
dir=__TEXTFILE_DIR__
file="$dir/zed.prom"
pool="${ZEVENT_POOL:-none}"
now="${ZEVENT_TIME_SECS:-$(date +%s)}"
metric=homelab_zfs_zed_last_event_timestamp_seconds
exec 9>"$dir/.zed.lock"
flock 9
tmp="$(mktemp "$dir/.zed.XXXXXX")"
{
  echo "# HELP $metric Time of the last ZFS event of each class, from ZED."
  echo "# TYPE $metric gauge"
  if [ -f "$file" ]; then
    grep "^$metric{" "$file" | grep -v -F "pool=\"$pool\",subclass=\"$subclass\"}" || true
  fi
  echo "$metric{pool=\"$pool\",subclass=\"$subclass\"} $now"
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$file"
""".replace("__TEXTFILE_DIR__", TEXTFILE_DIR)

POOL_METRICS_SCRIPT = r"""#!/bin/sh
# homelab: device (read/write/checksum), scrub and data error counts of every pool, for Prometheus.
set -eu
dir=__TEXTFILE_DIR__
metric=homelab_zfs_pool_errors
tmp="$(mktemp "$dir/.zpool.XXXXXX")"
{
  echo "# HELP $metric Error counts of a ZFS pool by kind (zpool status)."
  echo "# TYPE $metric gauge"
  zpool list -H -o name | while read -r pool; do
    zpool status -p "$pool" | awk -v pool="$pool" -v metric="$metric" '
      /^config:/ { cfg = 1; next }
      /^errors:/ { cfg = 0; if ($2 ~ /^[0-9]+$/) data = $2 }
      cfg && $1 == "NAME" { hdr = 1; next }
      cfg && hdr && NF >= 5 && $3 ~ /^[0-9]+$/ && $4 ~ /^[0-9]+$/ && $5 ~ /^[0-9]+$/ {
        r += $3; w += $4; c += $5
      }
      /scan: scrub repaired/ { for (i = 2; i <= NF; i++) if ($i == "errors") s = $(i - 1) }
      END {
        printf "%s{pool=\"%s\",kind=\"read\"} %d\n", metric, pool, r
        printf "%s{pool=\"%s\",kind=\"write\"} %d\n", metric, pool, w
        printf "%s{pool=\"%s\",kind=\"checksum\"} %d\n", metric, pool, c
        printf "%s{pool=\"%s\",kind=\"scrub\"} %d\n", metric, pool, s
        printf "%s{pool=\"%s\",kind=\"data\"} %d\n", metric, pool, data
      }'
  done
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$dir/zpool.prom"
""".replace("__TEXTFILE_DIR__", TEXTFILE_DIR)

_POOL_SERVICE = f"""[Unit]
Description=homelab: ZFS pool error counts for the node exporter
After=zfs.target

[Service]
Type=oneshot
ExecStart={POOL_METRICS}
"""
_POOL_TIMER = """[Unit]
Description=homelab: ZFS pool error counts every 5 minutes

[Timer]
OnBootSec=2min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
"""


def exporter_args(listen_address: str, port: int) -> str:
    return " ".join(
        [
            f"--web.listen-address={listen_address}:{port}",
            "--collector.zfs",
            "--collector.systemd",
            f"--collector.textfile.directory={TEXTFILE_DIR}",
        ]
    )


def _write(path: str, content: str, mode: str) -> list[str]:
    """Shell that installs `content` at `path` only when it changed, and records the change."""
    marker = "HOMELAB_FILE_EOF"
    return [
        f"cat > {shlex.quote(path)}.new <<'{marker}'",
        content.rstrip("\n"),
        marker,
        f"chmod {mode} {shlex.quote(path)}.new",
        f"if cmp -s {shlex.quote(path)}.new {shlex.quote(path)}; then rm -f {shlex.quote(path)}.new; "
        f'else mv {shlex.quote(path)}.new {shlex.quote(path)}; changed="$changed {shlex.quote(path)}"; fi',
    ]


def install_script(listen_address: str, port: int) -> str:
    """Install or update the exporter and its collectors; safe to re-run (changes only what differs)."""
    lines = [
        STRICT,
        'changed=""',
        ensure_packages("prometheus-node-exporter", "prometheus-node-exporter-collectors", "smartmontools"),
        f"install -d -m 0755 {TEXTFILE_DIR}",
        *_write(
            "/etc/default/prometheus-node-exporter",
            f'ARGS="{exporter_args(listen_address, port)}"\n',
            "0644",
        ),
        *_write(ZEDLET, ZEDLET_SCRIPT, "0755"),
        *_write(POOL_METRICS, POOL_METRICS_SCRIPT, "0755"),
        *_write(f"{UNIT_DIR}/homelab-zpool-metrics.service", _POOL_SERVICE, "0644"),
        *_write(f"{UNIT_DIR}/homelab-zpool-metrics.timer", _POOL_TIMER, "0644"),
        "systemctl daemon-reload",
        "systemctl enable --now prometheus-node-exporter.service homelab-zpool-metrics.timer",
        "systemctl enable --now prometheus-node-exporter-smartmon.timer",
        'case "$changed" in',
        "  *prometheus-node-exporter*) systemctl restart prometheus-node-exporter.service ;;",
        "esac",
        'case "$changed" in',
        f"  *{ZEDLET}*) systemctl restart zfs-zed.service ;;",
        "esac",
        f"{POOL_METRICS}",
        f'echo "node-exporter=http://{listen_address}:{port}/metrics"',
    ]
    return "\n".join(lines) + "\n"


def uninstall_script() -> str:
    """Remove what this component added; the exporter package stays (other tools may use it)."""
    return (
        "\n".join(
            [
                STRICT,
                "systemctl disable --now homelab-zpool-metrics.timer 2>/dev/null || true",
                f"rm -f {UNIT_DIR}/homelab-zpool-metrics.service {UNIT_DIR}/homelab-zpool-metrics.timer",
                f"rm -f {ZEDLET} {POOL_METRICS}",
                "systemctl daemon-reload",
                "systemctl restart zfs-zed.service || true",
            ]
        )
        + "\n"
    )


class HostExporterArgs(TypedDict):
    connection: remote.ConnectionArgs
    listen_address: str
    """The host's LAN address (never 0.0.0.0: the exporter answers on the LAN only)."""
    port: int
    after: Sequence[pulumi.Resource]
    """The host's own preparation commands (apt/systemd on the same host): this runs after them."""


class HostExporter(pulumi.ComponentResource):
    """The node exporter and the ZFS/SMART/backup collectors on the Proxmox host."""

    target: pulumi.Output[str]

    def __init__(self, name: str, args: HostExporterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:monitoring:HostExporter", name, None, opts)
        if args["listen_address"] in ("0.0.0.0", "::", ""):
            raise ValueError(f"HostExporter {name!r}: listen on the host's LAN address, not on every interface")
        command = remote.Command(
            f"{name}-install",
            connection=args["connection"],
            create=install_script(args["listen_address"], args["port"]),
            update=install_script(args["listen_address"], args["port"]),
            delete=uninstall_script(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args["after"]), delete_before_replace=True),
        )
        self.target = command.stdout.apply(lambda _: f"{args['listen_address']}:{args['port']}")
        self.register_outputs({"target": self.target})


def valid_job(job: str) -> bool:
    return bool(_JOB.match(job))
