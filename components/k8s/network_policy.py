"""Default-deny ingress for every namespace the platform runs workloads in, with explicit allows.

Threat model: a compromised pod must not reach every other pod of the cluster. Each namespace gets
`default-deny-ingress` (all pods, no ingress rule) and then only what it needs:

- pods of the same namespace (an app and its database);
- named namespaces (the tunnel connector `cloudflared` for a published app, `monitoring` for
  Prometheus' scrapes);
- Cilium entities for traffic that does not come from a pod (`kube-apiserver` calling an admission
  webhook, `ingress` for the Cilium Gateway's Envoy, `host`/`remote-node` for the kubelet and
  Longhorn's node components), as a CiliumNetworkPolicy, because Kubernetes policies cannot name them.

Only ingress is restricted: egress stays open (apps fetch from the internet; DNS always works).
Policy rule NET-13 checks every namespace that runs a workload has the default-deny policy.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.labels import managed_labels

DEFAULT_DENY = "default-deny-ingress"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
CILIUM_ENTITIES = frozenset({"host", "remote-node", "kube-apiserver", "ingress", "health", "cluster", "world"})


@dataclass(frozen=True)
class IngressAllows:
    """What may reach the pods of one namespace besides nothing."""

    same_namespace: bool = True
    from_namespaces: tuple[str, ...] = ()
    from_entities: tuple[str, ...] = ()
    """Cilium entities (see CILIUM_ENTITIES)."""


@dataclass(frozen=True)
class PolicyTarget:
    namespace: str
    allows: IngressAllows = field(default_factory=IngressAllows)


class NetworkPoliciesArgs(TypedDict):
    targets: Sequence[PolicyTarget]


class NetworkPolicies(pulumi.ComponentResource):
    """Per namespace: default-deny ingress, an allow for same-namespace/named namespaces, Cilium entities."""

    namespaces: list[str]

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:NetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        seen: set[str] = set()
        for target in args["targets"]:
            ns = target.namespace
            if ns in seen:
                raise ValueError(f"NetworkPolicies {name!r}: namespace {ns!r} is listed twice")
            seen.add(ns)
            unknown = sorted(set(target.allows.from_entities) - CILIUM_ENTITIES)
            if unknown:
                raise ValueError(f"NetworkPolicies {name!r}: {ns}: unknown Cilium entity {unknown[0]!r}")
            labels = managed_labels("network-policy")
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{ns}-deny",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=DEFAULT_DENY, namespace=ns, labels=labels),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
                ),
                opts=child,
            )
            peers = allow_peers(target.allows)
            if peers:
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{ns}-allow",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-platform-ingress", namespace=ns, labels=labels),
                    spec=k8s.networking.v1.NetworkPolicySpecArgs(
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                        policy_types=["Ingress"],
                        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers)],
                    ),
                    opts=child,
                )
            if target.allows.from_entities:
                k8s.apiextensions.CustomResource(
                    f"{name}-{ns}-entities",
                    api_version="cilium.io/v2",
                    kind="CiliumNetworkPolicy",
                    metadata={"name": "allow-cluster-entities", "namespace": ns, "labels": labels},
                    spec={
                        "endpointSelector": {},
                        "ingress": [{"fromEntities": sorted(target.allows.from_entities)}],
                    },
                    opts=child,
                )
        self.namespaces = sorted(seen)
        self.register_outputs({"namespaces": self.namespaces})


def allow_peers(allows: IngressAllows) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    peers: list[k8s.networking.v1.NetworkPolicyPeerArgs] = []
    if allows.same_namespace:
        peers.append(k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs()))
    peers.extend(
        k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: other})
        )
        for other in sorted(set(allows.from_namespaces))
    )
    return peers


def targets(spec: Mapping[str, IngressAllows]) -> list[PolicyTarget]:
    return [PolicyTarget(ns, allows) for ns, allows in sorted(spec.items())]
