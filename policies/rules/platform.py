"""The platform layer on the clusters: network isolation per namespace, one owner per object.

NET-13 (NFR-006): every namespace the stack runs a workload in has a `default-deny` ingress
NetworkPolicy (all pods, no ingress rule), so anything that reaches a pod was allowed on purpose.

OPS-06 (NFR-008): no Kubernetes object is managed by both Pulumi and Argo CD. Argo CD owns what
`gitops/` declares (the generated policy config lists it as `argocdObjects`); an object in both
would be reverted by one tool every time the other changes it.
"""

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules import registry as reg
from policies.rules.base import Rule, resource_rule, stack_rule
from policies.rules.walk import get, items, k8s_name, mapping, namespace_of, pod_spec

Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]
Config = Mapping[str, Any]

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ARGO_TRACKING = ("argocd.argoproj.io/tracking-id", "argocd.argoproj.io/instance")


def is_default_deny(props: Any) -> bool:
    """All pods selected, Ingress among the policy types, and no ingress rule."""
    selector = get(props, "spec.podSelector")
    selects_all = (
        isinstance(selector, Mapping) and not get(selector, "matchLabels") and not get(selector, "matchExpressions")
    )
    types = [str(t) for t in items(get(props, "spec.policyTypes"))]
    return selects_all and "Ingress" in types and not items(get(props, "spec.ingress"))


def workload_namespace(resource_type: str, props: Any) -> str | None:
    """The namespace a workload (pod template or Helm release) runs in, if known."""
    if pod_spec(resource_type, props) is not None:
        namespace = namespace_of(props)
    elif resource_type in reg.K8S_HELM_TYPES:
        namespace = str(get(props, "namespace") or "")
    else:
        return None
    return namespace or None


@stack_rule(
    id="NET-13",
    slug="kubernetes-namespace-enforce-default-deny",
    nfr="NFR-006",
    topic="network",
    description="Every namespace that runs a workload has a default-deny ingress NetworkPolicy; allows are "
    "explicit policies beside it (NFR-006: a compromised pod cannot reach every other pod).",
    fix="add the namespace to the stack's NetworkPolicies (components/k8s/network_policy.py) with the "
    "allows it needs; system namespaces are listed in `systemNamespaces`.",
    config={
        "systemNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["kube-system"],
            "description": "Namespaces of the cluster itself (CNI, CSI drivers), not isolated here.",
        }
    },
)
def namespaces_default_deny(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    # A cluster is identified by the Kubernetes provider the objects use.
    denied: set[tuple[str, str]] = set()
    for resource in args.resources:
        if resource.resource_type == NETWORK_POLICY and is_default_deny(resource.props):
            denied.add((_provider(resource), namespace_of(resource.props)))
    reported: set[tuple[str, str]] = set()
    for resource in args.resources:
        namespace = workload_namespace(resource.resource_type, resource.props)
        if namespace is None or namespace in config["systemNamespaces"]:
            continue
        key = (_provider(resource), namespace)
        if key in denied or key in reported:
            continue
        reported.add(key)
        report(f"namespace {namespace} runs '{resource.name}' but has no default-deny ingress policy.", resource.urn)


def _provider(resource: Any) -> str:
    provider = getattr(resource, "provider", None)
    urn = getattr(provider, "urn", "") if provider is not None else ""
    # Component children inherit the provider; fall back to the parent chain's provider when unset.
    parent = getattr(resource, "parent", None)
    while not urn and parent is not None:
        provider = getattr(parent, "provider", None)
        urn = getattr(provider, "urn", "") if provider is not None else ""
        parent = getattr(parent, "parent", None)
    return str(urn)


def object_key(resource_type: str, props: Any, name: str) -> str | None:
    """`Kind/namespace/name` of a Kubernetes object Pulumi manages (None for Helm, YAML, providers)."""
    if not resource_type.startswith("kubernetes:") or resource_type in reg.K8S_HELM_TYPES:
        return None
    if resource_type.startswith(("kubernetes:yaml/", "kubernetes:helm.sh/")):
        return None
    kind = resource_type.rsplit(":", 1)[-1]
    return f"{kind}/{namespace_of(props) if get(props, 'metadata.namespace') else ''}/{k8s_name(props, name)}"


@resource_rule(
    id="OPS-06",
    slug="kubernetes-object-disallow-dual-ownership",
    nfr="NFR-008",
    topic="hygiene",
    description="No Kubernetes object is managed by both Pulumi and Argo CD: what `gitops/` declares is Argo "
    "CD's, everything else the stacks create is Pulumi's (docs/decisions/platform-ownership.md) (NFR-008).",
    fix="remove the object from either the stack or gitops/ (then `make policy-config`); never label a "
    "Pulumi object for Argo CD tracking.",
    severity=Severity.HIGH,
    config={
        "argocdObjects": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "`Kind/namespace/name` of every object under gitops/ (generated).",
        }
    },
)
def single_owner(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    key = object_key(args.resource_type, args.props, args.name)
    if key is None:
        return
    if key in set(config["argocdObjects"]):
        report(f"{key} is declared under gitops/ (Argo CD) and created by this stack (Pulumi).")
    annotations = mapping(get(args.props, "metadata.annotations"))
    labels = mapping(get(args.props, "metadata.labels"))
    tracked = [k for k in ARGO_TRACKING if k in annotations or k in labels]
    if tracked or labels.get("app.kubernetes.io/managed-by") == "argocd":
        report(f"{key} is created by Pulumi but marked for Argo CD ({', '.join(tracked) or 'managed-by: argocd'}).")


RULES: tuple[Rule, ...] = (namespaces_default_deny, single_owner)
