"""`AlwaysFreeNetwork`: nothing admits the world, the default security list is owned."""

from collections.abc import Callable

import pulumi
import pulumi_oci
import pytest

from components.oci.network import WIREGUARD_EXCEPTION, AlwaysFreeNetwork, AlwaysFreeNetworkArgs
from homelab.engine import Recording, run_program

WORLD = {"0.0.0.0/0", "::/0"}
SECURITY_LIST = "oci:Core/securityList:SecurityList"
DEFAULT_LIST = "oci:Core/defaultSecurityList:DefaultSecurityList"
NSG_RULE = "oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule"


def _program(**extra: int) -> None:
    provider = pulumi_oci.Provider("oci", region="eu-paris-1")
    args: AlwaysFreeNetworkArgs = {
        "compartment_id": "ocid1.compartment.oc1..aaaaaaaatest0000000000000000000",
        "vcn_cidr": "10.20.0.0/16",
        "subnet_cidr": "10.20.1.0/24",
        "bastion_subnet_cidr": "10.20.2.0/28",
        "dns_label": "homelab",
        "admin_cidrs": ["203.0.113.10/32", "198.51.100.0/29"],
        "freeform_tags": {"managed-by": "pulumi", "stack": "test", "role": "network"},
        "bastion_name": "homelabtest",
    }
    if extra:
        args["omni_wireguard_port"] = extra["wireguard"]
    AlwaysFreeNetwork("net", args, opts=pulumi.ResourceOptions(providers=[provider]))


def run(program: Callable[[], None]) -> Recording:
    return run_program(program, project="homelab", stack="test")


@pytest.fixture(scope="module")
def network() -> Recording:
    return run(_program)


def _ingress_sources(recording: Recording) -> list[tuple[str, str]]:
    found = []
    for kind in (SECURITY_LIST, DEFAULT_LIST):
        for record in recording.by_type(kind):
            found.extend((record.name, rule["source"]) for rule in record.inputs.get("ingressSecurityRules", []))
    found.extend(
        (r.name, r.inputs["source"]) for r in recording.by_type(NSG_RULE) if r.inputs["direction"] == "INGRESS"
    )
    return found


def test_children_are_parented_and_use_the_given_provider(network: Recording) -> None:
    component = network.get("homelab:oci:AlwaysFreeNetwork", "net")
    children = network.children_of(component)
    assert {c.type for c in children} >= {
        "oci:Core/vcn:Vcn",
        "oci:Core/internetGateway:InternetGateway",
        "oci:Core/routeTable:RouteTable",
        "oci:Core/subnet:Subnet",
        SECURITY_LIST,
        DEFAULT_LIST,
        "oci:Core/networkSecurityGroup:NetworkSecurityGroup",
        "oci:Bastion/bastion:Bastion",
    }
    assert all(c.provider and "::oci::" in c.provider for c in children)


def test_no_rule_admits_the_world(network: Recording) -> None:
    sources = _ingress_sources(network)
    assert sources
    assert not [s for s in sources if s[1] in WORLD]


def test_default_security_list_is_taken_over(network: Recording) -> None:
    (default,) = network.by_type(DEFAULT_LIST)
    vcn = network.get("oci:Core/vcn:Vcn", "net-vcn")
    assert default.inputs["manageDefaultResourceId"].startswith("ocid1.securitylist.")
    assert vcn.urn in default.dependencies or vcn.urn in default.property_dependencies["manageDefaultResourceId"]
    assert [r["source"] for r in default.inputs["ingressSecurityRules"]] == ["10.20.0.0/16"]


def test_admin_apis_open_only_to_admin_cidrs(network: Recording) -> None:
    rules = {r.name: r.inputs for r in network.by_type(NSG_RULE)}
    api = {
        (r["source"], r["tcpOptions"]["destinationPortRange"]["min"]) for name, r in rules.items() if "api-from" in name
    }
    assert api == {(c, p) for c in ("203.0.113.10/32", "198.51.100.0/29") for p in (50000, 6443)}
    ssh = rules["net-ssh-from-bastion"]
    # The Bastion's private endpoint, whatever address OCI gives it (not the simulator's answer).
    bastion = network.get("oci:Bastion/bastion:Bastion", "net-bastion")
    rule = network.get(NSG_RULE, "net-ssh-from-bastion")
    assert bastion.urn in rule.property_dependencies["source"]
    assert ssh["source"].endswith("/32")
    assert ssh["tcpOptions"]["destinationPortRange"] == {"min": 22, "max": 22}


def test_bastion_admits_admin_cidrs_only(network: Recording) -> None:
    bastion = network.get("oci:Bastion/bastion:Bastion", "net-bastion")
    assert sorted(bastion.inputs["clientCidrBlockAllowLists"]) == ["198.51.100.0/29", "203.0.113.10/32"]
    assert bastion.inputs["bastionType"] == "STANDARD"


def test_subnet_uses_own_list_and_route_table(network: Recording) -> None:
    subnet = network.get("oci:Core/subnet:Subnet", "net-subnet")
    assert subnet.inputs["securityListIds"] == ["net-security-list-id"]
    assert subnet.inputs["routeTableId"] == "net-routes-id"


def test_wireguard_is_the_single_named_exception() -> None:
    opened = run(lambda: _program(wireguard=50180))
    world = [r for r in opened.by_type(NSG_RULE) if r.inputs["source"] in WORLD]
    assert len(world) == 1
    assert world[0].inputs["protocol"] == "17"
    assert world[0].inputs["description"].startswith(WIREGUARD_EXCEPTION)


def _world_admin() -> None:
    AlwaysFreeNetwork(
        "bad",
        {
            "compartment_id": "c",
            "vcn_cidr": "10.0.0.0/16",
            "subnet_cidr": "10.0.1.0/24",
            "bastion_subnet_cidr": "10.0.2.0/28",
            "dns_label": "x",
            "admin_cidrs": ["0.0.0.0/0"],
            "freeform_tags": {},
            "bastion_name": "x",
        },
    )


def test_world_admin_cidr_is_refused() -> None:
    with pytest.raises(ValueError, match="whole internet"):
        run(_world_admin)


def test_the_bastion_endpoint_lives_outside_the_pinned_node_subnet(network: Recording) -> None:
    subnets = {s.name: s for s in network.by_type("oci:Core/subnet:Subnet")}
    assert subnets["net-subnet"].inputs["cidrBlock"] == "10.20.1.0/24"
    bastion_subnet = subnets["net-bastion-subnet"]
    assert bastion_subnet.inputs["cidrBlock"] == "10.20.2.0/28"
    assert bastion_subnet.inputs["prohibitPublicIpOnVnic"] is True
    bastion = network.get("oci:Bastion/bastion:Bastion", "net-bastion")
    assert bastion.inputs["targetSubnetId"] == bastion_subnet.id
    bastion_list = network.get(SECURITY_LIST, "net-bastion-security-list").inputs
    assert bastion_list["ingressSecurityRules"] == []
    assert [(r["destination"], r["tcpOptions"]) for r in bastion_list["egressSecurityRules"]] == [
        ("10.20.1.0/24", {"min": 22, "max": 22})
    ]


def _overlapping_bastion() -> None:
    AlwaysFreeNetwork(
        "bad",
        {
            "compartment_id": "c",
            "vcn_cidr": "10.0.0.0/16",
            "subnet_cidr": "10.0.1.0/24",
            "bastion_subnet_cidr": "10.0.1.240/28",
            "dns_label": "x",
            "admin_cidrs": ["203.0.113.10/32"],
            "freeform_tags": {},
            "bastion_name": "x",
        },
    )


def test_a_bastion_subnet_inside_the_node_subnet_is_refused() -> None:
    with pytest.raises(ValueError, match=r"overlaps 10\.0\.1\.0/24"):
        run(_overlapping_bastion)
