"""`ZfsPool`: the data mirror of the Proxmox host, its datasets, and everything that keeps it healthy.

The provider's `node.disk.Zfs` can only create a pool (it fails on an existing one and its delete
destroys the pool), so the pool is ensured by an idempotent SSH command instead: it adopts an
existing healthy pool, imports an exported one (e.g. after reinstalling Proxmox), and creates one
only on blank disks (`zpool create` without `-f` refuses disks that carry a pool or partition table).
No delete step in this module ever runs `zpool destroy` or `zfs destroy`: removing the component
leaves every byte in place. Every value that reaches a shell is quoted with `shlex.quote`.
"""

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

import pulumi
import pulumi_proxmoxve as pve
from pulumi_command import remote

from components.proxmox.hostshell import REFRESH_INITRAMFS, STRICT, ensure_packages

BY_ID = "/dev/disk/by-id/"
UNHEALTHY_HINT = "; not touching it (docs/runbooks/replace-mirror-disk.md)"
ScrubInterval = Literal["weekly", "monthly"]


@dataclass(frozen=True)
class SnapshotPolicy:
    """How many sanoid snapshots of each kind to keep (0 disables a kind)."""

    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    """One child dataset of the pool (`<pool>/<key>`)."""

    quota_gb: int | None = None
    """Hard quota in decimal GB (12 TB = 12000)."""
    recordsize: str | None = None
    """`1M` for large media files, default (128K) otherwise."""
    snapshots: SnapshotPolicy | None = None
    nfs_export: bool = False
    """Export to `nfs_clients` (read-write, every client mapped to `nfs_owner`)."""


@dataclass(frozen=True)
class ZedAlerts:
    """Where the ZFS Event Daemon sends pool events (a faulted disk, a finished scrub).

    ZED mails `recipient`; `root` is right on Proxmox VE 8: the installer forwards root's mail
    (`/root/.forward` -> `proxmox-mail-forward`) into the notification system, whose targets
    (SMTP, Gotify, webhook) and matchers are set once under Datacenter -> Notifications. An external
    address would instead go out through the host's unconfigured postfix and be lost.

    Seam for the alerting stack: delivery to Alertmanager is a further zedlet next to the mail one,
    added here as a field (its URL) and written by `zed_script`; the mail path stays as the fallback
    that works while the cluster is down.
    """

    recipient: str = "root"
    verbose: bool = True
    """Also report healthy events (a scrub that finished clean): proves the path works."""
    interval_secs: int = 3600
    """At most one mail per event class per interval."""


@dataclass(frozen=True)
class NfsSettings:
    clients: tuple[str, ...]
    """CIDRs allowed to mount the exported datasets (the cluster subnet; never 0.0.0.0/0)."""
    owner_uid: int = 1000
    owner_gid: int = 1000


class ZfsPoolArgs(TypedDict):
    """Inputs of `ZfsPool`."""

    node_name: str
    connection: pulumi.Input[remote.ConnectionArgs]
    pool_name: str
    disk_ids: Sequence[str]
    """Names under /dev/disk/by-id (never /dev/sdX: those move between boots)."""
    datasets: Mapping[str, DatasetSpec]
    vm_dataset: str
    """Key of the dataset registered as Proxmox VM storage."""
    vm_storage_id: str
    arc_max_gb: int
    nfs: NfsSettings
    zed: NotRequired["ZedAlerts"]
    """Where ZFS events go; root's mail (forwarded by Proxmox's notification system) by default."""
    import_foreign_pool: NotRequired[bool]
    """Import the pool with `-f` when it was last used by another host (after reinstalling Proxmox).
    Off by default: an import refused for any reason stops the run and shows zpool's error."""
    serialize_after: NotRequired[Sequence[pulumi.Resource]]
    """Host commands that install packages or rebuild the boot chain and must finish first
    (`ProxmoxHost.host_chain`): dpkg's lock and the initramfs are host-wide."""
    ashift: NotRequired[int]
    compression: NotRequired[str]
    scrub: NotRequired[ScrubInterval]
    backup_dataset: NotRequired[str]
    """Key of the dataset registered as Proxmox backup (vzdump) storage."""
    backup_storage_id: NotRequired[str]


def _q(value: str) -> str:
    return shlex.quote(value)


def pool_script(pool: str, disk_ids: Sequence[str], ashift: int, compression: str, import_foreign: bool = False) -> str:
    """Adopt, import or create the mirror; print `health=<state>`. Never destroys.

    `zpool create` runs only when no disk carries a label of this pool: a pool that is found but
    cannot be imported (last used by another hostid after a reinstall, a missing disk) stops the run
    with zpool's own error instead. `import_foreign` adds `-f`, the explicit opt-in for a pool last
    imported by another host (homelab:zfs.import_foreign_pool).
    """
    if len(disk_ids) < 2:
        raise ValueError(f"a mirror needs at least two disk ids, got {len(disk_ids)}")
    p = _q(pool)
    disks = [f"{BY_ID}{d}" for d in disk_ids]
    checks = "\n".join(
        f"    [ -e {_q(path)} ] || {{ echo {_q(f'disk {path} not found: check homelab:zfs.disk_ids')} >&2; exit 1; }}"
        for path in disks
    )
    force = " -f" if import_foreign else ""
    refused = (
        f"pool {pool} is on these disks but could not be imported (error above); not creating a pool over it. "
        "If it was last used by another installation of this host, set homelab:zfs.import_foreign_pool: true "
        "(docs/runbooks/host-bring-up.md, 'Reinstalling Proxmox')"
    )
    return "\n".join(
        [
            STRICT,
            f"if zpool list -H -o name {p} >/dev/null 2>&1; then",
            f"  echo {_q(f'adopted pool {pool} (already imported)')}",
            "else",
            # Listing what the disks carry imports nothing; it fails when there is no label at all.
            f"  labels=$(zpool import -d {BY_ID} 2>/dev/null | awk '$1 == \"pool:\" {{print $2}}' || true)",
            f"  if printf '%s\\n' \"$labels\" | grep -qxF {p}; then",
            f"    if ! error=$(zpool import -d {BY_ID}{force} {p} 2>&1); then",
            "      printf '%s\\n' \"$error\" >&2",
            f"      echo {_q(refused)} >&2",
            "      exit 1",
            "    fi",
            f"    echo {_q(f'imported existing pool {pool}')}",
            "  else",
            checks,
            f"    zpool create -o ashift={int(ashift)} -O compression={_q(compression)} -O atime=off -O xattr=sa "
            f"-O acltype=posixacl {p} mirror {' '.join(_q(d) for d in disks)}",
            "  fi",
            "fi",
            f"health=$(zpool list -H -o health {p})",
            'if [ "$health" != ONLINE ]; then',
            f'  echo {_q(f"pool {pool} is ")}"$health"{_q(UNHEALTHY_HINT)} >&2',
            "  exit 1",
            "fi",
            'echo "health=$health"',
        ]
    )


def keep_data_script(what: str) -> str:
    """The delete step of every data-bearing command: say so, change nothing."""
    return f"echo {_q(f'{what} left in place: removing it from Pulumi never destroys data')}"


def datasets_script(pool: str, datasets: Mapping[str, DatasetSpec], nfs: NfsSettings) -> str:
    lines = [STRICT]
    for key, spec in sorted(datasets.items()):
        ds = _q(f"{pool}/{key}")
        create = f"zfs create {ds}"
        if spec.nfs_export:
            create += f' && chown {int(nfs.owner_uid)}:{int(nfs.owner_gid)} "$(zfs get -H -o value mountpoint {ds})"'
        lines.append(f"zfs list -H -o name {ds} >/dev/null 2>&1 || {{ {create}; }}")
        quota = f"{spec.quota_gb * 10**9}" if spec.quota_gb else "none"
        props = [f"quota={quota}"]
        if spec.recordsize:
            props.append(f"recordsize={spec.recordsize}")
        lines.append(f"zfs set {' '.join(_q(p) for p in props)} {ds}")
    return "\n".join(lines)


# modprobe reads /etc/modprobe.d in lexical order and the last `options` value wins. The Proxmox
# installer of a ZFS-root host writes its own `zfs_arc_max` to `zfs.conf`, so this file must sort
# after it or the installer's cap silently replaces ours at every boot.
ARC_CONF = "/etc/modprobe.d/zz-homelab-zfs-arc.conf"
# Where earlier versions wrote the cap (sorts before `zfs.conf`, so it never took effect at boot).
LEGACY_ARC_CONF = "/etc/modprobe.d/zfs-arc.conf"


def arc_script(arc_max_gb: int) -> str:
    arc_bytes = arc_max_gb * 1024**3
    return "\n".join(
        [
            STRICT,
            f"rm -f {LEGACY_ARC_CONF}",
            f"printf '%s\\n' {_q(f'options zfs zfs_arc_max={arc_bytes}')} > {ARC_CONF}",
            # Takes effect now; the file keeps it across reboots (initramfs: the root may be on ZFS).
            f"echo {arc_bytes} > /sys/module/zfs/parameters/zfs_arc_max",
            REFRESH_INITRAMFS,
        ]
    )


def scrub_script(pool: str, interval: ScrubInterval) -> str:
    # Changing the interval re-runs only this script (never the delete step), so it also switches
    # off the other interval's timer; otherwise both would keep scrubbing the pool.
    others = [i for i in ("weekly", "monthly") if i != interval]
    return "\n".join(
        [
            STRICT,
            *(
                f"systemctl disable --now {_q(f'zfs-scrub-{other}@{pool}.timer')} 2>/dev/null || true"
                for other in others
            ),
            f"systemctl enable --now {_q(f'zfs-scrub-{interval}@{pool}.timer')}",
        ]
    )


def scrub_undo_script(pool: str, interval: ScrubInterval) -> str:
    return f"systemctl disable --now {_q(f'zfs-scrub-{interval}@{pool}.timer')}"


def zed_script(alerts: ZedAlerts) -> str:
    """Point ZED at `alerts.recipient` and make sure root's mail reaches the notification system."""
    settings = {
        "ZED_EMAIL_ADDR": alerts.recipient,
        "ZED_NOTIFY_VERBOSE": "1" if alerts.verbose else "0",
        "ZED_NOTIFY_INTERVAL_SECS": str(int(alerts.interval_secs)),
    }
    lines = [
        STRICT,
        # ZED hands each event to `mail`; a minimal install may lack it.
        "if ! command -v mail >/dev/null; then",
        ensure_packages("bsd-mailx"),
        "fi",
        # Proxmox VE 8 forwards root's mail into its notification system; restore the hook if a
        # hand edit dropped it (an operator's own forward lines stay).
        "if [ -x /usr/bin/proxmox-mail-forward ] && ! grep -qs proxmox-mail-forward /root/.forward; then",
        "  printf '%s\\n' '|/usr/bin/proxmox-mail-forward' >> /root/.forward",
        "fi",
        "rc=/etc/zfs/zed.d/zed.rc",
    ]
    for key, value in settings.items():
        delete_existing = "/^#\\?" + key + "=/d"
        assignment = f"{key}={shlex.quote(value)}"
        lines.append(f'sed -i {_q(delete_existing)} "$rc"')
        lines.append(f"printf '%s\\n' {_q(assignment)} >> \"$rc\"")
    lines.append("systemctl restart zfs-zed")
    lines.append(f"echo {_q(f'zed-recipient={alerts.recipient}')}")
    return "\n".join(lines)


def sanoid_config(pool: str, datasets: Mapping[str, DatasetSpec]) -> str:
    sections: list[str] = []
    for key, spec in sorted(datasets.items()):
        if spec.snapshots is None:
            continue
        s = spec.snapshots
        sections.append(
            f"[{pool}/{key}]\n"
            f"  hourly = {s.hourly}\n  daily = {s.daily}\n  weekly = {s.weekly}\n  monthly = {s.monthly}\n"
            # Children too: the VM dataset holds one zvol per VM disk, and a dataset created under
            # any other one later is covered without a config change.
            "  yearly = 0\n  recursive = yes\n  autosnap = yes\n  autoprune = yes\n"
        )
    return "# Managed by Pulumi (homelab ZfsPool)\n" + "\n".join(sections)


def sanoid_script(pool: str, datasets: Mapping[str, DatasetSpec]) -> str:
    return "\n".join(
        [
            STRICT,
            ensure_packages("sanoid"),
            "mkdir -p /etc/sanoid",
            f"printf '%s' {_q(sanoid_config(pool, datasets))} > /etc/sanoid/sanoid.conf",
            "systemctl enable --now sanoid.timer",
        ]
    )


def nfs_exports(pool: str, datasets: Mapping[str, DatasetSpec], nfs: NfsSettings) -> str:
    options = f"rw,sync,no_subtree_check,all_squash,anonuid={int(nfs.owner_uid)},anongid={int(nfs.owner_gid)}"
    lines = ["# Managed by Pulumi (homelab ZfsPool)"]
    for key, spec in sorted(datasets.items()):
        if spec.nfs_export:
            clients = " ".join(f"{cidr}({options})" for cidr in nfs.clients)
            lines.append(f"/{pool}/{key} {clients}")
    return "\n".join(lines) + "\n"


def exports_file(pool: str) -> str:
    return f"/etc/exports.d/homelab-{pool}.exports"


def nfs_script(pool: str, datasets: Mapping[str, DatasetSpec], nfs: NfsSettings) -> str:
    return "\n".join(
        [
            STRICT,
            ensure_packages("nfs-kernel-server"),
            "mkdir -p /etc/exports.d",
            f"printf '%s' {_q(nfs_exports(pool, datasets, nfs))} > {_q(exports_file(pool))}",
            "systemctl enable --now nfs-server",
            "exportfs -ra",
        ]
    )


class ZfsPool(pulumi.ComponentResource):
    """The ZFS mirror, its datasets, Proxmox storage, ARC cap, scrubs, alerts, snapshots and NFS."""

    pool_name: pulumi.Output[str]
    health: pulumi.Output[str]
    vm_storage_id: pulumi.Output[str]
    nfs_exports: pulumi.Output[list[str]]
    """Exported paths (`/tank/media`)."""
    host_chain: pulumi.Resource
    """The pool's last host command that installs packages or rebuilds the boot chain: later host
    commands of other components (the monitoring exporter) depend on it, continuing the chain."""

    def __init__(self, name: str, args: ZfsPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:proxmox:ZfsPool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        data_bearing = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True, retain_on_delete=True))
        conn = args["connection"]
        pool = args["pool_name"]
        datasets = args["datasets"]
        nfs = args["nfs"]
        for key in (args["vm_dataset"], args.get("backup_dataset")):
            if key is not None and key not in datasets:
                raise ValueError(f"dataset {key!r} is not among the pool's datasets ({', '.join(sorted(datasets))})")
        interval: ScrubInterval = args.get("scrub", "weekly")

        pool_cmd = remote.Command(
            f"{name}-pool",
            connection=conn,
            create=pool_script(
                pool,
                args["disk_ids"],
                args.get("ashift", 12),
                args.get("compression", "lz4"),
                import_foreign=args.get("import_foreign_pool", False),
            ),
            delete=keep_data_script(f"ZFS pool {pool}"),
            opts=data_bearing,
        )
        self.health = pool_cmd.stdout.apply(_health)

        datasets_cmd = remote.Command(
            f"{name}-datasets",
            connection=conn,
            create=datasets_script(pool, datasets, nfs),
            delete=keep_data_script(f"datasets of {pool}"),
            opts=pulumi.ResourceOptions.merge(data_bearing, pulumi.ResourceOptions(depends_on=[pool_cmd])),
        )
        after_datasets = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[datasets_cmd]))
        # A replaced command (`pulumi up --replace`, a rename) would by default run the new create and
        # then the old delete, undoing what was just set up (exports gone, snapshots stopped, ARC
        # uncapped). Deleting first keeps the host in the configured state.
        undo_first = pulumi.ResourceOptions(delete_before_replace=True)

        # Unregistering a storage only edits /etc/pve/storage.cfg, but VMs and backups reference it:
        # protect it, and keep it when the component is removed.
        keep = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
        storage = pve.storage.Zfspool(
            f"{name}-vm-storage",
            resource_id=args["vm_storage_id"],
            zfs_pool=f"{pool}/{args['vm_dataset']}",
            contents=["images", "rootdir"],
            nodes=[args["node_name"]],
            thin_provision=True,
            blocksize="16k",
            opts=pulumi.ResourceOptions.merge(after_datasets, keep),
        )
        self.vm_storage_id = storage.resource_id

        backup_dataset = args.get("backup_dataset")
        if backup_dataset is not None:
            pve.storage.Directory(
                f"{name}-backup-storage",
                resource_id=args.get("backup_storage_id", f"{pool}-backups"),
                path=f"/{pool}/{backup_dataset}",
                contents=["backup"],
                nodes=[args["node_name"]],
                create_base_path=False,
                opts=pulumi.ResourceOptions.merge(after_datasets, keep),
            )

        remote.Command(
            f"{name}-scrub",
            connection=conn,
            create=scrub_script(pool, interval),
            delete=scrub_undo_script(pool, interval),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[pool_cmd], delete_before_replace=True)
            ),
        )

        # Package installs (bsd-mailx, sanoid, nfs-kernel-server) and the initramfs rebuild run one
        # after another, after the host's own (dpkg's lock and /boot are host-wide); deletes unwind
        # in the reverse order, so they never overlap either.
        chain: list[pulumi.Resource] = list(args.get("serialize_after", ()))

        def next_in_chain(*after: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(depends_on=[*after, *chain[-1:]])

        chain.append(
            remote.Command(
                f"{name}-zed",
                connection=conn,
                create=zed_script(args.get("zed", ZedAlerts())),
                opts=pulumi.ResourceOptions.merge(child, next_in_chain(pool_cmd)),
            )
        )
        chain.append(
            remote.Command(
                f"{name}-snapshots",
                connection=conn,
                create=sanoid_script(pool, datasets),
                # Stop taking snapshots; the existing ones stay (they are data).
                delete="systemctl disable --now sanoid.timer",
                opts=pulumi.ResourceOptions.merge(
                    after_datasets, pulumi.ResourceOptions.merge(undo_first, next_in_chain(datasets_cmd))
                ),
            )
        )
        exported = [f"/{pool}/{key}" for key, spec in sorted(datasets.items()) if spec.nfs_export]
        if exported:
            chain.append(
                remote.Command(
                    f"{name}-nfs",
                    connection=conn,
                    create=nfs_script(pool, datasets, nfs),
                    delete=f"rm -f {_q(exports_file(pool))} && exportfs -ra",
                    opts=pulumi.ResourceOptions.merge(
                        child, pulumi.ResourceOptions.merge(undo_first, next_in_chain(datasets_cmd))
                    ),
                )
            )
        chain.append(
            remote.Command(
                f"{name}-arc",
                connection=conn,
                create=arc_script(args["arc_max_gb"]),
                delete=f"{STRICT}\nrm -f {ARC_CONF} {LEGACY_ARC_CONF}\n{REFRESH_INITRAMFS}",
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions.merge(undo_first, next_in_chain())),
            )
        )
        self.nfs_exports = pulumi.Output.from_input(exported)
        self.pool_name = pulumi.Output.from_input(pool)
        self.host_chain = chain[-1]

        self.register_outputs(
            {
                "pool_name": self.pool_name,
                "health": self.health,
                "vm_storage_id": self.vm_storage_id,
                "nfs_exports": self.nfs_exports,
            }
        )


def _health(stdout: str) -> str:
    for line in stdout.splitlines():
        if line.startswith("health="):
            return line.removeprefix("health=").strip()
    return "UNKNOWN"
