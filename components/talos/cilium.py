"""`Cilium`: the CNI of every Talos cluster, installed right after bootstrap.

Talos is configured with CNI `none` and kube-proxy disabled, so nodes stay NotReady until this
release runs. The Helm values come from `cilium-values.yaml` next to this module — the single
source a GitOps tool later adopts — and the Gateway API CRDs are applied before the chart, because
Cilium only enables its Gateway controller when the CRDs exist at start-up.
"""

from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml

VALUES_FILE = Path(__file__).with_name("cilium-values.yaml")
CILIUM_REPOSITORY = "https://helm.cilium.io/"
GATEWAY_API_RELEASES = "https://github.com/kubernetes-sigs/gateway-api/releases/download"
GATEWAY_API_RAW = "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api"


def load_values(path: Path = VALUES_FILE) -> dict[str, Any]:
    """The shared Cilium values (a mapping; an empty or malformed file is an error)."""
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(values, dict):
        raise ValueError(f"{path.name} must hold a mapping of Helm values")
    return values


def gateway_api_crd_urls(version: str) -> list[str]:
    """The upstream standard channel, plus TLSRoute from experimental (Cilium serves TLS passthrough)."""
    return [
        f"{GATEWAY_API_RELEASES}/{version}/standard-install.yaml",
        f"{GATEWAY_API_RAW}/{version}/config/crd/experimental/gateway.networking.k8s.io_tlsroutes.yaml",
    ]


class CiliumArgs(TypedDict):
    """Inputs of `Cilium`."""

    cluster_name: str
    chart_version: str
    """Cilium chart version, e.g. `1.17.6`."""
    gateway_api_version: str
    """Gateway API release whose CRDs are installed first, e.g. `v1.2.1`."""
    values_file: NotRequired[Path]


class Cilium(pulumi.ComponentResource):
    """Gateway API CRDs, then the Cilium Helm release (kube-proxy replacement, Hubble, Gateway API)."""

    release_status: pulumi.Output[Any]
    values: dict[str, Any]

    def __init__(self, name: str, args: CiliumArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:talos:Cilium", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        crds = [
            k8s.yaml.v2.ConfigFile(f"{name}-gateway-api-{key}", file=url, opts=child)
            for key, url in zip(
                ("standard", "tlsroute"), gateway_api_crd_urls(args["gateway_api_version"]), strict=True
            )
        ]

        self.values = {**load_values(args.get("values_file", VALUES_FILE)), "cluster": {"name": args["cluster_name"]}}
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="cilium",
            chart="cilium",
            version=args["chart_version"],
            namespace="kube-system",
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CILIUM_REPOSITORY),
            values=self.values,
            # Nodes are NotReady until the agent runs; give the first rollout room.
            timeout=900,
            atomic=False,
            cleanup_on_fail=False,
            max_history=5,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=crds)),
        )
        self.release_status = release.status
        self.register_outputs({"release_status": self.release_status})
