"""Logs: Loki in monolithic mode on PROD (`LogStore`) and Alloy on every cluster (`TelemetryAgent`).

Loki runs as one replica on the filesystem (platform-facts §3.2: the chart's defaults are a scalable
3-replica S3 deployment that a one-worker cluster cannot run), with retention enforced by the
compactor, whose delete-request store Loki 3 requires.

Alloy (`TelemetryAgent`) tails pod logs through the API server (`loki.source.kubernetes`: no hostPath
for logs) and, where it is asked to ship node metrics (CLOUD), runs the unix exporter on every node
and remote-writes to PROD's Prometheus. A remote agent reaches PROD only through the `prod`
Cloudflare Tunnel's machine routes, authenticating to Cloudflare Access with a service token
(headers from a Secret) — never through an open port.

With `pod_scrapes` each node's agent also scrapes the named pods on its own node (Velero's server on
CLOUD) and, with `cron_job_metrics_chart`, a kube-state-metrics limited to CronJobs that it runs
beside itself: the series PROD's backup alerts read (a cluster without its own Prometheus).

With `talos_logs` the agent also receives Talos's own service and kernel logs: Talos ships them
as JSON lines to `127.0.0.1:TALOS_LOG_PORT` of its node (`talos_logging_patches`), so the agent runs
in the host's network namespace (hostNetwork, on every node including control planes) and binds
that listener and its own HTTP server to the loopback only: nothing new listens on the LAN.
"""

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring.alloy import (
    ACCESS_ENV,
    INTERMITTENT,
    SCHEDULE_LABEL,
    TALOS_LOG_PORT,
    quote,
    remote_headers,
    talos_logs,
)
from components.monitoring.metrics import PROMETHEUS_COMMUNITY, PodScrape

GRAFANA_COMMUNITY = "https://grafana-community.github.io/helm-charts"
GRAFANA = "https://grafana.github.io/helm-charts"
LOKI_RELEASE = "loki"
KSM_RELEASE = "kube-state-metrics"
KSM_SCRAPE = PodScrape(
    key="kube_state_metrics",
    namespace="",  # the agent's own namespace (filled in by `TelemetryAgent`)
    match_labels={"app.kubernetes.io/name": "kube-state-metrics"},
    port="http",
    labels={},
)
"""kube-state-metrics as the agent runs it for CronJob series (the backup jobs' alerts)."""
ACCESS_SECRET = "telemetry-access"
"""Secret with `CF_ACCESS_CLIENT_ID` / `CF_ACCESS_CLIENT_SECRET` (Cloudflare Access service token)."""


def loki_values(volume_gb: int, retention: str, storage_class: str) -> dict[str, Any]:
    return {
        "deploymentMode": "Monolithic",
        "loki": {
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 1},
            "storage": {"type": "filesystem"},
            "schemaConfig": {
                "configs": [
                    {
                        "from": "2025-01-01",
                        "store": "tsdb",
                        "object_store": "filesystem",
                        "schema": "v13",
                        "index": {"prefix": "loki_index_", "period": "24h"},
                    }
                ]
            },
            "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"},
            "limits_config": {"retention_period": retention},
        },
        "singleBinary": {
            "replicas": 1,
            "persistence": {"enabled": True, "storageClass": storage_class, "size": f"{volume_gb}Gi"},
        },
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
    }


class LogStoreArgs(TypedDict):
    namespace: str
    chart_version: str
    volume_gb: int
    retention: str
    storage_class: str


class LogStore(pulumi.ComponentResource):
    """Loki (monolithic, filesystem, retention) in the monitoring namespace."""

    push_url: pulumi.Output[str]

    def __init__(self, name: str, args: LogStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:monitoring:LogStore", name, None, opts)
        release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=LOKI_RELEASE,
            chart="loki",
            version=args["chart_version"],
            namespace=args["namespace"],
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=GRAFANA_COMMUNITY),
            values=loki_values(args["volume_gb"], args["retention"], args["storage_class"]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.push_url = release.namespace.apply(
            lambda ns: f"http://{LOKI_RELEASE}-gateway.{ns}.svc.cluster.local/loki/api/v1/push"
        )
        self.register_outputs({"push_url": self.push_url})


@dataclass(frozen=True)
class RemoteTarget:
    """Where a remote agent ships: PROD's machine routes (catalog tier `machine`), behind Access."""

    metrics_url: pulumi.Input[str]
    """`https://telemetry.<domain>/api/v1/write` (Prometheus' remote-write receiver)."""
    logs_url: pulumi.Input[str]
    """`https://telemetry.<domain>/loki/api/v1/push`."""
    access_client_id: pulumi.Input[str]
    access_client_secret: pulumi.Input[str]


def talos_logging_patches(port: int = TALOS_LOG_PORT) -> list[str]:
    """Machine-config patches: Talos ships service logs and the kernel log to the node-local agent.

    `machine.logging.destinations` (json_lines over TCP, the only format Talos speaks) carries the
    services' logs; a `KmsgLogConfig` document carries the kernel log and, unlike the
    `talos.logging.kernel` kernel argument, takes effect on a running node without an upgrade or
    reboot (kernel arguments only change at install/upgrade). Talos buffers and retries while the
    agent is not up yet (early boot). Two JSON patches, like every patch of the cluster: the second
    adds the document.
    """
    machine = {
        "machine": {"logging": {"destinations": [{"endpoint": f"tcp://127.0.0.1:{port}/", "format": "json_lines"}]}}
    }
    # KmsgLogConfig's URL takes no path (Talos rejects one), unlike the destination's endpoint.
    kmsg = {
        "apiVersion": "v1alpha1",
        "kind": "KmsgLogConfig",
        "name": "homelab-agent",
        "url": f"tcp://127.0.0.1:{port}",
    }
    return [json.dumps(machine, sort_keys=True), json.dumps(kmsg, sort_keys=True)]


def alloy_config(  # noqa: PLR0917 (the agent's one call site)
    cluster: str,
    loki_url: str,
    remote_write_url: str | None,
    node_metrics: bool,
    access: bool,
    talos: bool = False,
    intermittent: bool = False,
    pod_scrapes: Sequence[PodScrape] = (),
) -> str:
    """The Alloy pipeline (Alloy configuration syntax). `pod_scrapes`: pods whose metrics each node's
    agent scrapes on its own node and remote-writes with the node metrics (a cluster without Prometheus)."""
    headers = remote_headers() if access else ""
    labels = f"cluster = {quote(cluster)}" + (f", {SCHEDULE_LABEL} = {quote(INTERMITTENT)}" if intermittent else "")
    parts = [
        # Pod logs through the API server; a DaemonSet instance tails only its own node's pods.
        'discovery.kubernetes "pods" {\n'
        '  role = "pod"\n'
        "  selectors {\n"
        '    role  = "pod"\n'
        '    field = "spec.nodeName=" + sys.env("NODE_NAME")\n'
        "  }\n"
        "}\n",
        'discovery.relabel "pods" {\n'
        "  targets = discovery.kubernetes.pods.targets\n"
        '  rule {\n    source_labels = ["__meta_kubernetes_namespace"]\n    target_label  = "namespace"\n  }\n'
        '  rule {\n    source_labels = ["__meta_kubernetes_pod_name"]\n    target_label  = "pod"\n  }\n'
        '  rule {\n    source_labels = ["__meta_kubernetes_pod_container_name"]\n    target_label  = "container"\n  }\n'
        '  rule {\n    source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]\n'
        '    target_label  = "app"\n  }\n'
        "}\n",
        'loki.source.kubernetes "pods" {\n'
        "  targets    = discovery.relabel.pods.output\n"
        "  forward_to = [loki.write.prod.receiver]\n"
        "}\n",
        'loki.source.kubernetes_events "cluster" {\n  forward_to = [loki.write.prod.receiver]\n}\n',
        *([talos_logs("loki.write.prod.receiver", 'sys.env("NODE_NAME")')] if talos else []),
        'loki.write "prod" {\n'
        "  endpoint {\n"
        f'    url = "{loki_url}"\n'
        f"{headers}"
        "  }\n"
        f"  external_labels = {{ {labels} }}\n"
        "}\n",
    ]
    if node_metrics and remote_write_url is not None:
        parts += [
            'prometheus.exporter.unix "node" {\n'
            '  procfs_path = "/host/proc"\n'
            '  sysfs_path  = "/host/sys"\n'
            '  rootfs_path = "/host/root"\n'
            "}\n",
            'discovery.relabel "node" {\n'
            "  targets = prometheus.exporter.unix.node.targets\n"
            '  rule {\n    target_label = "instance"\n    replacement  = sys.env("NODE_NAME")\n  }\n'
            '  rule {\n    target_label = "job"\n    replacement  = "node-exporter"\n  }\n'
            "}\n",
            'prometheus.scrape "node" {\n'
            "  targets         = discovery.relabel.node.output\n"
            "  forward_to      = [prometheus.remote_write.prod.receiver]\n"
            '  scrape_interval = "60s"\n'
            "}\n",
            *(_pod_scrape(scrape) for scrape in pod_scrapes),
            'prometheus.remote_write "prod" {\n'
            "  endpoint {\n"
            f'    url = "{remote_write_url}"\n'
            f"{headers}"
            "  }\n"
            f"  external_labels = {{ {labels} }}\n"
            "}\n",
        ]
    return "\n".join(parts)


def _meta_label(label: str) -> str:
    """Kubernetes discovery's meta label of a pod label (`app.kubernetes.io/name` -> `..._app_kubernetes_io_name`)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^A-Za-z0-9_]", "_", label)


def _pod_scrape(scrape: PodScrape) -> str:
    """Keep this node's pods of `scrape` (namespace, labels, named port), scrape them every minute."""
    keep = [("__meta_kubernetes_namespace", scrape.namespace)]
    keep += [(_meta_label(k), v) for k, v in sorted(scrape.match_labels.items())]
    keep.append(("__meta_kubernetes_pod_container_port_name", scrape.port))
    rules = "".join(
        f"  rule {{\n    source_labels = [{quote(source)}]\n    regex         = {quote(re.escape(value))}\n"
        '    action        = "keep"\n  }\n'
        for source, value in keep
    )
    rules += (
        '  rule {\n    source_labels = ["__meta_kubernetes_namespace"]\n    target_label  = "namespace"\n  }\n'
        '  rule {\n    source_labels = ["__meta_kubernetes_pod_name"]\n    target_label  = "pod"\n  }\n'
        f'  rule {{\n    target_label = "job"\n    replacement  = {quote(scrape.key)}\n  }}\n'
    )
    rules += "".join(
        f"  rule {{\n    target_label = {quote(k)}\n    replacement  = {quote(v)}\n  }}\n"
        for k, v in sorted(scrape.labels.items())
    )
    return (
        f'discovery.relabel "scrape_{scrape.key}" {{\n'
        "  targets = discovery.kubernetes.pods.targets\n"
        f"{rules}"
        "}\n"
        f'prometheus.scrape "{scrape.key}" {{\n'
        f"  targets         = discovery.relabel.scrape_{scrape.key}.output\n"
        "  forward_to      = [prometheus.remote_write.prod.receiver]\n"
        '  scrape_interval = "60s"\n'
        "}\n"
    )


def kube_state_metrics_values() -> dict[str, Any]:
    """CronJob series only: the one collector the backup alerts read (least RBAC: list/watch cronjobs)."""
    return {
        "collectors": ["cronjobs"],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    }


class TelemetryAgentArgs(TypedDict):
    cluster: str
    chart_version: str
    namespace: str
    loki_url: NotRequired[str]
    """In-cluster push URL (PROD); with `remote` the tunnel hostname is used instead."""
    remote: NotRequired[RemoteTarget]
    node_metrics: NotRequired[bool]
    """Run the unix exporter on every node and remote-write (a cluster without its own Prometheus)."""
    talos_logs: NotRequired[bool]
    """Receive Talos's service and kernel logs on each node's loopback (pair with
    `talos_logging_patches` in the cluster's machine configuration)."""
    create_namespace: NotRequired[bool]
    intermittent: NotRequired[bool]
    """The cluster is powered off by design most of the time (DEV): its series carry
    `schedule="intermittent"` so PROD does not alert on its silence."""
    pod_scrapes: NotRequired[Sequence[PodScrape]]
    """Pods whose metrics the agent scrapes on each node and remote-writes (with `node_metrics`)."""
    cron_job_metrics_chart: NotRequired[str]
    """Run kube-state-metrics (this chart version, CronJob series only) in the agent's namespace and
    scrape it (with `node_metrics`): the backup jobs' alerts on PROD read its series."""


class TelemetryAgent(pulumi.ComponentResource):
    """Grafana Alloy as a DaemonSet shipping pod logs (and, remotely, node metrics) to PROD."""

    def __init__(self, name: str, args: TelemetryAgentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:monitoring:TelemetryAgent", name, None, opts)
        ns = args["namespace"]
        remote = args.get("remote")
        node_metrics = bool(args.get("node_metrics", False)) and remote is not None
        labels = {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/managed-by": "pulumi"}
        depends: list[pulumi.Resource] = []
        if args.get("create_namespace", False):
            depends.append(
                k8s.core.v1.Namespace(
                    f"{name}-namespace",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=ns,
                        # The unix exporter reads the host's /proc, /sys and / (hostPath, hostPID).
                        labels={**labels, "pod-security.kubernetes.io/enforce": "privileged"},
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        # The node a DaemonSet pod runs on (the pod's own HOSTNAME is the pod name).
        env: list[dict[str, Any]] = [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
        if remote is not None:
            loki_url = remote.logs_url
            write_url: pulumi.Input[str] | None = remote.metrics_url
            access = k8s.core.v1.Secret(
                f"{name}-access",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ACCESS_SECRET, namespace=ns, labels=labels),
                type="Opaque",
                string_data={
                    ACCESS_ENV[0]: pulumi.Output.secret(remote.access_client_id),
                    ACCESS_ENV[1]: pulumi.Output.secret(remote.access_client_secret),
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
            depends.append(access)
            env += [
                {"name": key, "valueFrom": {"secretKeyRef": {"name": ACCESS_SECRET, "key": key}}} for key in ACCESS_ENV
            ]
        else:
            loki_url = args.get("loki_url", "")
            write_url = None
            if not loki_url:
                raise ValueError(f"TelemetryAgent {name!r}: give loki_url (in-cluster) or remote (tunnel)")
        mounts: list[Mapping[str, Any]] = []
        if node_metrics:
            mounts = [
                {"name": "proc", "mountPath": "/host/proc", "readOnly": True},
                {"name": "sys", "mountPath": "/host/sys", "readOnly": True},
                {"name": "root", "mountPath": "/host/root", "readOnly": True, "mountPropagation": "HostToContainer"},
            ]
        talos = bool(args.get("talos_logs", False))
        scrapes = list(args.get("pod_scrapes", ()))
        ksm_chart = args.get("cron_job_metrics_chart")
        if ksm_chart is not None and node_metrics:
            scrapes.append(dataclasses.replace(KSM_SCRAPE, namespace=ns))
            k8s.helm.v3.Release(
                f"{name}-cron-job-metrics",
                name=KSM_RELEASE,
                chart="kube-state-metrics",
                version=ksm_chart,
                namespace=ns,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=PROMETHEUS_COMMUNITY),
                values=kube_state_metrics_values(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
        if not node_metrics:
            scrapes = []
        controller: dict[str, Any] = {"type": "daemonset"}
        if node_metrics:
            controller["hostPID"] = True
            controller["volumes"] = {
                "extra": [
                    {"name": "proc", "hostPath": {"path": "/proc"}},
                    {"name": "sys", "hostPath": {"path": "/sys"}},
                    {"name": "root", "hostPath": {"path": "/"}},
                ]
            }
        alloy: dict[str, Any] = {
            # The URLs may be another stack's outputs (DEV reads them from the cloud stack).
            "configMap": {
                "content": pulumi.Output.all(loki_url, write_url if write_url is not None else "").apply(
                    lambda urls: alloy_config(
                        args["cluster"],
                        str(urls[0]),
                        str(urls[1]) if write_url is not None else None,
                        node_metrics,
                        remote is not None,
                        talos=talos,
                        intermittent=bool(args.get("intermittent", False)),
                        pod_scrapes=scrapes,
                    )
                )
            },
            "mounts": {"varlog": False, "extra": mounts},
            "extraEnv": env,
        }
        if talos:
            # Talos dials 127.0.0.1 of its own node: the agent shares the host's network namespace
            # and runs on every node. Its UI/API binds the loopback too (readiness through
            # `curl localhost` inside the pod, as the chart does without the HTTP port).
            controller["hostNetwork"] = True
            controller["dnsPolicy"] = "ClusterFirstWithHostNet"
            controller["tolerations"] = [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
            ]
            alloy["listenAddr"] = "127.0.0.1"
            alloy["enableHttpServerPort"] = False
            # otelcol.receiver.tcplog (the only Alloy receiver for Talos's JSON lines) is experimental.
            alloy["stabilityLevel"] = "experimental"
        values: dict[str, Any] = {"controller": controller, "alloy": alloy}
        if talos:
            # The reloader sidecar listens on :8080 by default: on the host network, loopback only.
            values["configReloader"] = {
                "customArgs": [
                    "--watched-dir=/etc/alloy",
                    "--reload-url=http://localhost:12345/-/reload",
                    "--listen-address=127.0.0.1:9533",
                ]
            }
        k8s.helm.v3.Release(
            f"{name}-chart",
            name="alloy",
            chart="alloy",
            version=args["chart_version"],
            namespace=ns,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=GRAFANA),
            values=values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.register_outputs({})
