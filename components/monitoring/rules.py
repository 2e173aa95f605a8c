"""Alerts as data: the Prometheus rule groups generated from the threshold table and the catalog.

Pure functions, no Pulumi: the same groups become `PrometheusRule` objects on PROD
(`MonitoringStack`) and plain rule files that `promtool check rules` / `promtool test rules` read in
the tests, so what is validated is exactly what is deployed.

Every alert carries `severity` (`critical` -> ntfy high priority + Telegram at once, `warning` -> the
ntfy digest) and a `runbook` anchor in `docs/runbooks/alerts.md`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from components.monitoring.alloy import INTERMITTENT, LOGIN_FAILED_METRIC, SCHEDULE_LABEL
from stacks.config.monitoring import ThresholdsConfig, duration_seconds

Severity = Literal["critical", "warning"]
RuleGroup = dict[str, Any]

RUNBOOK = "docs/runbooks/alerts.md"
HOST_JOB = "proxmox-host"
"""Scrape job of the node exporter on the Proxmox host (a `ScrapeConfig` on PROD)."""
BACKUP_SUCCESS_METRIC = "homelab_backup_last_success_timestamp_seconds"
BACKUP_STATUS_METRIC = "homelab_backup_last_status"
"""Written by every backup job (textfile collector on the host, or pushed in-cluster):
`..._last_success_timestamp_seconds{job}` = Unix time of the last good run, `..._last_status{job}` =
1 after a good run, 0 after a failed one."""
VELERO_SUCCESS_METRIC = "velero_backup_last_successful_timestamp"
VELERO_FAILURE_METRICS = ("velero_backup_failure_total", "velero_backup_partial_failure_total")
VELERO_ATTEMPT_METRIC = "velero_backup_attempt_total"
"""Velero's own metrics, per `schedule` (its server's :8085). Velero initialises the counters of every
schedule at start, but `..._last_successful_timestamp` only once a backup of it has completed, and it
sets `velero_backup_last_status` to 0 at start too, so that gauge cannot tell a failure from a restart."""
CRONJOB_SUCCESS_METRIC = "kube_cronjob_status_last_successful_time"
CRONJOB_SCHEDULE_METRIC = "kube_cronjob_status_last_schedule_time"
CRONJOB_CREATED_METRIC = "kube_cronjob_created"
"""kube-state-metrics' CronJob series, per `namespace` and `cronjob`."""
DRILL_JOB = "restore-drill"
"""The `job` of the monthly restore drill (components/proxmox/backups.py): it runs once a month, so its
age has its own threshold, not the daily jobs' one."""
ZED_METRIC = "homelab_zfs_zed_last_event_timestamp_seconds"
SCRUB_ERRORS_METRIC = "homelab_zfs_pool_errors"
_FS = 'fstype!~"tmpfs|overlay|squashfs|ramfs|nsfs|devtmpfs|fuse.lxcfs",mountpoint!~"/run.*|/boot/efi"'
_REMOTE_UP = f'job="node-exporter",cluster!="",{SCHEDULE_LABEL}!="{INTERMITTENT}"'
_ZED_CLASSES = "statechange|io|checksum|data|deadman|probe_failure|vdev.unknown|vdev.open_failed|vdev.bad_label"


@dataclass(frozen=True)
class ProbedService:
    """One catalog service as the blackbox exporter probes it."""

    name: str
    severity: Severity


@dataclass(frozen=True)
class BackupCronJob:
    """A backup that runs as a Kubernetes CronJob (the etcd snapshots), watched through kube-state-metrics."""

    namespace: str
    name: str
    deadline: str
    """How long one run may take (its Job's `activeDeadlineSeconds`): a run not done by then failed."""


@dataclass(frozen=True)
class RuleContext:
    """What the generated rules need to know beyond the thresholds."""

    pool: str
    """The ZFS pool on the Proxmox host."""
    services: Sequence[ProbedService] = ()
    backup_jobs: Sequence[str] = ()
    backup_cron_jobs: Sequence[BackupCronJob] = ()
    home_cluster: str = "prod"
    """The `cluster` label of PROD's own series in alerts (remote writers bring theirs)."""
    tunnels: Sequence[str] = field(default_factory=lambda: ("prod", "cloud"))
    """Every tunnel's connector reports `cloudflared_tunnel_ha_connections{tunnel}`: PROD's pods
    through a PodMonitor, the cloud connector through the management VM's Alloy."""


def _seconds(duration: str) -> str:
    """Durations as Prometheus prints them back (`180s` -> `3m`), so promtool and the tests agree."""
    seconds = duration_seconds(duration)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _alert(  # noqa: PLR0917 (each call reads as one row of the alert table)
    name: str,
    expr: str,
    after: str,
    severity: Severity,
    summary: str,
    description: str,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "alert": name,
        "expr": expr,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{RUNBOOK}#{name.lower()}",
        },
    }
    if duration_seconds(after) > 0:
        rule["for"] = _seconds(after)
    return rule


def _on_cluster(expr: str, home: str) -> str:
    """`expr` with a `cluster` label on every result: remote writers add theirs, PROD's own series have
    none and get `home`, so every alert can say where it happened."""
    return f'label_replace({expr}, "cluster", "{home}", "cluster", "")'


def _resources(t: ThresholdsConfig) -> RuleGroup:
    used = f"100 * (1 - node_filesystem_avail_bytes{{{_FS}}} / node_filesystem_size_bytes{{{_FS}}})"
    return {
        "name": "homelab-resources",
        "rules": [
            _alert(
                "DiskUsageWarning",
                f"{used} > {t.disk_warning.percent:g}",
                t.disk_warning.after,
                "warning",
                f"Disk {{{{ $labels.mountpoint }}}} on {{{{ $labels.instance }}}} is over {t.disk_warning.percent:g} %",
                "Free space is running out.",
            ),
            _alert(
                "DiskUsageCritical",
                f"{used} > {t.disk_critical.percent:g}",
                t.disk_critical.after,
                "critical",
                "Disk {{ $labels.mountpoint }} on {{ $labels.instance }} is over "
                f"{t.disk_critical.percent:g} %",
                "Writes fail soon; free space or grow the volume.",
            ),
            _alert(
                "MemoryHigh",
                f"100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > {t.memory.percent:g}",
                t.memory.after,
                "warning",
                f"Memory on {{{{ $labels.instance }}}} is over {t.memory.percent:g} %",
                "Little RAM is left (the host's ZFS ARC counts as used).",
            ),
            _alert(
                "CpuHigh",
                f'100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[5m]))) > {t.cpu.percent:g}',
                t.cpu.after,
                "warning",
                f"CPU on {{{{ $labels.instance }}}} is over {t.cpu.percent:g} %",
                "The CPU has been saturated for a sustained period.",
            ),
            _alert(
                "NodeNotReady",
                'kube_node_status_condition{condition="Ready",status="true"} == 0',
                t.node_down.after,
                "critical",
                "Kubernetes node {{ $labels.node }} is not Ready",
                "The kubelet stopped reporting Ready.",
            ),
            _alert(
                "HostDown",
                f'up{{job="{HOST_JOB}"}} == 0 or absent(up{{job="{HOST_JOB}"}})',
                t.node_down.after,
                "critical",
                "The Proxmox host's exporter is unreachable",
                "PROD cannot scrape the host's node exporter: the host, its exporter or the LAN is down.",
            ),
        ],
    }


def _storage(t: ThresholdsConfig, ctx: RuleContext) -> RuleGroup:
    pool = ctx.pool
    return {
        "name": "homelab-storage",
        "rules": [
            _alert(
                "ZfsPoolNotOnline",
                'node_zfs_zpool_state{state!="online"} == 1',
                t.zfs_pool.after,
                "critical",
                "ZFS pool {{ $labels.zpool }} is {{ $labels.state }}",
                "The mirror lost redundancy or a device; see `zpool status`.",
            ),
            _alert(
                "ZfsPoolMissing",
                f'absent(node_zfs_zpool_state{{job="{HOST_JOB}",zpool="{pool}",state="online"}} == 1)',
                "5m",
                "critical",
                f"ZFS pool {pool} is not reported online",
                "The pool is not imported, or the host's ZFS collector stopped reporting.",
                {"zpool": pool},
            ),
            _alert(
                "ZfsPoolErrors",
                f"{SCRUB_ERRORS_METRIC} > 0",
                t.zfs_errors.after,
                "critical",
                "ZFS pool {{ $labels.pool }} has {{ $labels.kind }} errors",
                "Scrub or device error counters are non-zero; data may be damaged.",
            ),
            _alert(
                "ZfsEvent",
                f'time() - {ZED_METRIC}{{subclass=~"{_ZED_CLASSES}"}} < {duration_seconds(t.zed_event_window)}',
                "0s",
                "critical",
                "ZFS event {{ $labels.subclass }} on pool {{ $labels.pool }}",
                "ZED reported a fault event; see `zpool events -v` on the host.",
            ),
            _alert(
                "SmartFailure",
                "smartmon_device_smart_healthy == 0",
                t.smart.after,
                "critical",
                "SMART reports disk {{ $labels.disk }} failing",
                "Replace the disk (docs/runbooks/replace-mirror-disk.md).",
            ),
        ],
    }


def _backups(t: ThresholdsConfig, ctx: RuleContext) -> RuleGroup:
    rules = [
        _alert(
            "BackupFailed",
            f"{BACKUP_STATUS_METRIC} == 0",
            t.backup_failed.after,
            "critical",
            "Backup job {{ $labels.job }} failed",
            "Its last run reported failure.",
        ),
        _alert(
            "BackupTooOld",
            f'time() - {BACKUP_SUCCESS_METRIC}{{job!="{DRILL_JOB}"}} > {duration_seconds(t.backup_age.age)}',
            t.backup_age.after,
            "critical",
            "Backup job {{ $labels.job }} has not succeeded for over " + _seconds(t.backup_age.age),
            "Its last successful run is too old.",
        ),
        _alert(
            "RestoreDrillTooOld",
            f'time() - {BACKUP_SUCCESS_METRIC}{{job="{DRILL_JOB}"}} > {duration_seconds(t.drill_age.age)}',
            t.drill_age.after,
            "critical",
            "The restore drill has not succeeded for over " + _seconds(t.drill_age.age),
            "The monthly drill did not run, or failed, last month: the backups are unproven.",
        ),
    ]
    for job in sorted(ctx.backup_jobs):
        rules.append(
            _alert(
                "BackupNotReporting",
                f'absent({BACKUP_SUCCESS_METRIC}{{job="{job}"}})',
                "1h",
                "warning",
                f"Backup job {job} reports no result",
                "The job never ran, or its result file is missing.",
                {"job": job},
            )
        )
    age = duration_seconds(t.backup_age.age)
    failures = " + ".join(f'increase({m}{{schedule!=""}}[1h])' for m in VELERO_FAILURE_METRICS)
    here = ctx.home_cluster
    rules += [
        _alert(
            "VeleroBackupFailed",
            # Counters, not `velero_backup_last_status` (0 after every Velero restart). Fires for the hour
            # after a failed or partially failed run; VeleroBackupTooOld keeps the state afterwards.
            _on_cluster(f"sum by (cluster, schedule) ({failures}) > 0", here),
            t.backup_failed.after,
            "critical",
            "Velero backup {{ $labels.schedule }} on {{ $labels.cluster }} failed",
            "A run failed or partially failed within the last hour: `velero backup describe` its newest backup.",
        ),
        _alert(
            "VeleroBackupTooOld",
            _on_cluster(f'time() - {VELERO_SUCCESS_METRIC}{{schedule!=""}} > {age}', here),
            t.backup_age.after,
            "critical",
            "Velero backup {{ $labels.schedule }} on {{ $labels.cluster }} has not succeeded for over "
            + _seconds(t.backup_age.age),
            "Its newest completed backup is too old.",
        ),
        _alert(
            "VeleroBackupNeverSucceeded",
            # A schedule Velero knows (its counters exist) without a completed backup, for a whole period.
            _on_cluster(
                f'{VELERO_ATTEMPT_METRIC}{{schedule!=""}} unless on (cluster, schedule) {VELERO_SUCCESS_METRIC}', here
            ),
            t.backup_age.age,
            "critical",
            "Velero backup {{ $labels.schedule }} on {{ $labels.cluster }} has never succeeded",
            "No backup of the schedule has completed since Velero started with it.",
        ),
    ]
    for job in sorted(ctx.backup_cron_jobs, key=lambda j: (j.namespace, j.name)):
        match = f'namespace="{job.namespace}",cronjob="{job.name}"'
        what = f"{job.namespace}/{job.name}"
        own = {"namespace": job.namespace, "cronjob": job.name}
        rules += [
            _alert(
                "BackupCronJobFailed",
                # The newest run started after the newest success and is past its deadline: it failed.
                _on_cluster(f"{CRONJOB_SCHEDULE_METRIC}{{{match}}} > {CRONJOB_SUCCESS_METRIC}{{{match}}}", here),
                f"{duration_seconds(job.deadline) + 900}s",
                "critical",
                f"Backup job {what} on {{{{ $labels.cluster }}}} failed",
                f"Its newest run did not succeed within its deadline: `kubectl -n {job.namespace} get jobs`.",
                own,
            ),
            _alert(
                "BackupCronJobTooOld",
                _on_cluster(
                    f"(time() - {CRONJOB_SUCCESS_METRIC}{{{match}}} > {age}) "
                    f"or ((time() - {CRONJOB_CREATED_METRIC}{{{match}}} > {age}) "
                    f"unless {CRONJOB_SUCCESS_METRIC}{{{match}}})",
                    here,
                ),
                t.backup_age.after,
                "critical",
                f"Backup job {what} on {{{{ $labels.cluster }}}} has not succeeded for over "
                + _seconds(t.backup_age.age),
                "Its last success is too old, or it never succeeded since it was created.",
                own,
            ),
        ]
    return {"name": "homelab-backups", "rules": rules}


def _platform(t: ThresholdsConfig, ctx: RuleContext) -> RuleGroup:
    # Seconds left on the public certificates (blackbox) and on cert-manager's in-cluster ones.
    soon = (
        "(probe_ssl_earliest_cert_expiry - time()) or (certmanager_certificate_expiration_timestamp_seconds - time())"
    )
    return {
        "name": "homelab-platform",
        "rules": [
            _alert(
                "CertificateExpiringSoon",
                f"({soon}) < {duration_seconds(t.cert_warning.age)}",
                t.cert_warning.after,
                "warning",
                "Certificate of {{ $labels.instance }}{{ $labels.name }} expires within "
                + _seconds(t.cert_warning.age),
                "Check cert-manager or the Cloudflare edge certificate.",
            ),
            _alert(
                "CertificateExpiryCritical",
                f"({soon}) < {duration_seconds(t.cert_critical.age)}",
                t.cert_critical.after,
                "critical",
                "Certificate of {{ $labels.instance }}{{ $labels.name }} expires within "
                + _seconds(t.cert_critical.age),
                "Renewal has failed; act now.",
            ),
            _alert(
                "ArgoCdAppDegraded",
                'argocd_app_info{health_status=~"Degraded|Missing"} == 1',
                t.argocd_degraded.after,
                "warning",
                "Argo CD application {{ $labels.name }} is {{ $labels.health_status }}",
                "Sync status {{ $labels.sync_status }}; see the application in Argo CD.",
            ),
            _alert(
                "AuthentikFailedLoginSpike",
                # Counted by the management VM's Alloy from Authentik's `login_failed` events (Authentik
                # exports no such metric); `sum` drops the per-restart series of the counter.
                f"sum(increase({LOGIN_FAILED_METRIC}[{_seconds(t.failed_logins.window)}])) > {t.failed_logins.count}",
                "0s",
                "critical",
                f"Authentik: more than {t.failed_logins.count} failed logins in {_seconds(t.failed_logins.window)}",
                "A password-guessing attempt is likely (security incident).",
            ),
            _alert(
                "TunnelConnectorDown",
                " or ".join(
                    f'(max(cloudflared_tunnel_ha_connections{{tunnel="{tunnel}"}}) < 1 '
                    f'or absent(cloudflared_tunnel_ha_connections{{tunnel="{tunnel}"}}))'
                    for tunnel in sorted(ctx.tunnels)
                ),
                t.tunnel_down.after,
                "critical",
                "A Cloudflare Tunnel connector has no edge connection",
                "Services behind the tunnel are unreachable from outside (or, for the cloud tunnel, the "
                "management VM's collector stopped reporting).",
            ),
            _alert(
                "TelemetrySourceSilent",
                # Remote writers (CLOUD, the management VM, DEV) add a `cluster` label; PROD's own series
                # have none. DEV is powered off by design outside the host's testing mode: its collector
                # marks its series `schedule="intermittent"` and its silence is not an alert.
                f"group by (cluster) (last_over_time(up{{{_REMOTE_UP}}}[{_seconds(t.telemetry_silent.age)}])) "
                f"unless group by (cluster) (up{{{_REMOTE_UP}}})",
                t.telemetry_silent.after,
                "warning",
                "Telemetry from {{ $labels.cluster }} stopped arriving",
                "Its collector, the machine route through the PROD tunnel or the service token fails; "
                "its alerts cannot fire meanwhile.",
            ),
        ],
    }


def _services(t: ThresholdsConfig, ctx: RuleContext) -> RuleGroup:
    return {
        "name": "homelab-services",
        "rules": [
            _alert(
                "ServiceDown",
                f'probe_success{{service="{service.name}"}} == 0',
                t.service_down.after,
                service.severity,
                f"{service.name} is down ({{{{ $labels.path }}}} probe)",
                "The {{ $labels.path }} probe of {{ $labels.instance }} fails.",
                {"service": service.name},
            )
            for service in sorted(ctx.services, key=lambda s: s.name)
        ],
    }


def rule_groups(thresholds: ThresholdsConfig, ctx: RuleContext) -> dict[str, list[RuleGroup]]:
    """Rule files by name (`<name>` -> a `PrometheusRule` / a promtool rule file) -> their groups."""
    files = {
        "homelab-resources": [_resources(thresholds)],
        "homelab-storage": [_storage(thresholds, ctx)],
        "homelab-backups": [_backups(thresholds, ctx)],
        "homelab-platform": [_platform(thresholds, ctx)],
    }
    if ctx.services:
        files["homelab-services"] = [_services(thresholds, ctx)]
    return files
