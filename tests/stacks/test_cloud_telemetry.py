"""The cloud's collectors in the real `cloud` stack: the service token, PROD's machine routes, the
CLOUD cluster's and the management VM's Alloy, and Talos's logs (stacks/telemetry.py)."""

import base64
import json

import pytest
import yaml

from components.monitoring.alloy import TALOS_LOG_PORT
from homelab.engine import Recording
from homelab.stackrun import check_stack_config, load_stack_input
from stacks.catalog import ServiceOverrideConfig, build_catalog
from stacks.cloud import _routes
from stacks.config.base import ConfigError
from tests.monitoring.alloy_wiring import assert_wired

TOKEN = "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken"
POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"
APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
APPLY = "talos:machine/configurationApply:ConfigurationApply"
WRITE = "https://telemetry.example.net/api/v1/write"
PUSH = "https://telemetry.example.net/loki/api/v1/push"


@pytest.fixture(scope="module")
def cloud(previewed) -> Recording:
    return previewed("cloud").recording


def test_one_service_token_that_never_expires_and_keeps_its_secret(cloud: Recording) -> None:
    (token,) = cloud.by_type(TOKEN)
    assert token.inputs["duration"] == "forever" and token.inputs["clientSecretVersion"] == 1
    assert "clientSecret" in token.additional_secret_outputs


def test_prod_machine_routes_admit_only_that_token(cloud: Recording) -> None:
    token = cloud.get(TOKEN, "telemetry-token")
    policy = cloud.get(POLICY, "prod-machines")
    assert policy.inputs["decision"] == "non_identity"
    assert [set(i) for i in policy.inputs["includes"]] == [{"serviceToken"}]
    assert token.urn in policy.property_dependencies["includes"]
    apps = {a.inputs["domain"]: a for a in cloud.by_type(APP) if a.inputs["domain"].startswith("telemetry.")}
    assert set(apps) == {"telemetry.example.net/api/v1/write", "telemetry.example.net/loki/api/v1/push"}
    for app in apps.values():
        assert app.property_dependencies["policies"] == (policy.urn,)
        assert app.inputs["serviceAuth401Redirect"] is True and "allowedIdps" not in app.inputs
    ingresses = cloud.get(CONFIG, "prod-config").inputs["config"]["ingresses"]
    machine = [i for i in ingresses if i.get("hostname") == "telemetry.example.net"]
    assert {(i["path"], i["originRequest"]["access"]["required"]) for i in machine} == {
        ("^/api/v1/write(/.*)?$", True),
        ("^/loki/api/v1/push(/.*)?$", True),
    }
    cloud_ingress = cloud.get(CONFIG, "cloud-config").inputs["config"]["ingresses"]
    assert not [i for i in cloud_ingress if i.get("hostname") == "telemetry.example.net"]


def test_without_telemetry_no_machine_route_is_published() -> None:
    catalog = build_catalog("example.net")
    assert {r.key for r in _routes(catalog, "prod", None, machines=True) if r.machine} == {
        "telemetry-metrics",
        "telemetry-logs",
    }
    assert not [r for r in _routes(catalog, "prod", None, machines=False) if r.machine]


def test_cloud_cluster_collector_ships_through_the_tunnel_with_the_token(cloud: Recording) -> None:
    access = cloud.get("kubernetes:core/v1:Secret", "cloud-telemetry-access")
    assert access.is_secret("stringData.CF_ACCESS_CLIENT_SECRET")
    assert cloud.get(TOKEN, "telemetry-token").urn in access.dependencies
    chart = cloud.get("kubernetes:helm.sh/v3:Release", "cloud-telemetry-chart")
    values = chart.inputs["values"]
    content = values["alloy"]["configMap"]["content"]
    assert f'url = "{WRITE}"' in content and f'url = "{PUSH}"' in content
    assert values["controller"]["hostNetwork"] is True
    assert_wired(content)
    # Its namespace is default-deny like every other, after the collector creates it.
    deny = cloud.get("kubernetes:networking.k8s.io/v1:NetworkPolicy", "network-policies-telemetry-deny")
    assert deny.inputs["metadata"]["namespace"] == "telemetry"
    after = set(cloud.get("homelab:k8s:NetworkPolicies", "network-policies").dependencies)
    assert cloud.get("kubernetes:core/v1:Namespace", "cloud-telemetry-namespace").urn in after


def test_cloud_collector_ships_the_backup_jobs_series_to_prod(cloud: Recording) -> None:
    # The backup alerts on PROD read Velero's metrics and kube-state-metrics' CronJob series.
    ksm = cloud.get("kubernetes:helm.sh/v3:Release", "cloud-telemetry-cron-job-metrics")
    assert ksm.inputs["namespace"] == "telemetry" and ksm.inputs["values"]["collectors"] == ["cronjobs"]
    content = cloud.get("kubernetes:helm.sh/v3:Release", "cloud-telemetry-chart").inputs["values"]["alloy"]
    content = content["configMap"]["content"]
    assert 'prometheus.scrape "velero"' in content and 'prometheus.scrape "kube_state_metrics"' in content
    # The collector scrapes from the node's host network: both namespaces admit the host, nothing else new.
    for namespace in ("velero", "telemetry"):
        entities = cloud.get("kubernetes:cilium.io/v2:CiliumNetworkPolicy", f"network-policies-{namespace}-entities")
        assert entities.inputs["spec"]["ingress"] == [{"fromEntities": ["host"]}], namespace


def test_cloud_nodes_ship_talos_logs_to_their_own_loopback(cloud: Recording) -> None:
    for apply in cloud.by_type(APPLY):
        rendered = apply.inputs["machineConfigurationInput"]
        assert f"tcp://127.0.0.1:{TALOS_LOG_PORT}/" in rendered and "KmsgLogConfig" in rendered, apply.name


def test_management_vm_runs_alloy_with_the_token_in_secret_files_only(cloud: Recording) -> None:
    install = cloud.get("command:remote:Command", "oci-mgmt-secrets")
    assert install.is_secret("stdin")
    lines = dict(line.split(" ", 1) for line in install.inputs["stdin"].strip().splitlines())
    assert {"telemetry_access_client_id", "telemetry_access_client_secret"} <= set(lines)
    text = cloud.get("command:remote:CopyToRemote", "oci-mgmt-compose-file").inputs["source"]["text"]
    for value in lines.values():
        decoded = base64.b64decode(value).decode()
        assert not decoded or decoded not in text  # smtp_password is empty without a relay login
    document = yaml.safe_load(text)
    alloy = document["services"]["alloy"]
    assert alloy["secrets"] == ["telemetry_access_client_id", "telemetry_access_client_secret"]
    config = document["configs"]["alloy"]["content"]
    assert f'url = "{WRITE}"' in config and f'url = "{PUSH}"' in config
    assert "--metrics" in document["services"]["cloudflared"]["command"]
    assert all(s["logging"]["driver"] == "journald" for s in document["services"].values())
    assert_wired(config)


@pytest.mark.parametrize(
    ("telemetry", "message"),
    [
        ({"token_generation": 0}, "homelab:telemetry.token_generation:"),
        ({"scrape_interval": "1 minute"}, "homelab:telemetry.scrape_interval:"),
        ({"alloy_image": "docker.io/grafana/alloy:latest extra"}, "homelab:telemetry.alloy_image:"),
        ({"collector": True}, "homelab:telemetry.collector: unknown key"),
    ],
)
def test_bad_telemetry_config_is_one_error_naming_the_key(telemetry: dict[str, object], message: str) -> None:
    stack_input = load_stack_input("cloud")
    config = {**stack_input.config, "homelab:telemetry": json.dumps(telemetry)}
    with pytest.raises(ConfigError) as caught:
        check_stack_config("cloud", config, stack_input.secret_keys)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_machine_entry_names_its_path_and_admits_no_group() -> None:
    with pytest.raises(ConfigError, match=r"^homelab:catalog\.services\.ingest\.path: a machine endpoint names"):
        build_catalog(
            "example.net",
            {
                "ingest": ServiceOverrideConfig(
                    location="prod", tier="machine", hostname="ingest", upstream="http://x.y.svc:1"
                )
            },
        )
    with pytest.raises(ConfigError, match=r"^homelab:catalog\.services\.telemetry-ui\.tier: .* mixes machine"):
        build_catalog(
            "example.net",
            {
                "telemetry-ui": ServiceOverrideConfig(
                    location="prod", tier="native", hostname="telemetry", upstream="http://x:1"
                )
            },
        )
