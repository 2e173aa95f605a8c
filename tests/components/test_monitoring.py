"""Monitoring components under mocks: what they register, with which inputs, parents and secrets."""

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi_command import remote

from components.manifests import manifest_files
from components.monitoring.alertmanager import Routing, alertmanager_config
from components.monitoring.alloy import TALOS_LOG_PORT
from components.monitoring.host import HostExporter, install_script
from components.monitoring.logs import LogStore, RemoteTarget, TelemetryAgent, talos_logging_patches
from components.monitoring.metrics import GrafanaOidc, MetricsStack, PodScrape, ProbeTarget, load_dashboards
from components.monitoring.ntfy import ExtraPublisher, Ntfy, server_config, unusable_bcrypt
from components.monitoring.rules import ProbedService, RuleContext, rule_groups
from stacks.config.monitoring import ThresholdsConfig
from tests.monitoring.alloy_wiring import assert_wired

RELEASE = "kubernetes:helm.sh/v3:Release"
CR_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CR_PROBE = "kubernetes:monitoring.coreos.com/v1:Probe"
SECRET = "kubernetes:core/v1:Secret"
RULES = rule_groups(ThresholdsConfig(), RuleContext(pool="tank", services=(ProbedService("grafana", "warning"),)))


def _provider() -> k8s.Provider:
    return k8s.Provider("k8s", kubeconfig="{}", cluster_identifier="test")


def metrics_program(telegram: bool = True):
    def program():
        opts = pulumi.ResourceOptions(providers=[_provider()])
        args = {
            "namespace": "monitoring",
            "cluster_name": "homelab-prod",
            "control_plane_addresses": ["192.168.68.71"],
            "chart_version": "88.5.3",
            "blackbox_chart_version": "11.17.2",
            "storage_class": "longhorn",
            "prometheus_volume_gb": 55,
            "retention": "30d",
            "retention_size_gb": 50,
            "alertmanager_config": alertmanager_config(
                Routing("http://ntfy.ntfy.svc.cluster.local:80", "c", "d", telegram)
            ),
            "rule_files": RULES,
            "probes": [
                ProbeTarget("grafana", "public", "https://grafana.example.net/api/health", "http_access"),
                ProbeTarget(
                    "grafana", "internal", "http://grafana.monitoring.svc.cluster.local:80/api/health", "http_2xx"
                ),
            ],
            "host_target": "192.168.68.51:9100",
            "grafana": GrafanaOidc(
                "grafana.example.net", "https://auth.example.net", "grafana-client", pulumi.Output.secret("s3cr3t")
            ),
            "ntfy_token": pulumi.Output.secret("tk_publisher"),
            "dashboards": load_dashboards(),
            "crd_files": manifest_files("prometheus-operator-crds", "v0.93.0"),
        }
        if telegram:
            args["telegram_bot_token"] = pulumi.Output.secret("123:abc")
            args["telegram_chat_id"] = pulumi.Output.secret("-100123")
        MetricsStack("metrics", args, opts=opts)

    return program


def test_chart_is_pinned_talos_aware_and_waits_for_crds(record):
    rec = record(metrics_program())
    chart = rec.get(RELEASE, "metrics-chart")
    assert (chart.inputs["chart"], chart.inputs["version"]) == ("kube-prometheus-stack", "88.5.3")
    assert chart.inputs["skipCrds"] is True
    values = chart.inputs["values"]
    assert values["crds"] == {"enabled": False}
    assert values["kubeProxy"] == {"enabled": False}
    for part in ("kubeEtcd", "kubeControllerManager", "kubeScheduler"):
        assert values[part]["endpoints"] == ["192.168.68.71"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retentionSize"] == "50GB" and spec["ruleSelectorNilUsesHelmValues"] is False
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "55Gi"
    crds = rec.get("kubernetes:yaml/v2:ConfigGroup", "metrics-crds")
    assert crds.urn in chart.dependencies
    names = {r.name for r in rec.children_of(crds)}
    assert "metrics-crds:prometheusrules.monitoring.coreos.com" in names and len(names) == 10
    ns = rec.get("kubernetes:core/v1:Namespace", "metrics-namespace")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert ns.urn in chart.dependencies


def test_grafana_admits_only_the_admin_group_through_authentik(record):
    values = record(metrics_program()).get(RELEASE, "metrics-chart").inputs["values"]["grafana"]
    oauth = values["grafana.ini"]["auth.generic_oauth"]
    assert oauth["role_attribute_path"] == "contains(groups[*], 'admin') && 'Admin' || ''"
    assert oauth["role_attribute_strict"] is True
    assert oauth["auth_url"] == "https://auth.example.net/application/o/authorize/"
    assert values["grafana.ini"]["auth"]["disable_login_form"] is True
    assert "client_secret" not in json.dumps(values)


def test_alertmanager_secrets_are_secret_files_not_values(record):
    rec = record(metrics_program())
    telegram = rec.get(SECRET, "metrics-telegram")
    assert telegram.inputs["metadata"]["name"] == "alertmanager-telegram"
    assert telegram.is_secret("stringData.bot_token") and telegram.is_secret("stringData.chat_id")
    oidc = rec.get(SECRET, "metrics-grafana-oidc")
    assert oidc.is_secret("stringData.GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET")
    chart = rec.get(RELEASE, "metrics-chart")
    assert chart.inputs["values"]["alertmanager"]["alertmanagerSpec"]["secrets"] == [
        "alertmanager-ntfy",
        "alertmanager-telegram",
    ]
    assert "123:abc" not in json.dumps(chart.inputs) and not chart.secret_paths


def test_without_telegram_no_telegram_secret_is_mounted(record):
    rec = record(metrics_program(telegram=False))
    assert not [r for r in rec.by_type(SECRET) if r.name == "metrics-telegram"]
    spec = rec.get(RELEASE, "metrics-chart").inputs["values"]["alertmanager"]["alertmanagerSpec"]
    assert spec["secrets"] == ["alertmanager-ntfy"]


def test_rules_probes_and_host_scrape_follow_the_chart(record):
    rec = record(metrics_program())
    chart = rec.get(RELEASE, "metrics-chart")
    rules = {r.inputs["metadata"]["name"]: r for r in rec.by_type(CR_RULE)}
    assert set(rules) == set(RULES)
    assert rules["homelab-storage"].inputs["spec"]["groups"] == RULES["homelab-storage"]
    assert all(chart.urn in r.dependencies for r in rules.values())
    probes = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in rec.by_type(CR_PROBE)}
    assert probes["grafana-public"]["module"] == "http_access"
    assert probes["grafana-public"]["targets"]["staticConfig"]["labels"] == {"service": "grafana", "path": "public"}
    assert probes["grafana-internal"]["prober"]["url"] == "blackbox-prometheus-blackbox-exporter.monitoring.svc:9115"
    scrape = rec.get("kubernetes:monitoring.coreos.com/v1alpha1:ScrapeConfig", "metrics-proxmox-host")
    assert scrape.inputs["spec"]["staticConfigs"][0]["targets"] == ["192.168.68.51:9100"]
    component = rec.get("homelab:monitoring:MetricsStack", "metrics")
    assert all(r.parent == component.urn for r in rec.resources if r.name.startswith("metrics-") and ":" not in r.name)


def test_dashboards_are_provisioned_from_the_repository(record):
    rec = record(metrics_program())
    maps = [r for r in rec.by_type("kubernetes:core/v1:ConfigMap") if r.name.startswith("metrics-dashboard-")]
    assert {m.inputs["metadata"]["name"] for m in maps} == {
        "dashboard-alerts-firing",
        "dashboard-estate-overview",
        "dashboard-service-availability",
    }
    assert all(m.inputs["metadata"]["labels"]["grafana_dashboard"] == "1" for m in maps)


def test_a_dashboard_without_panels_is_rejected(tmp_path):
    (tmp_path / "broken.json").write_text('{"uid": "x"}')
    with pytest.raises(ValueError, match=r"broken\.json"):
        load_dashboards(tmp_path)


def ntfy_program(extra: bool = False):
    def program():
        args = {
            "image": "docker.io/binwiederhier/ntfy:v2.14.0",
            "base_url": "https://push.example.net",
            "topics": ("homelab-critical", "homelab-digest"),
            "publisher_token": pulumi.Output.secret("tk_publisher0000000000000000000000"),
            "phone_token": pulumi.Output.secret("tk_phone0000000000000000000000000"),
            "storage_gb": 1,
        }
        if extra:
            # As the prod stack hands it over: an Output (secret) read from the cloud stack.
            args["extra_publisher"] = pulumi.Output.secret(
                ExtraPublisher("authentik", "homelab-identity", "tk_authentik00000000000000000000")
            )
        Ntfy("ntfy", args, opts=pulumi.ResourceOptions(providers=[_provider()]))

    return program


def test_ntfy_denies_everyone_but_two_least_privilege_tokens(record):
    rec = record(ntfy_program())
    config = rec.get(SECRET, "ntfy-config")
    assert config.is_secret("stringData.server.yml")
    server = yaml.safe_load(config.inputs["stringData"]["server.yml"])
    assert server["auth-default-access"] == "deny-all"
    assert server["enable-signup"] is False
    assert sorted(server["auth-access"]) == [
        "alertmanager:homelab-critical:wo",
        "alertmanager:homelab-digest:wo",
        "phone:homelab-critical:ro",
        "phone:homelab-digest:ro",
    ]
    ns = rec.get("kubernetes:core/v1:Namespace", "ntfy-namespace")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert rec.get("kubernetes:core/v1:Service", "ntfy-service").inputs["spec"]["type"] == "ClusterIP"
    assert not rec.by_type("kubernetes:core/v1:ConfigMap")


def test_authentiks_token_may_write_only_its_own_topic(record):
    rec = record(ntfy_program(extra=True))
    config = rec.get(SECRET, "ntfy-config")
    assert config.is_secret("stringData.server.yml")
    server = yaml.safe_load(config.inputs["stringData"]["server.yml"])
    grants = [a for a in server["auth-access"] if "homelab-identity" in a or a.startswith("authentik:")]
    assert sorted(grants) == ["authentik:homelab-identity:wo", "phone:homelab-identity:ro"]
    assert "authentik:tk_authentik00000000000000000000:authentik" in server["auth-tokens"]
    assert [u.split(":")[0] for u in server["auth-users"]] == ["alertmanager", "phone", "authentik"]
    assert server["auth-default-access"] == "deny-all"


@pytest.mark.parametrize(
    "extra",
    [ExtraPublisher("authentik", "homelab-critical", "tk_x"), ExtraPublisher("phone", "homelab-identity", "tk_x")],
    ids=["alert-topic", "existing-user"],
)
def test_an_extra_publisher_never_shares_a_topic_or_user(extra):
    with pytest.raises(ValueError, match="a user and a topic of its own"):
        server_config("https://push.example.net", ("homelab-critical", "homelab-digest"), "tk_a", "tk_p", extra)


def test_unusable_password_hashes_are_well_formed_and_distinct():
    a, b = unusable_bcrypt("alertmanager"), unusable_bcrypt("phone")
    assert a != b and all(h.startswith("$2a$10$") and len(h) == 60 for h in (a, b))


def host_program(address: str = "192.168.68.51"):
    def program():
        conn = remote.ConnectionArgs(host="192.168.68.51", user="root", private_key="k")
        before = remote.Command("before", connection=conn, create="true")
        HostExporter("host-exporter", {"connection": conn, "listen_address": address, "port": 9100, "after": [before]})

    return program


def test_host_exporter_listens_on_the_lan_and_runs_after_the_host_commands(record):
    rec = record(host_program())
    command = rec.get("command:remote:Command", "host-exporter-install")
    assert "--web.listen-address=192.168.68.51:9100" in command.inputs["create"]
    assert "--collector.zfs" in command.inputs["create"]
    assert rec.get("command:remote:Command", "before").urn in command.dependencies
    assert command.inputs["update"] == command.inputs["create"]


def test_host_exporter_refuses_every_interface(record):
    with pytest.raises(Exception, match="LAN address"):
        record(host_program("0.0.0.0"))


def test_host_install_script_is_stable_between_runs():
    assert install_script("192.168.68.51", 9100) == install_script("192.168.68.51", 9100)


def test_loki_is_monolithic_with_retention(record):
    def program():
        LogStore(
            "logs",
            {
                "namespace": "monitoring",
                "chart_version": "18.11.0",
                "volume_gb": 20,
                "retention": "30d",
                "storage_class": "longhorn",
            },
            opts=pulumi.ResourceOptions(providers=[_provider()]),
        )

    values = record(program).get(RELEASE, "logs-chart").inputs["values"]
    assert values["deploymentMode"] == "Monolithic"
    assert values["singleBinary"]["replicas"] == 1
    assert (values["read"], values["write"], values["backend"]) == ({"replicas": 0},) * 3
    assert values["loki"]["compactor"]["delete_request_store"] == "filesystem"
    assert values["loki"]["limits_config"]["retention_period"] == "30d"


def test_remote_agent_ships_through_the_tunnel_with_an_access_token(record):
    def program():
        TelemetryAgent(
            "cloud-telemetry",
            {
                "cluster": "homelab-cloud",
                "chart_version": "1.11.1",
                "namespace": "telemetry",
                "create_namespace": True,
                "node_metrics": True,
                "remote": RemoteTarget(
                    "https://telemetry.example.net/api/v1/write",
                    "https://telemetry.example.net/loki/api/v1/push",
                    "id.access",
                    pulumi.Output.secret("access-secret-value"),
                ),
            },
            opts=pulumi.ResourceOptions(providers=[_provider()]),
        )

    rec = record(program)
    access = rec.get(SECRET, "cloud-telemetry-access")
    assert access.is_secret("stringData.CF_ACCESS_CLIENT_SECRET")
    values = rec.get(RELEASE, "cloud-telemetry-chart").inputs["values"]
    content = values["alloy"]["configMap"]["content"]
    assert 'url = "https://telemetry.example.net/loki/api/v1/push"' in content
    assert 'url = "https://telemetry.example.net/api/v1/write"' in content
    assert '"CF-Access-Client-Secret" = sys.env("CF_ACCESS_CLIENT_SECRET")' in content
    assert "access-secret-value" not in json.dumps(values)
    assert rec.get(SECRET, "cloud-telemetry-access").urn in rec.get(RELEASE, "cloud-telemetry-chart").dependencies


def test_remote_agent_scrapes_the_named_pods_and_cron_job_metrics_on_its_own_node(record):
    velero = PodScrape(
        "velero", "velero", {"app.kubernetes.io/name": "velero", "name": "velero"}, "http-monitoring", {}
    )

    def program(**extra):
        def run():
            TelemetryAgent(
                "cloud-telemetry",
                {
                    "cluster": "homelab-cloud",
                    "chart_version": "1.11.1",
                    "namespace": "telemetry",
                    "create_namespace": True,
                    "remote": RemoteTarget(
                        "https://t.example.net/api/v1/write", "https://t.example.net/push", "i", "s"
                    ),
                    "pod_scrapes": [velero],
                    "cron_job_metrics_chart": "8.4.0",
                    **extra,
                },
                opts=pulumi.ResourceOptions(providers=[_provider()]),
            )

        return run

    rec = record(program(node_metrics=True))
    ksm = rec.get(RELEASE, "cloud-telemetry-cron-job-metrics")
    assert ksm.parent == rec.get("homelab:monitoring:TelemetryAgent", "cloud-telemetry").urn
    assert (ksm.inputs["chart"], ksm.inputs["version"], ksm.inputs["namespace"]) == (
        "kube-state-metrics",
        "8.4.0",
        "telemetry",
    )
    assert ksm.inputs["values"]["collectors"] == ["cronjobs"]
    assert rec.get("kubernetes:core/v1:Namespace", "cloud-telemetry-namespace").urn in ksm.dependencies
    content = rec.get(RELEASE, "cloud-telemetry-chart").inputs["values"]["alloy"]["configMap"]["content"]
    assert_wired(content)
    velero_block = content.split('discovery.relabel "scrape_velero"')[1].split("}\n}")[0]
    for kept in ('"velero"', '"http\\\\-monitoring"', "__meta_kubernetes_pod_label_app_kubernetes_io_name"):
        assert kept in velero_block, kept
    # Only this node's pods (the discovery every agent already filters by its node), written to PROD.
    assert "targets = discovery.kubernetes.pods.targets" in velero_block
    assert 'prometheus.scrape "velero"' in content and 'prometheus.scrape "kube_state_metrics"' in content
    ksm_block = content.split('discovery.relabel "scrape_kube_state_metrics"')[1].split("prometheus.scrape")[0]
    assert '"telemetry"' in ksm_block and '"http"' in ksm_block
    # Without node metrics there is no remote write: nothing is scraped and no kube-state-metrics runs.
    quiet = record(program(node_metrics=False))
    assert [r.name for r in quiet.by_type(RELEASE)] == ["cloud-telemetry-chart"]
    assert (
        "prometheus.scrape"
        not in quiet.get(RELEASE, "cloud-telemetry-chart").inputs["values"]["alloy"]["configMap"]["content"]
    )


def test_talos_log_agent_listens_on_each_nodes_loopback_only(record):
    def program():
        TelemetryAgent(
            "prod-telemetry",
            {
                "cluster": "homelab-prod",
                "chart_version": "1.11.1",
                "namespace": "monitoring",
                "loki_url": "http://loki-gateway.monitoring.svc.cluster.local/loki/api/v1/push",
                "talos_logs": True,
            },
            opts=pulumi.ResourceOptions(providers=[_provider()]),
        )

    values = record(program).get(RELEASE, "prod-telemetry-chart").inputs["values"]
    controller, alloy = values["controller"], values["alloy"]
    # Talos dials 127.0.0.1 of its own node: host network, every node (control planes too).
    assert controller["hostNetwork"] is True and controller["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert controller["tolerations"][0]["key"] == "node-role.kubernetes.io/control-plane"
    # Nothing of the agent listens beyond the loopback on the host network.
    assert alloy["listenAddr"] == "127.0.0.1" and alloy["enableHttpServerPort"] is False
    assert "--listen-address=127.0.0.1:9533" in values["configReloader"]["customArgs"]
    content = alloy["configMap"]["content"]
    assert f'listen_address = "127.0.0.1:{TALOS_LOG_PORT}"' in content
    assert alloy["stabilityLevel"] == "experimental"  # otelcol.receiver.tcplog
    assert_wired(content)


def test_without_talos_logs_the_agent_stays_off_the_host_network(record):
    def program():
        TelemetryAgent(
            "prod-telemetry",
            {"cluster": "c", "chart_version": "1.11.1", "namespace": "monitoring", "loki_url": "http://l/push"},
            opts=pulumi.ResourceOptions(providers=[_provider()]),
        )

    values = record(program).get(RELEASE, "prod-telemetry-chart").inputs["values"]
    assert "hostNetwork" not in values["controller"] and "otelcol" not in values["alloy"]["configMap"]["content"]


def test_talos_logging_patches_ship_services_and_kernel_to_the_loopback():
    machine, kmsg = (json.loads(p) for p in talos_logging_patches())
    assert machine["machine"]["logging"]["destinations"] == [
        {"endpoint": f"tcp://127.0.0.1:{TALOS_LOG_PORT}/", "format": "json_lines"}
    ]
    # KmsgLogConfig: scheme tcp/udp, a port, and an empty path (Talos rejects a trailing slash there).
    assert kmsg == {
        "apiVersion": "v1alpha1",
        "kind": "KmsgLogConfig",
        "name": "homelab-agent",
        "url": f"tcp://127.0.0.1:{TALOS_LOG_PORT}",
    }


def test_agent_without_a_destination_is_rejected(record):
    def program():
        TelemetryAgent("x", {"cluster": "c", "chart_version": "1.11.1", "namespace": "monitoring"})

    with pytest.raises(Exception, match="loki_url"):
        record(program)


def test_manifest_loader_reads_a_bare_equals_sign_as_a_string():
    # The prometheus-operator CRDs list `=` among matcher types; PyYAML's safe loader alone fails on it.
    from components.manifests import load_documents

    assert load_documents("enum: [=, '!=', =~]\n---\nkind: X\n") == [{"enum": ["=", "!=", "=~"]}, {"kind": "X"}]
