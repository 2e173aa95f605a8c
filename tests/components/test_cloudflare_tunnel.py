"""`Tunnel` and `CloudflaredConnector`: catalog routes in, tunnel, ingress, DNS and Access out."""

from collections.abc import Callable, Sequence
from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.cloudflare.connector import CloudflaredConnector
from components.cloudflare.provider import cloudflare_provider
from components.cloudflare.routes import TunnelRoute
from components.cloudflare.tunnel import AccessSettings, Tunnel
from homelab.engine import Recording, run_program

CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"

ROUTES = (
    TunnelRoute("authentik-admin", "auth.example.net", "http://authentik-server:9000", path="/if/admin", admin=True),
    TunnelRoute("authentik", "auth.example.net", "http://authentik-server:9000"),
    TunnelRoute("nextcloud", "cloud.example.net", "http://10.20.1.20:80", http_host_header="cloud.example.net"),
    TunnelRoute("omni", "omni.example.net", "http://omni:8080", admin=True),
)


def run(program: Callable[[], None]) -> Recording:
    return run_program(program, project="homelab", stack="test")


def tunnel_program(routes: Sequence[TunnelRoute] = ROUTES, tokens: Sequence[str] = ()) -> Callable[[], None]:
    def program() -> None:
        provider = cloudflare_provider("cloudflare", pulumi.Output.secret("t" * 40))
        tunnel = Tunnel(
            "cloud",
            {
                "account_id": "0123456789abcdef0123456789abcdef",
                "zone_id": "fedcba9876543210fedcba9876543210",
                "tunnel_name": "homelab-cloud",
                "tunnel_secret": pulumi.Output.secret("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="),
                "routes": list(routes),
                "access": AccessSettings("homelab", identity_provider_id="idp-id", admin_group="admin"),
                "machine_token_ids": list(tokens),
            },
            opts=pulumi.ResourceOptions(providers=[provider]),
        )
        pulumi.export("token", tunnel.token)

    return program


@pytest.fixture(scope="module")
def tunnel() -> Recording:
    return run(tunnel_program())


def test_tunnel_is_remotely_managed_protected_and_its_secret_secret(tunnel: Recording) -> None:
    record = tunnel.get("cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared", "cloud-tunnel")
    assert record.inputs["configSrc"] == "cloudflare"
    assert record.protect
    assert record.is_secret("tunnelSecret")
    assert "tunnelSecret" in record.additional_secret_outputs
    assert record.parent == tunnel.get("homelab:cloudflare:Tunnel", "cloud").urn


def test_token_is_a_secret_output(tunnel: Recording) -> None:
    assert tunnel.outputs["token"].secret
    assert tunnel.outputs["token"].value


def test_ingress_follows_routes_and_ends_with_the_catch_all(tunnel: Recording) -> None:
    ingresses = tunnel.get(CONFIG, "cloud-config").inputs["config"]["ingresses"]
    assert [i.get("hostname") for i in ingresses] == [
        "auth.example.net",
        "auth.example.net",
        "cloud.example.net",
        "omni.example.net",
        None,
    ]
    assert ingresses[-1] == {"service": "http_status:404"}
    assert ingresses[0]["path"] == "^/if/admin(/.*)?$"
    assert ingresses[2]["originRequest"]["httpHostHeader"] == "cloud.example.net"


def test_access_sits_on_each_admin_rule_not_top_level(tunnel: Recording) -> None:
    config = tunnel.get(CONFIG, "cloud-config").inputs["config"]
    assert "originRequest" not in config
    by_host = {(i.get("hostname"), i.get("path")): i for i in config["ingresses"]}
    omni = by_host[("omni.example.net", None)]["originRequest"]["access"]
    # The application's `aud` (computed by the provider) is what cloudflared checks: the rule takes
    # it from the application's output, not from a value of its own.
    app = tunnel.get(APP, "cloud-access-omni")
    assert app.urn in tunnel.get(CONFIG, "cloud-config").property_dependencies["config"]
    assert omni.keys() == {"audTags", "teamName", "required"}
    assert (omni["teamName"], omni["required"], len(omni["audTags"])) == ("homelab", True, 1)
    assert "access" not in by_host[("auth.example.net", None)].get("originRequest", {})


def test_one_proxied_cname_per_hostname(tunnel: Recording) -> None:
    records = {r.name: r.inputs for r in tunnel.by_type(DNS)}
    assert set(records) == {"cloud-dns-authentik", "cloud-dns-nextcloud", "cloud-dns-omni"}
    for record in records.values():
        assert record["type"] == "CNAME"
        assert record["proxied"] is True
        assert record["ttl"] == 1
        assert record["content"] == "cloud-tunnel-id.cfargotunnel.com"


def test_admin_routes_get_access_apps_with_mfa(tunnel: Recording) -> None:
    apps = {r.name: r.inputs for r in tunnel.by_type(APP)}
    assert set(apps) == {"cloud-access-authentik-admin", "cloud-access-omni"}
    assert apps["cloud-access-authentik-admin"]["domain"] == "auth.example.net/if/admin"
    (policy,) = tunnel.by_type(POLICY)
    assert policy.inputs["decision"] == "allow"
    # The identity provider's group, never a list of addresses.
    assert policy.inputs["includes"] == [
        {"oidc": {"claimName": "groups", "claimValue": "admin", "identityProviderId": "idp-id"}}
    ]
    assert policy.inputs["requires"] == [{"authMethod": {"authMethod": "mfa"}}]
    assert all(app["policies"] == [{"id": "cloud-admins-id", "precedence": 1}] for app in apps.values())
    assert all(app["allowedIdps"] == ["idp-id"] and app["autoRedirectToIdentity"] for app in apps.values())


def test_adding_a_route_adds_one_rule_one_record_and_one_access_app(tunnel: Recording) -> None:
    extra = TunnelRoute("grafana", "grafana.example.net", "http://grafana.monitoring.svc:80", admin=True)
    grown = run(tunnel_program((*ROUTES, extra)))
    before = tunnel.get(CONFIG, "cloud-config").inputs["config"]["ingresses"]
    after = grown.get(CONFIG, "cloud-config").inputs["config"]["ingresses"]
    assert len(after) == len(before) + 1
    assert after[-2]["hostname"] == "grafana.example.net" and after[-1] == {"service": "http_status:404"}
    assert len(grown.by_type(DNS)) == len(tunnel.by_type(DNS)) + 1
    assert len(grown.by_type(APP)) == len(tunnel.by_type(APP)) + 1


MACHINE = TunnelRoute(
    "telemetry-metrics",
    "telemetry.example.net",
    "http://prometheus.monitoring.svc.cluster.local:9090",
    path="/api/v1/write",
    machine=True,
)


def test_machine_routes_admit_only_the_named_service_tokens() -> None:
    rec = run(tunnel_program([*ROUTES, MACHINE], tokens=["token-1"]))
    policy = rec.get(POLICY, "cloud-machines")
    assert policy.inputs["decision"] == "non_identity"
    assert policy.inputs["includes"] == [{"serviceToken": {"tokenId": "token-1"}}]
    app = rec.get(APP, "cloud-access-telemetry-metrics")
    assert app.inputs["domain"] == "telemetry.example.net/api/v1/write"
    assert app.property_dependencies["policies"] == (policy.urn,)
    assert "allowedIdps" not in app.inputs and app.inputs["serviceAuth401Redirect"] is True
    # The admins' policy never covers a machine route, nor the machines' an admin route.
    admins = rec.get(POLICY, "cloud-admins")
    assert admins.urn not in app.property_dependencies["policies"]
    assert policy.urn not in rec.get(APP, "cloud-access-omni").property_dependencies["policies"]
    ingresses = rec.get(CONFIG, "cloud-config").inputs["config"]["ingresses"]
    rule = next(i for i in ingresses if i.get("hostname") == MACHINE.hostname)
    assert rule["path"] == "^/api/v1/write(/.*)?$" and rule["originRequest"]["access"]["required"] is True
    # Its record waits for the application that guards it.
    assert app.urn in rec.get(DNS, "cloud-dns-telemetry-metrics").dependencies


@pytest.mark.parametrize(
    ("routes", "tokens", "message"),
    [
        ([MACHINE], [], "machine routes need machine_token_ids"),
        ([replace(MACHINE, admin=True)], ["token-1"], "for admins or for machines, not both"),
    ],
)
def test_machine_routes_without_a_token_or_also_for_admins_are_refused(
    routes: list[TunnelRoute], tokens: list[str], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        run(tunnel_program(routes, tokens))


def test_duplicate_route_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="route keys must be unique"):
        run(tunnel_program((*ROUTES, ROUTES[0])))


@pytest.fixture(scope="module")
def connector() -> Recording:
    def program() -> None:
        provider = k8s.Provider("prod-kubernetes", kubeconfig="apiVersion: v1")
        CloudflaredConnector(
            "cloudflared",
            {"token": pulumi.Output.secret("eyJhIjoiYWNjb3VudCJ9"), "image": "cloudflare/cloudflared:2025.8.1"},
            opts=pulumi.ResourceOptions(providers=[provider]),
        )

    return run(program)


def test_connector_token_lives_only_in_a_secret(connector: Recording) -> None:
    secret = connector.get("kubernetes:core/v1:Secret", "cloudflared-token")
    assert secret.is_secret("stringData")
    deployment = connector.get("kubernetes:apps/v1:Deployment", "cloudflared-deployment").inputs
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "TUNNEL_TOKEN", "valueFrom": {"secretKeyRef": {"name": "cloudflared-token", "key": "token"}}}
    ]
    assert "eyJ" not in str(deployment)


def test_connector_is_restricted_pinned_and_bounded(connector: Recording) -> None:
    namespace = connector.get("kubernetes:core/v1:Namespace", "cloudflared-namespace").inputs
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    spec = connector.get("kubernetes:apps/v1:Deployment", "cloudflared-deployment").inputs["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "cloudflare/cloudflared:2025.8.1"
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]["memory"] == "256Mi"
    assert spec.get("hostNetwork") is None
    assert not connector.by_type("kubernetes:core/v1:Service")


def test_connector_refuses_an_unpinned_image() -> None:
    def program() -> None:
        CloudflaredConnector("c", {"token": "x", "image": "cloudflare/cloudflared:latest"})

    with pytest.raises(ValueError, match="pin the image"):
        run(program)
