"""Cilium: CRDs first, one values file, Talos-specific values, stable Kubernetes provider."""

import pulumi

from components.talos.cilium import VALUES_FILE, Cilium, load_values
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
    crds = rec.by_type("kubernetes:yaml/v2:ConfigFile")
    assert {c.inputs["file"] for c in crds} == {
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml",
        "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/v1.2.1/config/crd/experimental/gateway.networking.k8s.io_tlsroutes.yaml",
    }
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
