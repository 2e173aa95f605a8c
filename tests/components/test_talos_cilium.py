"""Cilium: CRDs first, one values file, Talos-specific values, stable Kubernetes provider."""

import pulumi
import pytest

from components.talos.cilium import VALUES_FILE, Cilium, gateway_host_network_values, load_values, merge_values
from components.talos.kubernetes import kubernetes_provider


def program():
    provider = kubernetes_provider("k8s", pulumi.Output.secret("apiVersion: v1\nkind: Config\n"), "homelab-dev")
    Cilium(
        "cilium",
        {"cluster_name": "homelab-dev", "chart_version": "1.17.6", "gateway_api_version": "v1.2.1"},
        opts=pulumi.ResourceOptions(providers=[provider]),
    )


def test_provider_is_identified_by_the_cluster_not_its_credentials(record):
    rec = record(program)
    provider = rec.get("pulumi:providers:kubernetes", "k8s")
    assert provider.inputs["clusterIdentifier"] == "homelab-dev"
    assert provider.is_secret("kubeconfig")


def test_gateway_api_crds_are_installed_before_the_release(record):
    rec = record(program)
    crds = [*rec.by_type("kubernetes:yaml/v2:ConfigGroup"), *rec.by_type("kubernetes:yaml/v2:ConfigFile")]
    # Applied from the vendored, checksum-pinned files, never from a URL.
    assert [c.inputs.get("files", [c.inputs.get("file")]) for c in crds] == [
        [
            f"vendor/manifests/gateway-api/v1.2.1/gateway.networking.k8s.io_{kind}.yaml"
            for kind in ("gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants")
        ],
        ["vendor/manifests/gateway-api-experimental/v1.2.1/gateway.networking.k8s.io_tlsroutes.yaml"],
    ]
    release = rec.get("kubernetes:helm.sh/v3:Release", "cilium-release")
    assert {c.urn for c in crds} <= set(release.dependencies)
    component = rec.get("homelab:talos:Cilium", "cilium")
    assert release.parent == component.urn and all(c.parent == component.urn for c in crds)


def test_release_uses_the_shared_values_file_with_talos_values(record):
    rec = record(program)
    release = rec.get("kubernetes:helm.sh/v3:Release", "cilium-release")
    assert release.inputs["chart"] == "cilium"
    assert release.inputs["version"] == "1.17.6"
    assert release.inputs["namespace"] == "kube-system"
    assert release.inputs["repositoryOpts"]["repo"] == "https://helm.cilium.io/"
    values = release.inputs["values"]
    shared = load_values(VALUES_FILE)
    assert {k: v for k, v in values.items() if k != "cluster"} == shared
    assert values["cluster"] == {"name": "homelab-dev"}
    assert values["kubeProxyReplacement"] is True
    assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("localhost", 7445)
    assert "SYS_MODULE" not in values["securityContext"]["capabilities"]["ciliumAgent"]
    assert values["cgroup"] == {"autoMount": {"enabled": False}, "hostRoot": "/sys/fs/cgroup"}
    assert values["gatewayAPI"]["enabled"] is True
    assert values["hubble"]["relay"]["enabled"] is True


def host_network_program():
    provider = kubernetes_provider("k8s", pulumi.Output.secret("apiVersion: v1\nkind: Config\n"), "homelab-cloud")
    Cilium(
        "cilium",
        {
            "cluster_name": "homelab-cloud",
            "chart_version": "1.17.6",
            "gateway_api_version": "v1.2.1",
            "gateway_host_network": True,
        },
        opts=pulumi.ResourceOptions(providers=[provider]),
    )


def test_gateway_host_network_is_off_unless_asked(record):
    values = record(program).get("kubernetes:helm.sh/v3:Release", "cilium-release").inputs["values"]
    assert "hostNetwork" not in values["gatewayAPI"]
    assert "envoy" not in values


def test_gateway_host_network_binds_port_80_on_the_nodes_over_the_shared_values(record):
    values = record(host_network_program).get("kubernetes:helm.sh/v3:Release", "cilium-release").inputs["values"]
    assert values["gatewayAPI"] == {"enabled": True, "hostNetwork": {"enabled": True}}
    envoy = values["envoy"]
    assert envoy["enabled"] is True
    # Both halves, or Envoy cannot bind privileged ports: the capability and keeping it past the starter.
    assert envoy["securityContext"]["capabilities"] == {
        "keepCapNetBindService": True,
        "envoy": ["NET_ADMIN", "SYS_ADMIN", "NET_BIND_SERVICE"],
    }
    # Everything else is the shared file, unchanged.
    shared = load_values(VALUES_FILE)
    untouched = {k: v for k, v in values.items() if k not in ("cluster", "gatewayAPI", "envoy")}
    assert untouched == {k: v for k, v in shared.items() if k not in ("gatewayAPI", "envoy")}
    assert values["cluster"] == {"name": "homelab-cloud"}


def test_host_network_overlay_keeps_envoy_capabilities_the_values_file_sets():
    base = {"envoy": {"securityContext": {"capabilities": {"envoy": ["NET_ADMIN", "BPF"]}}}, "ipam": {"mode": "x"}}
    merged = merge_values(base, gateway_host_network_values(base))
    assert merged["envoy"]["securityContext"]["capabilities"]["envoy"] == ["NET_ADMIN", "BPF", "NET_BIND_SERVICE"]
    assert merged["ipam"] == {"mode": "x"}
    assert base["envoy"]["securityContext"]["capabilities"]["envoy"] == ["NET_ADMIN", "BPF"]  # base not mutated


def test_gateway_host_network_needs_a_chart_that_has_it(record):
    def old_chart():
        Cilium(
            "cilium",
            {
                "cluster_name": "homelab-cloud",
                "chart_version": "1.15.9",
                "gateway_api_version": "v1.2.1",
                "gateway_host_network": True,
            },
        )

    with pytest.raises(ValueError, match=r"gateway_host_network needs chart 1\.16 or later, got 1\.15\.9"):
        record(old_chart)
