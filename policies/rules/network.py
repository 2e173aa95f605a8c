"""Network exposure: zero open ports, tunnel-only exposure (NFR-007).

Nothing at home is reachable from the Internet except through the Cloudflare tunnel; in Oracle
Cloud no security list or NSG admits the world, and the Talos/Kubernetes APIs answer only the
admin networks and the cluster's own private ranges.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules import registry as reg
from policies.rules.base import Rule, resource_rule, stack_rule
from policies.rules.walk import (
    containers,
    depends_on,
    get,
    is_false,
    is_private_address,
    is_true,
    is_world,
    items,
    k8s_name,
    mapping,
    namespace_of,
    network,
    number,
    of_type,
    pod_spec,
    within,
)

Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]
Config = Mapping[str, Any]

PROTOCOLS = {"6": "TCP", "17": "UDP", "1": "ICMP", "58": "ICMPv6", "all": "all protocols"}
PRIVATE_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def _port_range(options: Any, nested: str | None) -> tuple[int, int] | None:
    """The destination port range of a rule's tcp/udp options (None: every port)."""
    ports = get(options, nested) if nested else options
    low, high = get(ports, "min"), get(ports, "max")
    if low is None and high is None:
        return None
    return int(number(low, 1)), int(number(high, 65535))


def _describe(protocol: str, ports: tuple[int, int] | None) -> str:
    name = PROTOCOLS.get(protocol, f"protocol {protocol}")
    if protocol not in ("6", "17"):
        return name
    if ports is None:
        return f"{name} all ports"
    low, high = ports
    return f"{name} {low}" if low == high else f"{name} {low}-{high}"


def _ingress_rules(args: ResourceValidationArgs) -> list[tuple[str, str, str, tuple[int, int] | None]]:
    """(source, sourceType, protocol, tcp port range) of every ingress rule a resource declares."""
    found: list[tuple[str, str, str, tuple[int, int] | None]] = []
    if args.resource_type in reg.OCI_SECURITY_LIST_TYPES:
        for rule in items(get(args.props, "ingressSecurityRules")):
            protocol = str(get(rule, "protocol", "all"))
            options = get(rule, "tcpOptions") if protocol == "6" else get(rule, "udpOptions")
            ports = _port_range(options, None) if options is not None else None
            found.append((str(get(rule, "source", "")), str(get(rule, "sourceType", "CIDR_BLOCK")), protocol, ports))
    elif args.resource_type == reg.OCI_NSG_RULE and str(get(args.props, "direction", "")).upper() == "INGRESS":
        protocol = str(get(args.props, "protocol", "all"))
        options = get(args.props, "tcpOptions") if protocol == "6" else get(args.props, "udpOptions")
        ports = _port_range(options, "destinationPortRange") if options is not None else None
        found.append(
            (str(get(args.props, "source", "")), str(get(args.props, "sourceType", "CIDR_BLOCK")), protocol, ports)
        )
    return found


@resource_rule(
    id="NET-01",
    slug="oci-securitylist-disallow-public-ingress",
    nfr="NFR-007",
    topic="network",
    description="OCI security lists, the VCN's default list included, admit no ingress from 0.0.0.0/0 or ::/0 on "
    "any protocol or port (NFR-007: zero open ports; the tunnel is the only way in).",
    fix="remove the rule or narrow its `source` to an admin CIDR or the VCN's private range; reach services "
    "through the Cloudflare tunnel instead.",
    severity=Severity.CRITICAL,
)
def security_list_no_world_ingress(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type not in reg.OCI_SECURITY_LIST_TYPES:
        return
    for source, source_type, protocol, ports in _ingress_rules(args):
        if source_type == "CIDR_BLOCK" and is_world(source):
            report(f"security list '{args.name}' admits ingress from {source} ({_describe(protocol, ports)}).")


@resource_rule(
    id="NET-02",
    slug="oci-nsgrule-disallow-public-ingress",
    nfr="NFR-007",
    topic="network",
    description="OCI network security group rules admit no ingress from 0.0.0.0/0 or ::/0 (NFR-007: zero open ports).",
    fix="delete the rule or set `source` to an admin CIDR, the VCN's private range or another NSG.",
    severity=Severity.CRITICAL,
)
def nsg_rule_no_world_ingress(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.OCI_NSG_RULE:
        return
    for source, source_type, protocol, ports in _ingress_rules(args):
        if source_type == "CIDR_BLOCK" and is_world(source):
            report(f"NSG rule '{args.name}' admits ingress from {source} ({_describe(protocol, ports)}).")


def _covers(protocol: str, ports: tuple[int, int] | None, port: int) -> bool:
    if protocol == "all":
        return True
    if protocol != "6":
        return False
    return ports is None or ports[0] <= port <= ports[1]


@resource_rule(
    id="NET-09",
    slug="oci-securitylist-enforce-admin-port-sources",
    nfr="NFR-007",
    topic="network",
    description="The Talos API (50000/50001) and the Kubernetes API (6443) on OCI answer only the admin CIDRs "
    "and the private ranges the cluster itself uses (NFR-007: administrative APIs are never public).",
    fix="set the rule's `source` to one of the admin CIDRs listed in the policy config (`adminCidrs`) or to "
    "the VCN's private range; administer from there or through the tunnel.",
    severity=Severity.CRITICAL,
    config={
        "adminCidrs": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Public CIDRs an administrator connects from (e.g. the home WAN /32).",
        },
        "internalCidrs": {
            "type": "array",
            "items": {"type": "string"},
            "default": PRIVATE_CIDRS,
            "description": "Private ranges of the VCN and the clusters (node-to-node traffic).",
        },
        "adminPorts": {
            "type": "array",
            "items": {"type": "integer"},
            "default": [6443, 50000, 50001],
            "description": "TCP ports of administrative APIs.",
        },
    },
)
def admin_ports_from_admin_cidrs(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    allowed = [*config["adminCidrs"], *config["internalCidrs"]]
    for source, source_type, protocol, ports in _ingress_rules(args):
        if source_type != "CIDR_BLOCK" or within(source, allowed):
            continue
        exposed = [p for p in config["adminPorts"] if _covers(protocol, ports, int(p))]
        if exposed:
            listed = ", ".join(str(p) for p in exposed)
            origin = source or "(no source)"
            report(f"'{args.name}' admits admin port(s) {listed} from {origin}, which is not an admin CIDR.")


@resource_rule(
    id="NET-03",
    slug="oci-instance-disallow-public-ip",
    nfr="NFR-007",
    topic="network",
    description="OCI instances carry no public IP, and no reserved public IP or public network load balancer "
    "exists (NFR-007: a public address is one security-list mistake away from an open port).",
    fix='set `createVnicDetails.assignPublicIp` to "false" and reach the instance through the tunnel; if a '
    "public IP is deliberate (e.g. egress without a NAT gateway), add an exemption with the reason.",
    level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
)
def instance_without_public_ip(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type == reg.OCI_INSTANCE:
        assign = get(args.props, "createVnicDetails.assignPublicIp")
        if not is_false(assign):
            shown = "unset (the subnet decides)" if assign is None else f"{assign}"
            report(f"instance '{args.name}' gets a public IP (createVnicDetails.assignPublicIp is {shown}).")
    elif args.resource_type == reg.OCI_PUBLIC_IP:
        report(f"public IP '{args.name}' ({get(args.props, 'lifetime', 'EPHEMERAL')}) exposes an address.")
    elif args.resource_type == reg.OCI_NLB and not is_true(get(args.props, "isPrivate")):
        report(f"network load balancer '{args.name}' is public.")


@resource_rule(
    id="NET-04",
    slug="kubernetes-service-disallow-external-exposure",
    nfr="NFR-007",
    topic="network",
    description="Kubernetes Services are ClusterIP: no LoadBalancer or NodePort and no externalIPs, unless "
    "allowlisted with private-only source ranges (NFR-007: services are reached through the tunnel).",
    fix="make the Service `type: ClusterIP` and publish it through a tunnel ingress; for a LAN-only "
    "LoadBalancer, allowlist `namespace/name` in `allowedServices` and set private `loadBalancerSourceRanges`.",
    config={
        "allowedServices": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "`namespace/name` of Services allowed to be LoadBalancer/NodePort on the LAN.",
        }
    },
)
def service_not_exposed(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.K8S_SERVICE:
        return
    name = f"{namespace_of(args.props)}/{k8s_name(args.props, args.name)}"
    kind = get(args.props, "spec.type", "ClusterIP")
    if kind in ("LoadBalancer", "NodePort"):
        ranges = [str(r) for r in items(get(args.props, "spec.loadBalancerSourceRanges"))]
        private_only = bool(ranges) and all(is_private_address(r) for r in ranges)
        if name not in config["allowedServices"]:
            report(f"Service {name} is of type {kind}.")
        elif kind == "NodePort" or not private_only:
            report(f"Service {name} is allowlisted but not limited to private loadBalancerSourceRanges.")
    external = [str(ip) for ip in items(get(args.props, "spec.externalIPs"))]
    if external:
        report(f"Service {name} binds externalIPs {', '.join(external)}.")


@resource_rule(
    id="NET-05",
    slug="kubernetes-pod-disallow-host-network-and-ports",
    nfr="NFR-007",
    topic="network",
    description="Pods outside the system namespaces use neither the host network nor host ports (NFR-007: no "
    "port opens on a node behind the operator's back).",
    fix="remove `hostNetwork: true` and `hostPort` and expose the workload through a ClusterIP Service and the tunnel.",
    config={
        "systemNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["kube-system"],
            "description": "Namespaces whose node agents (CNI, CSI) need the host network.",
        }
    },
)
def pods_without_host_network(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None or namespace_of(args.props) in config["systemNamespaces"]:
        return
    if is_true(get(spec, "hostNetwork")):
        report(f"'{args.name}' runs its pods on the host network.")
    for container in containers(spec):
        for port in items(get(container, "ports")):
            host_port = get(port, "hostPort")
            if host_port is not None:
                who = f"'{args.name}' container '{get(container, 'name', '?')}'"
                report(f"{who} binds hostPort {int(number(host_port))}.")


def _origin_host(service: str) -> tuple[str, str]:
    """(scheme, host) of a tunnel ingress `service` URL."""
    scheme, _, rest = service.partition("://")
    host = rest.split("/", 1)[0]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return scheme.lower(), host.lower()


def _internal_origin(host: str, suffixes: Sequence[str]) -> bool:
    if network(host) is not None:
        return is_private_address(host)
    # A single-label name (a Compose service, a Service in the connector's namespace) only resolves
    # inside the connector's own network.
    return "." not in host or any(host == s.lstrip(".") or host.endswith(s) for s in suffixes)


@resource_rule(
    id="NET-06",
    slug="cloudflare-tunnel-enforce-ingress-hygiene",
    nfr="NFR-007",
    topic="network",
    description="Tunnel ingress routes named hostnames to internal origins only and ends in a `http_status:404` "
    "catch-all; raw TCP/SSH/RDP origins require Access (NFR-007: the tunnel exposes exactly the catalog).",
    fix="give every rule a hostname, point `service` at an http(s) origin inside the cluster, the Compose "
    "network or the LAN, end "
    'the list with `{service: "http_status:404"}`, and set `originRequest.access.required` for tcp/ssh/rdp.',
    config={
        "originHostSuffixes": {
            "type": "array",
            "items": {"type": "string"},
            "default": [".svc", ".svc.cluster.local", ".cluster.local", ".home.arpa"],
            "description": "DNS suffixes of internal origins (private IPs are always internal).",
        }
    },
)
def tunnel_ingress_hygiene(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.CF_TUNNEL_CONFIG:
        return
    rules = items(get(args.props, "config.ingresses"))
    if not rules:
        report(f"tunnel config '{args.name}' has no ingress rules (no catch-all).")
        return
    last = mapping(rules[-1])
    if get(last, "hostname") or get(last, "path") or get(last, "service") != "http_status:404":
        report(f"tunnel config '{args.name}' does not end with a hostname-less `http_status:404` catch-all.")
    for entry in rules[:-1]:
        rule = mapping(entry)
        hostname = get(rule, "hostname")
        service = str(get(rule, "service", ""))
        if not hostname:
            report(f"tunnel config '{args.name}' routes every hostname to {service} before the catch-all.")
            continue
        if service.startswith("http_status:"):
            continue
        scheme, host = _origin_host(service)
        if scheme in ("tcp", "ssh", "rdp", "unix", "unix+tls"):
            if not is_true(get(rule, "originRequest.access.required")):
                report(f"tunnel ingress {hostname} forwards raw {scheme}:// without Access (access.required).")
        elif scheme not in ("http", "https"):
            report(f"tunnel ingress {hostname} uses unsupported origin {service}.")
        elif not _internal_origin(host, config["originHostSuffixes"]):
            report(f"tunnel ingress {hostname} points at {host}, which is not an internal origin.")


@resource_rule(
    id="NET-11",
    slug="cloudflare-tunnel-enforce-remote-management",
    nfr="NFR-007",
    topic="network",
    description="Tunnels are remotely managed (`configSrc: cloudflare`), so their ingress is the reviewed "
    "config in this repository and not a file on a connector (NFR-007: tunnel-only exposure is auditable).",
    fix='set `config_src="cloudflare"` on the tunnel and manage its ingress with ZeroTrustTunnelCloudflaredConfig.',
)
def tunnel_remotely_managed(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type == reg.CF_TUNNEL and get(args.props, "configSrc") != "cloudflare":
        report(f"tunnel '{args.name}' is locally managed (configSrc is {get(args.props, 'configSrc', 'unset')}).")


@resource_rule(
    id="NET-07",
    slug="cloudflare-dns-enforce-tunnel-only-records",
    nfr="NFR-007",
    topic="network",
    description="DNS records are proxied CNAMEs to `<tunnel>.cfargotunnel.com`; no A/AAAA record publishes a "
    "home or cloud address (NFR-007: external access 100% via the tunnel, no origin IP leak).",
    fix="replace the record with a proxied CNAME to the tunnel (`<tunnel-id>.cfargotunnel.com`, `proxied=True`, "
    "`ttl=1`); records that expose no host (TXT, CAA) are listed in `allowedTypes`.",
    config={
        "allowedTypes": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["TXT", "CAA"],
            "description": "Record types that publish no address and are allowed as they are.",
        }
    },
)
def dns_only_tunnel_records(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type not in reg.CF_DNS_TYPES:
        return
    kind = str(get(args.props, "type", "")).upper()
    if kind in config["allowedTypes"]:
        return
    name = get(args.props, "name", args.name)
    content = str(get(args.props, "content", get(args.props, "value", "")))
    if kind != "CNAME":
        report(f"DNS record {name} is a {kind} record ({content}).")
        return
    if not content.rstrip(".").endswith(".cfargotunnel.com"):
        report(f"DNS record {name} is a CNAME to {content}, not to a tunnel.")
    if not is_true(get(args.props, "proxied")):
        report(f"DNS record {name} is not proxied through Cloudflare.")


@resource_rule(
    id="NET-08",
    slug="stack-disallow-port-forwarding",
    nfr="NFR-007",
    topic="network",
    description="No port-forward, inbound NAT or inbound load-balancer resource exists (NFR-007: zero open ports "
    "on the home router and in the cloud).",
    fix="delete the resource and publish the service through the Cloudflare tunnel.",
    severity=Severity.CRITICAL,
)
def no_port_forwarding(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    what = reg.PORT_FORWARD_TYPES.get(args.resource_type)
    if what is not None:
        report(f"'{args.name}' is a {what}.")


@stack_rule(
    id="NET-10",
    slug="oci-vcn-enforce-managed-default-security-list",
    nfr="NFR-007",
    topic="network",
    description="Every OCI VCN's default security list is taken over by a DefaultSecurityList, because OCI "
    "creates it allowing SSH from 0.0.0.0/0 (NFR-007: zero open ports, including the ones OCI opens).",
    fix="add `oci.core.DefaultSecurityList(manage_default_resource_id=vcn.default_security_list_id, ...)` with "
    "only the rules you need (an empty ingress list is fine).",
    severity=Severity.CRITICAL,
)
def default_security_list_managed(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    takeovers = of_type(args.resources, {reg.OCI_DEFAULT_SECURITY_LIST})
    for vcn in of_type(args.resources, {reg.OCI_VCN}):
        if any(depends_on(dsl, vcn, "manageDefaultResourceId") for dsl in takeovers):
            continue
        # Without a recorded dependency, fall back to the ids (unknown until the VCN exists).
        default_id = get(vcn.props, "defaultSecurityListId")
        if default_id is not None and any(get(d.props, "manageDefaultResourceId") == default_id for d in takeovers):
            continue
        report(f"VCN '{vcn.name}' keeps OCI's default security list unmanaged.", vcn.urn)


@resource_rule(
    id="NET-12",
    slug="oci-nlb-enforce-network-security-group",
    nfr="NFR-007",
    topic="network",
    description="A public OCI network load balancer is attached to a network security group: without source "
    "preservation its backends only see the balancer's private address, so the NSG on the balancer is the only "
    "filter between the Internet and the listeners (NFR-007: administrative APIs only from admin CIDRs).",
    fix="set `network_security_group_ids` on the network load balancer to an NSG whose ingress rules admit only "
    "the admin CIDRs (NET-09), or make it private (`is_private=True`).",
    severity=Severity.CRITICAL,
)
def public_nlb_filtered(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.OCI_NLB or is_true(get(args.props, "isPrivate")):
        return
    if not items(get(args.props, "networkSecurityGroupIds")):
        report(f"public network load balancer '{args.name}' has no network security group.")


RULES: tuple[Rule, ...] = (
    security_list_no_world_ingress,
    nsg_rule_no_world_ingress,
    admin_ports_from_admin_cidrs,
    instance_without_public_ip,
    service_not_exposed,
    pods_without_host_network,
    tunnel_ingress_hygiene,
    tunnel_remotely_managed,
    dns_only_tunnel_records,
    no_port_forwarding,
    default_security_list_managed,
    public_nlb_filtered,
)
