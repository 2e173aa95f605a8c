"""`WorkloadNamespaces`: the application namespaces the platform creates before Argo CD deploys into them.

Argo CD syncs with `CreateNamespace=false`: a namespace exists only if the platform made it, with
the `restricted` Pod Security level and (through `NetworkPolicies`) a default-deny ingress policy,
so no app lands in a namespace that lacks either. Namespaces are retained when removed from config:
deleting one deletes the app's volume claims with it.
"""

from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.labels import namespace_metadata

RESERVED = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class WorkloadNamespacesArgs(TypedDict):
    names: Sequence[str]


class WorkloadNamespaces(pulumi.ComponentResource):
    names: list[str]

    def __init__(self, name: str, args: WorkloadNamespacesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:WorkloadNamespaces", name, None, opts)
        reserved = sorted(set(args["names"]) & RESERVED)
        if reserved:
            raise ValueError(f"WorkloadNamespaces {name!r}: {reserved[0]!r} belongs to Kubernetes itself")
        self.names = sorted(set(args["names"]))
        for ns in self.names:
            k8s.core.v1.Namespace(
                f"{name}-{ns}",
                metadata=namespace_metadata(ns, "restricted"),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
        self.register_outputs({"names": self.names})
