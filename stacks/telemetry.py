"""The cloud's collectors, composed for the `cloud` stack (FR-020: lightweight metrics from the cloud).

Composition only. The catalog's `machine` entries (`telemetry-metrics`, `telemetry-logs`) are the
two write paths PROD publishes through its tunnel; one Cloudflare Access service token admits the
collectors there and nothing else. Both collectors live in this stack, so the token's id and
secret reach them as Pulumi secrets without crossing a stack boundary:

- the CLOUD cluster: Alloy on every node (pod logs, events, node metrics, Talos's own logs);
- the management VM: Alloy in its Compose project (journal, Authentik's and cloudflared's metrics,
  the failed-login counter).

PROD itself needs nothing from here: its Prometheus accepts remote write, its Loki gateway receives
the pushes, and its tunnel connector reaches both inside the cluster.
"""

from dataclasses import dataclass

import pulumi

from components.cloudflare.tunnel import ServiceToken
from components.monitoring.logs import RemoteTarget, TelemetryAgent
from components.oci.compose import VmTelemetry
from stacks.catalog import Catalog
from stacks.config.monitoring import TelemetryConfig

METRICS_ENTRY = "telemetry-metrics"
LOGS_ENTRY = "telemetry-logs"
NAMESPACE = "telemetry"
"""The CLOUD cluster's collector namespace (privileged: host network, host /proc and /sys)."""


@dataclass(frozen=True)
class Ingest:
    """Where the collectors write and the token they present."""

    metrics_url: str
    logs_url: str
    token: ServiceToken


def _url(catalog: Catalog, entry: str) -> str:
    service = catalog.by_name(entry)
    return f"https://{service.hostname}{service.path or ''}"


def ingest(
    catalog: Catalog, settings: TelemetryConfig, account_id: str, provider: pulumi.ProviderResource
) -> Ingest | None:
    """The service token and the write URLs (None with telemetry off: no token, no machine route)."""
    if not settings.enabled:
        return None
    token = ServiceToken(
        "telemetry",
        {"account_id": account_id, "token_name": "homelab-telemetry", "generation": settings.token_generation},
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    return Ingest(_url(catalog, METRICS_ENTRY), _url(catalog, LOGS_ENTRY), token)


def vm_collector(target: Ingest, settings: TelemetryConfig, host: str) -> VmTelemetry:
    return VmTelemetry(
        image=settings.alloy_image,
        metrics_url=target.metrics_url,
        logs_url=target.logs_url,
        host=host,
        scrape_interval=settings.scrape_interval,
    )


def vm_secrets(target: Ingest) -> dict[str, pulumi.Input[str]]:
    """The VM's secret files for its collector (`compose.TELEMETRY_SECRET_NAMES`)."""
    return {
        "telemetry_access_client_id": pulumi.Output.secret(target.token.client_id),
        "telemetry_access_client_secret": target.token.client_secret,
    }


def cluster_collector(
    target: Ingest, settings: TelemetryConfig, cluster: str, opts: pulumi.ResourceOptions
) -> TelemetryAgent:
    """Alloy on every CLOUD node; Talos ships its logs to it (`talos_logging_patches`)."""
    return TelemetryAgent(
        "cloud-telemetry",
        {
            "cluster": cluster,
            "chart_version": settings.alloy_chart,
            "namespace": NAMESPACE,
            "create_namespace": True,
            "node_metrics": True,
            "talos_logs": True,
            "remote": RemoteTarget(
                metrics_url=target.metrics_url,
                logs_url=target.logs_url,
                access_client_id=target.token.client_id,
                access_client_secret=target.token.client_secret,
            ),
        },
        opts=opts,
    )
