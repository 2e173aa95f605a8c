"""DEV's collector in the real `dev` stack: Alloy on every node shipping to PROD with the cloud
stack's service token (read through a StackReference), Talos's logs, the collector's namespace
policy, and how it fails (stacks/telemetry.py)."""

import json

import pytest

from components.monitoring.alloy import ACCESS_ENV, TALOS_LOG_PORT
from homelab.engine import Recording, StackOutputs
from homelab.policy_eval import blocking
from homelab.stackrun import check_stack_config, load_stack_input, outputs_from, run_stack
from stacks.config.base import ConfigError
from tests.monitoring.alloy_wiring import assert_wired
from tests.stacks.helpers import count_registrations

WRITE = "https://telemetry.example.net/api/v1/write"
PUSH = "https://telemetry.example.net/loki/api/v1/push"
APPLY = "talos:machine/configurationApply:ConfigurationApply"


@pytest.fixture(scope="module")
def dev(previewed) -> Recording:
    return previewed("dev").recording


@pytest.fixture(scope="module")
def cloud_outputs(previewed) -> StackOutputs:
    return outputs_from(previewed("cloud").recording)


def test_cloud_exports_the_write_paths_plain_and_the_token_secret(previewed) -> None:
    outputs = previewed("cloud").recording.outputs
    assert outputs["telemetry_ingest"].value == {"metrics_url": WRITE, "logs_url": PUSH}
    assert not outputs["telemetry_ingest"].secret
    assert outputs["telemetry_access"].secret
    assert set(outputs["telemetry_access"].value) == {"client_id", "client_secret"}


def test_dev_collector_ships_through_the_tunnel_with_the_cloud_token(dev: Recording, cloud_outputs) -> None:
    access = dev.get("kubernetes:core/v1:Secret", "dev-telemetry-access")
    token = cloud_outputs.values["telemetry_access"]
    assert access.inputs["stringData"] == {ACCESS_ENV[0]: token["client_id"], ACCESS_ENV[1]: token["client_secret"]}
    assert access.is_secret(f"stringData.{ACCESS_ENV[0]}") and access.is_secret(f"stringData.{ACCESS_ENV[1]}")
    chart = dev.get("kubernetes:helm.sh/v3:Release", "dev-telemetry-chart")
    assert chart.parent == dev.get("homelab:monitoring:TelemetryAgent", "dev-telemetry").urn
    assert chart.inputs["namespace"] == "telemetry"
    # The URLs are public names: the chart's values (and its diff) stay readable.
    assert not chart.is_secret("values")
    values = chart.inputs["values"]
    content = values["alloy"]["configMap"]["content"]
    assert f'url = "{WRITE}"' in content and f'url = "{PUSH}"' in content
    # DEV is off outside the host's testing mode: everything it ships says so (TelemetrySourceSilent).
    assert content.count('external_labels = { cluster = "homelab-dev", schedule = "intermittent" }') == 2
    assert values["controller"]["hostNetwork"] is True
    assert_wired(content)


def test_dev_nodes_ship_talos_logs_to_their_own_loopback(dev: Recording) -> None:
    applies = dev.by_type(APPLY)
    assert applies
    for apply in applies:
        rendered = apply.inputs["machineConfigurationInput"]
        assert f"tcp://127.0.0.1:{TALOS_LOG_PORT}/" in rendered and "KmsgLogConfig" in rendered, apply.name


def test_dev_collector_namespace_is_default_deny_and_the_pack_passes(dev: Recording, previewed) -> None:
    deny = dev.get("kubernetes:networking.k8s.io/v1:NetworkPolicy", "network-policies-telemetry-deny")
    assert deny.inputs["metadata"]["namespace"] == "telemetry"
    # As on CLOUD: the collector only sends, so nothing is allowed in.
    in_namespace = [
        p.name
        for p in dev.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if p.inputs["metadata"]["namespace"] == "telemetry"
    ]
    assert in_namespace == ["network-policies-telemetry-deny"]
    after = set(dev.get("homelab:k8s:NetworkPolicies", "network-policies").dependencies)
    assert dev.get("kubernetes:core/v1:Namespace", "dev-telemetry-namespace").urn in after
    assert blocking(previewed("dev").findings) == []


def test_a_missing_cloud_output_fails_naming_it(cloud_outputs: StackOutputs) -> None:
    values = {k: v for k, v in cloud_outputs.values.items() if k != "telemetry_access"}
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", references={"cloud": StackOutputs(values=values, secret_names=cloud_outputs.secret_names)})
    message = str(caught.value)
    assert message.startswith("homelab:telemetry.cloud_stack: stack 'cloud' exports no `telemetry_access.client_")
    assert "\n" not in message


def test_without_telemetry_dev_reads_no_stack_and_patches_nothing() -> None:
    recording = run_stack("dev", overrides={"telemetry": {"enabled": False}}, references={})
    assert not recording.by_type("homelab:monitoring:TelemetryAgent")
    assert not [r for r in recording.resources if r.type == "pulumi:pulumi:StackReference"]
    for apply in recording.by_type(APPLY):
        assert "KmsgLogConfig" not in apply.inputs["machineConfigurationInput"]


@pytest.mark.parametrize(
    ("telemetry", "message"),
    [
        ({"cloud_stack": "org/homelab/cloud/extra"}, "homelab:telemetry.cloud_stack:"),
        ({"alloy_chart": "latest"}, "homelab:telemetry.alloy_chart:"),
        ({"token_generation": 2}, "homelab:telemetry.token_generation: unknown key"),
    ],
)
def test_bad_dev_telemetry_config_is_one_error_naming_the_key(telemetry: dict[str, object], message: str) -> None:
    stack_input = load_stack_input("dev")
    config = {**stack_input.config, "homelab:telemetry": json.dumps(telemetry)}
    with pytest.raises(ConfigError) as caught:
        check_stack_config("dev", config, stack_input.secret_keys)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_telemetry_namespace_listed_for_apps_is_an_error_before_anything_registers() -> None:
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        run_stack("dev", overrides={"platform": {"argocd_access": True, "namespaces": ["komga", "telemetry"]}})
    assert str(caught.value).startswith("homelab:platform.namespaces: 'telemetry' is created by the collector")
    assert seen == []
