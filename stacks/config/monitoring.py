"""Typed config of monitoring and alerting (`homelab:monitoring` in `prod`, `homelab:telemetry` in `cloud` and `dev`).

The alert thresholds are one table (`ThresholdsConfig`): every PrometheusRule the stack generates reads its
number and its hold time from here, with the PRD / HomelabCmd defaults, so changing an alert is a
config change reviewed like any other. A percentage outside 0-100, a duration Prometheus cannot
parse, or a warning level above its critical level fails as one line naming the key.
"""

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from stacks.config.base import ConfigModel

_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNIT_SECONDS = (7 * 86400, 86400, 3600, 60, 1)
_CHART_VERSION = r"^\d+\.\d+\.\d+$"
_IMAGE = r"^[^\s:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})$"


def duration_seconds(value: str) -> int:
    """Seconds of a Prometheus duration (`90s`, `5m`, `1h30m`, `14d`); ValueError if it does not parse."""
    match = _DURATION.match(value)
    if not value or match is None:
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 2h or 14d")
    return sum(int(part or 0) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True))


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _percent(value: float) -> float:
    if not 0 < value < 100:
        raise ValueError(f"must be a percentage between 0 and 100 (exclusive), got {value!r}")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Percent = Annotated[float, AfterValidator(_percent)]
Severity = Literal["critical", "warning"]


class LevelRuleConfig(ConfigModel):
    """A usage level that fires after it has held for `after`."""

    percent: Percent
    after: Duration


class HoldRuleConfig(ConfigModel):
    """A condition that fires after it has held for `after`."""

    after: Duration


class AgeRuleConfig(ConfigModel):
    """Something older (or closer to expiry) than `age`, held for `after`."""

    age: Duration
    after: Duration = "10m"


class RateRuleConfig(ConfigModel):
    """More than `count` events within `window`."""

    count: int = Field(ge=1, le=100_000)
    window: Duration


class ThresholdsConfig(ConfigModel):
    """`homelab:monitoring.thresholds`: the one table every generated alert reads."""

    disk_warning: LevelRuleConfig = LevelRuleConfig(percent=80, after="15m")
    disk_critical: LevelRuleConfig = LevelRuleConfig(percent=90, after="5m")
    memory: LevelRuleConfig = LevelRuleConfig(percent=85, after="10m")
    cpu: LevelRuleConfig = LevelRuleConfig(percent=90, after="15m")
    node_down: HoldRuleConfig = HoldRuleConfig(after="180s")
    """A Kubernetes node NotReady, or the Proxmox host's exporter unreachable (PRD: 180 s)."""
    zfs_pool: HoldRuleConfig = HoldRuleConfig(after="1m")
    zfs_errors: HoldRuleConfig = HoldRuleConfig(after="0s")
    smart: HoldRuleConfig = HoldRuleConfig(after="0s")
    backup_failed: HoldRuleConfig = HoldRuleConfig(after="5m")
    backup_age: AgeRuleConfig = AgeRuleConfig(age="26h")
    """A daily job one run late plus two hours of slack."""
    drill_age: AgeRuleConfig = AgeRuleConfig(age="33d", after="1h")
    """The monthly restore drill (the 1st of each month): a month and two days of slack."""
    cert_warning: AgeRuleConfig = AgeRuleConfig(age="14d", after="1h")
    cert_critical: AgeRuleConfig = AgeRuleConfig(age="3d", after="10m")
    argocd_degraded: HoldRuleConfig = HoldRuleConfig(after="15m")
    failed_logins: RateRuleConfig = RateRuleConfig(count=20, window="15m")
    """Authentik failed logins across all users (security incident)."""
    tunnel_down: HoldRuleConfig = HoldRuleConfig(after="3m")
    telemetry_silent: AgeRuleConfig = AgeRuleConfig(age="1d", after="10m")
    """A remote collector (CLOUD, the management VM) that reported within `age` but not now."""
    service_down: HoldRuleConfig = HoldRuleConfig(after="3m")
    zed_event_window: Duration = "1h"
    """How long a ZFS event (ZED) keeps its alert firing after it happened."""


class ProbeConfig(ConfigModel):
    """`homelab:monitoring.probes.<service>`: per catalog service changes to its probe."""

    enabled: bool = True
    severity: Severity | None = None
    """Defaults to critical for family services, warning for admin apps."""


class TelegramConfig(ConfigModel):
    enabled: bool = True
    """Critical alerts also go to Telegram (secrets `telegramBotToken`, `telegramChatId`)."""


class NtfyConfig(ConfigModel):
    """`homelab:monitoring.ntfy`: the self-hosted push server on PROD."""

    image: str = Field(default="docker.io/binwiederhier/ntfy:v2.14.0", pattern=_IMAGE)
    """≥ v2.14: the built-in `alertmanager` message template and declarative users/tokens."""
    critical_topic: str = Field(default="homelab-critical", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    digest_topic: str = Field(default="homelab-digest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    storage_gb: int = Field(default=1, ge=1, le=50)


class AlertingConfig(ConfigModel):
    """`homelab:monitoring.alerting`: how alerts reach the phone."""

    telegram: TelegramConfig = TelegramConfig()
    critical_repeat: Duration = "1h"
    digest_wait: Duration = "30m"
    digest_interval: Duration = "6h"
    digest_repeat: Duration = "24h"


class ChartVersionsConfig(ConfigModel):
    """Pinned Helm chart versions (platform-facts §3)."""

    kube_prometheus_stack: str = Field(default="88.5.3", pattern=_CHART_VERSION)
    loki: str = Field(default="18.11.0", pattern=_CHART_VERSION)
    alloy: str = Field(default="1.11.1", pattern=_CHART_VERSION)
    blackbox_exporter: str = Field(default="11.17.2", pattern=_CHART_VERSION)


class MonitoringConfig(ConfigModel):
    """`homelab:monitoring` (prod): metrics, logs, alerting and the host exporter."""

    enabled: bool = True
    charts: ChartVersionsConfig = ChartVersionsConfig()
    storage_class: str = Field(default="longhorn", min_length=1)
    """A block-volume class on PROD (Longhorn, from the platform layer)."""
    prometheus_disk_share: float = Field(default=0.25, gt=0, le=0.6)
    """Share of the worker's disk Prometheus may fill (`retentionSize`); the volume gets 10 % headroom."""
    retention: Duration = "30d"
    loki_disk_share: float = Field(default=0.1, gt=0, le=0.4)
    loki_retention: Duration = "30d"
    grafana_oidc_output: str = Field(default="oidc_grafana", pattern=r"^[a-z][a-z0-9_]*$")
    """The `cloud` stack output with Grafana's Authentik OIDC client (identity's export)."""
    host_exporter_port: int = Field(default=9100, ge=1024, le=65535)
    thresholds: ThresholdsConfig = ThresholdsConfig()
    alerting: AlertingConfig = AlertingConfig()
    ntfy: NtfyConfig = NtfyConfig()
    probes: dict[str, ProbeConfig] = Field(default_factory=dict)
    backup_jobs: list[str] = Field(default_factory=list)
    """Backup jobs (the `job` label of `homelab_backup_*`) that must report; a silent one alerts."""

    @field_validator("backup_jobs")
    @classmethod
    def _job_names(cls, value: list[str]) -> list[str]:
        for job in value:
            if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,62}$", job):
                raise ValueError(f"{job!r} must be a lower-case job name (letters, digits, . _ -)")
        return value


class TelemetryConfig(ConfigModel):
    """`homelab:telemetry` (cloud): the lightweight collectors shipping to PROD.

    One Alloy per CLOUD node (pod logs, node metrics, Talos's own logs) and one on the management
    VM (its journal and containers, Authentik's and cloudflared's metrics), both writing through the
    PROD tunnel's machine routes with one Cloudflare Access service token.
    """

    enabled: bool = True
    alloy_chart: str = Field(default="1.11.1", pattern=_CHART_VERSION)
    alloy_image: str = Field(default="docker.io/grafana/alloy:v1.18.1", pattern=_IMAGE)
    """The management VM's Alloy (the clusters' comes with the chart)."""
    scrape_interval: Duration = "60s"
    token_generation: int = Field(default=1, ge=1, le=1000)
    """Raise to rotate the service token's secret (collectors get the new one in the same `up`)."""
    kube_state_metrics_chart: str = Field(default="8.4.0", pattern=_CHART_VERSION)
    """kube-state-metrics beside the cluster's collector, for the CronJob series the backup alerts read
    (the version kube-prometheus-stack brings to PROD)."""


class DevTelemetryConfig(ConfigModel):
    """`homelab:telemetry` (dev): Alloy on every DEV node, shipping like CLOUD's collectors.

    DEV has no tunnel or token of its own: the write URLs and the Access service token come from
    the cloud stack's `telemetry_ingest` / `telemetry_access` outputs (a StackReference).
    """

    enabled: bool = True
    alloy_chart: str = Field(default="1.11.1", pattern=_CHART_VERSION)
    cloud_stack: str = Field(default="cloud", pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$")
    """The stack that issues the service token (`<org>/homelab/cloud` with Pulumi Cloud)."""


def threshold_problems(config: MonitoringConfig, prefix: str = "monitoring") -> Iterator[tuple[str, str]]:
    """Cross-key rules of the threshold table (each names the key to change)."""
    t = config.thresholds
    if t.disk_warning.percent >= t.disk_critical.percent:
        yield (
            f"{prefix}.thresholds.disk_warning.percent",
            f"{t.disk_warning.percent:g} must be below disk_critical.percent ({t.disk_critical.percent:g})",
        )
    if duration_seconds(t.cert_critical.age) >= duration_seconds(t.cert_warning.age):
        yield (
            f"{prefix}.thresholds.cert_critical.age",
            f"{t.cert_critical.age} must be shorter than cert_warning.age ({t.cert_warning.age})",
        )
    if duration_seconds(t.failed_logins.window) == 0:
        yield f"{prefix}.thresholds.failed_logins.window", "must be longer than 0s"
    if duration_seconds(t.backup_age.age) < 3600:
        yield (
            f"{prefix}.thresholds.backup_age.age",
            f"{t.backup_age.age} is shorter than an hour; no backup runs that often",
        )
    alerting = config.alerting
    if duration_seconds(alerting.digest_repeat) < duration_seconds(alerting.digest_interval):
        yield (
            f"{prefix}.alerting.digest_repeat",
            f"{alerting.digest_repeat} must be at least digest_interval ({alerting.digest_interval})",
        )
    if duration_seconds(alerting.digest_repeat) > 120 * 3600:
        yield f"{prefix}.alerting.digest_repeat", "must be at most 120h (Alertmanager's --data.retention)"
