"""The real `cloud` stack, previewed offline from Pulumi.cloud.yaml."""

import base64
import copy
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

import pytest

from homelab.budget import PRD_ORIGINAL_LAYOUT, Layout, Machine, always_free_summary, fits, problems, warnings
from homelab.engine import Recording
from homelab.stackrun import check_stack_config, load_stack_input
from stacks.config.base import ConfigError
from stacks.quota import AlwaysFreeQuotaConfig
from tests.policies.previews import shared_run
from tests.stacks.helpers import count_registrations, section

WORLD = {"0.0.0.0/0", "::/0"}
CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"


def preview(overrides: Mapping[str, Any]) -> Recording:
    """The cloud stack with `overrides`, shared with any other test of the session asking the same
    (tests/policies/previews.py): read it, never edit it in place."""
    return shared_run("cloud", overrides)


@pytest.fixture(scope="module")
def cloud(previewed) -> Recording:
    return previewed("cloud").recording


@pytest.fixture(scope="module")
def cloud_with_uptime() -> Recording:
    catalog = section("cloud", "catalog")
    catalog["services"] = {
        "uptime": {
            "location": "prod",
            "tier": "admin",
            "hostname": "uptime",
            "upstream": "http://uptime-kuma.monitoring.svc.cluster.local:3001",
            "groups": ["admin"],
        }
    }
    return preview({"catalog": catalog})


def test_previews_end_to_end(cloud: Recording) -> None:
    types = {r.type for r in cloud.resources}
    assert {
        "homelab:oci:AlwaysFreeNetwork",
        "homelab:oci:ManagementVm",
        "homelab:talos:TalosCluster",
        "homelab:cloudflare:Tunnel",
        "homelab:talos:Cilium",
        "oci:Core/instance:Instance",
        "talos:machine/bootstrap:Bootstrap",
    } <= types
    assert len(cloud.by_type("homelab:cloudflare:Tunnel")) == 2


@pytest.mark.parametrize(
    "name", ["kubeconfig", "talosconfig", "tunnel_token_prod", "tunnel_token_cloud", "authentik_bootstrap_token"]
)
def test_credentials_are_secret_outputs(cloud: Recording, name: str) -> None:
    assert cloud.outputs[name].secret
    assert cloud.outputs[name].value


def test_always_free_usage_is_a_plain_summary_within_quota(cloud: Recording) -> None:
    usage = cloud.outputs["always_free_usage"]
    assert not usage.secret
    assert usage.value["within_quota"] is True
    assert usage.value["a1_ocpus"] == {"used": 2, "quota": 2.0}
    assert usage.value["a1_memory_gb"] == {"used": 12, "quota": 12.0}
    assert usage.value["block_storage_gb"] == {"used": 200, "quota": 200}
    # cloud-1's boot volume (etcd) is kept when it is replaced; the management VM's is not.
    assert usage.value["block_storage_while_replacing_gb"] == {"used": 300, "quota": 200}
    assert usage.value["warnings"] == [
        "replacing cloud-1 keeps its 100 GB boot volume: 300 GB of 200 GB until it is reclaimed "
        "(cloud runbook: reclaiming a kept boot volume)"
    ]
    instances = cloud.by_type("oci:Core/instance:Instance")
    assert sum(i.inputs["shapeConfig"]["ocpus"] for i in instances) == 2
    assert sum(i.inputs["shapeConfig"]["memoryInGbs"] for i in instances) == 12


def test_prd_original_layout_fails_the_default_quota_and_the_default_layout_passes(cloud: Recording) -> None:
    quota = AlwaysFreeQuotaConfig()
    assert not fits(PRD_ORIGINAL_LAYOUT, quota.limits())
    assert problems(PRD_ORIGINAL_LAYOUT, quota.limits())[:2] == [
        "A1 OCPUs: 4 used, 2 free",
        "A1 memory: 24 GB used, 12 GB free",
    ]
    assert always_free_summary(PRD_ORIGINAL_LAYOUT, AlwaysFreeQuotaConfig(a1_ocpus=4, a1_memory_gb=24).limits())[
        "within_quota"
    ]
    assert cloud.outputs["always_free_usage"].value["within_quota"]


def test_the_ledger_counts_only_the_boot_volumes_that_are_kept() -> None:
    quota = AlwaysFreeQuotaConfig()
    kept = Machine("node", "VM.Standard.A1.Flex", 1, 6, 50, keeps_boot_volume=True)
    disposable = Machine("vm", "VM.Standard.A1.Flex", 1, 6, 100)
    layout = Layout(machines=(kept, disposable), block_volumes_gb={"data": 50})
    assert always_free_summary(layout, quota.limits())["block_storage_while_replacing_gb"] == {
        "used": 250,
        "quota": 200,
    }
    assert warnings(layout, quota.limits()) == [
        "replacing node keeps its 50 GB boot volume: 250 GB of 200 GB until it is reclaimed "
        "(cloud runbook: reclaiming a kept boot volume)"
    ]
    # Room for the kept volume: no warning, and the layout itself was never a problem.
    roomy = Layout(machines=(kept, disposable))
    assert warnings(roomy, quota.limits()) == [] and fits(layout, quota.limits())


def test_a_third_ocpu_shows_in_the_summary() -> None:
    management = section("cloud", "management")
    management["ocpus"] = 2
    usage = preview({"management": management}).outputs["always_free_usage"].value
    assert not usage["within_quota"]
    assert usage["problems"] == ["A1 OCPUs: 3 used, 2 free"]


def test_nothing_admits_the_world(cloud: Recording) -> None:
    for record in cloud.resources:
        if record.type in ("oci:Core/securityList:SecurityList", "oci:Core/defaultSecurityList:DefaultSecurityList"):
            assert not [r for r in record.inputs.get("ingressSecurityRules", []) if r["source"] in WORLD]
        if record.type.endswith("networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule"):
            assert not (record.inputs["direction"] == "INGRESS" and record.inputs["source"] in WORLD)
        if record.type == "kubernetes:core/v1:Service":
            assert record.inputs.get("spec", {}).get("type", "ClusterIP") == "ClusterIP"


def test_default_security_list_is_managed(cloud: Recording) -> None:
    (default,) = cloud.by_type("oci:Core/defaultSecurityList:DefaultSecurityList")
    assert default.inputs["manageDefaultResourceId"].startswith("ocid1.securitylist.")


def test_instances_are_hardened(cloud: Recording) -> None:
    for instance in cloud.by_type("oci:Core/instance:Instance"):
        assert instance.inputs["instanceOptions"]["areLegacyImdsEndpointsDisabled"] is True
        assert instance.inputs["isPvEncryptionInTransitEnabled"] is True
        assert instance.inputs["shape"] == "VM.Standard.A1.Flex"


def test_every_address_in_the_node_subnet_is_pinned(cloud: Recording) -> None:
    (node_subnet,) = (s for s in cloud.by_type("oci:Core/subnet:Subnet") if s.inputs["cidrBlock"] == "10.20.1.0/24")
    pinned = {
        "oci:Core/instance:Instance": lambda r: r.inputs["createVnicDetails"].get("privateIp"),
        "oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer": lambda r: r.inputs.get(
            "assignedPrivateIpv4"
        ),
    }
    users = []
    for record in cloud.resources:
        in_subnet = node_subnet.id in (
            record.inputs.get("subnetId"),
            record.inputs.get("targetSubnetId"),
            (record.inputs.get("createVnicDetails") or {}).get("subnetId"),
        )
        if in_subnet:
            users.append(record.name)
            # Anything OCI would give an address of its choosing (the Bastion) lives elsewhere.
            assert record.type in pinned, record.name
            assert pinned[record.type](record), record.name
    assert len(users) == 3  # the management VM, the node, the API load balancer
    bastion = cloud.by_type("oci:Bastion/bastion:Bastion")[0]
    assert bastion.inputs["targetSubnetId"] != node_subnet.id


def test_boot_volumes_are_kept_exactly_where_they_hold_data(cloud: Recording) -> None:
    kept = {i.name: (i.protect, i.inputs["preserveBootVolume"]) for i in cloud.by_type("oci:Core/instance:Instance")}
    assert kept == {"cloud-cloud-1-instance": (True, True), "oci-mgmt-node-instance": (False, False)}


def test_tunnels_split_the_catalog_by_location(cloud: Recording) -> None:
    prod = cloud.get(CONFIG, "prod-config").inputs["config"]["ingresses"]
    hosts = {i.get("hostname") for i in prod}
    assert {"grafana.example.net", "books.example.net"} <= hosts
    assert "auth.example.net" not in hosts
    cloud_rules = cloud.get(CONFIG, "cloud-config").inputs["config"]["ingresses"]
    nextcloud = next(i for i in cloud_rules if i.get("hostname") == "cloud.example.net")
    # The cloud connector reaches CLOUD cluster services through the cluster Gateway, by Host.
    assert nextcloud["service"] == "http://10.20.1.20:80"
    assert nextcloud["originRequest"]["httpHostHeader"] == "cloud.example.net"
    for rules in (prod, cloud_rules):
        assert rules[-1] == {"service": "http_status:404"}


def test_adding_a_catalog_service_adds_one_rule_one_record_and_one_access_app(
    cloud: Recording, cloud_with_uptime: Recording
) -> None:
    before = cloud.get(CONFIG, "prod-config").inputs["config"]["ingresses"]
    after = cloud_with_uptime.get(CONFIG, "prod-config").inputs["config"]["ingresses"]
    assert len(after) == len(before) + 1
    assert next(i for i in after if i not in before)["hostname"] == "uptime.example.net"
    assert after[-1] == {"service": "http_status:404"}
    assert len(cloud_with_uptime.by_type(DNS)) == len(cloud.by_type(DNS)) + 1
    assert len(cloud_with_uptime.by_type(APP)) == len(cloud.by_type(APP)) + 1
    assert cloud.get(CONFIG, "cloud-config").inputs == cloud_with_uptime.get(CONFIG, "cloud-config").inputs


def test_dns_records_only_point_at_tunnels(cloud: Recording) -> None:
    for record in cloud.by_type(DNS):
        assert record.inputs["type"] == "CNAME"
        assert record.inputs["content"].endswith(".cfargotunnel.com")
        assert record.inputs["proxied"] is True


def test_every_admin_hostname_has_access_with_mfa(cloud: Recording) -> None:
    # The collectors' machine routes have their own applications (tests/stacks/test_cloud_telemetry.py).
    domains = {a.inputs["domain"] for a in cloud.by_type(APP) if not a.inputs["domain"].startswith("telemetry.")}
    assert domains == {
        "auth.example.net/if/admin",
        "auth.example.net/api/v3/admin",
        "omni.example.net",
        "argocd.example.net",
        "grafana.example.net",
        "prometheus.example.net",
        "alerts.example.net",
        "ntfy.example.net",
    }


def test_management_vm_receives_the_cloud_tunnel_token_secretly(cloud: Recording) -> None:
    install = cloud.get("command:remote:Command", "oci-mgmt-secrets")
    assert install.is_secret("stdin")
    lines = dict(line.split(" ", 1) for line in install.inputs["stdin"].strip().splitlines())
    assert base64.b64decode(lines["tunnel_token"]).decode() == cloud.outputs["tunnel_token_cloud"].value
    copy_ = cloud.get("command:remote:CopyToRemote", "oci-mgmt-compose-file")
    rendered = json.dumps(copy_.inputs["source"])
    for value in lines.values():
        if value:  # smtp_password is empty without a relay login: nothing to leak
            assert base64.b64decode(value).decode() not in rendered


def _broken(name: str, change: Mapping[str, Any]) -> dict[str, Any]:
    value = copy.deepcopy(section("cloud", name))
    value.update(change)
    return {name: value}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            _broken("network", {"admin_cidrs": ["0.0.0.0/0"]}),
            "homelab:network.admin_cidrs: 0.0.0.0/0 admits far more than an administrator's network",
        ),
        (
            _broken("network", {"bastion_subnet_cidr": "10.20.1.240/28"}),
            "homelab:network.bastion_subnet_cidr: 10.20.1.240/28 overlaps subnet_cidr 10.20.1.0/24",
        ),
        (
            _broken("network", {"bastion_subnet_cidr": "10.30.0.0/28"}),
            "homelab:network.bastion_subnet_cidr: 10.30.0.0/28 is not inside vcn_cidr 10.20.0.0/16",
        ),
        (
            _broken("management", {"address": "10.30.0.5"}),
            "homelab:management.address: 10.30.0.5 is not a usable address of subnet 10.20.1.0/24",
        ),
        (
            _broken("management", {"memory": 4}),
            "homelab:management.memory: unknown key",
        ),
        (
            _broken("catalog", {"services": {"grafana": {"tier": "public"}}}),
            "homelab:catalog.services.grafana.tier: admin services are never public",
        ),
        (
            _broken("catalog", {"services": {"grafana": {"hostname": "grafana.elsewhere.org"}}}),
            "homelab:catalog.services.grafana.hostname: 'grafana.elsewhere.org' is not under the catalog domain",
        ),
        (
            _broken("cluster", {"kubernetes_version": "1.35.0"}),
            "homelab:cluster.kubernetes_version: Kubernetes 1.35.0 is not supported by Talos v1.10.6",
        ),
        (
            # A cluster Service without a namespace: the Gateway could not route to it.
            _broken("catalog", {"services": {"glance": {"upstream": "http://glance.svc:8080"}}}),
            "homelab:catalog.services.glance.upstream: service 'glance': upstream",
        ),
    ],
)
def test_bad_config_is_one_clear_error_and_registers_nothing(overrides: dict[str, Any], message: str) -> None:
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        preview(overrides)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert seen == []


def test_admin_cidrs_at_the_width_limit() -> None:
    # /16 is the widest network an administrator may be admitted from; one bit wider is refused.
    stack_input = load_stack_input("cloud")

    def check(cidr: str) -> None:
        network = {**section("cloud", "network"), "admin_cidrs": [cidr]}
        config = {**stack_input.config, "homelab:network": json.dumps(network)}
        check_stack_config("cloud", config, stack_input.secret_keys)

    check("198.51.0.0/16")
    with pytest.raises(ConfigError, match=r"^homelab:network\.admin_cidrs: 198\.50\.0\.0/15 admits far more"):
        check("198.50.0.0/15")


NLB = "oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer"
APPLY = "talos:machine/configurationApply:ConfigurationApply"


def test_talos_and_kubernetes_apis_are_reached_through_the_load_balancer(cloud: Recording) -> None:
    address = cloud.outputs["talos_api_endpoint"].value
    # The reserved public IP (whatever OCI assigns), never an address of the VCN.
    assert ipaddress.ip_address(address) not in ipaddress.ip_network("10.20.0.0/16")
    assert address != cloud.outputs["cloud_node_public_ips"].value["cloud-1"]
    assert cloud.outputs["kubernetes_endpoint"].value == f"https://{address}:6443"
    apply = cloud.get(APPLY, "cloud-cloud-1-config")
    assert (apply.inputs["endpoint"], apply.inputs["node"]) == (address, "10.20.1.20")
    bootstrap = cloud.get("talos:machine/bootstrap:Bootstrap", "cloud-bootstrap")
    assert (bootstrap.inputs["endpoint"], bootstrap.inputs["node"]) == (address, "10.20.1.20")
    # Talos calls wait for the listeners; the machine configuration only needs the address.
    listeners = {r.urn for r in cloud.by_type("oci:NetworkLoadBalancer/listener:Listener")}
    assert len(listeners) == 2
    assert listeners <= set(apply.property_dependencies["endpoint"])


def test_the_first_machine_configuration_names_the_public_endpoint(cloud: Recording) -> None:
    address = cloud.outputs["talos_api_endpoint"].value
    instance = cloud.get("oci:Core/instance:Instance", "cloud-cloud-1-instance")
    rendered = base64.b64decode(instance.inputs["metadata"]["user_data"]).decode()
    document = json.loads(rendered.split("\n", 1)[1])
    assert document["cluster"]["controlPlane"]["endpoint"] == f"https://{address}:6443"
    patches = [json.loads(p) for p in document["patches"]]
    assert {"machine": {"certSANs": [address]}, "cluster": {"apiServer": {"certSANs": [address]}}} in patches


def test_load_balancer_exists_before_and_without_the_nodes(cloud: Recording) -> None:
    """No cycle: the endpoint's resources depend on nothing the nodes create."""
    component = cloud.get("homelab:oci:TalosApiEndpoint", "cloud-api")
    endpoint_urns = {r.urn for r in cloud.children_of(component)}
    node_side = {
        r.urn
        for r in cloud.resources
        if r.type in ("oci:Core/instance:Instance", "homelab:talos:TalosCluster", "homelab:oci:AlwaysFreeNode")
    }
    for record in cloud.children_of(component):
        upstream = set(record.dependencies)
        for urns in record.property_dependencies.values():
            upstream |= set(urns)
        assert not upstream & node_side, record.name
    backends = {
        b["ipAddress"]
        for r in cloud.by_type(
            "oci:NetworkLoadBalancer/networkLoadBalancersBackendSetsUnified:NetworkLoadBalancersBackendSetsUnified"
        )
        for b in r.inputs["backends"]
    }
    assert backends == {"10.20.1.20"}
    assert endpoint_urns


def test_load_balancer_is_public_only_to_admins(cloud: Recording) -> None:
    (nlb,) = cloud.by_type(NLB)
    assert nlb.inputs["isPrivate"] is False
    assert nlb.inputs["assignedPrivateIpv4"] == "10.20.1.5"
    (nsg_id,) = nlb.inputs["networkSecurityGroupIds"]
    ingress = [
        r.inputs
        for r in cloud.by_type("oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule")
        if r.inputs["networkSecurityGroupId"] == nsg_id and r.inputs["direction"] == "INGRESS"
    ]
    assert {r["source"] for r in ingress} == {"203.0.113.10/32"}


def test_the_load_balancer_counts_against_its_always_free_allowance(cloud: Recording) -> None:
    usage = cloud.outputs["always_free_usage"].value
    assert usage["network_load_balancers"] == {"used": 1, "quota": 1}
    assert len(cloud.by_type(NLB)) == 1
    quota = AlwaysFreeQuotaConfig()
    second = Layout(machines=(), network_load_balancers=2)
    assert problems(second, quota.limits()) == ["network load balancers: 2 used, 1 free"]
    assert fits(second, AlwaysFreeQuotaConfig(network_load_balancers=2).limits())


def test_load_balancer_address_colliding_with_a_node_is_one_clear_error() -> None:
    overrides = _broken("cluster", {"api_endpoint": {"private_address": "10.20.1.20"}})
    with count_registrations() as seen, pytest.raises(ConfigError) as caught:
        preview(overrides)
    assert str(caught.value).startswith(
        "homelab:cluster.api_endpoint.private_address: 10.20.1.20 is already used by cluster.nodes.cloud-1.address"
    )
    assert seen == []


ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"


def test_cloud_tunnel_and_cluster_gateway_agree_route_for_route(cloud: Recording) -> None:
    ingresses = cloud.get(CONFIG, "cloud-config").inputs["config"]["ingresses"]
    through_gateway = [i["hostname"] for i in ingresses if (i.get("originRequest") or {}).get("httpHostHeader")]
    # Proxy-gated apps reach the Gateway through Authentik's outpost, which resolves their hostname
    # to the Gateway (the Compose file's extra_hosts), never straight from the tunnel.
    through_outpost = [i["hostname"] for i in ingresses if i.get("service") == "http://authentik-server:9000"]
    outpost_hosts = cloud.get("command:remote:CopyToRemote", "oci-mgmt-compose-file").inputs["source"]
    for hostname in ("dav.example.net", "n8n.example.net"):
        assert hostname in through_outpost
        assert f"{hostname}:10.20.1.20" in json.dumps(outpost_hosts)
    routed = sorted(h for r in cloud.by_type(ROUTE) for h in r.inputs["spec"]["hostnames"])
    assert sorted([*through_gateway, "dav.example.net", "n8n.example.net"]) == routed
    assert len(routed) == 10
    gateway = cloud.get("homelab:k8s:CatalogGateway", "cloud")
    cilium_release = cloud.get("kubernetes:helm.sh/v3:Release", "cilium-release")
    assert cilium_release.urn in gateway.dependencies


def test_adding_a_cloud_service_adds_exactly_one_gateway_route(cloud: Recording) -> None:
    catalog = section("cloud", "catalog")
    catalog["services"] = {
        "paperless": {
            "location": "cloud",
            "tier": "sso",
            "hostname": "paperless",
            "upstream": "http://paperless.paperless.svc.cluster.local:8000",
            "groups": ["family"],
            "sso": "oidc",
            "redirect_uris": ["/accounts/oidc/authentik/login/callback/"],
        }
    }
    with_paperless = preview({"catalog": catalog})
    added = {r.name for r in with_paperless.by_type(ROUTE)} - {r.name for r in cloud.by_type(ROUTE)}
    assert added == {"cloud-route-paperless"}
    route = with_paperless.get(ROUTE, "cloud-route-paperless")
    assert route.inputs["spec"]["hostnames"] == ["paperless.example.net"]
    assert route.inputs["spec"]["rules"][0]["backendRefs"][0]["name"] == "paperless"
