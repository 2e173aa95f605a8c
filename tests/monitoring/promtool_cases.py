"""`promtool test rules` cases for every generated rule file: each alert fires on a series that
breaks its threshold for its hold time, and stays silent on a healthy series (and before the hold
time is over). Expected labels and annotations come from the generated rule itself, so a changed
expression, threshold, hold time or label fails here."""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from components.monitoring.alloy import LOGIN_FAILED_METRIC
from components.monitoring.rules import RuleGroup

_LABEL_REF = re.compile(r"\{\{ \$labels\.([a-z_]+) \}\}")

H = 'job="proxmox-host",instance="pve:9100"'
ETCD = 'namespace="etcd-backup",cronjob="etcd-backup"'
W = 'job="node-exporter",instance="prod-worker-1"'
VM_ALLOY = (
    'job="alloy",instance="oci-mgmt",cluster="oci-mgmt",service="authentik-server",'
    'component_id="loki.process.authentik"'
)


def _rule(files: Mapping[str, list[RuleGroup]], alert: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The rule named `alert` whose own labels (besides severity) the series carries: the per-service
    `ServiceDown` rules share a name and differ by their `service` label."""
    for groups in files.values():
        for group in groups:
            for rule in group["rules"]:
                own = {k: v for k, v in rule["labels"].items() if k != "severity"}
                if rule["alert"] == alert and all(labels.get(k, v) == v for k, v in own.items()):
                    return rule
    raise KeyError(alert)


def _labels(selector: str) -> dict[str, str]:
    return dict(re.findall(r'([a-z_]+)="([^"]*)"', selector))


def fires(files: Mapping[str, list[RuleGroup]], alert: str, at: str, *series_labels: str) -> dict[str, Any]:
    """An `alert_rule_test` expecting `alert` at `at` for each label set (none: it must stay silent)."""
    expected = []
    for selector in series_labels:
        rule = _rule(files, alert, _labels(selector))
        labels = {**_labels(selector), **rule["labels"]}
        annotations = {
            key: _LABEL_REF.sub(lambda m, labels=labels: labels.get(m.group(1), ""), value)
            for key, value in rule["annotations"].items()
        }
        expected.append({"exp_labels": labels, "exp_annotations": annotations})
    return {"eval_time": at, "alertname": alert, "exp_alerts": expected}


def silent(files: Mapping[str, list[RuleGroup]], alert: str, at: str) -> dict[str, Any]:
    return fires(files, alert, at)


def _series(items: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"series": series, "values": values} for series, values in items]


def unit_tests(files: Mapping[str, list[RuleGroup]]) -> dict[str, Any]:
    """One promtool test file covering every rule file (one promtool invocation)."""
    fs_host = f'{H},mountpoint="/",fstype="ext4"'
    fs_ok = f'{W},mountpoint="/var",fstype="xfs"'
    tests: list[dict[str, Any]] = [
        {  # homelab-resources: disk, memory, CPU
            "interval": "1m",
            "input_series": _series(
                [
                    (f"node_filesystem_avail_bytes{{{fs_host}}}", "5x40"),  # 95 % used
                    (f"node_filesystem_size_bytes{{{fs_host}}}", "100x40"),
                    (f"node_filesystem_avail_bytes{{{fs_ok}}}", "50x40"),  # 50 % used
                    (f"node_filesystem_size_bytes{{{fs_ok}}}", "100x40"),
                    (f'node_filesystem_avail_bytes{{{W},mountpoint="/run",fstype="tmpfs"}}', "0x40"),
                    (f'node_filesystem_size_bytes{{{W},mountpoint="/run",fstype="tmpfs"}}', "100x40"),
                    (f"node_memory_MemAvailable_bytes{{{H}}}", "10x40"),  # 90 % used
                    (f"node_memory_MemTotal_bytes{{{H}}}", "100x40"),
                    (f"node_memory_MemAvailable_bytes{{{W}}}", "40x40"),
                    (f"node_memory_MemTotal_bytes{{{W}}}", "100x40"),
                    (f'node_cpu_seconds_total{{{H},cpu="0",mode="idle"}}', "0+3x40"),  # 5 % idle
                    (f'node_cpu_seconds_total{{{W},cpu="0",mode="idle"}}', "0+54x40"),  # 90 % idle
                ]
            ),
            "alert_rule_test": [
                silent(files, "DiskUsageCritical", "4m"),
                fires(files, "DiskUsageCritical", "10m", fs_host),
                silent(files, "DiskUsageWarning", "10m"),
                fires(files, "DiskUsageWarning", "20m", fs_host),
                silent(files, "MemoryHigh", "9m"),
                fires(files, "MemoryHigh", "15m", H),
                silent(files, "CpuHigh", "10m"),
                fires(files, "CpuHigh", "25m", 'instance="pve:9100"'),
            ],
        },
        {  # node and host down
            "interval": "1m",
            "input_series": _series(
                [
                    ('kube_node_status_condition{node="prod-worker-1",condition="Ready",status="true"}', "0x10"),
                    ('kube_node_status_condition{node="prod-cp-1",condition="Ready",status="true"}', "1x10"),
                    (f"up{{{H}}}", "1 1 0x10"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "NodeNotReady", "2m"),
                fires(files, "NodeNotReady", "4m", 'node="prod-worker-1",condition="Ready",status="true"'),
                silent(files, "HostDown", "4m"),
                fires(files, "HostDown", "6m", H),
            ],
        },
        {  # host exporter never scraped at all
            "interval": "1m",
            "input_series": _series([('up{job="node-exporter",instance="prod-worker-1"}', "1x10")]),
            "alert_rule_test": [fires(files, "HostDown", "5m", 'job="proxmox-host"')],
        },
        {  # homelab-storage: pool state, errors, ZED events, SMART
            "interval": "1m",
            "input_series": _series(
                [
                    (f'node_zfs_zpool_state{{{H},zpool="tank",state="online"}}', "1 1 0x10"),
                    (f'node_zfs_zpool_state{{{H},zpool="tank",state="degraded"}}', "0 0 1x10"),
                    ('homelab_zfs_pool_errors{pool="tank",kind="checksum"}', "0 0 0 2x10"),
                    ('homelab_zfs_pool_errors{pool="tank",kind="read"}', "0x12"),
                    ('homelab_zfs_zed_last_event_timestamp_seconds{pool="tank",subclass="statechange"}', "120x12"),
                    ('homelab_zfs_zed_last_event_timestamp_seconds{pool="tank",subclass="scrub_finish"}', "120x12"),
                    ('smartmon_device_smart_healthy{disk="/dev/sda",type="sat"}', "1 1 0x10"),
                    ('smartmon_device_smart_healthy{disk="/dev/sdb",type="sat"}', "1x12"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "ZfsPoolNotOnline", "2m"),
                fires(files, "ZfsPoolNotOnline", "4m", f'{H},zpool="tank",state="degraded"'),
                silent(files, "ZfsPoolMissing", "6m"),
                fires(files, "ZfsPoolMissing", "8m", ""),
                silent(files, "ZfsPoolErrors", "2m"),
                fires(files, "ZfsPoolErrors", "4m", 'pool="tank",kind="checksum"'),
                fires(files, "ZfsEvent", "5m", 'pool="tank",subclass="statechange"'),
                silent(files, "SmartFailure", "1m"),
                fires(files, "SmartFailure", "3m", 'disk="/dev/sda",type="sat"'),
            ],
        },
        {  # a ZED event 50 min before the start: alerting until it is older than the 1h window
            "interval": "1m",
            "input_series": _series(
                [('homelab_zfs_zed_last_event_timestamp_seconds{pool="tank",subclass="io"}', "-3000x20")]
            ),
            "alert_rule_test": [
                fires(files, "ZfsEvent", "5m", 'pool="tank",subclass="io"'),
                silent(files, "ZfsEvent", "15m"),
            ],
        },
        {  # homelab-backups
            "interval": "1m",
            "input_series": _series(
                [
                    ('homelab_backup_last_status{job="velero-daily"}', "1 1 0x60"),
                    ('homelab_backup_last_status{job="zfs-offsite"}', "1x60"),
                    (
                        'homelab_backup_last_success_timestamp_seconds{job="velero-daily"}',
                        "-93000x60",
                    ),  # 25 h 50 min old, never renewed
                    (
                        'homelab_backup_last_success_timestamp_seconds{job="zfs-offsite"}',
                        "-93000+60x60",
                    ),  # as old, but renewed every minute
                ]
            ),
            "alert_rule_test": [
                silent(files, "BackupFailed", "5m"),
                fires(files, "BackupFailed", "30m", 'job="velero-daily"'),
                silent(files, "BackupTooOld", "15m"),
                fires(files, "BackupTooOld", "25m", 'job="velero-daily"'),
                silent(files, "BackupNotReporting", "2h"),
            ],
        },
        {  # the monthly restore drill: 26 h old is normal for it, 33 days is not
            "interval": "1m",
            "input_series": _series(
                [
                    # 27 h old and never renewed: the daily jobs' age does not apply to the drill.
                    ('homelab_backup_last_success_timestamp_seconds{job="restore-drill"}', "-97200x100"),
                    ('homelab_backup_last_status{job="restore-drill"}', "1x100"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "BackupTooOld", "30m"),
                silent(files, "RestoreDrillTooOld", "90m"),
            ],
        },
        {  # ... and a drill whose last success is over 33 days old
            "interval": "1m",
            "input_series": _series(
                [('homelab_backup_last_success_timestamp_seconds{job="restore-drill"}', "-2850700x100")]
            ),
            "alert_rule_test": [
                silent(files, "RestoreDrillTooOld", "50m"),
                fires(files, "RestoreDrillTooOld", "75m", 'job="restore-drill"'),
            ],
        },
        {  # an expected backup job that never reported
            "interval": "1m",
            "input_series": _series([('homelab_backup_last_status{job="velero-daily"}', "1x100")]),
            "alert_rule_test": [fires(files, "BackupNotReporting", "70m", 'job="zfs-offsite"')],
        },
        {  # Velero: a failed run on PROD (no cluster label: the home cluster's), a stale schedule on CLOUD
            "interval": "1m",
            "input_series": _series(
                [
                    ('velero_backup_failure_total{schedule="critical",job="velero"}', "0x10 1x60"),
                    ('velero_backup_partial_failure_total{schedule="critical",job="velero"}', "0x70"),
                    ('velero_backup_failure_total{schedule="critical",cluster="homelab-cloud"}', "0x70"),
                    ('velero_backup_partial_failure_total{schedule="critical",cluster="homelab-cloud"}', "0x70"),
                    (
                        'velero_backup_last_successful_timestamp{schedule="important",cluster="homelab-cloud"}',
                        "-93000x60",
                    ),
                    ('velero_backup_last_successful_timestamp{schedule="critical"}', "-93000+60x60"),
                    ('velero_backup_attempt_total{schedule="critical"}', "0x60"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "VeleroBackupFailed", "8m"),
                fires(files, "VeleroBackupFailed", "20m", 'cluster="homelab-prod",schedule="critical"'),
                silent(files, "VeleroBackupTooOld", "15m"),
                fires(files, "VeleroBackupTooOld", "25m", 'schedule="important",cluster="homelab-cloud"'),
                silent(files, "VeleroBackupNeverSucceeded", "50m"),
            ],
        },
        {  # the etcd snapshot CronJob: its newest run on PROD failed, CLOUD's succeeded
            "interval": "1m",
            "input_series": _series(
                [
                    (f"kube_cronjob_status_last_schedule_time{{{ETCD}}}", "100x200"),
                    (f"kube_cronjob_status_last_successful_time{{{ETCD}}}", "50x200"),
                    (f'kube_cronjob_status_last_schedule_time{{{ETCD},cluster="homelab-cloud"}}', "100x200"),
                    (f'kube_cronjob_status_last_successful_time{{{ETCD},cluster="homelab-cloud"}}', "400x200"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "BackupCronJobFailed", "70m"),
                fires(files, "BackupCronJobFailed", "80m", f'{ETCD},cluster="homelab-prod"'),
                silent(files, "BackupCronJobTooOld", "80m"),
            ],
        },
        {  # ... PROD's last success is over a day old, CLOUD's never came since it was created
            "interval": "1m",
            "input_series": _series(
                [
                    (f"kube_cronjob_status_last_successful_time{{{ETCD}}}", "-93000x60"),
                    (f"kube_cronjob_created{{{ETCD}}}", "-200000x60"),
                    (f'kube_cronjob_created{{{ETCD},cluster="homelab-cloud"}}', "-93000x60"),
                    (f'kube_cronjob_created{{{ETCD},cluster="homelab-dev"}}', "-200000x60"),
                    (f'kube_cronjob_status_last_successful_time{{{ETCD},cluster="homelab-dev"}}', "-100+60x60"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "BackupCronJobTooOld", "15m"),
                fires(
                    files,
                    "BackupCronJobTooOld",
                    "25m",
                    f'{ETCD},cluster="homelab-prod"',
                    f'{ETCD},cluster="homelab-cloud"',
                ),
            ],
        },
        {  # homelab-platform: certificates, Argo CD, tunnels
            "interval": "1m",
            "input_series": _series(
                [
                    ('probe_ssl_earliest_cert_expiry{instance="https://cloud.example.net/status.php"}', "864000x100"),
                    ('probe_ssl_earliest_cert_expiry{instance="https://music.example.net/ping"}', "99999999x100"),
                    ('certmanager_certificate_expiration_timestamp_seconds{name="bitwarden-tls"}', "172800x100"),
                    ('argocd_app_info{name="immich",health_status="Degraded",sync_status="Synced"}', "1x100"),
                    ('argocd_app_info{name="glance",health_status="Healthy",sync_status="Synced"}', "1x100"),
                    ('cloudflared_tunnel_ha_connections{tunnel="prod",pod="a"}', "4 4 0x100"),
                    ('cloudflared_tunnel_ha_connections{tunnel="cloud",pod="b"}', "4x100"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "CertificateExpiringSoon", "30m"),
                fires(
                    files,
                    "CertificateExpiringSoon",
                    "70m",
                    'instance="https://cloud.example.net/status.php"',
                    'name="bitwarden-tls"',
                ),
                silent(files, "CertificateExpiryCritical", "0m"),
                fires(files, "CertificateExpiryCritical", "20m", 'name="bitwarden-tls"'),
                silent(files, "ArgoCdAppDegraded", "10m"),
                fires(
                    files,
                    "ArgoCdAppDegraded",
                    "20m",
                    'name="immich",health_status="Degraded",sync_status="Synced"',
                ),
                silent(files, "TunnelConnectorDown", "4m"),
                fires(files, "TunnelConnectorDown", "60m", ""),
            ],
        },
        {  # a tunnel whose connector never reported
            "interval": "1m",
            "input_series": _series([('cloudflared_tunnel_ha_connections{tunnel="prod",pod="a"}', "4x10")]),
            "alert_rule_test": [fires(files, "TunnelConnectorDown", "5m", 'tunnel="cloud"')],
        },
        {  # Authentik failed logins, as the VM's Alloy counts them: 5 a minute is a spike
            "interval": "1m",
            "input_series": _series([(f"{LOGIN_FAILED_METRIC}{{{VM_ALLOY}}}", "0+5x30")]),
            "alert_rule_test": [fires(files, "AuthentikFailedLoginSpike", "20m", "")],
        },
        {  # 1 a minute is not; nor is an Alloy restart (the counter starts again from 0)
            "interval": "1m",
            "input_series": _series([(f"{LOGIN_FAILED_METRIC}{{{VM_ALLOY}}}", "0+1x15 0+1x15")]),
            "alert_rule_test": [silent(files, "AuthentikFailedLoginSpike", "20m")],
        },
        {  # a remote collector that stops reporting; PROD's own series (no `cluster`) never count, nor
            # does DEV powered off (its collector marks it intermittent): only CLOUD fires
            "interval": "1m",
            "input_series": _series(
                [
                    ('up{job="node-exporter",cluster="homelab-cloud",instance="cloud-1"}', "1x20 _x60"),
                    (
                        'up{job="node-exporter",cluster="homelab-dev",instance="dev-cp-1",schedule="intermittent"}',
                        "1x20 _x60",
                    ),
                    ('up{job="node-exporter",cluster="oci-mgmt",instance="oci-mgmt"}', "1x80"),
                    ('up{job="node-exporter",instance="prod-worker-1"}', "1x20 _x60"),
                ]
            ),
            "alert_rule_test": [
                silent(files, "TelemetrySourceSilent", "20m"),
                silent(files, "TelemetrySourceSilent", "30m"),  # gone at 25m, held for 10m
                fires(files, "TelemetrySourceSilent", "40m", 'cluster="homelab-cloud"'),
            ],
        },
    ]
    if "homelab-services" in files:
        tests.append(
            {  # homelab-services: one probe fails, the other answers
                "interval": "1m",
                "input_series": _series(
                    [
                        (
                            'probe_success{service="nextcloud",path="public",instance="https://cloud.example.net/status.php"}',
                            "1 0x10",
                        ),
                        (
                            'probe_success{service="grafana",path="internal",instance="http://grafana/api/health"}',
                            "1x10",
                        ),
                    ]
                ),
                "alert_rule_test": [
                    silent(files, "ServiceDown", "3m"),
                    fires(
                        files,
                        "ServiceDown",
                        "5m",
                        'service="nextcloud",path="public",instance="https://cloud.example.net/status.php"',
                    ),
                ],
            }
        )
    return {
        "rule_files": [f"{name}.yml" for name in files],
        "evaluation_interval": "1m",
        "tests": tests,
    }


DAY_LONG_FILE = "homelab-backups"


def day_long_tests(files: Mapping[str, list[RuleGroup]]) -> dict[str, Any]:
    """Cases whose hold time is the backup age (a day and more): evaluated over more than a day, so they
    run against their own rule file only, every 5 minutes (the other files need 1-minute steps)."""
    tests: list[dict[str, Any]] = [
        {  # a Velero schedule that never completed a backup, for longer than the backup age
            "interval": "5m",
            "input_series": _series(
                [
                    ('velero_backup_attempt_total{schedule="important",cluster="homelab-cloud"}', "0x340"),
                    ('velero_backup_attempt_total{schedule="critical",cluster="homelab-cloud"}', "0x340"),
                    (
                        'velero_backup_last_successful_timestamp{schedule="critical",cluster="homelab-cloud"}',
                        "0+300x340",
                    ),
                ]
            ),
            "alert_rule_test": [
                silent(files, "VeleroBackupNeverSucceeded", "25h"),
                fires(files, "VeleroBackupNeverSucceeded", "27h", 'schedule="important",cluster="homelab-cloud"'),
            ],
        },
    ]
    # Evaluated every 5 minutes: a day and more of 1-minute steps would cost promtool seconds.
    return {"rule_files": [f"{DAY_LONG_FILE}.yml"], "evaluation_interval": "5m", "tests": tests}
