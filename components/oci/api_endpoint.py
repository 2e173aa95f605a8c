"""`TalosApiEndpoint`: the CLOUD cluster's public admin entry point, an OCI Network Load Balancer.

The Talos nodes live on static private addresses; the machine running Pulumi (and talosctl,
kubectl) is at home. The endpoint must exist before the nodes, because its address is written
into their machine configuration (cluster endpoint, certificate SANs), which they receive as user
data at creation. A network load balancer gives exactly that: it is created first, forwards TCP
6443 (Kubernetes API) and 50000 (Talos API) to the nodes' configured private addresses (backends by
IP, so nothing here waits for an instance), and carries a reserved public IP that survives the
load balancer's own replacement.

Only the admin CIDRs reach it: its NSG admits them and nothing else. The backend sets translate
the source (full NAT): backends added by IP address cannot keep the client's source, so the nodes
see the load balancer's subnet address and admit the two ports from the subnet, never the world.
"""

import ipaddress
from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_oci.core as oci_core
import pulumi_oci.networkloadbalancer as oci_nlb

from components.oci.network import KUBERNETES_API_PORT, TALOS_API_PORT, cidr_slug, tcp_rule

FORWARDED_PORTS: Mapping[str, int] = {"kubernetes-api": KUBERNETES_API_PORT, "talos-api": TALOS_API_PORT}
"""Listener/backend-set name -> TCP port, forwarded unchanged to the control planes."""


class TalosApiEndpointArgs(TypedDict):
    compartment_id: pulumi.Input[str]
    vcn_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    """A public subnet (route to an internet gateway); the nodes' subnet."""
    subnet_cidr: str
    """CIDR of `subnet_id`: what the nodes see as the source of forwarded traffic and health checks."""
    private_address: str
    """The load balancer's own address in the subnet, pinned so OCI cannot hand it a node's address
    before that node exists."""
    control_plane_addresses: Mapping[str, str]
    """Private IPv4 of each control-plane node, keyed by node name (the backends)."""
    admin_cidrs: Sequence[str]
    """The only sources admitted to the load balancer; never 0.0.0.0/0."""
    backend_nsg_id: pulumi.Input[str]
    """The nodes' NSG: receives the rules admitting the forwarded ports from the subnet."""
    freeform_tags: dict[str, str]
    reserved_public_ip: NotRequired[bool]
    """Bind a reserved public IP (default): the address outlives the load balancer, so kubeconfig,
    talosconfig and the certificates stay valid if it is ever replaced. False takes the ephemeral
    address OCI assigns, which dies with the load balancer."""


def _validate(name: str, args: TalosApiEndpointArgs) -> None:
    if not args["control_plane_addresses"]:
        raise ValueError(f"TalosApiEndpoint {name!r} needs at least one control-plane address")
    if not args["admin_cidrs"]:
        raise ValueError(f"TalosApiEndpoint {name!r} needs at least one admin CIDR")
    for cidr in args["admin_cidrs"]:
        if ipaddress.ip_network(cidr).prefixlen == 0:
            raise ValueError(f"TalosApiEndpoint {name!r}: admin CIDR {cidr} would admit the whole internet")
    subnet = ipaddress.ip_network(args["subnet_cidr"])
    own = ipaddress.ip_address(args["private_address"])
    if own not in subnet:
        raise ValueError(f"TalosApiEndpoint {name!r}: {own} is not inside subnet {subnet}")
    for key, address in args["control_plane_addresses"].items():
        if ipaddress.ip_address(address) == own:
            raise ValueError(f"TalosApiEndpoint {name!r}: {own} is also the address of node {key!r}")


class TalosApiEndpoint(pulumi.ComponentResource):
    """A public network load balancer in front of the control planes' Talos and Kubernetes APIs."""

    address: pulumi.Output[str]
    """The public IPv4 admins (and Pulumi) reach the APIs at; the cluster endpoint host. Known as
    soon as the address exists, so machine configurations do not wait for the load balancer."""
    serving_address: pulumi.Output[str]
    """The same address, resolved only once every listener exists: what connects to the APIs
    (Talos apply, bootstrap, kubeconfig) reads this one."""
    network_load_balancer_id: pulumi.Output[str]
    nsg_id: pulumi.Output[str]

    def __init__(self, name: str, args: TalosApiEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:TalosApiEndpoint", name, None, opts)
        _validate(name, args)
        child = pulumi.ResourceOptions(parent=self)
        compartment_id = args["compartment_id"]
        tags = args["freeform_tags"]
        subnet_cidr = args["subnet_cidr"]
        reserved = args.get("reserved_public_ip", True)

        nsg = oci_core.NetworkSecurityGroup(
            f"{name}-nsg",
            compartment_id=compartment_id,
            vcn_id=args["vcn_id"],
            display_name=name,
            freeform_tags=tags,
            opts=child,
        )
        for what, port in FORWARDED_PORTS.items():
            for cidr in sorted(args["admin_cidrs"]):
                tcp_rule(
                    f"{name}-{what}-from-{cidr_slug(cidr)}",
                    nsg.id,
                    direction="INGRESS",
                    cidr=cidr,
                    port=port,
                    description=f"{what} from admin network {cidr}",
                    opts=child,
                )
            # An NSG without egress rules drops what the load balancer forwards and its health checks.
            tcp_rule(
                f"{name}-{what}-to-nodes",
                nsg.id,
                direction="EGRESS",
                cidr=subnet_cidr,
                port=port,
                description=f"{what} forwarded to the control planes",
                opts=child,
            )
            tcp_rule(
                f"{name}-{what}-via-load-balancer",
                args["backend_nsg_id"],
                direction="INGRESS",
                cidr=subnet_cidr,
                port=port,
                description=f"{what} forwarded by the API load balancer (full NAT: its subnet address)",
                opts=child,
            )

        reserved_ips: list[oci_nlb.NetworkLoadBalancerReservedIpArgsDict] = []
        public_ip: oci_core.PublicIp | None = None
        if reserved:
            public_ip = oci_core.PublicIp(
                f"{name}-public-ip",
                compartment_id=compartment_id,
                lifetime="RESERVED",
                display_name=name,
                freeform_tags=tags,
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        # The address is in every kubeconfig, talosconfig and certificate of the cluster.
                        protect=True,
                        # The load balancer takes the address over; OCI then records its private IP
                        # here, which must not read as drift to undo.
                        ignore_changes=["privateIpId"],
                    ),
                ),
            )
            reserved_ips.append({"id": public_ip.id})

        nlb = oci_nlb.NetworkLoadBalancer(
            f"{name}-nlb",
            compartment_id=compartment_id,
            display_name=name,
            subnet_id=args["subnet_id"],
            is_private=False,
            assigned_private_ipv4=args["private_address"],
            is_preserve_source_destination=False,
            network_security_group_ids=[nsg.id],
            nlb_ip_version="IPV4",
            reserved_ips=reserved_ips or None,
            freeform_tags=tags,
            opts=child,
        )

        # OCI refuses a second change to one load balancer while another is in progress ("Invalid
        # State Transition ... from Updating to Updating"), so backend sets and listeners are
        # created one after another.
        previous: pulumi.Resource = nlb
        listeners: list[oci_nlb.Listener] = []
        backends = sorted(args["control_plane_addresses"].items())
        for what, port in FORWARDED_PORTS.items():
            backend_set = oci_nlb.NetworkLoadBalancersBackendSetsUnified(
                f"{name}-{what}",
                name=what,
                network_load_balancer_id=nlb.id,
                policy="FIVE_TUPLE",
                ip_version="IPV4",
                # Backends by IP address (no instance dependency) require full NAT.
                is_preserve_source=False,
                is_fail_open=False,
                health_checker={
                    "protocol": "TCP",
                    "port": port,
                    "interval_in_millis": 10000,
                    "timeout_in_millis": 3000,
                    "retries": 3,
                },
                backends=[{"ip_address": address, "port": port, "weight": 1} for _, address in backends],
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[previous])),
            )
            listener = oci_nlb.Listener(
                f"{name}-{what}-listener",
                name=what,
                network_load_balancer_id=nlb.id,
                default_backend_set_name=backend_set.name,
                port=port,
                protocol="TCP",
                ip_version="IPV4",
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[backend_set])),
            )
            listeners.append(listener)
            previous = listener

        if public_ip is not None:
            self.address = public_ip.ip_address
        else:
            self.address = nlb.ip_addresses.apply(
                lambda addresses: next(a.ip_address for a in addresses if a.is_public and a.ip_address)
            )
        self.serving_address = pulumi.Output.all(self.address, *(listener.id for listener in listeners)).apply(
            lambda values: str(values[0])
        )
        self.network_load_balancer_id = nlb.id
        self.nsg_id = nsg.id
        self.register_outputs(
            {
                "address": self.address,
                "serving_address": self.serving_address,
                "network_load_balancer_id": self.network_load_balancer_id,
                "nsg_id": self.nsg_id,
            }
        )
