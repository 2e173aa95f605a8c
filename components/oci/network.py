"""`AlwaysFreeNetwork`: one VCN with one regional subnet and no ingress from the internet.

Users never reach the VCN directly: they come through Cloudflare Tunnel, whose connectors dial out.
What the VCN admits from outside is therefore only what administrators need, from the admin CIDRs
in config: the Talos API (50000) and the Kubernetes API (6443) of the CLOUD nodes, and sessions of
the OCI Bastion service (which then reaches the management VM's SSH on its private address). The
Bastion's endpoint sits in a subnet of its own: every address of the node subnet is pinned by
config, and an address OCI picks (the Bastion's) could otherwise take one before its owner exists. The
VCN's default security list, which OCI creates open to SSH from anywhere, is taken over and emptied
of world ingress. The one conceivable exception, Omni's SideroLink WireGuard port, is off unless
the stack asks for it, and then it is a single, named NSG rule.
"""

import ipaddress
from collections.abc import Sequence
from typing import Literal, NotRequired, TypedDict

import pulumi
import pulumi_oci.bastion as oci_bastion
import pulumi_oci.core as oci_core

TALOS_API_PORT = 50000
KUBERNETES_API_PORT = 6443
SSH_PORT = 22
TCP = "6"
UDP = "17"
ICMP = "1"
ALL_PROTOCOLS = "all"
ANYWHERE = "0.0.0.0/0"
WIREGUARD_EXCEPTION = "EXCEPTION omni-siderolink-wireguard"
"""Description of the only world-ingress rule the project can create; policies exempt it by name."""


class AlwaysFreeNetworkArgs(TypedDict):
    compartment_id: pulumi.Input[str]
    vcn_cidr: str
    subnet_cidr: str
    dns_label: str
    admin_cidrs: Sequence[str]
    """Sources of the admin endpoints; never 0.0.0.0/0."""
    freeform_tags: dict[str, str]
    bastion_name: str
    """Name of the OCI Bastion (letters and digits only)."""
    bastion_subnet_cidr: str
    """A small subnet of its own for the Bastion's private endpoint, whose address OCI picks: kept
    out of `subnet_cidr`, where every address is pinned by config (nodes, management VM, load
    balancer), so nothing OCI allocates can take a pinned address before its owner exists."""
    omni_wireguard_port: NotRequired[int]
    """Open this UDP port to the world on the management VM (Omni SideroLink). Off when absent."""


def cidr_slug(cidr: str) -> str:
    """A CIDR as a resource-name segment (`10.0.0.0/8` -> `10-0-0-0-8`)."""
    return cidr.replace(".", "-").replace("/", "-")


def tcp_rule(
    name: str,
    nsg_id: pulumi.Input[str],
    *,
    direction: Literal["INGRESS", "EGRESS"],
    cidr: pulumi.Input[str],
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
) -> oci_core.NetworkSecurityGroupSecurityRule:
    """A stateful TCP rule for one port from (ingress) or to (egress) one CIDR: the only shape these
    NSGs need, so every rule reads the same and none can widen a port range by accident."""
    ingress = direction == "INGRESS"
    return oci_core.NetworkSecurityGroupSecurityRule(
        name,
        network_security_group_id=nsg_id,
        direction=direction,
        protocol=TCP,
        source=cidr if ingress else None,
        source_type="CIDR_BLOCK" if ingress else None,
        destination=None if ingress else cidr,
        destination_type=None if ingress else "CIDR_BLOCK",
        stateless=False,
        tcp_options={"destination_port_range": {"min": port, "max": port}},
        description=description,
        opts=opts,
    )


class AlwaysFreeNetwork(pulumi.ComponentResource):
    """VCN, internet gateway, route table, locked-down security lists, NSGs and the OCI Bastion."""

    vcn_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    talos_nsg_id: pulumi.Output[str]
    management_nsg_id: pulumi.Output[str]
    bastion_id: pulumi.Output[str]

    def __init__(self, name: str, args: AlwaysFreeNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:AlwaysFreeNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for cidr in args["admin_cidrs"]:
            if ipaddress.ip_network(cidr).prefixlen == 0:
                raise ValueError(f"AlwaysFreeNetwork {name!r}: admin CIDR {cidr} would admit the whole internet")
        compartment_id = args["compartment_id"]
        tags = args["freeform_tags"]
        vcn_cidr = args["vcn_cidr"]
        subnet_cidr = args["subnet_cidr"]

        vcn = oci_core.Vcn(
            f"{name}-vcn",
            compartment_id=compartment_id,
            cidr_blocks=[vcn_cidr],
            display_name=f"{name}-vcn",
            dns_label=args["dns_label"],
            freeform_tags=tags,
            opts=child,
        )
        gateway = oci_core.InternetGateway(
            f"{name}-igw",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            enabled=True,
            display_name=f"{name}-igw",
            freeform_tags=tags,
            opts=child,
        )
        routes = oci_core.RouteTable(
            f"{name}-routes",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            display_name=f"{name}-routes",
            route_rules=[
                {
                    "network_entity_id": gateway.id,
                    "destination": ANYWHERE,
                    "destination_type": "CIDR_BLOCK",
                    "description": "Egress to the internet (image pulls, tunnel connectors, updates)",
                }
            ],
            freeform_tags=tags,
            opts=child,
        )

        # OCI creates every VCN with a default list admitting SSH from 0.0.0.0/0; owning it is the
        # only way to be sure nothing attaches it with that rule.
        oci_core.DefaultSecurityList(
            f"{name}-default-security-list",
            manage_default_resource_id=vcn.default_security_list_id,
            compartment_id=compartment_id,
            display_name=f"{name}-default-locked",
            ingress_security_rules=[
                {
                    "protocol": ALL_PROTOCOLS,
                    "source": vcn_cidr,
                    "source_type": "CIDR_BLOCK",
                    "description": "Inside the VCN only",
                }
            ],
            egress_security_rules=[
                {"protocol": ALL_PROTOCOLS, "destination": ANYWHERE, "destination_type": "CIDR_BLOCK"}
            ],
            freeform_tags=tags,
            opts=child,
        )
        subnet_list = oci_core.SecurityList(
            f"{name}-security-list",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            display_name=f"{name}-subnet",
            ingress_security_rules=[
                {
                    "protocol": ALL_PROTOCOLS,
                    "source": subnet_cidr,
                    "source_type": "CIDR_BLOCK",
                    "description": "Between instances of the subnet (Omni to Talos, tunnel to Gateway, Bastion to SSH)",
                },
                {
                    "protocol": ICMP,
                    "source": vcn_cidr,
                    "source_type": "CIDR_BLOCK",
                    "icmp_options": {"type": 3, "code": 4},
                    "description": "Path MTU discovery inside the VCN",
                },
            ],
            egress_security_rules=[
                {
                    "protocol": ALL_PROTOCOLS,
                    "destination": ANYWHERE,
                    "destination_type": "CIDR_BLOCK",
                    "description": "Outbound connections (connectors dial out; nothing dials in)",
                }
            ],
            freeform_tags=tags,
            opts=child,
        )
        subnet = oci_core.Subnet(
            f"{name}-subnet",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            cidr_block=subnet_cidr,
            display_name=f"{name}-subnet",
            dns_label="nodes",
            route_table_id=routes.id,
            security_list_ids=[subnet_list.id],
            # Public addresses give egress without a NAT gateway; ingress stays limited to the rules above.
            prohibit_public_ip_on_vnic=False,
            freeform_tags=tags,
            opts=child,
        )

        talos_nsg = oci_core.NetworkSecurityGroup(
            f"{name}-talos-nsg",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            display_name=f"{name}-talos",
            freeform_tags=tags,
            opts=child,
        )
        for cidr in sorted(args["admin_cidrs"]):
            for port, what in ((TALOS_API_PORT, "talos-api"), (KUBERNETES_API_PORT, "kubernetes-api")):
                tcp_rule(
                    f"{name}-{what}-from-{cidr_slug(cidr)}",
                    talos_nsg.id,
                    direction="INGRESS",
                    cidr=cidr,
                    port=port,
                    description=f"{what} from admin network {cidr}",
                    opts=child,
                )

        management_nsg = oci_core.NetworkSecurityGroup(
            f"{name}-management-nsg",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            display_name=f"{name}-management",
            freeform_tags=tags,
            opts=child,
        )
        bastion_cidr = args["bastion_subnet_cidr"]
        if ipaddress.ip_network(bastion_cidr).overlaps(ipaddress.ip_network(subnet_cidr)):
            raise ValueError(f"AlwaysFreeNetwork {name!r}: bastion subnet {bastion_cidr} overlaps {subnet_cidr}")
        # The Bastion endpoint only ever opens SSH to the node subnet; nothing reaches it from outside
        # the Bastion service, and it has no route out of the VCN.
        bastion_list = oci_core.SecurityList(
            f"{name}-bastion-security-list",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            display_name=f"{name}-bastion",
            ingress_security_rules=[],
            egress_security_rules=[
                {
                    "protocol": TCP,
                    "destination": subnet_cidr,
                    "destination_type": "CIDR_BLOCK",
                    "tcp_options": {"min": SSH_PORT, "max": SSH_PORT},
                    "description": "Bastion sessions to SSH in the node subnet",
                }
            ],
            freeform_tags=tags,
            opts=child,
        )
        bastion_subnet = oci_core.Subnet(
            f"{name}-bastion-subnet",
            compartment_id=compartment_id,
            vcn_id=vcn.id,
            cidr_block=bastion_cidr,
            display_name=f"{name}-bastion",
            dns_label="bastion",
            security_list_ids=[bastion_list.id],
            prohibit_public_ip_on_vnic=True,
            prohibit_internet_ingress=True,
            freeform_tags=tags,
            opts=child,
        )
        bastion = oci_bastion.Bastion(
            f"{name}-bastion",
            bastion_type="STANDARD",
            compartment_id=compartment_id,
            target_subnet_id=bastion_subnet.id,
            name=args["bastion_name"],
            client_cidr_block_allow_lists=sorted(args["admin_cidrs"]),
            max_session_ttl_in_seconds=10800,
            freeform_tags=tags,
            opts=child,
        )
        tcp_rule(
            f"{name}-ssh-from-bastion",
            management_nsg.id,
            direction="INGRESS",
            cidr=bastion.private_endpoint_ip_address.apply(lambda ip: f"{ip}/32"),
            port=SSH_PORT,
            description="SSH from the OCI Bastion's private endpoint only",
            opts=child,
        )
        wireguard_port = args.get("omni_wireguard_port")
        if wireguard_port is not None:
            oci_core.NetworkSecurityGroupSecurityRule(
                f"{name}-omni-wireguard",
                network_security_group_id=management_nsg.id,
                direction="INGRESS",
                protocol=UDP,
                source=ANYWHERE,
                source_type="CIDR_BLOCK",
                stateless=False,
                udp_options={"destination_port_range": {"min": wireguard_port, "max": wireguard_port}},
                description=f"{WIREGUARD_EXCEPTION}: machines registering with Omni over SideroLink",
                opts=child,
            )

        self.vcn_id = vcn.id
        self.subnet_id = subnet.id
        self.talos_nsg_id = talos_nsg.id
        self.management_nsg_id = management_nsg.id
        self.bastion_id = bastion.id
        self.register_outputs(
            {
                "vcn_id": self.vcn_id,
                "subnet_id": self.subnet_id,
                "talos_nsg_id": self.talos_nsg_id,
                "management_nsg_id": self.management_nsg_id,
                "bastion_id": self.bastion_id,
            }
        )
