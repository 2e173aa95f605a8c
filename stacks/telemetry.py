"""The cloud's collectors, composed for the `cloud` stack (FR-020: lightweight metrics from the cloud).

Composition only. The catalog's `machine` entries (`telemetry-metrics`, `telemetry-logs`) are the
two write paths PROD publishes through its tunnel; one Cloudflare Access service token admits the
collectors there and nothing else. Both collectors live in this stack, so the token's id and
secret reach them as Pulumi secrets without crossing a stack boundary:

- the CLOUD cluster: Alloy on every node (pod logs, events, node metrics, Talos's own logs);
- the management VM: Alloy in its Compose project (journal, Authentik's and cloudflared's metrics,
  the failed-login counter).

DEV's collector is the one that crosses a stack boundary: the cloud stack exports the write URLs
(`telemetry_ingest`) and the token (`telemetry_access`, a secret output), and the dev stack reads
them through a StackReference (`remote_from_reference`); a missing output fails naming it. DEV is
powered off by design outside the host's testing mode, so its collector marks what it ships
`schedule="intermittent"` and `TelemetrySourceSilent` does not page for its silence.

PROD itself needs nothing from here: its Prometheus accepts remote write, its Loki gateway receives
the pushes, and its tunnel connector reaches both inside the cluster.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

from components.monitoring.logs import RemoteTarget, TelemetryAgent, TelemetryAgentArgs
from components.monitoring.metrics import PodScrape
from components.oci.compose import VmTelemetry
from stacks.catalog import Catalog
from stacks.config import ConfigError
from stacks.config.monitoring import TelemetryConfig

if TYPE_CHECKING:  # the dev stack imports this module and uses no Cloudflare resource
    from components.cloudflare.tunnel import ServiceToken

METRICS_ENTRY = "telemetry-metrics"
LOGS_ENTRY = "telemetry-logs"
NAMESPACE = "telemetry"
"""The clusters' collector namespace (privileged: host network, host /proc and /sys)."""
INGEST_OUTPUT = "telemetry_ingest"
"""Cloud stack output: `{metrics_url, logs_url}` (plain: the hostnames are public DNS names)."""
ACCESS_OUTPUT = "telemetry_access"
"""Cloud stack output: `{client_id, client_secret}` of the service token (secret)."""


@dataclass(frozen=True)
class Ingest:
    """Where the collectors write and the token they present."""

    metrics_url: str
    logs_url: str
    token: "ServiceToken"


def _url(catalog: Catalog, entry: str) -> str:
    service = catalog.by_name(entry)
    return f"https://{service.hostname}{service.path or ''}"


def ingest(
    catalog: Catalog, settings: TelemetryConfig, account_id: str, provider: pulumi.ProviderResource
) -> Ingest | None:
    """The service token and the write URLs (None with telemetry off: no token, no machine route)."""
    if not settings.enabled:
        return None
    from components.cloudflare.tunnel import ServiceToken  # noqa: PLC0415 (see the TYPE_CHECKING import)

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


def export_ingest(target: Ingest) -> None:
    """The write paths and the token for the collector of another stack (DEV)."""
    pulumi.export(INGEST_OUTPUT, {"metrics_url": target.metrics_url, "logs_url": target.logs_url})
    pulumi.export(
        ACCESS_OUTPUT,
        pulumi.Output.secret({"client_id": target.token.client_id, "client_secret": target.token.client_secret}),
    )


def remote_target(target: Ingest) -> RemoteTarget:
    return RemoteTarget(
        metrics_url=target.metrics_url,
        logs_url=target.logs_url,
        access_client_id=target.token.client_id,
        access_client_secret=target.token.client_secret,
    )


def remote_from_reference(reference: pulumi.StackReference, stack_name: str) -> RemoteTarget:
    """The cloud stack's write paths and token, the token kept secret; a missing output fails naming it."""

    def field(output: str, name: str, secret: bool) -> pulumi.Output[str]:
        def pick(value: Any) -> str:
            if not isinstance(value, Mapping) or not value.get(name):
                raise ConfigError(
                    f"homelab:telemetry.cloud_stack: stack {stack_name!r} exports no `{output}.{name}` "
                    "(set homelab:telemetry.enabled to true there and run `pulumi up` on it first, "
                    "or set homelab:telemetry.enabled to false here)"
                )
            return str(value[name])

        picked = reference.get_output(output).apply(pick)
        return pulumi.Output.secret(picked) if secret else picked

    return RemoteTarget(
        metrics_url=field(INGEST_OUTPUT, "metrics_url", secret=False),
        logs_url=field(INGEST_OUTPUT, "logs_url", secret=False),
        access_client_id=field(ACCESS_OUTPUT, "client_id", secret=True),
        access_client_secret=field(ACCESS_OUTPUT, "client_secret", secret=True),
    )


def cluster_collector(  # noqa: PLR0917 (one call per stack)
    environment: str,
    remote: RemoteTarget,
    chart_version: str,
    cluster: str,
    opts: pulumi.ResourceOptions,
    intermittent: bool = False,
    pod_scrapes: Sequence[PodScrape] = (),
    cron_job_metrics_chart: str | None = None,
) -> TelemetryAgent:
    """Alloy on every node of a remote cluster (CLOUD, DEV); Talos ships its logs to it
    (`talos_logging_patches` in the same cluster's machine configuration). `pod_scrapes` and
    `cron_job_metrics_chart` (kube-state-metrics) add the series the backup alerts read."""
    args: TelemetryAgentArgs = {
        "cluster": cluster,
        "chart_version": chart_version,
        "namespace": NAMESPACE,
        "create_namespace": True,
        "node_metrics": True,
        "talos_logs": True,
        "remote": remote,
        "intermittent": intermittent,
        "pod_scrapes": list(pod_scrapes),
    }
    if cron_job_metrics_chart is not None:
        args["cron_job_metrics_chart"] = cron_job_metrics_chart
    return TelemetryAgent(f"{environment}-telemetry", args, opts=opts)
