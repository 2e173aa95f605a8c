"""Monitoring composition for the `prod` stack: config + catalog -> the monitoring components.

Composition only (like `stacks.dev.talos_on_proxmox`): no provider details. Cross-stack values come
through the `cloud` StackReference: Grafana's Authentik OIDC client is the identity layer's
`oidc_grafana` output, and the stack fails loudly (before anything is registered) if it is missing.
Authentik's ntfy publish token for sign-up notifications is the identity layer's
`ntfy_identity_publisher` output: ntfy grants it write access to that one topic (absent: a warning,
and ntfy refuses Authentik's pushes).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.k8s.etcd_backup import DEADLINE_SECONDS as ETCD_BACKUP_DEADLINE
from components.k8s.etcd_backup import NAME as ETCD_BACKUP_JOB
from components.k8s.etcd_backup import NAMESPACE as ETCD_BACKUP_NAMESPACE
from components.k8s.gateway import is_cluster_service_url
from components.manifests import manifest_files
from components.monitoring.alertmanager import Routing, alertmanager_config
from components.monitoring.host import HostExporter
from components.monitoring.logs import LogStore, TelemetryAgent
from components.monitoring.metrics import (
    GrafanaOidc,
    MetricsStack,
    MetricsStackArgs,
    PodScrape,
    ProbeTarget,
    load_dashboards,
)
from components.monitoring.ntfy import ExtraPublisher, Ntfy
from components.monitoring.rules import BackupCronJob, ProbedService, RuleContext, rule_groups
from stacks.catalog import Catalog, Service
from stacks.config import ConfigError, SecretSpec
from stacks.config.homelab import ProdConfig
from stacks.config.monitoring import MonitoringConfig, Severity
from stacks.velero import velero_scrape

NAMESPACE = "monitoring"
NTFY_NAMESPACE = "ntfy"
NAMESPACES = (NAMESPACE, NTFY_NAMESPACE)
"""Namespaces the monitoring components create themselves (not `platform.namespaces`)."""
CRD_SOURCE = "prometheus-operator-crds"
CRD_VERSION = "v0.93.0"
"""The operator CRDs pinned in vendor/manifests.lock.yaml for the kube-prometheus-stack chart."""
SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "ntfyPublisherToken",
        "the ntfy access token Alertmanager publishes with (`tk_` + 29 lower-case letters/digits)",
    ),
    SecretSpec(
        "ntfyPhoneToken",
        "the ntfy access token the phone app subscribes with (`tk_` + 29 lower-case letters/digits)",
    ),
    SecretSpec(
        "telegramBotToken",
        "the Telegram bot token from @BotFather (critical alerts; homelab:monitoring.alerting.telegram)",
    ),
    SecretSpec(
        "telegramChatId",
        "the Telegram chat id critical alerts go to (a number, negative for groups)",
    ),
)


@dataclass(frozen=True)
class MonitoringInputs:
    """What the prod stack hands over: its config, catalog, cluster and host handles."""

    config: ProdConfig
    catalog: Catalog
    k8s_provider: pulumi.ProviderResource
    cluster_ready: Sequence[pulumi.Resource]
    """The CNI (and anything else the workloads need first)."""
    ssh: remote.ConnectionArgs
    command_provider: pulumi.ProviderResource
    """The explicit command provider of the host's commands (default providers are disabled)."""
    host_chain: pulumi.Resource
    """The last host command of the serialized apt/boot chain (`ZfsPool.host_chain`)."""
    cloud: pulumi.StackReference
    telegram: tuple[pulumi.Output[str], pulumi.Output[str]] | None
    """Bot token and chat id (`telegram_secrets`, read before anything is registered)."""


def _severity(service: Service, config: MonitoringConfig) -> Severity:
    settings = config.probes.get(service.name)
    if settings is not None and settings.severity is not None:
        return settings.severity
    return "warning" if service.is_admin or service.is_machine else "critical"


def probed_services(catalog: Catalog, config: MonitoringConfig) -> list[Service]:
    """The catalog services with a probe (config keys are checked against the catalog in prod_problems)."""
    return [s for s in catalog.services if config.probes.get(s.name) is None or config.probes[s.name].enabled]


def probe_targets(services: Sequence[Service]) -> list[ProbeTarget]:
    """A public probe per service (admin apps: Access must answer) and an in-cluster one on PROD.

    A machine entry (the collectors' write paths) gets the in-cluster probe only: its public
    hostname answers nothing but an authenticated write (TelemetrySourceSilent covers that path)."""
    targets: list[ProbeTarget] = []
    for service in services:
        if service.is_admin:
            # Access guards the entry's own path prefix: expect its login redirect there.
            targets.append(
                ProbeTarget(service.name, "public", f"https://{service.hostname}{service.path or '/'}", "http_access")
            )
        elif not service.is_machine:
            targets.append(
                ProbeTarget(service.name, "public", f"https://{service.hostname}{service.health_path}", "http_2xx")
            )
        if service.location == "prod" and is_cluster_service_url(service.upstream):
            targets.append(
                ProbeTarget(service.name, "internal", f"{service.upstream}{service.health_path}", "http_2xx")
            )
    return targets


def _grafana_client(value: object, output: str) -> dict[str, str]:
    if value is None:
        raise ConfigError(
            f"homelab:monitoring.grafana_oidc_output: the cloud stack has no output {output!r}; "
            "deploy the identity layer (cloud stack) first, or name its Grafana client output here"
        )
    if not isinstance(value, dict) or not {"client_id", "client_secret"} <= set(value):
        raise ConfigError(
            f"homelab:monitoring.grafana_oidc_output: the cloud stack's output {output!r} must be an object "
            "with client_id and client_secret (the identity layer's Authentik client for Grafana)"
        )
    return {"client_id": str(value["client_id"]), "client_secret": str(value["client_secret"])}


IDENTITY_PUBLISHER_OUTPUT = "ntfy_identity_publisher"
"""The `cloud` stack output `{topic, token}` Authentik pushes sign-up notifications with."""


def identity_publisher(value: object, ntfy_topics: tuple[str, ...]) -> ExtraPublisher | None:
    """ntfy's grant for Authentik's sign-up pushes, from the cloud stack's output (None: no push)."""
    if value is None:
        pulumi.log.warn(
            f"the cloud stack exports no {IDENTITY_PUBLISHER_OUTPUT!r}: ntfy grants Authentik nothing, so sign-up "
            "notifications are not pushed (update the cloud stack first, or its homelab:identity.ntfy_topic is null)"
        )
        return None
    if not isinstance(value, dict) or not {"topic", "token"} <= set(value):
        raise ConfigError(
            f"the cloud stack's output {IDENTITY_PUBLISHER_OUTPUT!r} must be an object with topic and token "
            "(the identity layer's ntfy publisher)"
        )
    topic = str(value["topic"])
    if topic in ntfy_topics:
        raise ConfigError(
            f"homelab:identity.ntfy_topic (cloud stack): {topic!r} is an alert topic of "
            "homelab:monitoring.ntfy; give sign-up notifications a topic of their own"
        )
    return ExtraPublisher(user="authentik", topic=topic, token=str(value["token"]))


def telegram_secrets(monitoring: MonitoringConfig) -> tuple[pulumi.Output[str], pulumi.Output[str]] | None:
    """Both Telegram secrets when Telegram is on; a missing one is an error naming its key."""
    if not monitoring.alerting.telegram.enabled:
        return None
    secrets = pulumi.Config("homelab")
    found: list[pulumi.Output[str]] = []
    for key in ("telegramBotToken", "telegramChatId"):
        value = secrets.get_secret(key)
        if value is None:
            raise ConfigError(
                f"homelab:{key}: required secret is not set while homelab:monitoring.alerting.telegram.enabled "
                f"is true; run `pulumi config set --secret {key} <value>` or turn Telegram off"
            )
        found.append(pulumi.Output.secret(value))
    return found[0], found[1]


def build_monitoring(inputs: MonitoringInputs) -> list[pulumi.Resource]:
    """Metrics, alerting, logs, ntfy and the host exporter of PROD.

    Returns the components that own the namespaces in `NAMESPACES` (their network policies are
    registered after them by the platform layer).
    """
    config = inputs.config
    monitoring = config.monitoring
    catalog = inputs.catalog
    services = probed_services(catalog, monitoring)
    telegram = inputs.telegram
    secrets = pulumi.Config("homelab")
    on_cluster = pulumi.ResourceOptions(providers=[inputs.k8s_provider], depends_on=list(inputs.cluster_ready))

    workers = [n for n in config.cluster.nodes.values() if n.role == "worker"]
    disk_gb = max(n.disk_gb for n in workers)
    retention_size_gb = max(1, int(disk_gb * monitoring.prometheus_disk_share))
    host_address = config.host.bridge_address.split("/")[0]

    # The host's node exporter: the same serialized chain as the host's and the pool's own commands.
    host_exporter = HostExporter(
        "host-exporter",
        {
            "connection": inputs.ssh,
            "listen_address": host_address,
            "port": monitoring.host_exporter_port,
            "after": [inputs.host_chain],
        },
        opts=pulumi.ResourceOptions(providers=[inputs.command_provider]),
    )

    ntfy_hostname = catalog.by_name("ntfy-push").hostname
    alert_topics = (monitoring.ntfy.critical_topic, monitoring.ntfy.digest_topic)
    ntfy = Ntfy(
        "ntfy",
        {
            "image": monitoring.ntfy.image,
            "base_url": f"https://{ntfy_hostname}",
            "topics": alert_topics,
            "publisher_token": secrets.require_secret("ntfyPublisherToken"),
            "phone_token": secrets.require_secret("ntfyPhoneToken"),
            "storage_gb": monitoring.ntfy.storage_gb,
            "namespace": NTFY_NAMESPACE,
            "extra_publisher": inputs.cloud.get_output(IDENTITY_PUBLISHER_OUTPUT).apply(
                lambda value: identity_publisher(value, alert_topics)
            ),
        },
        opts=on_cluster,
    )

    output = monitoring.grafana_oidc_output
    # Fails the run (preview included) if the identity layer has not exported Grafana's client.
    grafana_client = inputs.cloud.get_output(output).apply(lambda value: _grafana_client(value, output))
    alerting = monitoring.alerting
    routing = Routing(
        ntfy_url="http://ntfy.ntfy.svc.cluster.local:80",
        critical_topic=monitoring.ntfy.critical_topic,
        digest_topic=monitoring.ntfy.digest_topic,
        telegram=telegram is not None,
        critical_repeat=alerting.critical_repeat,
        digest_wait=alerting.digest_wait,
        digest_interval=alerting.digest_interval,
        digest_repeat=alerting.digest_repeat,
    )
    context = RuleContext(
        pool=config.zfs.pool_name,
        services=[ProbedService(s.name, _severity(s, monitoring)) for s in services],
        backup_jobs=tuple(monitoring.backup_jobs),
        # Watched on every cluster that ships kube-state-metrics' series (PROD's own, CLOUD's remote).
        backup_cron_jobs=(BackupCronJob(ETCD_BACKUP_NAMESPACE, ETCD_BACKUP_JOB, f"{ETCD_BACKUP_DEADLINE}s"),),
        home_cluster=config.cluster.name,
        tunnels=("prod", "cloud"),
    )
    metrics_args: MetricsStackArgs = {
        "namespace": NAMESPACE,
        "cluster_name": config.cluster.name,
        "control_plane_addresses": sorted(n.address for n in config.cluster.nodes.values() if n.role == "controlplane"),
        "chart_version": monitoring.charts.kube_prometheus_stack,
        "blackbox_chart_version": monitoring.charts.blackbox_exporter,
        "storage_class": monitoring.storage_class,
        # 10 % headroom over retentionSize: Prometheus stops at the size, the volume must not fill first.
        "prometheus_volume_gb": retention_size_gb + max(1, retention_size_gb // 10),
        "retention": monitoring.retention,
        "retention_size_gb": retention_size_gb,
        "alertmanager_config": alertmanager_config(routing),
        "rule_files": rule_groups(monitoring.thresholds, context),
        "probes": probe_targets(services),
        "host_target": f"{host_address}:{monitoring.host_exporter_port}",
        "grafana": GrafanaOidc(
            hostname=catalog.by_name("grafana").hostname,
            authentik_url=f"https://{catalog.by_name('authentik').hostname}",
            client_id=grafana_client.apply(lambda c: c["client_id"]),
            client_secret=pulumi.Output.secret(grafana_client.apply(lambda c: c["client_secret"])),
        ),
        "ntfy_token": secrets.require_secret("ntfyPublisherToken"),
        "dashboards": load_dashboards(),
        "crd_files": manifest_files(CRD_SOURCE, CRD_VERSION),
        "pod_monitors": [
            PodScrape(
                key="cloudflared",
                namespace="cloudflared",
                match_labels={"app.kubernetes.io/name": "cloudflared"},
                port="metrics",
                labels={"tunnel": "prod"},
            ),
            # Velero's server (not its node agents): the Velero* backup alerts read its metrics.
            *([velero_scrape()] if config.platform.velero is not None else []),
        ],
    }
    if telegram is not None:
        metrics_args["telegram_bot_token"], metrics_args["telegram_chat_id"] = telegram
    metrics = MetricsStack("metrics", metrics_args, opts=on_cluster)

    in_namespace = pulumi.ResourceOptions(providers=[inputs.k8s_provider], depends_on=[metrics])
    logs = LogStore(
        "logs",
        {
            "namespace": NAMESPACE,
            "chart_version": monitoring.charts.loki,
            "volume_gb": max(1, int(disk_gb * monitoring.loki_disk_share)),
            "retention": monitoring.loki_retention,
            "storage_class": monitoring.storage_class,
        },
        opts=in_namespace,
    )
    TelemetryAgent(
        "prod-telemetry",
        {
            "cluster": config.cluster.name,
            "chart_version": monitoring.charts.alloy,
            "namespace": NAMESPACE,
            "loki_url": f"http://loki-gateway.{NAMESPACE}.svc.cluster.local/loki/api/v1/push",
            # Paired with `talos_logging_patches` in PROD's machine configuration (stacks/prod.py).
            "talos_logs": True,
        },
        opts=pulumi.ResourceOptions(providers=[inputs.k8s_provider], depends_on=[metrics, logs]),
    )
    pulumi.export("monitoring_host_exporter", host_exporter.target)
    return [metrics, logs, ntfy]
