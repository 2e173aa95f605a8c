"""`CatalogGateway`: catalog services in, one Cilium Gateway and one HTTPRoute per service out."""

from collections.abc import Sequence
from typing import cast

import pulumi
import pytest

from components.k8s.gateway import (
    CatalogGateway,
    CatalogGatewayArgs,
    GatewayRoute,
    gateway_route,
    is_cluster_service_url,
)
from components.talos.cilium import Cilium
from components.talos.kubernetes import kubernetes_provider
from homelab.engine import RecordedResource, Recording, run_program
from stacks.catalog import Catalog, ServiceOverrideConfig, build_catalog

GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
GRANT = "kubernetes:gateway.networking.k8s.io/v1beta1:ReferenceGrant"
NAMESPACE = "kubernetes:core/v1:Namespace"
COMPONENT = "homelab:k8s:CatalogGateway"
RELEASE = "kubernetes:helm.sh/v3:Release"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def cluster_routes(catalog: Catalog) -> list[GatewayRoute]:
    """What the cloud stack passes: the CLOUD location's services that run in the cluster."""
    return [
        gateway_route(s.name, s.hostname, s.upstream, s.path)
        for s in catalog.at("cloud")
        if is_cluster_service_url(s.upstream)
    ]


SEEDED = cluster_routes(build_catalog("example.net"))


def run(routes: Sequence[GatewayRoute], **extra: object) -> Recording:
    def program() -> None:
        provider = kubernetes_provider("k8s", pulumi.Output.secret("apiVersion: v1\nkind: Config\n"), "homelab-cloud")
        cilium = Cilium(
            "cilium",
            {
                "cluster_name": "homelab-cloud",
                "chart_version": "1.17.6",
                "gateway_api_version": "v1.2.1",
                "gateway_host_network": True,
            },
            opts=pulumi.ResourceOptions(providers=[provider]),
        )
        args = cast(CatalogGatewayArgs, {"routes": list(routes), **extra})
        gateway = CatalogGateway("cloud", args, opts=pulumi.ResourceOptions(providers=[provider], depends_on=[cilium]))
        pulumi.export("hostnames", gateway.hostnames)
        pulumi.export("namespace", gateway.namespace)

    return run_program(program, project="homelab", stack="test")


@pytest.fixture(scope="module")
def seeded() -> Recording:
    return run(SEEDED)


def routes_by_key(rec: Recording) -> dict[str, RecordedResource]:
    return {r.name.removeprefix("cloud-route-"): r for r in rec.by_type(ROUTE)}


# --- the pure part: catalog entry -> route ------------------------------------------------------


def test_route_is_parsed_from_the_in_cluster_upstream() -> None:
    route = gateway_route("immich", "photos.example.net", "http://immich-server.immich.svc.cluster.local:2283")
    assert route == GatewayRoute("immich", "photos.example.net", "immich-server", "immich", 2283)
    assert route.path_prefix == "/"
    short = gateway_route("api", "api.example.net", "http://api.apps.svc:8080/", path="/v1/")
    assert (short.service_name, short.service_namespace, short.service_port) == ("api", "apps", 8080)
    assert short.path_prefix == "/v1"


@pytest.mark.parametrize(
    "upstream",
    [
        "http://omni:8080",  # a Compose service: not behind the Gateway
        "http://10.20.1.30:80",
        "https://nextcloud.nextcloud.svc.cluster.local:443",  # TLS to a backend needs BackendTLSPolicy
        "http://nextcloud.nextcloud.svc.cluster.local",  # no port
        "http://nextcloud.svc.cluster.local:80",  # no namespace
        "http://a.b.c.svc.cluster.local:80",
        "http://nextcloud.nextcloud.svc.cluster.local:80/index.php",
    ],
)
def test_only_service_urls_become_routes(upstream: str) -> None:
    with pytest.raises(ValueError, match=r"service 'x': upstream .* is not a cluster Service URL"):
        gateway_route("x", "x.example.net", upstream)


def test_the_catalog_cloud_cluster_services_are_the_routes() -> None:
    assert {r.key for r in SEEDED} == {
        "baikal", "comet", "glance", "immich", "invidious", "mealie", "n8n", "navidrome", "nextcloud", "vaultwarden",
    }  # fmt: skip
    # Management VM (Compose) services reach cloudflared directly, never through the Gateway.
    assert not is_cluster_service_url("http://authentik-server:9000")


# --- the graph --------------------------------------------------------------------------------------


def test_gateway_namespace_is_restricted_and_dedicated(seeded: Recording) -> None:
    namespace = seeded.get(NAMESPACE, "cloud-namespace")
    labels = namespace.inputs["metadata"]["labels"]
    assert namespace.inputs["metadata"]["name"] == "gateway"
    assert labels[PSA_ENFORCE] == "restricted"
    assert seeded.outputs["namespace"].value == "gateway"


def test_gateway_is_cilium_http_on_port_80_admitting_only_its_own_routes(seeded: Recording) -> None:
    gateway = seeded.get(GATEWAY, "cloud-gateway")
    assert gateway.inputs["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway.inputs["kind"] == "Gateway"
    assert gateway.inputs["metadata"]["name"] == "cloud"
    assert gateway.inputs["metadata"]["namespace"] == "gateway"
    spec = gateway.inputs["spec"]
    assert spec["gatewayClassName"] == "cilium"
    assert spec["listeners"] == [
        {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "Same"}}}
    ]


def test_one_route_per_service_with_its_hostname_and_backend(seeded: Recording) -> None:
    routes = routes_by_key(seeded)
    assert set(routes) == {r.key for r in SEEDED}
    nextcloud = routes["nextcloud"].inputs
    assert nextcloud["metadata"]["name"] == "nextcloud"
    assert nextcloud["metadata"]["namespace"] == "gateway"
    assert nextcloud["spec"] == {
        "parentRefs": [{"name": "cloud", "namespace": "gateway", "sectionName": "http"}],
        "hostnames": ["cloud.example.net"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": "nextcloud", "namespace": "nextcloud", "port": 8080}
                ],
            }
        ],
    }
    for route in SEEDED:
        spec = routes[route.key].inputs["spec"]
        assert spec["hostnames"] == [route.hostname]
        backend = spec["rules"][0]["backendRefs"][0]
        assert (backend["name"], backend["namespace"], backend["port"]) == (
            route.service_name,
            route.service_namespace,
            route.service_port,
        )
    assert seeded.outputs["hostnames"].value == sorted(r.hostname for r in SEEDED)


def test_every_child_is_parented_and_uses_the_cluster_provider(seeded: Recording) -> None:
    component = seeded.get(COMPONENT, "cloud")
    children = seeded.children_of(component)
    assert {c.type for c in children} == {NAMESPACE, GATEWAY, ROUTE, GRANT}
    provider = seeded.get("pulumi:providers:kubernetes", "k8s")
    assert all(c.provider is not None and c.provider.startswith(provider.urn) for c in children)


def test_custom_resources_wait_for_the_cilium_crds_and_release(seeded: Recording) -> None:
    cilium = seeded.get("homelab:talos:Cilium", "cilium")
    cilium_parts = {r.urn for r in seeded.children_of(cilium)}
    assert seeded.get(RELEASE, "cilium-release").urn in cilium_parts
    for resource in [*seeded.by_type(GATEWAY), *seeded.by_type(ROUTE), *seeded.by_type(GRANT)]:
        assert cilium_parts <= set(resource.dependencies), resource.name


def test_cross_namespace_backends_are_granted_per_namespace(seeded: Recording) -> None:
    grants = {g.inputs["metadata"]["namespace"]: g for g in seeded.by_type(GRANT)}
    assert set(grants) == {r.service_namespace for r in SEEDED}
    immich = grants["immich"]
    assert immich.name == "cloud-grant-immich"
    assert immich.inputs["spec"] == {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "gateway"}],
        "to": [{"group": "", "kind": "Service", "name": "immich-server"}],
    }
    # A route is created only once its backend may be referenced.
    assert immich.urn in routes_by_key(seeded)["immich"].dependencies


def test_backend_namespaces_are_baseline_and_outlive_the_catalog(seeded: Recording) -> None:
    backends = {n.inputs["metadata"]["name"]: n for n in seeded.by_type(NAMESPACE) if n.name != "cloud-namespace"}
    assert set(backends) == {r.service_namespace for r in SEEDED}
    for namespace in backends.values():
        assert namespace.inputs["metadata"]["labels"][PSA_ENFORCE] == "baseline"
        # Deleting a namespace would delete the app's volumes: removing a service only forgets it.
        assert namespace.retain_on_delete
    grant = seeded.get(GRANT, "cloud-grant-vaultwarden")
    assert backends["vaultwarden"].urn in grant.dependencies


def test_no_service_is_created_so_none_is_load_balancer_or_node_port(seeded: Recording) -> None:
    assert seeded.by_type("kubernetes:core/v1:Service") == []


def test_adding_a_service_adds_exactly_one_route(seeded: Recording) -> None:
    extra = {
        "paperless": ServiceOverrideConfig(
            location="cloud",
            tier="sso",
            hostname="paper",
            upstream="http://paperless.paperless.svc.cluster.local:8000",
            groups=("family",),
            sso="oidc",
            redirect_uris=("/accounts/oidc/authentik/login/callback/",),
        ),
        # A second service in an existing namespace adds a route, not a grant.
        "immich-api": ServiceOverrideConfig(
            location="cloud",
            tier="native",
            hostname="photos",
            path="/api",
            upstream="http://immich-api.immich.svc.cluster.local:3001",
            groups=("family",),
        ),
    }
    one_more = run(cluster_routes(build_catalog("example.net", {"paperless": extra["paperless"]})))
    assert len(one_more.by_type(ROUTE)) == len(seeded.by_type(ROUTE)) + 1
    assert set(routes_by_key(one_more)) - set(routes_by_key(seeded)) == {"paperless"}

    same_namespace = run(cluster_routes(build_catalog("example.net", {"immich-api": extra["immich-api"]})))
    assert len(same_namespace.by_type(ROUTE)) == len(seeded.by_type(ROUTE)) + 1
    assert len(same_namespace.by_type(GRANT)) == len(seeded.by_type(GRANT))
    api = routes_by_key(same_namespace)["immich-api"].inputs["spec"]
    assert api["hostnames"] == ["photos.example.net"]
    assert api["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    grant = same_namespace.get(GRANT, "cloud-grant-immich").inputs["spec"]["to"]
    assert [t["name"] for t in grant] == ["immich-api", "immich-server"]


def test_backend_in_the_gateway_namespace_needs_no_grant() -> None:
    route = gateway_route("echo", "echo.example.net", "http://echo.gateway.svc.cluster.local:80")
    rec = run([route])
    assert rec.by_type(GRANT) == []
    assert [n.name for n in rec.by_type(NAMESPACE)] == ["cloud-namespace"]


def test_backend_namespaces_can_be_left_to_their_apps() -> None:
    rec = run(SEEDED[:2], create_backend_namespaces=False, namespace="edge", listener_port=8080)
    assert [n.inputs["metadata"]["name"] for n in rec.by_type(NAMESPACE)] == ["edge"]
    assert len(rec.by_type(GRANT)) == 2
    assert rec.get(GATEWAY, "cloud-gateway").inputs["spec"]["listeners"][0]["port"] == 8080


@pytest.mark.parametrize(
    ("routes", "extra", "message"),
    [
        ([SEEDED[0], SEEDED[0]], {}, "route keys must be unique"),
        (
            [SEEDED[0], GatewayRoute("twin", SEEDED[0].hostname, "twin", "twin", 80)],
            {},
            "both match",
        ),
        (SEEDED, {"namespace": "kube-system"}, "must be a dedicated namespace"),
        (SEEDED, {"listener_port": 0}, "listener_port must be 1-65535"),
    ],
)
def test_bad_input_is_refused(routes: list[GatewayRoute], extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(routes, **extra)
