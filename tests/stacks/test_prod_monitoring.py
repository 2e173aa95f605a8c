"""The prod stack with monitoring on: what it registers, that the pack passes, and how it fails.

Grafana's OIDC client comes from the cloud stack's `oidc_grafana` output (the identity layer).
These runs hand the referenced outputs in explicitly, with that output set or missing.
"""

import logging

import pytest
import yaml

from components.monitoring.alloy import TALOS_LOG_PORT
from components.monitoring.metrics import ETCD_METRICS_PORT
from homelab.engine import Recording, StackOutputs, run_program
from homelab.policy_eval import blocking, evaluate, load_pack_config
from homelab.stackrun import ConfigError, outputs_from, project_root, run_stack
from stacks.monitoring import identity_publisher

CR = "kubernetes:monitoring.coreos.com/v1"
ON = {"homelab:monitoring": {"enabled": True, "storage_class": "longhorn", "backup_jobs": ["vzdump-prod"]}}


def _references(previewed, oidc: bool) -> dict[str, StackOutputs]:
    dev = outputs_from(previewed("dev").recording)
    cloud = outputs_from(previewed("cloud").recording)
    values = dict(cloud.values)
    values.pop("oidc_grafana", None)
    if oidc:
        values["oidc_grafana"] = {"client_id": "grafana", "client_secret": "offline-client-secret"}
    return {"dev": dev, "cloud": StackOutputs(values=values, secret_names=cloud.secret_names | {"oidc_grafana"})}


@pytest.fixture(scope="module")
def monitored(previewed) -> Recording:
    return run_stack("prod", overrides=ON, references=_references(previewed, oidc=True))


def test_monitoring_passes_the_policy_pack(monitored):
    config = load_pack_config(project_root() / "policies" / "config" / "prod.json")
    assert blocking(evaluate(monitored, config=config)) == []


def test_every_catalog_service_gets_a_probe_and_a_service_down_rule(monitored):
    probes = {
        r.inputs["spec"]["targets"]["staticConfig"]["labels"]["service"] for r in monitored.by_type(f"{CR}:Probe")
    }
    assert {"grafana", "nextcloud", "authentik", "ntfy-push", "komga"} <= probes
    services = monitored.get(f"{CR}:PrometheusRule", "metrics-rules-homelab-services")
    down = {r["labels"]["service"] for g in services.inputs["spec"]["groups"] for r in g["rules"]}
    assert down == probes
    admin = monitored.get(f"{CR}:Probe", "metrics-probe-grafana-public").inputs["spec"]
    assert admin["module"] == "http_access" and admin["targets"]["staticConfig"]["static"] == [
        "https://grafana.example.net/"
    ]
    internal = monitored.get(f"{CR}:Probe", "metrics-probe-komga-internal").inputs["spec"]
    assert internal["targets"]["staticConfig"]["static"] == [
        "http://komga.komga.svc.cluster.local:25600/actuator/health"
    ]


def test_failed_or_missed_velero_and_etcd_snapshot_runs_alert(monitored):
    monitor = monitored.get(f"{CR}:PodMonitor", "metrics-pods-velero").inputs["spec"]
    assert monitor["namespaceSelector"] == {"matchNames": ["velero"]}
    assert monitor["selector"]["matchLabels"] == {"app.kubernetes.io/name": "velero", "name": "velero"}
    assert monitor["podMetricsEndpoints"][0]["port"] == "http-monitoring"
    backups = monitored.get(f"{CR}:PrometheusRule", "metrics-rules-homelab-backups").inputs["spec"]["groups"]
    rules = {r["alert"]: r for g in backups for r in g["rules"]}
    assert {"VeleroBackupFailed", "VeleroBackupTooOld", "VeleroBackupNeverSucceeded"} <= set(rules)
    # The etcd snapshot job (components/k8s/etcd_backup.py) on every cluster that ships its series.
    failed = rules["BackupCronJobFailed"]
    assert failed["labels"] == {"severity": "critical", "namespace": "etcd-backup", "cronjob": "etcd-backup"}
    assert failed["for"] == "75m"  # its Job's one-hour deadline, plus slack
    # PROD's own series carry no cluster label: the alert names the cluster all the same.
    cluster = yaml.safe_load((project_root() / "Pulumi.prod.yaml").read_text())["config"]["homelab:cluster"]["name"]
    assert f'"cluster", "{cluster}", "cluster", ""' in failed["expr"]


def test_the_collectors_write_paths_are_probed_inside_the_cluster_only(monitored):
    probes = {r.name for r in monitored.by_type(f"{CR}:Probe") if "telemetry" in r.name}
    assert probes == {"metrics-probe-telemetry-metrics-internal", "metrics-probe-telemetry-logs-internal"}
    spec = monitored.get(f"{CR}:Probe", "metrics-probe-telemetry-metrics-internal").inputs["spec"]
    assert spec["targets"]["staticConfig"]["static"] == [
        "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090/-/ready"
    ]


def test_talos_logs_reach_the_node_local_agent_on_every_prod_node(monitored):
    applies = monitored.by_type("talos:machine/configurationApply:ConfigurationApply")
    assert applies
    for apply in applies:
        rendered = apply.inputs["machineConfigurationInput"]
        assert f"tcp://127.0.0.1:{TALOS_LOG_PORT}/" in rendered and "KmsgLogConfig" in rendered, apply.name
    values = monitored.get("kubernetes:helm.sh/v3:Release", "prod-telemetry-chart").inputs["values"]
    assert values["controller"]["hostNetwork"] is True
    assert f'listen_address = "127.0.0.1:{TALOS_LOG_PORT}"' in values["alloy"]["configMap"]["content"]
    # Its pushes to Loki come from the nodes (host network): the monitoring namespace admits them.
    entities = monitored.get("kubernetes:cilium.io/v2:CiliumNetworkPolicy", "network-policies-monitoring-entities")
    assert entities.inputs["spec"]["ingress"][0]["fromEntities"] == ["host", "kube-apiserver", "remote-node"]


def test_control_plane_metrics_listen_where_the_chart_scrapes_them_on_control_planes_only(monitored):
    """kubeEtcd/kubeControllerManager/kubeScheduler scrape node addresses; Talos binds them to
    localhost unless the control planes are patched."""
    roles = {"prod-cp-1": "controlplane", "prod-worker-1": "worker"}
    for node, role in roles.items():
        rendered = monitored.get("talos:machine/configurationApply:ConfigurationApply", f"talos-{node}-config").inputs[
            "machineConfigurationInput"
        ]
        patched = f"http://0.0.0.0:{ETCD_METRICS_PORT}" in rendered and "bind-address" in rendered
        assert patched == (role == "controlplane"), node
    values = monitored.get("kubernetes:helm.sh/v3:Release", "metrics-chart").inputs["values"]
    assert values["kubeEtcd"]["service"] == {"port": ETCD_METRICS_PORT, "targetPort": ETCD_METRICS_PORT}
    assert values["kubeControllerManager"]["endpoints"] == values["kubeScheduler"]["endpoints"] == ["192.168.68.71"]


def test_monitoring_namespaces_are_default_deny_with_only_their_allows(monitored):
    nps = {r.name: r for r in monitored.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    for ns in ("monitoring", "ntfy"):
        deny = nps[f"network-policies-{ns}-deny"].inputs
        assert deny["metadata"]["namespace"] == ns
        assert deny["spec"]["podSelector"] == {} and "ingress" not in deny["spec"]
        # Registered after the components that create the namespace.
        assert nps[f"network-policies-{ns}-deny"].parent.endswith("NetworkPolicies::network-policies")
    peers = {
        ns: {
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in nps[f"network-policies-{ns}-allow"].inputs["spec"]["ingress"]
            for p in rule["from"]
            if "namespaceSelector" in p
        }
        for ns in ("monitoring", "ntfy")
    }
    assert peers == {"monitoring": {"cloudflared"}, "ntfy": {"cloudflared", "monitoring"}}
    entities = monitored.get("kubernetes:cilium.io/v2:CiliumNetworkPolicy", "network-policies-monitoring-entities")
    assert entities.inputs["spec"]["ingress"][0]["fromEntities"] == ["host", "kube-apiserver", "remote-node"]
    # The policies wait for the components that create their namespaces.
    after = set(monitored.get("homelab:k8s:NetworkPolicies", "network-policies").dependencies)
    for owner in ("metrics-namespace", "ntfy-namespace"):
        assert monitored.get("kubernetes:core/v1:Namespace", owner).urn in after, owner


def test_a_namespace_owned_twice_names_the_key(previewed):
    platform = {"namespaces": ["komga", "ntfy"]}
    with pytest.raises(ConfigError, match=r"^homelab:platform\.namespaces: 'ntfy' is created by the monitoring"):
        run_stack("prod", overrides={**ON, "homelab:platform": platform}, references=_references(previewed, oidc=True))


def test_crds_come_from_the_lock_before_the_chart(monitored):
    chart = monitored.get("kubernetes:helm.sh/v3:Release", "metrics-chart")
    crds = monitored.get("kubernetes:yaml/v2:ConfigGroup", "metrics-crds")
    assert crds.urn in chart.dependencies and chart.inputs["skipCrds"] is True
    assert all(f.startswith("vendor/manifests/prometheus-operator-crds/v0.93.0/") for f in crds.inputs["files"])
    assert len(crds.inputs["files"]) == 10


def test_retention_is_sized_to_the_worker_disk(monitored):
    spec = monitored.get("kubernetes:helm.sh/v3:Release", "metrics-chart").inputs["values"]["prometheus"][
        "prometheusSpec"
    ]
    # prod-worker-1 has 200 GB; Prometheus may use a quarter of it, its volume 10 % more.
    assert spec["retentionSize"] == "50GB"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "55Gi"
    loki = monitored.get("kubernetes:helm.sh/v3:Release", "logs-chart").inputs["values"]
    assert loki["singleBinary"]["persistence"]["size"] == "20Gi"


def test_host_exporter_continues_the_host_command_chain(monitored):
    install = monitored.get("command:remote:Command", "host-exporter-install")
    arc = monitored.get("command:remote:Command", "tank-arc")
    assert arc.urn in install.dependencies
    assert "--web.listen-address=192.168.68.51:9100" in install.inputs["create"]
    scrape = monitored.get("kubernetes:monitoring.coreos.com/v1alpha1:ScrapeConfig", "metrics-proxmox-host")
    assert scrape.inputs["spec"]["staticConfigs"][0]["targets"] == ["192.168.68.51:9100"]


def test_grafana_client_secret_stays_secret(monitored):
    oidc = monitored.get("kubernetes:core/v1:Secret", "metrics-grafana-oidc")
    assert oidc.is_secret("stringData.GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET")
    assert oidc.inputs["stringData"]["GF_AUTH_GENERIC_OAUTH_CLIENT_ID"] == "grafana"


def test_a_missing_oidc_output_fails_loudly_naming_it():
    # The check runs on the referenced output's value; a whole failing stack run is not used here
    # because the offline engine leaves the runtime's pending tasks behind after such a failure.
    from stacks.monitoring import _grafana_client

    with pytest.raises(
        ConfigError, match=r"^homelab:monitoring\.grafana_oidc_output: the cloud stack has no output 'oidc_grafana'"
    ):
        _grafana_client(None, "oidc_grafana")
    with pytest.raises(ConfigError, match="client_id and client_secret"):
        _grafana_client({"client_id": "grafana"}, "oidc_grafana")
    assert _grafana_client({"client_id": "g", "client_secret": "s"}, "oidc_grafana") == {
        "client_id": "g",
        "client_secret": "s",
    }


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (
            {"thresholds": {"disk_critical": {"percent": 120, "after": "5m"}}},
            "homelab:monitoring.thresholds.disk_critical.percent",
        ),
        ({"thresholds": {"node_down": {"after": "3 minutes"}}}, "homelab:monitoring.thresholds.node_down.after"),
        ({"probes": {"jellyfin": {}}}, "homelab:monitoring.probes.jellyfin"),
    ],
)
def test_bad_monitoring_input_names_the_key(previewed, override, key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        run_stack(
            "prod",
            overrides={"homelab:monitoring": {"enabled": True, **override}},
            references=_references(previewed, oidc=True),
        )


def test_telegram_on_without_its_secret_names_the_key(record):
    from stacks.config.monitoring import MonitoringConfig
    from stacks.monitoring import telegram_secrets

    with pytest.raises(Exception, match=r"^homelab:telegramBotToken: required secret is not set"):
        record(lambda: telegram_secrets(MonitoringConfig()), secrets={"telegramChatId": "-100"})
    off = MonitoringConfig.model_validate({"alerting": {"telegram": {"enabled": False}}})
    assert record(lambda: telegram_secrets(off)).resources == []


def test_ntfy_grants_authentiks_sign_up_push_from_the_cloud_stack(monitored, previewed):
    publisher = previewed("cloud").recording.outputs["ntfy_identity_publisher"].value
    config = monitored.get("kubernetes:core/v1:Secret", "ntfy-config")
    assert config.is_secret("stringData.server.yml")
    server = yaml.safe_load(config.inputs["stringData"]["server.yml"])
    assert f"authentik:{publisher['topic']}:wo" in server["auth-access"]
    assert f"phone:{publisher['topic']}:ro" in server["auth-access"]
    assert f"authentik:{publisher['token']}:authentik" in server["auth-tokens"]


def test_the_identity_publisher_output_absent_wrong_or_on_an_alert_topic(caplog):
    topics = ("homelab-critical", "homelab-digest")

    def program():
        assert identity_publisher(None, topics) is None

    with caplog.at_level(logging.WARNING):
        run_program(program, project="homelab", stack="test")
    assert any("ntfy_identity_publisher" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="must be an object with topic and token"):
        identity_publisher({"topic": "homelab-identity"}, topics)
    with pytest.raises(ConfigError, match=r"^homelab:identity\.ntfy_topic \(cloud stack\): 'homelab-critical'"):
        identity_publisher({"topic": "homelab-critical", "token": "tk_x"}, topics)
    granted = identity_publisher({"topic": "homelab-identity", "token": "tk_x"}, topics)
    assert granted is not None and (granted.user, granted.topic) == ("authentik", "homelab-identity")
