"""`Cilium`: the CNI of every Talos cluster, installed right after bootstrap.

Talos is configured with CNI `none` and kube-proxy disabled, so nodes stay NotReady until this
release runs. The Helm values come from `cilium-values.yaml` next to this module — the single
source a GitOps tool later adopts — and the Gateway API CRDs are applied before the chart, because
Cilium only enables its Gateway controller when the CRDs exist at start-up. The CRDs are applied from
the vendored, checksum-pinned files of `vendor/manifests.lock.yaml` (`make vendor`), never from a URL.

A cluster whose tunnel connector runs outside it (CLOUD) opts into Gateway host-network mode: the
Gateway's listeners bind on every node's own addresses, so no LoadBalancer or NodePort Service is
needed. That is an overlay on the shared values, not a second values file: DEV and PROD get the
file exactly as written.
"""

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.manifests import manifest_files

VALUES_FILE = Path(__file__).with_name("cilium-values.yaml")
CILIUM_REPOSITORY = "https://helm.cilium.io/"
# Sources of `vendor/manifests.lock.yaml`: the standard channel, and TLSRoute from the experimental
# channel (Cilium serves TLS passthrough with it).
GATEWAY_API_STANDARD = "gateway-api"
GATEWAY_API_EXPERIMENTAL = "gateway-api-experimental"
# The chart's default capabilities of the standalone cilium-envoy container (Cilium 1.16+). Helm
# replaces lists instead of merging them, so adding one capability means restating these.
ENVOY_DEFAULT_CAPABILITIES = ("NET_ADMIN", "SYS_ADMIN")
HOST_NETWORK_SINCE = (1, 16)


def load_values(path: Path = VALUES_FILE) -> dict[str, Any]:
    """The shared Cilium values (a mapping; an empty or malformed file is an error)."""
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(values, dict):
        raise ValueError(f"{path.name} must hold a mapping of Helm values")
    return values


def _minor_version(chart_version: str) -> tuple[int, int]:
    major, minor = chart_version.split(".")[:2]
    return int(major), int(minor)


def merge_values(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`overlay` on top of `base` as Helm merges values files: maps recursively, anything else replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_values(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def gateway_host_network_values(base: Mapping[str, Any]) -> dict[str, Any]:
    """The overlay that serves Gateway listeners on the nodes' own network (Cilium >= 1.16).

    Envoy must bind privileged ports (80) there: the standalone Envoy DaemonSet gets
    NET_BIND_SERVICE, and `keepCapNetBindService` stops Cilium's Envoy starter from dropping it.
    Without both, the Gateway reports Programmed while Envoy fails to bind.
    """
    envoy_capabilities = (
        base.get("envoy", {}).get("securityContext", {}).get("capabilities", {}).get("envoy")
        or ENVOY_DEFAULT_CAPABILITIES
    )
    return {
        "gatewayAPI": {"enabled": True, "hostNetwork": {"enabled": True}},
        "envoy": {
            # Standalone DaemonSet mode, where the capability list below applies (embedded Envoy
            # would take it from the agent's capabilities instead).
            "enabled": True,
            "securityContext": {
                "capabilities": {
                    "keepCapNetBindService": True,
                    "envoy": [*dict.fromkeys([*envoy_capabilities, "NET_BIND_SERVICE"])],
                }
            },
        },
    }


class CiliumArgs(TypedDict):
    """Inputs of `Cilium`."""

    cluster_name: str
    chart_version: str
    """Cilium chart version, e.g. `1.17.6`."""
    gateway_api_version: str
    """Gateway API release whose CRDs are installed first, e.g. `v1.2.1`."""
    values_file: NotRequired[Path]
    gateway_host_network: NotRequired[bool]
    """Serve Gateway listeners on the nodes' own addresses (default False). For a cluster reached by a
    connector outside it; the listener ports are then open on every node, so keep them off public
    addresses with the network's security rules."""


class Cilium(pulumi.ComponentResource):
    """Gateway API CRDs, then the Cilium Helm release (kube-proxy replacement, Hubble, Gateway API)."""

    release_status: pulumi.Output[Any]
    values: dict[str, Any]

    def __init__(self, name: str, args: CiliumArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:talos:Cilium", name, None, opts)
        host_network = args.get("gateway_host_network", False)
        if host_network and _minor_version(args["chart_version"]) < HOST_NETWORK_SINCE:
            raise ValueError(
                f"Cilium {name!r}: gateway_host_network needs chart 1.16 or later, got {args['chart_version']}"
            )
        child = pulumi.ResourceOptions(parent=self)

        gateway_api = args["gateway_api_version"]
        tlsroute = manifest_files(GATEWAY_API_EXPERIMENTAL, gateway_api)
        if len(tlsroute) != 1:
            raise ValueError(f"Cilium {name!r}: expected one TLSRoute file for {gateway_api}, got {tlsroute}")
        crds: list[pulumi.Resource] = [
            k8s.yaml.v2.ConfigGroup(
                f"{name}-gateway-api-standard", files=manifest_files(GATEWAY_API_STANDARD, gateway_api), opts=child
            ),
            k8s.yaml.v2.ConfigFile(f"{name}-gateway-api-tlsroute", file=tlsroute[0], opts=child),
        ]

        shared = load_values(args.get("values_file", VALUES_FILE))
        if host_network:
            shared = merge_values(shared, gateway_host_network_values(shared))
        self.values = {**shared, "cluster": {"name": args["cluster_name"]}}
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
