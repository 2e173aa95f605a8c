"""`MetricsStack`: kube-prometheus-stack on PROD with the Talos settings, alerts, probes and dashboards.

Threat model: Prometheus, Alertmanager and Grafana hold the estate's telemetry and can silence
alerts. None of them gets a LoadBalancer, NodePort or Ingress: they are reached only as admin apps
through the `prod` Cloudflare Tunnel (service catalog, Access with MFA), Grafana additionally behind
Authentik OIDC where only the `admin` group gets a role (`role_attribute_strict`: anyone else is
refused, not given Viewer). Alertmanager's credentials (Telegram bot token and chat id, the ntfy
publisher token) are Kubernetes Secrets mounted as files; the rendered config only names the files.

Order: the namespace (Pod Security `privileged`, which node-exporter's hostNetwork/hostPID/hostPath
need under Talos' `baseline` default) -> the operator CRDs (applied by Pulumi ahead of the chart,
because Helm installs `crds/` once and never upgrades them; the chart runs with `crds.enabled: false`
and `skip_crds`) -> the secrets -> the chart -> the objects that need the CRDs (rules, probes,
scrape configs).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring.alertmanager import (
    NTFY_SECRET,
    NTFY_TOKEN_KEY,
    TELEGRAM_CHAT_KEY,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN_KEY,
)
from components.monitoring.rules import HOST_JOB, RuleGroup

PROMETHEUS_COMMUNITY = "https://prometheus-community.github.io/helm-charts"
RELEASE = "kube-prometheus-stack"
"""Helm release name: the catalog's upstreams (`kube-prometheus-stack-grafana`, `-prometheus`,
`-alertmanager`) are derived from it."""
BLACKBOX_RELEASE = "blackbox"
BLACKBOX_SERVICE = f"{BLACKBOX_RELEASE}-prometheus-blackbox-exporter"
GRAFANA_OIDC_SECRET = "grafana-oidc"
DASHBOARD_LABEL = "grafana_dashboard"
MANAGED = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "monitoring"}
PROBE_MODULES: dict[str, dict[str, Any]] = {
    # An app answers 2xx at its health path.
    "http_2xx": {
        "prober": "http",
        "timeout": "10s",
        "http": {"preferred_ip_protocol": "ip4", "follow_redirects": True},
    },
    # An admin app's public hostname must answer with Cloudflare Access' login redirect: this proves
    # the tunnel and hostname work *and* that Access still guards it (a 200 here is an exposure).
    "http_access": {
        "prober": "http",
        "timeout": "10s",
        "http": {
            "preferred_ip_protocol": "ip4",
            "follow_redirects": False,
            "valid_status_codes": [302],
            "fail_if_header_not_matches": [
                {"header": "Location", "regexp": r"^https://[^/]+\.cloudflareaccess\.com/", "allow_missing": False}
            ],
        },
    },
}
# kube-prometheus-stack's own rules that the generated table replaces (PRD thresholds, 180 s).
REPLACED_DEFAULT_RULES = (
    "KubeNodeNotReady",
    "NodeFilesystemAlmostOutOfSpace",
    "NodeFilesystemSpaceFillingUp",
    "NodeMemoryHighUtilization",
    "NodeCPUHighUsage",
)


@dataclass(frozen=True)
class ProbeTarget:
    """One blackbox probe: a catalog service reached one way (`public` hostname or `internal` Service)."""

    service: str
    path: str
    url: str
    module: str


@dataclass(frozen=True)
class PodScrape:
    """Pods outside the chart to scrape (e.g. the tunnel connector), labelled on the way in."""

    key: str
    namespace: str
    match_labels: Mapping[str, str]
    port: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class GrafanaOidc:
    """Grafana's Authentik client: issuer base URL and the client exported by the identity layer."""

    hostname: str
    authentik_url: str
    """`https://auth.<domain>` (the endpoints are `/application/o/{authorize,token,userinfo}/`)."""
    client_id: pulumi.Input[str]
    client_secret: pulumi.Input[str]
    admin_group: str = "admin"


class MetricsStackArgs(TypedDict):
    namespace: str
    cluster_name: str
    control_plane_addresses: Sequence[str]
    """Etcd, controller-manager and scheduler run as static pods on Talos: scraped by address."""
    chart_version: str
    blackbox_chart_version: str
    storage_class: str
    prometheus_volume_gb: int
    retention: str
    retention_size_gb: int
    alertmanager_config: Mapping[str, Any]
    rule_files: Mapping[str, list[RuleGroup]]
    probes: Sequence[ProbeTarget]
    host_target: str
    """`<address>:<port>` of the node exporter on the Proxmox host (LAN)."""
    grafana: GrafanaOidc
    ntfy_token: pulumi.Input[str]
    dashboards: Mapping[str, str]
    """Dashboard file name -> Grafana JSON, provisioned through the sidecar."""
    telegram_bot_token: NotRequired[pulumi.Input[str]]
    telegram_chat_id: NotRequired[pulumi.Input[str]]
    crd_files: Sequence[str]
    """The operator's CRDs as vendored manifest files (`components.manifests.manifest_files`),
    applied ahead of the chart."""
    pod_monitors: NotRequired[Sequence["PodScrape"]]


ETCD_METRICS_PORT = 2381
"""etcd's plain-HTTP metrics listener (metrics only, no client API), scraped as `kubeEtcd`."""


def control_plane_metrics_patch() -> str:
    """Control-plane machine-config patch: the endpoints the chart's `kubeEtcd`,
    `kubeControllerManager` and `kubeScheduler` jobs scrape by node address.

    Talos binds them to localhost by default, so without it those targets are down (and the
    chart's own `TargetDown` fires forever). etcd gets a separate metrics-only HTTP listener; the
    controller-manager and the scheduler keep serving HTTPS on 10257/10259 and still authorize
    every scrape against the API server (Prometheus presents its service account token).
    Control planes only: workers run none of the three.
    """
    cluster = {
        "etcd": {"extraArgs": {"listen-metrics-urls": f"http://0.0.0.0:{ETCD_METRICS_PORT}"}},
        "controllerManager": {"extraArgs": {"bind-address": "0.0.0.0"}},
        "scheduler": {"extraArgs": {"bind-address": "0.0.0.0"}},
    }
    return json.dumps({"cluster": cluster}, sort_keys=True)


def chart_values(args: MetricsStackArgs, secrets: Sequence[str]) -> dict[str, Any]:
    """The kube-prometheus-stack values (platform-facts §3.1 for the keys)."""
    endpoints = list(args["control_plane_addresses"])
    grafana = args["grafana"]
    base = grafana.authentik_url.rstrip("/")
    volume = {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": args["storage_class"],
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{args['prometheus_volume_gb']}Gi"}},
            }
        }
    }
    selectors = {
        f"{kind}SelectorNilUsesHelmValues": False
        for kind in ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig")
    }
    return {
        "crds": {"enabled": False},
        "cleanPrometheusOperatorObjectNames": True,
        "defaultRules": {"disabled": dict.fromkeys(REPLACED_DEFAULT_RULES, True)},
        # Cilium replaces kube-proxy; Talos runs the control plane as static pods without the
        # kubeadm labels the chart's Services select, so they are scraped by address.
        "kubeProxy": {"enabled": False},
        "kubeEtcd": {"endpoints": endpoints, "service": {"port": ETCD_METRICS_PORT, "targetPort": ETCD_METRICS_PORT}},
        "kubeControllerManager": {"endpoints": endpoints},
        "kubeScheduler": {"endpoints": endpoints},
        "prometheus": {
            "prometheusSpec": {
                **selectors,
                "retention": args["retention"],
                "retentionSize": f"{args['retention_size_gb']}GB",
                "storageSpec": volume,
                "externalLabels": {"cluster": args["cluster_name"]},
                # CLOUD's collector remote-writes here (through the tunnel, never an open port).
                "enableRemoteWriteReceiver": True,
            }
        },
        "alertmanager": {
            "config": dict(args["alertmanager_config"]),
            "alertmanagerSpec": {
                "secrets": list(secrets),
                "storage": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": args["storage_class"],
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "2Gi"}},
                        }
                    }
                },
            },
        },
        "grafana": {
            "envFromSecret": GRAFANA_OIDC_SECRET,
            "grafana.ini": {
                "server": {"root_url": f"https://{grafana.hostname}"},
                "auth": {"disable_login_form": True, "oauth_auto_login": True},
                "auth.basic": {"enabled": False},
                "auth.generic_oauth": {
                    "enabled": True,
                    "name": "Authentik",
                    "allow_sign_up": True,
                    "scopes": "openid profile email",
                    "auth_url": f"{base}/application/o/authorize/",
                    "token_url": f"{base}/application/o/token/",
                    "api_url": f"{base}/application/o/userinfo/",
                    "signout_redirect_url": f"{base}/application/o/grafana/end-session/",
                    "use_pkce": True,
                    # Admin group -> Admin; anyone else gets no role, and strict mode refuses them.
                    "role_attribute_path": f"contains(groups[*], '{grafana.admin_group}') && 'Admin' || ''",
                    "role_attribute_strict": True,
                    "allow_assign_grafana_admin": True,
                },
            },
            "sidecar": {
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1", "searchNamespace": "ALL"}
            },
            "additionalDataSources": [
                {
                    "name": "Loki",
                    "type": "loki",
                    "uid": "loki",
                    "url": f"http://loki-gateway.{args['namespace']}.svc.cluster.local",
                    "access": "proxy",
                }
            ],
        },
    }


class MetricsStack(pulumi.ComponentResource):
    """kube-prometheus-stack, the blackbox exporter and everything that feeds them."""

    release_name: pulumi.Output[str]

    def __init__(self, name: str, args: MetricsStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:monitoring:MetricsStack", name, None, opts)
        ns = args["namespace"]
        child = pulumi.ResourceOptions(parent=self)

        def labels(app: str) -> dict[str, str]:
            return {"app.kubernetes.io/name": app, **MANAGED}

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns,
                labels={
                    **labels("monitoring"),
                    # node-exporter needs hostNetwork, hostPID and hostPath (Talos enforces baseline).
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/audit": "privileged",
                    "pod-security.kubernetes.io/warn": "privileged",
                },
            ),
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        def secret(key: str, secret_name: str, data: Mapping[str, pulumi.Input[str]]) -> k8s.core.v1.Secret:
            return k8s.core.v1.Secret(
                f"{name}-{key}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=ns, labels=labels(secret_name)),
                type="Opaque",
                string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
                opts=in_ns,
            )

        mounted = [secret("ntfy-token", NTFY_SECRET, {NTFY_TOKEN_KEY: args["ntfy_token"]})]
        mounted_names = [NTFY_SECRET]
        if "telegram_bot_token" in args and "telegram_chat_id" in args:
            mounted_names.append(TELEGRAM_SECRET)
            mounted.append(
                secret(
                    "telegram",
                    TELEGRAM_SECRET,
                    {TELEGRAM_TOKEN_KEY: args["telegram_bot_token"], TELEGRAM_CHAT_KEY: args["telegram_chat_id"]},
                )
            )
        grafana = args["grafana"]
        oidc = secret(
            "grafana-oidc",
            GRAFANA_OIDC_SECRET,
            {
                "GF_AUTH_GENERIC_OAUTH_CLIENT_ID": grafana.client_id,
                "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": grafana.client_secret,
            },
        )
        dashboards = [
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{file.removesuffix('.json')}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"dashboard-{file.removesuffix('.json')}",
                    namespace=ns,
                    labels={**labels("grafana-dashboard"), DASHBOARD_LABEL: "1"},
                ),
                data={file: body},
                opts=in_ns,
            )
            for file, body in sorted(args["dashboards"].items())
        ]

        # Server-side apply (the provider's default) carries these large CRDs without the
        # last-applied annotation's 256 KiB limit; Pulumi updates them, which Helm never does.
        crds = [
            k8s.yaml.v2.ConfigGroup(f"{name}-crds", files=list(args["crd_files"]), opts=child),
        ]
        release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=RELEASE,
            chart="kube-prometheus-stack",
            version=args["chart_version"],
            namespace=ns,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=PROMETHEUS_COMMUNITY),
            skip_crds=True,
            values=chart_values(args, mounted_names),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *crds, *mounted, oidc, *dashboards]),
        )
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[release, *crds])

        blackbox = k8s.helm.v3.Release(
            f"{name}-blackbox",
            name=BLACKBOX_RELEASE,
            chart="prometheus-blackbox-exporter",
            version=args["blackbox_chart_version"],
            namespace=ns,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=PROMETHEUS_COMMUNITY),
            values={"config": {"modules": PROBE_MODULES}},
            opts=in_ns,
        )

        for file, groups in sorted(args["rule_files"].items()):
            k8s.apiextensions.CustomResource(
                f"{name}-rules-{file}",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=file, namespace=ns, labels=labels(file)),
                spec={"groups": groups},
                opts=after_chart,
            )

        for probe in args["probes"]:
            k8s.apiextensions.CustomResource(
                f"{name}-probe-{probe.service}-{probe.path}",
                api_version="monitoring.coreos.com/v1",
                kind="Probe",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{probe.service}-{probe.path}", namespace=ns, labels=labels(probe.service)
                ),
                spec={
                    "jobName": f"probe-{probe.service}-{probe.path}",
                    "interval": "60s",
                    "module": probe.module,
                    "prober": {"url": f"{BLACKBOX_SERVICE}.{ns}.svc:9115"},
                    "targets": {
                        "staticConfig": {
                            "static": [probe.url],
                            "labels": {"service": probe.service, "path": probe.path},
                        }
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release, blackbox, *crds]),
            )

        for scrape in args.get("pod_monitors", ()):
            k8s.apiextensions.CustomResource(
                f"{name}-pods-{scrape.key}",
                api_version="monitoring.coreos.com/v1",
                kind="PodMonitor",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=scrape.key, namespace=ns, labels=labels(scrape.key)),
                spec={
                    "namespaceSelector": {"matchNames": [scrape.namespace]},
                    "selector": {"matchLabels": dict(scrape.match_labels)},
                    "podMetricsEndpoints": [
                        {
                            "port": scrape.port,
                            "relabelings": [
                                {"action": "replace", "targetLabel": key, "replacement": value}
                                for key, value in sorted(scrape.labels.items())
                            ],
                        }
                    ],
                },
                opts=after_chart,
            )

        # The Proxmox host's own node exporter (ZFS, SMART and backup results), over the LAN.
        k8s.apiextensions.CustomResource(
            f"{name}-proxmox-host",
            api_version="monitoring.coreos.com/v1alpha1",
            kind="ScrapeConfig",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=HOST_JOB, namespace=ns, labels=labels(HOST_JOB)),
            spec={
                "jobName": HOST_JOB,
                "scrapeInterval": "30s",
                "staticConfigs": [{"targets": [args["host_target"]], "labels": {"role": "proxmox"}}],
            },
            opts=after_chart,
        )
        self.release_name = release.name.apply(lambda value: value or RELEASE)
        self.register_outputs({"release_name": self.release_name})


DASHBOARD_DIR = Path(__file__).with_name("dashboards")


def load_dashboards(directory: Path = DASHBOARD_DIR) -> dict[str, str]:
    """The repository's Grafana dashboards (`<name>.json`), compacted for their ConfigMaps.

    A file that is not a dashboard object with a `uid` and `panels` is an error here, not a blank
    dashboard in Grafana.
    """
    dashboards: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(body, dict) or not body.get("uid") or not isinstance(body.get("panels"), list):
            raise ValueError(f"{path.name}: a Grafana dashboard needs a uid and a panels list")
        dashboards[path.name] = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return dashboards
