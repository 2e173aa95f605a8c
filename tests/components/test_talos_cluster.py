"""TalosCluster under the offline engine: image, secrets, configuration, bootstrap, access."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_proxmoxve as pve
import pytest
from pulumi_command import local

from components.talos.cluster import TalosCluster, TalosClusterArgs, schematic_document, talos_minor, talos_provider
from components.talos.substrate import BootImage, TalosNode
from homelab.engine import Recording
from tests.components.talos_fixtures import DEV_NODES, NETWORK, PROD_NODES, cluster_program, proxmox_substrate

CLUSTER = "homelab:talos:TalosCluster"
SCHEMATIC = "talos:imageFactory/schematic:Schematic"
SECRETS = "talos:machine/secrets:Secrets"
APPLY = "talos:machine/configurationApply:ConfigurationApply"
BOOTSTRAP = "talos:machine/bootstrap:Bootstrap"
KUBECONFIG = "talos:cluster/kubeconfig:Kubeconfig"


def _patches(rec: Recording, node: str) -> list[dict]:
    """The patches the offline provider received for a node (echoed into the rendered config)."""
    rendered = rec.get(APPLY, f"talos-{node}-config").inputs["machineConfigurationInput"]
    document = json.loads(rendered.split("\n", 1)[1])
    return [json.loads(p) for p in document["patches"]]


def test_registers_the_talos_lifecycle_under_the_component(record):
    rec = record(cluster_program())
    cluster = rec.get(CLUSTER, "talos")
    for type_, name in [
        (SCHEMATIC, "talos-schematic"),
        (SECRETS, "talos-secrets"),
        (APPLY, "talos-prod-cp-1-config"),
        (APPLY, "talos-prod-worker-1-config"),
        (BOOTSTRAP, "talos-bootstrap"),
        (KUBECONFIG, "talos-kubeconfig"),
    ]:
        assert rec.get(type_, name).parent == cluster.urn, name
    assert len(rec.by_type(BOOTSTRAP)) == 1
    assert len(rec.by_type(APPLY)) == 2


def test_schematic_always_carries_the_guest_agent_plus_configured_extensions(record):
    rec = record(cluster_program(extensions=("siderolabs/iscsi-tools",)))
    schematic = json.loads(rec.get(SCHEMATIC, "talos-schematic").inputs["schematic"])
    assert schematic["customization"]["systemExtensions"]["officialExtensions"] == [
        "siderolabs/iscsi-tools",
        "siderolabs/qemu-guest-agent",
    ]


def test_schematic_document_is_order_independent():
    assert schematic_document(["b/x", "a/y", "b/x"]) == schematic_document(["a/y", "b/x"])


def test_machine_secrets_are_protected_and_survive_a_contract_change(record):
    secrets = record(cluster_program()).get(SECRETS, "talos-secrets")
    assert secrets.protect
    assert "talosVersion" in secrets.ignore_changes
    assert secrets.inputs["talosVersion"] == "v1.10"


def test_bootstrap_runs_once_against_the_first_control_plane_after_every_apply(record):
    rec = record(cluster_program())
    bootstrap = rec.get(BOOTSTRAP, "talos-bootstrap")
    assert bootstrap.inputs["node"] == "192.168.68.71"
    applies = {r.urn for r in rec.by_type(APPLY)}
    assert applies <= set(bootstrap.dependencies)


def test_each_apply_targets_its_node_after_its_machine_with_a_secret_configuration(record):
    rec = record(cluster_program())
    for key, node in PROD_NODES.items():
        apply = rec.get(APPLY, f"talos-{key}-config")
        machine = rec.get("proxmoxve:index/vmLegacy:VmLegacy", f"talos-{key}")
        assert apply.inputs["node"] == node.address
        assert machine.urn in apply.dependencies
        assert apply.is_secret("machineConfigurationInput")
        assert apply.inputs["onDestroy"]["reset"] is False


def test_configuration_patches_prepare_cilium_and_static_addressing(record):
    rec = record(cluster_program())
    patches = _patches(rec, "prod-worker-1")
    cluster = next(p["cluster"] for p in patches if "proxy" in p.get("cluster", {}))
    assert cluster["network"]["cni"] == {"name": "none"}
    assert cluster["proxy"] == {"disabled": True}
    assert "allowSchedulingOnControlPlanes" not in cluster  # prod has a worker
    machine = next(p["machine"] for p in patches if "install" in p.get("machine", {}))
    assert machine["install"]["disk"] == "/dev/sda"
    assert machine["install"]["image"].startswith("factory.talos.dev/nocloud-installer/")
    assert machine["install"]["image"].endswith(":v1.10.6")
    assert machine["network"]["hostname"] == "prod-worker-1"
    interface = machine["network"]["interfaces"][0]
    assert interface["addresses"] == ["192.168.68.72/24"]
    assert interface["routes"] == [{"network": "0.0.0.0/0", "gateway": "192.168.68.1"}]


def test_single_node_cluster_schedules_workloads_on_its_control_plane(record):
    rec = record(cluster_program(nodes=DEV_NODES))
    patches = _patches(rec, "dev-cp-1")
    assert any(p.get("cluster", {}).get("allowSchedulingOnControlPlanes") for p in patches)


def test_access_outputs_are_secret_and_addresses_are_plain(record):
    rec = record(cluster_program())
    assert rec.outputs["kubeconfig"].secret
    assert rec.outputs["talosconfig"].secret
    assert "homelab-prod" in rec.outputs["talosconfig"].value
    assert not rec.outputs["node_addresses"].secret
    assert rec.outputs["node_addresses"].value == {"prod-cp-1": "192.168.68.71", "prod-worker-1": "192.168.68.72"}
    assert rec.outputs["endpoint"].value == "https://192.168.68.71:6443"
    kubeconfig = rec.get(KUBECONFIG, "talos-kubeconfig")
    assert "kubeconfigRaw" in kubeconfig.additional_secret_outputs
    assert rec.get(BOOTSTRAP, "talos-bootstrap").urn in kubeconfig.dependencies


def test_talos_minor_is_the_configuration_contract():
    assert talos_minor("v1.10.6") == "v1.10"
    assert talos_minor("1.13.0") == "v1.13"


@dataclass
class CloudLikeSubstrate:
    """A substrate that delivers the configuration at boot, like OCI's user data."""

    platform: str = "oracle"
    architecture: str = "arm64"
    delivers_config_at_boot: bool = True
    images: list[BootImage] = field(default_factory=list)

    def config_patches(self, node: TalosNode) -> list[str]:
        return [json.dumps({"machine": {"nodeLabels": {"substrate": "cloud"}}})]

    def create_machines(self, cluster, image, nodes, machine_configurations):
        self.images.append(image)
        return {
            key: local.Command(
                f"{cluster.pulumi_resource_name}-{key}",
                create="true",
                stdin=machine_configurations[key],
                opts=pulumi.ResourceOptions(parent=cluster),
            )
            for key in nodes
        }


def test_cluster_is_substrate_neutral(record):
    substrate = CloudLikeSubstrate()
    nodes = {"cloud-cp-1": TalosNode("cloud-cp-1", "controlplane", "10.0.1.10", 2, 6144, 50)}
    rec = record(cluster_program(nodes=nodes, substrate=substrate))
    machine = rec.get("command:local:Command", "talos-cloud-cp-1")
    assert machine.is_secret("stdin")
    assert "oracle-installer" in machine.inputs["stdin"]
    assert "cloud" in machine.inputs["stdin"]  # the substrate's own patch reached the configuration
    schematic = json.loads(rec.get(SCHEMATIC, "talos-schematic").inputs["schematic"])
    assert schematic["customization"]["systemExtensions"]["officialExtensions"] == []
    assert not rec.by_type("proxmoxve:index/vmLegacy:VmLegacy")


API_ENDPOINT = "198.51.100.7"


def _behind_load_balancer(cert_sans: tuple[str, ...] = (API_ENDPOINT, "k8s.example.net")) -> Callable[[], None]:
    """The PROD nodes, reached through a load balancer (as on OCI), the address given as an Output."""

    def program() -> None:
        providers = [talos_provider("talos"), pve.Provider("pve", endpoint="https://192.168.68.51:8006/")]
        address = pulumi.Output.from_input(API_ENDPOINT)
        args: TalosClusterArgs = {
            "cluster_name": "homelab-prod",
            "endpoint_host": address,
            "api_endpoints": [address],
            "cert_sans": list(cert_sans),
            "talos_version": "v1.10.6",
            "kubernetes_version": "1.33.3",
            "nodes": PROD_NODES,
            "substrate": proxmox_substrate(PROD_NODES),
            "network": NETWORK,
        }
        cluster = TalosCluster("talos", args, opts=pulumi.ResourceOptions(providers=providers))
        pulumi.export("talosconfig", cluster.talosconfig)
        pulumi.export("endpoint", cluster.endpoint)

    return program


def test_api_endpoints_carry_every_talos_call_while_requests_name_the_nodes(record):
    rec = record(_behind_load_balancer())
    for key, node in PROD_NODES.items():
        apply = rec.get(APPLY, f"talos-{key}-config")
        assert (apply.inputs["endpoint"], apply.inputs["node"]) == (API_ENDPOINT, node.address)
    bootstrap = rec.get(BOOTSTRAP, "talos-bootstrap")
    assert (bootstrap.inputs["endpoint"], bootstrap.inputs["node"]) == (API_ENDPOINT, "192.168.68.71")
    kubeconfig = rec.get(KUBECONFIG, "talos-kubeconfig")
    assert (kubeconfig.inputs["endpoint"], kubeconfig.inputs["node"]) == (API_ENDPOINT, "192.168.68.71")
    talosconfig = rec.outputs["talosconfig"]
    assert talosconfig.secret
    assert f"endpoints: [{API_ENDPOINT}]" in talosconfig.value
    assert "nodes: [192.168.68.71, 192.168.68.72]" in talosconfig.value
    assert rec.outputs["endpoint"].value == f"https://{API_ENDPOINT}:6443"


def test_cert_sans_reach_the_talos_api_everywhere_and_the_api_server_on_control_planes(record):
    rec = record(_behind_load_balancer())
    sans = sorted([API_ENDPOINT, "k8s.example.net"])
    control_plane = _patches(rec, "prod-cp-1")
    assert {"machine": {"certSANs": sans}, "cluster": {"apiServer": {"certSANs": sans}}} in control_plane
    worker = _patches(rec, "prod-worker-1")
    assert {"machine": {"certSANs": sans}} in worker
    assert not [p for p in worker if "apiServer" in p.get("cluster", {})]


def test_without_api_endpoints_each_node_is_its_own_endpoint_and_no_sans_are_added(record):
    rec = record(cluster_program())
    for key, node in PROD_NODES.items():
        apply = rec.get(APPLY, f"talos-{key}-config")
        assert apply.inputs["endpoint"] == apply.inputs["node"] == node.address
        assert not [p for p in _patches(rec, key) if "certSANs" in p.get("machine", {})]
    assert rec.get(BOOTSTRAP, "talos-bootstrap").inputs["endpoint"] == "192.168.68.71"
    assert "endpoints: [192.168.68.71]" in rec.outputs["talosconfig"].value


HEALTH = "talos:cluster/getHealth:getHealth"
GATE = "command:local:Command"


@pytest.mark.parametrize("preview", [True, False])
def test_no_up_and_no_preview_calls_the_capped_health_data_source(record, preview):
    # talos_cluster_health cannot wait past 5 minutes (siderolabs/terraform-provider-talos#241) and,
    # as a data source, ran on every `up`: a slow first boot failed it, a powered-off DEV blocked it.
    assert HEALTH not in record(cluster_program(), preview=preview).invokes


def test_the_health_gate_runs_once_at_bootstrap_and_never_again(record):
    rec = record(cluster_program())
    gate = rec.get(GATE, "talos-health-gate")
    assert gate.parent == rec.get(CLUSTER, "talos").urn
    assert rec.get(BOOTSTRAP, "talos-bootstrap").urn in gate.dependencies
    # Only `create` probes; an update (any input change later) does nothing, so an existing or
    # powered-off cluster never blocks an `up`.
    assert "python3 -m components.talos.readiness" in gate.inputs["create"]
    assert "--kubernetes-endpoint https://192.168.68.71:6443" in gate.inputs["create"]
    assert "--talos-endpoint 192.168.68.71" in gate.inputs["create"]
    assert "readiness" not in gate.inputs["update"] and gate.inputs["update"].startswith("echo ")
    assert gate.is_secret("environment")  # the admin client key
    # What needs the API waits for the gate: the kubeconfig output resolves only after it.
    kubeconfig = rec.get(KUBECONFIG, "talos-kubeconfig")
    assert not kubeconfig.is_secret("node")
    assert kubeconfig.inputs["node"] == rec.get(BOOTSTRAP, "talos-bootstrap").inputs["node"]


def test_the_readiness_probe_retries_until_healthy_within_its_own_deadline():
    from components.talos import readiness

    now = [0.0]
    answers = iter(["etcd not ready", "etcd not ready", None])
    failures = readiness.wait(
        [lambda: next(answers)],
        deadline_seconds=600,
        interval_seconds=10,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert failures == [] and now[0] == 20
    stuck = readiness.wait(
        [lambda: "down"],
        deadline_seconds=30,
        interval_seconds=10,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert stuck == ["down"]
