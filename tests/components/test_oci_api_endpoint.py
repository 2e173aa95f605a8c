"""`TalosApiEndpoint`: the CLOUD cluster's admin entry point, a network load balancer made before the nodes."""

from collections.abc import Callable
from typing import Any, cast

import pulumi
import pulumi_oci
import pytest

from components.oci.api_endpoint import TalosApiEndpoint, TalosApiEndpointArgs
from homelab.engine import Recording, run_program

WORLD = {"0.0.0.0/0", "::/0"}
ADMINS = ["203.0.113.10/32", "198.51.100.0/29"]
SUBNET = "10.20.1.0/24"
NODES = {"cloud-1": "10.20.1.20", "cloud-2": "10.20.1.21"}
NLB = "oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer"
BACKEND_SET = "oci:NetworkLoadBalancer/networkLoadBalancersBackendSetsUnified:NetworkLoadBalancersBackendSetsUnified"
LISTENER = "oci:NetworkLoadBalancer/listener:Listener"
PUBLIC_IP = "oci:Core/publicIp:PublicIp"
NSG_RULE = "oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule"


def _args(**changes: Any) -> TalosApiEndpointArgs:
    base: TalosApiEndpointArgs = {
        "compartment_id": "ocid1.compartment.oc1..aaaaaaaatest0000000000000000000",
        "vcn_id": "ocid1.vcn.oc1..aaaaaaaatest",
        "subnet_id": "ocid1.subnet.oc1..aaaaaaaatest",
        "subnet_cidr": SUBNET,
        "private_address": "10.20.1.5",
        "control_plane_addresses": NODES,
        "admin_cidrs": ADMINS,
        "backend_nsg_id": "ocid1.networksecuritygroup.oc1..talosnodes",
        "freeform_tags": {"managed-by": "pulumi", "stack": "test", "role": "talos-api-endpoint"},
    }
    return cast(TalosApiEndpointArgs, {**base, **changes})


def _program(**changes: Any) -> Callable[[], None]:
    def program() -> None:
        provider = pulumi_oci.Provider("oci", region="eu-paris-1")
        endpoint = TalosApiEndpoint("api", _args(**changes), opts=pulumi.ResourceOptions(providers=[provider]))
        pulumi.export("address", endpoint.address)
        pulumi.export("serving_address", endpoint.serving_address)

    return program


def run(program: Callable[[], None]) -> Recording:
    return run_program(program, project="homelab", stack="test")


@pytest.fixture(scope="module")
def endpoint() -> Recording:
    return run(_program())


def test_children_are_parented_and_use_the_given_provider(endpoint: Recording) -> None:
    component = endpoint.get("homelab:oci:TalosApiEndpoint", "api")
    children = endpoint.children_of(component)
    assert {c.type for c in children} == {
        NLB,
        BACKEND_SET,
        LISTENER,
        PUBLIC_IP,
        "oci:Core/networkSecurityGroup:NetworkSecurityGroup",
        NSG_RULE,
    }
    assert all(c.provider and "::oci::" in c.provider for c in children)


def test_public_load_balancer_holds_a_protected_reserved_ip_at_a_pinned_private_address(endpoint: Recording) -> None:
    nlb = endpoint.get(NLB, "api-nlb")
    public_ip = endpoint.get(PUBLIC_IP, "api-public-ip")
    assert nlb.inputs["isPrivate"] is False
    assert nlb.inputs["isPreserveSourceDestination"] is False
    assert nlb.inputs["assignedPrivateIpv4"] == "10.20.1.5"
    assert nlb.inputs["subnetId"] == "ocid1.subnet.oc1..aaaaaaaatest"
    assert nlb.inputs["reservedIps"] == [{"id": "api-public-ip-id"}]
    assert nlb.inputs["networkSecurityGroupIds"] == ["api-nsg-id"]
    assert public_ip.inputs["lifetime"] == "RESERVED"
    assert "privateIpId" not in public_ip.inputs  # the load balancer claims it, not a VNIC
    assert public_ip.protect
    assert "privateIpId" in public_ip.ignore_changes
    assert not nlb.protect  # replaceable: the address lives on in the reserved IP


def test_address_is_the_reserved_ip_and_serving_address_waits_for_every_listener(endpoint: Recording) -> None:
    address = endpoint.outputs["address"].value
    assert address.startswith("203.0.113.")
    assert endpoint.outputs["serving_address"].value == address
    assert not endpoint.outputs["address"].secret


def test_only_admin_cidrs_reach_the_load_balancer(endpoint: Recording) -> None:
    rules = [r.inputs for r in endpoint.by_type(NSG_RULE) if r.inputs["networkSecurityGroupId"] == "api-nsg-id"]
    ingress = {
        (r["source"], r["tcpOptions"]["destinationPortRange"]["min"]) for r in rules if r["direction"] == "INGRESS"
    }
    assert ingress == {(cidr, port) for cidr in ADMINS for port in (6443, 50000)}
    egress = {
        (r["destination"], r["tcpOptions"]["destinationPortRange"]["min"]) for r in rules if r["direction"] == "EGRESS"
    }
    assert egress == {(SUBNET, 6443), (SUBNET, 50000)}
    assert not [r for r in endpoint.by_type(NSG_RULE) if r.inputs.get("source") in WORLD]


def test_nodes_admit_the_forwarded_ports_from_the_subnet_only(endpoint: Recording) -> None:
    node_rules = [
        r.inputs
        for r in endpoint.by_type(NSG_RULE)
        if r.inputs["networkSecurityGroupId"] == "ocid1.networksecuritygroup.oc1..talosnodes"
    ]
    assert {(r["direction"], r["source"], r["tcpOptions"]["destinationPortRange"]["min"]) for r in node_rules} == {
        ("INGRESS", SUBNET, 6443),
        ("INGRESS", SUBNET, 50000),
    }


@pytest.mark.parametrize(("what", "port"), [("kubernetes-api", 6443), ("talos-api", 50000)])
def test_each_api_forwards_its_port_to_the_control_planes_by_ip(endpoint: Recording, what: str, port: int) -> None:
    backend_set = endpoint.get(BACKEND_SET, f"api-{what}")
    assert backend_set.inputs["name"] == what
    assert backend_set.inputs["isPreserveSource"] is False  # IP backends need full NAT
    assert backend_set.inputs["healthChecker"]["protocol"] == "TCP"
    assert backend_set.inputs["healthChecker"]["port"] == port
    assert sorted((b["ipAddress"], b["port"]) for b in backend_set.inputs["backends"]) == [
        ("10.20.1.20", port),
        ("10.20.1.21", port),
    ]
    assert not [b for b in backend_set.inputs["backends"] if "targetId" in b]
    listener = endpoint.get(LISTENER, f"api-{what}-listener")
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (port, "TCP")
    assert listener.inputs["defaultBackendSetName"] == what


def test_changes_to_the_load_balancer_are_serialised(endpoint: Recording) -> None:
    nlb = endpoint.get(NLB, "api-nlb")
    kubernetes = endpoint.get(BACKEND_SET, "api-kubernetes-api")
    kubernetes_listener = endpoint.get(LISTENER, "api-kubernetes-api-listener")
    talos = endpoint.get(BACKEND_SET, "api-talos-api")
    talos_listener = endpoint.get(LISTENER, "api-talos-api-listener")
    assert nlb.urn in kubernetes.dependencies
    assert kubernetes.urn in kubernetes_listener.dependencies
    assert kubernetes_listener.urn in talos.dependencies
    assert talos.urn in talos_listener.dependencies


def test_without_a_reserved_ip_the_address_is_the_load_balancers_own() -> None:
    ephemeral = run(_program(reserved_public_ip=False))
    assert not ephemeral.by_type(PUBLIC_IP)
    nlb = ephemeral.get(NLB, "api-nlb")
    assert "reservedIps" not in nlb.inputs
    address = ephemeral.outputs["address"].value
    assert address.startswith("203.0.113.")
    assert address != "10.20.1.5"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"admin_cidrs": ["0.0.0.0/0"]}, "would admit the whole internet"),
        ({"admin_cidrs": []}, "needs at least one admin CIDR"),
        ({"control_plane_addresses": {}}, "needs at least one control-plane address"),
        ({"private_address": "10.20.1.20"}, "is also the address of node 'cloud-1'"),
        ({"private_address": "10.30.0.5"}, "is not inside subnet 10.20.1.0/24"),
    ],
)
def test_unsafe_or_inconsistent_args_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(_program(**changes))
