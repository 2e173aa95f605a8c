"""`CatalogGateway`: the CLOUD cluster's entry point for the cloud tunnel, generated from the catalog.

The cloud tunnel's connector (cloudflared) runs on the management VM, outside the cluster, so it
cannot resolve cluster Service names. It sends every request for a cluster service to a node's
VCN address on the listener port with the service's public hostname as Host header. A Cilium
Gateway in host-network mode (see `Cilium(gateway_host_network=True)`) makes that port a listener
of the node itself: no LoadBalancer or NodePort Service, nothing bound to a public address, and the
VCN security rules keep the port reachable from inside the subnet only.

One `HTTPRoute` per catalog service routes its hostname (and path prefix) to the Service named by
its upstream. Routes live in the Gateway's namespace and the listener admits routes from that
namespace only, so no workload can claim a public hostname by creating its own route: the catalog
stays the one place a hostname is declared. Routes reach Services in other namespaces through one
`ReferenceGrant` per backend namespace, limited to the Services the catalog names.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes.core.v1 as core_v1
import pulumi_kubernetes.meta.v1 as meta_v1
from pulumi_kubernetes import apiextensions

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = f"{GATEWAY_API_GROUP}/v1"
# ReferenceGrant is served as v1beta1 in the standard channel (no v1 yet).
REFERENCE_GRANT_API_VERSION = f"{GATEWAY_API_GROUP}/v1beta1"
GATEWAY_CLASS = "cilium"
LISTENER_NAME = "http"
DEFAULT_NAMESPACE = "gateway"
DEFAULT_LISTENER_PORT = 80
# Namespaces whose lifecycle belongs to Kubernetes itself: never created or labelled from here.
_RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")
_MANAGED = {"app.kubernetes.io/managed-by": "pulumi"}


@dataclass(frozen=True)
class GatewayRoute:
    """One catalog service as the Gateway routes it: public hostname (and path) to a cluster Service."""

    key: str
    """Stable name (the catalog's service name): names the HTTPRoute and its Pulumi resource."""
    hostname: str
    service_name: str
    service_namespace: str
    service_port: int
    path: str | None = None
    """A path prefix (`/api`) limiting the route; the longest matching prefix wins across routes."""

    @property
    def path_prefix(self) -> str:
        return (self.path or "/").rstrip("/") or "/"


def is_cluster_service_url(url: str) -> bool:
    """True if `url` names a Service by cluster DNS (`http://<svc>.<ns>.svc[.cluster.local]:<port>`)."""
    host = urlsplit(url).hostname or ""
    return host.endswith(_CLUSTER_SUFFIXES)


def gateway_route(key: str, hostname: str, upstream: str, path: str | None = None) -> GatewayRoute:
    """The route of one catalog service whose upstream is a cluster Service URL.

    Raises ValueError naming the service when the upstream is not `http://<svc>.<ns>.svc…:<port>`
    (the Gateway speaks plain HTTP to its backends; TLS to a backend would need BackendTLSPolicy).
    """
    parts = urlsplit(upstream)
    host = parts.hostname or ""
    suffix = next((s for s in _CLUSTER_SUFFIXES if host.endswith(s)), None)
    labels = host.removesuffix(suffix).split(".") if suffix else []
    try:
        port = parts.port
    except ValueError:
        port = None
    if (
        parts.scheme != "http"
        or len(labels) != 2
        or not all(_DNS_LABEL.match(label) for label in labels)
        or port is None
        or parts.path not in ("", "/")
    ):
        raise ValueError(
            f"service {key!r}: upstream {upstream!r} is not a cluster Service URL "
            "of the form http://<service>.<namespace>.svc.cluster.local:<port>"
        )
    if path is not None and not path.startswith("/"):
        raise ValueError(f"service {key!r}: path {path!r} must start with '/'")
    service_name, service_namespace = labels
    return GatewayRoute(
        key=key,
        hostname=hostname,
        service_name=service_name,
        service_namespace=service_namespace,
        service_port=port,
        path=path,
    )


def _check_routes(name: str, routes: Sequence[GatewayRoute]) -> None:
    keys = [r.key for r in routes]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"CatalogGateway {name!r}: route keys must be unique, got {', '.join(duplicates)} twice")
    seen: dict[tuple[str, str], str] = {}
    for route in routes:
        if not _DNS_LABEL.match(route.key):
            raise ValueError(f"CatalogGateway {name!r}: route key {route.key!r} is not a DNS label")
        match = (route.hostname, route.path_prefix)
        if match in seen:
            raise ValueError(
                f"CatalogGateway {name!r}: routes {seen[match]!r} and {route.key!r} "
                f"both match {route.hostname}{route.path_prefix}"
            )
        seen[match] = route.key


def _backends_by_namespace(routes: Iterable[GatewayRoute], own_namespace: str) -> dict[str, list[str]]:
    """Service names per backend namespace outside the Gateway's own (those need a ReferenceGrant)."""
    backends: dict[str, set[str]] = {}
    for route in routes:
        if route.service_namespace != own_namespace:
            backends.setdefault(route.service_namespace, set()).add(route.service_name)
    return {ns: sorted(services) for ns, services in sorted(backends.items())}


def _pod_security(level: str) -> dict[str, str]:
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }


class CatalogGatewayArgs(TypedDict):
    """Inputs of `CatalogGateway`."""

    routes: Sequence[GatewayRoute]
    """One entry per catalog service served in this cluster (see `gateway_route`)."""
    namespace: NotRequired[str]
    """Namespace created for the Gateway and its routes (`gateway`)."""
    listener_port: NotRequired[int]
    """Port the Gateway listens on, on every node in host-network mode (80; below 1024 needs the
    Envoy NET_BIND_SERVICE capability, which `Cilium(gateway_host_network=True)` grants)."""
    create_backend_namespaces: NotRequired[bool]
    backend_namespace_labels: NotRequired[Mapping[str, Mapping[str, str]]]
    """Extra labels of a created backend namespace, by namespace (its data class: DAT-08's evidence)."""
    """Create the backends' namespaces so their ReferenceGrants can land before the apps are
    deployed (default True). They are retained when removed: a namespace holds the app's volumes."""


class CatalogGateway(pulumi.ComponentResource):
    """Namespace, Cilium Gateway (HTTP listener), one HTTPRoute per service, ReferenceGrants.

    Pass the Cilium component in `opts.depends_on`: the Gateway API CRDs and the `cilium`
    GatewayClass must exist before these objects are created.
    """

    namespace: pulumi.Output[str]
    gateway_name: pulumi.Output[str]
    hostnames: pulumi.Output[list[str]]

    def __init__(self, name: str, args: CatalogGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:CatalogGateway", name, None, opts)
        if not _DNS_LABEL.match(name):
            raise ValueError(f"CatalogGateway {name!r}: the name is the Gateway's and must be a DNS label")
        routes = sorted(args["routes"], key=lambda r: r.key)
        _check_routes(name, routes)
        namespace_name = args.get("namespace", DEFAULT_NAMESPACE)
        if namespace_name in _RESERVED_NAMESPACES or not _DNS_LABEL.match(namespace_name):
            raise ValueError(f"CatalogGateway {name!r}: namespace {namespace_name!r} must be a dedicated namespace")
        port = args.get("listener_port", DEFAULT_LISTENER_PORT)
        if not 1 <= port <= 65535:
            raise ValueError(f"CatalogGateway {name!r}: listener_port must be 1-65535, got {port}")

        child = pulumi.ResourceOptions(parent=self)
        # Children of a component do not wait for the component's own dependencies: forward them to
        # every custom resource, whose CRDs (and GatewayClass) those dependencies install.
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)
        labels = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": name, **_MANAGED}

        # Nothing runs here (Envoy is Cilium's node DaemonSet): the strictest level costs nothing.
        namespace = core_v1.Namespace(
            f"{name}-namespace",
            metadata={"name": namespace_name, "labels": {**labels, **_pod_security("restricted")}},
            opts=child,
        )
        own_namespace = namespace.metadata.name

        gateway_metadata: meta_v1.ObjectMetaArgsDict = {"name": name, "namespace": own_namespace, "labels": labels}
        gateway = apiextensions.CustomResource(
            f"{name}-gateway",
            api_version=GATEWAY_API_VERSION,
            kind="Gateway",
            metadata=gateway_metadata,
            spec={
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": LISTENER_NAME,
                        "protocol": "HTTP",
                        "port": port,
                        # Only the catalog's routes (in this namespace) may attach to the public entry.
                        "allowedRoutes": {"namespaces": {"from": "Same"}},
                    }
                ],
            },
            opts=after_crds,
        )

        grants: dict[str, apiextensions.CustomResource] = {}
        create_backends = args.get("create_backend_namespaces", True)
        for backend_namespace, services in _backends_by_namespace(routes, namespace_name).items():
            grant_opts = after_crds
            if create_backends and backend_namespace not in _RESERVED_NAMESPACES:
                backend = core_v1.Namespace(
                    f"{name}-backend-{backend_namespace}",
                    metadata={
                        "name": backend_namespace,
                        # Family apps' images often run as root: baseline blocks host access and
                        # privilege, warnings show what restricted would reject.
                        "labels": {
                            "app.kubernetes.io/name": backend_namespace,
                            **_MANAGED,
                            **_pod_security("baseline"),
                            **args.get("backend_namespace_labels", {}).get(backend_namespace, {}),
                        },
                    },
                    # Deleting a namespace deletes the app's volume claims with it; leaving the
                    # catalog must never take an app's data along.
                    opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
                )
                grant_opts = pulumi.ResourceOptions.merge(after_crds, pulumi.ResourceOptions(depends_on=[backend]))
            grant_metadata: meta_v1.ObjectMetaArgsDict = {
                "name": f"{namespace_name}-{name}-routes",
                "namespace": backend_namespace,
                "labels": labels,
            }
            grants[backend_namespace] = apiextensions.CustomResource(
                f"{name}-grant-{backend_namespace}",
                api_version=REFERENCE_GRANT_API_VERSION,
                kind="ReferenceGrant",
                metadata=grant_metadata,
                spec={
                    "from": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute", "namespace": namespace_name}],
                    "to": [{"group": "", "kind": "Service", "name": service} for service in services],
                },
                opts=grant_opts,
            )

        for route in routes:
            waits_for: list[pulumi.Resource] = [gateway]
            grant = grants.get(route.service_namespace)
            if grant is not None:
                # Without the grant the route is accepted but its backend refused (RefNotPermitted).
                waits_for.append(grant)
            route_metadata: meta_v1.ObjectMetaArgsDict = {
                "name": route.key,
                "namespace": own_namespace,
                "labels": {**labels, "app.kubernetes.io/component": route.key},
            }
            apiextensions.CustomResource(
                f"{name}-route-{route.key}",
                api_version=GATEWAY_API_VERSION,
                kind="HTTPRoute",
                metadata=route_metadata,
                spec=_route_spec(route, gateway_name=name, gateway_namespace=namespace_name),
                opts=pulumi.ResourceOptions.merge(after_crds, pulumi.ResourceOptions(depends_on=waits_for)),
            )

        self.namespace = own_namespace
        self.gateway_name = pulumi.Output.from_input(name)
        self.hostnames = pulumi.Output.from_input(sorted({r.hostname for r in routes}))
        self.register_outputs(
            {"namespace": self.namespace, "gateway_name": self.gateway_name, "hostnames": self.hostnames}
        )


def _route_spec(route: GatewayRoute, *, gateway_name: str, gateway_namespace: str) -> Mapping[str, Any]:
    return {
        "parentRefs": [{"name": gateway_name, "namespace": gateway_namespace, "sectionName": LISTENER_NAME}],
        "hostnames": [route.hostname],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": route.path_prefix}}],
                "backendRefs": [
                    {
                        "group": "",
                        "kind": "Service",
                        "name": route.service_name,
                        "namespace": route.service_namespace,
                        "port": route.service_port,
                    }
                ],
            }
        ],
    }
