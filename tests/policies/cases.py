"""Pass / violate / unknown cases for every rule of the pack, with the exact messages they report.

Each case builds the arguments the analyzer would build; `expected` pins every violation message up
to the fix (the fix text itself is checked to be the rule's). The meta-test in `test_meta.py`
fails when a rule lacks any of the three kinds.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from tests.policies.helpers import UNKNOWN, Res, resource_args, stack_args

Kind = Literal["pass", "violate", "unknown"]


@dataclass(frozen=True)
class Case:
    rule: str
    kind: Kind
    label: str
    build: Callable[[], ResourceValidationArgs | StackValidationArgs]
    expected: Sequence[str] = ()
    """Violation messages, each without the ` Fix: ...` suffix, in report order."""
    cannot_run: bool = False
    """For unknown cases: the rule reads the unknown value and so cannot run at preview."""

    @property
    def id(self) -> str:
        return f"{self.rule}-{self.kind}-{self.label}"


CASES: list[Case] = []


def case(
    rule: str,
    kind: Kind,
    label: str,
    build: Callable[[], ResourceValidationArgs | StackValidationArgs],
    *expected: str,
    cannot_run: bool = False,
) -> None:
    CASES.append(Case(rule, kind, label, build, tuple(f"[{rule}] {e}" for e in expected), cannot_run))


R = resource_args
S = stack_args

# --- fixtures ----------------------------------------------------------------------------------

SL = "oci:Core/securityList:SecurityList"
DSL = "oci:Core/defaultSecurityList:DefaultSecurityList"
NSG_RULE = "oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule"
VCN = "oci:Core/vcn:Vcn"
INSTANCE = "oci:Core/instance:Instance"
PUBLIC_IP = "oci:Core/publicIp:PublicIp"
VOLUME = "oci:Core/volume:Volume"
BUCKET = "oci:ObjectStorage/bucket:Bucket"
TUNNEL = "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared"
TUNNEL_CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
ACCESS_APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
ACCESS_POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"
VM = "proxmoxve:index/vmLegacy:VmLegacy"
DOWNLOAD = "proxmoxve:download/file:File"
ZFS = "proxmoxve:node/disk/zfs:Zfs"
PBS = "proxmoxve:storage/pbs:Pbs"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
NAMESPACE = "kubernetes:core/v1:Namespace"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
TALOS_SECRETS = "talos:machine/secrets:Secrets"

TALOS_URL = "https://factory.talos.dev/image/" + "ab" * 32 + "/v1.10.6/nocloud-amd64.raw.zst"


def ingress(source: Any, protocol: str = "6", ports: tuple[Any, Any] | None = None, **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"protocol": protocol, "source": source, "sourceType": "CIDR_BLOCK", **extra}
    if ports is not None:
        rule["tcpOptions"] = {"min": ports[0], "max": ports[1]}
    return rule


def security_list(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"compartmentId": "ocid1.compartment", "vcnId": "ocid1.vcn", "ingressSecurityRules": list(rules)}


def nsg_rule(source: Any, direction: str = "INGRESS", protocol: str = "6", port: Any = 443) -> dict[str, Any]:
    return {
        "networkSecurityGroupId": "ocid1.nsg",
        "direction": direction,
        "protocol": protocol,
        "source": source,
        "sourceType": "CIDR_BLOCK",
        "tcpOptions": {"destinationPortRange": {"min": port, "max": port}},
    }


def instance(**props: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "availabilityDomain": "AD-1",
        "compartmentId": "ocid1.compartment",
        "shape": "VM.Standard.A1.Flex",
        "shapeConfig": {"ocpus": 1.0, "memoryInGbs": 6.0},
        "sourceDetails": {"sourceType": "image", "sourceId": "ocid1.image", "bootVolumeSizeInGbs": "50"},
        "createVnicDetails": {"subnetId": "ocid1.subnet", "assignPublicIp": "false"},
        "launchOptions": {"isPvEncryptionInTransitEnabled": True, "networkType": "PARAVIRTUALIZED"},
        "instanceOptions": {"areLegacyImdsEndpointsDisabled": True},
        "freeformTags": {"managed-by": "pulumi", "stack": "cloud"},
    }
    base.update(props)
    return base


def restricted_container(name: str = "web", **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": "ghcr.io/example/web:1.2.3",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }
    container.update(extra)
    return container


def deployment(*containers: dict[str, Any], namespace: str = "apps", **pod: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": list(containers) or [restricted_container()],
    }
    spec.update(pod)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": spec}},
    }


def vm(tags: Sequence[str], memory: Any = 4096, **props: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"nodeName": "pve", "tags": list(tags), "memory": {"dedicated": memory, "floating": 0}}
    base.update(props)
    return base


def tunnel_config(*ingresses: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"accountId": "acct", "tunnelId": "tid", "config": {"ingresses": list(ingresses), **top}}


CATCH_ALL = {"service": "http_status:404"}


def admin_ingress(hostname: str = "grafana.example.org", **access: Any) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "service": "http://grafana.monitoring.svc.cluster.local:80",
        "originRequest": {"access": {"required": True, "audTags": ["aud-grafana"], "teamName": "homelab", **access}},
    }


PUBLIC_INGRESS = {"hostname": "cloud.example.org", "service": "http://nextcloud.nextcloud.svc:8080"}


def access_app(name: str = "grafana", domain: str = "grafana.example.org", **props: Any) -> Res:
    base: dict[str, Any] = {
        "accountId": "acct",
        "name": name,
        "type": "self_hosted",
        "domain": domain,
        "destinations": [{"type": "public", "uri": domain}],
        "policies": [{"id": "pol-id", "precedence": 1}],
        "sessionDuration": "12h",
    }
    base.update(props)
    referenced = any("decision" not in p for p in base.get("policies") or [])
    return Res(ACCESS_APP, name, base, inputs_from={"policies": ["admins"]} if referenced else {})


def access_policy(requires: Any = None, decision: str = "allow") -> Res:
    props: dict[str, Any] = {
        "accountId": "acct",
        "name": "admins",
        "decision": decision,
        "includes": [{"group": {"id": "admins-group"}}],
    }
    if requires is not None:
        props["requires"] = requires
    return Res(ACCESS_POLICY, "admins", props)


MFA = [{"authMethod": {"authMethod": "mfa"}}]

# --- NET-01 ------------------------------------------------------------------------------------
case(
    "NET-01",
    "pass",
    "private-and-admin-sources",
    lambda: R(SL, security_list(ingress("10.0.0.0/16", ports=(6443, 6443)), ingress("203.0.113.7/32", "all"))),
)
case(
    "NET-01",
    "pass",
    "egress-only-default-list",
    lambda: R(DSL, {"manageDefaultResourceId": "ocid1.dsl", "ingressSecurityRules": []}),
)
case(
    "NET-01",
    "violate",
    "ssh-from-world",
    lambda: R(SL, security_list(ingress("0.0.0.0/0", ports=(22, 22)))),
    "security list 'subject' admits ingress from 0.0.0.0/0 (TCP 22).",
)
case(
    "NET-01",
    "violate",
    "default-list-ipv6-any-protocol",
    lambda: R(DSL, security_list(ingress("::/0", "all"), ingress("0.0.0.0/0", "17"))),
    "security list 'subject' admits ingress from ::/0 (all protocols).",
    "security list 'subject' admits ingress from 0.0.0.0/0 (UDP all ports).",
)
case("NET-01", "unknown", "source", lambda: R(SL, security_list(ingress(UNKNOWN, ports=(22, 22)))), cannot_run=True)

# --- NET-02 ------------------------------------------------------------------------------------
case("NET-02", "pass", "private-source", lambda: R(NSG_RULE, nsg_rule("10.0.0.0/16")))
case("NET-02", "pass", "egress-to-world", lambda: R(NSG_RULE, {**nsg_rule(None, "EGRESS"), "destination": "0.0.0.0/0"}))
case(
    "NET-02",
    "violate",
    "https-from-world",
    lambda: R(NSG_RULE, nsg_rule("0.0.0.0/0")),
    "NSG rule 'subject' admits ingress from 0.0.0.0/0 (TCP 443).",
)
case("NET-02", "unknown", "source", lambda: R(NSG_RULE, nsg_rule(UNKNOWN)), cannot_run=True)

# --- NET-03 ------------------------------------------------------------------------------------
NLB = "oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer"
NLB_PROPS = {"compartmentId": "c", "subnetId": "s", "isPrivate": False, "networkSecurityGroupIds": ["ocid1.nsg"]}
case("NET-03", "pass", "private-instance", lambda: R(INSTANCE, instance()))
case(
    "NET-03",
    "violate",
    "subnet-decides",
    lambda: R(INSTANCE, instance(createVnicDetails={"subnetId": "ocid1.subnet"})),
    "instance 'subject' gets a public IP (createVnicDetails.assignPublicIp is unset (the subnet decides)).",
)
case(
    "NET-03",
    "violate",
    "reserved-ip",
    lambda: R(PUBLIC_IP, {"compartmentId": "c", "lifetime": "RESERVED"}),
    "public IP 'subject' (RESERVED) exposes an address.",
)
case(
    "NET-03",
    "violate",
    "public-nlb",
    lambda: R(NLB, NLB_PROPS),
    "network load balancer 'subject' is public.",
)
case("NET-03", "pass", "private-nlb", lambda: R(NLB, {**NLB_PROPS, "isPrivate": True}))
case(
    "NET-03",
    "unknown",
    "assign-public-ip",
    lambda: R(INSTANCE, instance(createVnicDetails={"assignPublicIp": UNKNOWN})),
    cannot_run=True,
)


# --- NET-04 ------------------------------------------------------------------------------------
def service(kind: str | None = None, name: str = "web", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"port": 80}], **spec}
    if kind:
        body["type"] = kind
    return {"metadata": {"name": name, "namespace": "apps"}, "spec": body}


case("NET-04", "pass", "cluster-ip", lambda: R(SERVICE, service()))
case(
    "NET-04",
    "pass",
    "allowlisted-lan-balancer",
    lambda: R(
        SERVICE,
        service("LoadBalancer", loadBalancerSourceRanges=["192.168.68.0/24"]),
        config={"allowedServices": ["apps/web"]},
    ),
)
case(
    "NET-04",
    "violate",
    "load-balancer",
    lambda: R(SERVICE, service("LoadBalancer")),
    "Service apps/web is of type LoadBalancer.",
)
case(
    "NET-04",
    "violate",
    "node-port-and-external-ips",
    lambda: R(SERVICE, service("NodePort", externalIPs=["203.0.113.9"])),
    "Service apps/web is of type NodePort.",
    "Service apps/web binds externalIPs 203.0.113.9.",
)
case(
    "NET-04",
    "violate",
    "allowlisted-but-public-ranges",
    lambda: R(
        SERVICE,
        service("LoadBalancer", loadBalancerSourceRanges=["0.0.0.0/0"]),
        config={"allowedServices": ["apps/web"]},
    ),
    "Service apps/web is allowlisted but not limited to private loadBalancerSourceRanges.",
)
case("NET-04", "unknown", "type", lambda: R(SERVICE, service(UNKNOWN)), cannot_run=True)

# --- NET-05 ------------------------------------------------------------------------------------
case("NET-05", "pass", "plain-deployment", lambda: R(DEPLOYMENT, deployment()))
case(
    "NET-05",
    "pass",
    "system-agent",
    lambda: R(DAEMONSET, deployment(namespace="kube-system", hostNetwork=True)),
)
case(
    "NET-05",
    "violate",
    "host-network-and-port",
    lambda: R(
        DEPLOYMENT,
        deployment(restricted_container(ports=[{"containerPort": 8080, "hostPort": 8080.0}]), hostNetwork=True),
    ),
    "'subject' runs its pods on the host network.",
    "'subject' container 'web' binds hostPort 8080.",
)
case("NET-05", "unknown", "host-network", lambda: R(DEPLOYMENT, deployment(hostNetwork=UNKNOWN)), cannot_run=True)

# --- NET-06 ------------------------------------------------------------------------------------
case(
    "NET-06",
    "pass",
    "internal-origins-and-catch-all",
    lambda: R(
        TUNNEL_CONFIG,
        tunnel_config(
            admin_ingress(),
            PUBLIC_INGRESS,
            {"hostname": "pve.example.org", "service": "https://192.168.68.51:8006"},
            {"hostname": "auth.example.org", "service": "http://authentik-server:9000"},
            {
                "hostname": "ssh.example.org",
                "service": "ssh://192.168.68.51:22",
                "originRequest": {"access": {"required": True}},
            },
            CATCH_ALL,
        ),
    ),
)
case(
    "NET-06",
    "violate",
    "no-catch-all",
    lambda: R(TUNNEL_CONFIG, tunnel_config(admin_ingress())),
    "tunnel config 'subject' does not end with a hostname-less `http_status:404` catch-all.",
)
case(
    "NET-06",
    "violate",
    "leaky-rules",
    lambda: R(
        TUNNEL_CONFIG,
        tunnel_config(
            {"hostname": "blog.example.org", "service": "https://blog.example.com"},
            {"hostname": "db.example.org", "service": "tcp://10.0.0.5:5432"},
            {"hostname": "ftp.example.org", "service": "ftp://10.0.0.6"},
            {"service": "http://web.apps.svc:80"},
            CATCH_ALL,
        ),
    ),
    "tunnel ingress blog.example.org points at blog.example.com, which is not an internal origin.",
    "tunnel ingress db.example.org forwards raw tcp:// without Access (access.required).",
    "tunnel ingress ftp.example.org uses unsupported origin ftp://10.0.0.6.",
    "tunnel config 'subject' routes every hostname to http://web.apps.svc:80 before the catch-all.",
)
case(
    "NET-06",
    "violate",
    "empty",
    lambda: R(TUNNEL_CONFIG, tunnel_config()),
    "tunnel config 'subject' has no ingress rules (no catch-all).",
)
case(
    "NET-06",
    "unknown",
    "service",
    lambda: R(TUNNEL_CONFIG, tunnel_config({"hostname": "a.example.org", "service": UNKNOWN}, CATCH_ALL)),
    cannot_run=True,
)

# --- NET-07 ------------------------------------------------------------------------------------
CNAME = {
    "zoneId": "z",
    "name": "grafana",
    "type": "CNAME",
    "ttl": 1,
    "proxied": True,
    "content": "tid.cfargotunnel.com",
}
case("NET-07", "pass", "tunnel-cname", lambda: R(DNS, CNAME))
case("NET-07", "pass", "txt", lambda: R(DNS, {"zoneId": "z", "name": "_acme", "type": "TXT", "ttl": 1, "content": "x"}))
case(
    "NET-07",
    "violate",
    "a-record",
    lambda: R(DNS, {**CNAME, "type": "A", "content": "203.0.113.5"}),
    "DNS record grafana is a A record (203.0.113.5).",
)
case(
    "NET-07",
    "violate",
    "unproxied-foreign-cname",
    lambda: R(DNS, {**CNAME, "content": "home.dyndns.example", "proxied": False}),
    "DNS record grafana is a CNAME to home.dyndns.example, not to a tunnel.",
    "DNS record grafana is not proxied through Cloudflare.",
)
case("NET-07", "unknown", "content", lambda: R(DNS, {**CNAME, "content": UNKNOWN}), cannot_run=True)

# --- NET-08 ------------------------------------------------------------------------------------
case("NET-08", "pass", "dns-record", lambda: R(DNS, CNAME))
case(
    "NET-08",
    "violate",
    "unifi-forward",
    lambda: R("unifi:port/forward:Forward", {"dstPort": "443", "fwdIp": "192.168.68.72"}),
    "'subject' is a UniFi port forward.",
)
case(
    "NET-08",
    "violate",
    "routeros-nat",
    lambda: R("routeros:index/ipFirewallNat:IpFirewallNat", {"action": "dst-nat", "toPorts": "443"}),
    "'subject' is a MikroTik RouterOS NAT rule.",
)
case("NET-08", "unknown", "props", lambda: R(DNS, {"content": UNKNOWN, "type": UNKNOWN}))

# --- NET-09 ------------------------------------------------------------------------------------
ADMIN = {"adminCidrs": ["203.0.113.7/32"]}
case(
    "NET-09",
    "pass",
    "admin-and-private-sources",
    lambda: R(
        SL,
        security_list(
            ingress("203.0.113.7/32", ports=(50000, 50001)),
            ingress("10.0.1.0/24", "all"),
            ingress("198.51.100.0/24", ports=(443, 443)),
            ingress("198.51.100.0/24", "17"),
        ),
        config=ADMIN,
    ),
)
case(
    "NET-09",
    "violate",
    "kubernetes-api-from-a-public-range",
    lambda: R(SL, security_list(ingress("198.51.100.0/24", ports=(6443, 6443))), config=ADMIN),
    "'subject' admits admin port(s) 6443 from 198.51.100.0/24, which is not an admin CIDR.",
)
case(
    "NET-09",
    "violate",
    "nsg-all-protocols",
    lambda: R(NSG_RULE, nsg_rule("0.0.0.0/0", protocol="all")),
    "'subject' admits admin port(s) 6443, 50000, 50001 from 0.0.0.0/0, which is not an admin CIDR.",
)
case(
    "NET-09",
    "unknown",
    "port",
    lambda: R(SL, security_list(ingress("198.51.100.0/24", ports=(UNKNOWN, UNKNOWN)))),
    cannot_run=True,
)

# --- NET-10 ------------------------------------------------------------------------------------
VCN_PROPS = {"compartmentId": "c", "cidrBlocks": ["10.0.0.0/16"]}
case(
    "NET-10",
    "pass",
    "taken-over",
    lambda: S(
        [
            Res(VCN, "vcn", VCN_PROPS),
            Res(
                DSL,
                "vcn-default",
                {"manageDefaultResourceId": "ocid1.dsl"},
                inputs_from={"manageDefaultResourceId": ["vcn"]},
            ),
        ]
    ),
)
case(
    "NET-10",
    "violate",
    "default-list-left-alone",
    lambda: S([Res(VCN, "vcn", VCN_PROPS), Res(SL, "extra", security_list())]),
    "VCN 'vcn' keeps OCI's default security list unmanaged.",
)
case(
    "NET-10",
    "unknown",
    "ids",
    lambda: S(
        [
            Res(VCN, "vcn", {**VCN_PROPS, "defaultSecurityListId": UNKNOWN}),
            Res(DSL, "vcn-default", {"manageDefaultResourceId": UNKNOWN}),
        ]
    ),
    cannot_run=True,
)

# --- NET-11 ------------------------------------------------------------------------------------
case("NET-11", "pass", "remote", lambda: R(TUNNEL, {"accountId": "a", "name": "home", "configSrc": "cloudflare"}))
case(
    "NET-11",
    "violate",
    "local",
    lambda: R(TUNNEL, {"accountId": "a", "name": "home", "configSrc": "local"}),
    "tunnel 'subject' is locally managed (configSrc is local).",
)
case(
    "NET-11",
    "violate",
    "unset",
    lambda: R(TUNNEL, {"accountId": "a", "name": "home"}),
    "tunnel 'subject' is locally managed (configSrc is unset).",
)
case("NET-11", "unknown", "config-src", lambda: R(TUNNEL, {"configSrc": UNKNOWN}), cannot_run=True)

# --- SEC-01 ------------------------------------------------------------------------------------
case(
    "SEC-01",
    "pass",
    "verified",
    lambda: R(
        TUNNEL_CONFIG,
        tunnel_config(
            {
                "hostname": "pve.example.org",
                "service": "https://192.168.68.51:8006",
                "originRequest": {"caPool": "/etc/ca.pem"},
            },
            CATCH_ALL,
            originRequest={"noTlsVerify": False},
        ),
    ),
)
case(
    "SEC-01",
    "violate",
    "no-tls-verify",
    lambda: R(
        TUNNEL_CONFIG,
        tunnel_config(
            {
                "hostname": "pve.example.org",
                "service": "https://192.168.68.51:8006",
                "originRequest": {"noTlsVerify": True},
            },
            CATCH_ALL,
            originRequest={"noTlsVerify": "true"},
        ),
    ),
    "tunnel config 'subject' disables origin TLS verification for every rule.",
    "tunnel ingress pve.example.org disables origin TLS verification.",
)
case(
    "SEC-01",
    "unknown",
    "flag",
    lambda: R(
        TUNNEL_CONFIG,
        tunnel_config(
            {"hostname": "a.example.org", "service": "https://x.svc", "originRequest": {"noTlsVerify": UNKNOWN}}
        ),
    ),
    cannot_run=True,
)

# --- SEC-02 ------------------------------------------------------------------------------------
KUBECONFIG = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://192.168.68.71:6443\n"
case(
    "SEC-02",
    "pass",
    "proxmox-verifies",
    lambda: R("pulumi:providers:proxmoxve", {"endpoint": "https://pve:8006/", "insecure": "false"}),
)
case("SEC-02", "pass", "kubernetes-verifies", lambda: R("pulumi:providers:kubernetes", {"kubeconfig": KUBECONFIG}))
case(
    "SEC-02",
    "violate",
    "authentik-insecure",
    lambda: R("pulumi:providers:authentik", {"url": "https://auth.example.org", "insecure": "true"}),
    "provider 'subject' skips TLS verification (insecure=true).",
)
case(
    "SEC-02",
    "violate",
    "kubeconfig-skip-verify",
    lambda: R("pulumi:providers:kubernetes", {"kubeconfig": KUBECONFIG + "    insecure-skip-tls-verify: true\n"}),
    "provider 'subject' skips TLS verification (kubeconfig insecure-skip-tls-verify).",
)
case(
    "SEC-02",
    "unknown",
    "kubeconfig",
    lambda: R("pulumi:providers:kubernetes", {"kubeconfig": UNKNOWN}),
    cannot_run=True,
)

# --- SEC-03 ------------------------------------------------------------------------------------
PUBLIC = {"publicHostnames": ["cloud.example.org"]}


def access_stack(
    ingresses: Sequence[dict[str, Any]], *extra: Res, config: Mapping[str, Any] | None = None
) -> StackValidationArgs:
    return S([Res(TUNNEL_CONFIG, "tunnel-ingress", tunnel_config(*ingresses, CATCH_ALL)), *extra], config=config)


case(
    "SEC-03",
    "pass",
    "admin-behind-access-public-allowlisted",
    lambda: access_stack([admin_ingress(), PUBLIC_INGRESS], access_policy(MFA), access_app(), config=PUBLIC),
)
case(
    "SEC-03",
    "pass",
    "wildcard-application",
    lambda: access_stack(
        [admin_ingress("prometheus.example.org")], access_policy(MFA), access_app("admin", "*.example.org")
    ),
)
case(
    "SEC-03",
    "pass",
    "path-scoped-admin-on-public-host",
    lambda: access_stack(
        [
            {**admin_ingress("auth.example.org"), "path": "^/if/admin(/.*)?$"},
            {"hostname": "auth.example.org", "service": "http://authentik-server:9000"},
        ],
        access_policy(MFA),
        access_app("authentik-admin", "auth.example.org/if/admin"),
        config={"publicHostnames": ["auth.example.org"]},
    ),
)
case(
    "SEC-03",
    "violate",
    "path-scoped-admin-without-application",
    lambda: access_stack(
        [
            {**admin_ingress("auth.example.org"), "path": "^/if/admin(/.*)?$"},
            {"hostname": "auth.example.org", "service": "http://authentik-server:9000"},
        ],
        access_policy(MFA),
        access_app("authentik-flows", "auth.example.org/if/flow"),
        config={"publicHostnames": ["auth.example.org"]},
    ),
    "tunnel hostname auth.example.org^/if/admin(/.*)?$ has no Cloudflare Access application.",
)
case(
    "SEC-03",
    "violate",
    "no-application",
    lambda: access_stack([admin_ingress(), PUBLIC_INGRESS], config=PUBLIC),
    "tunnel hostname grafana.example.org has no Cloudflare Access application.",
)
case(
    "SEC-03",
    "violate",
    "public-service-not-allowlisted",
    lambda: access_stack([PUBLIC_INGRESS]),
    "tunnel hostname cloud.example.org has no Cloudflare Access application.",
)
case(
    "SEC-03",
    "violate",
    "application-without-policy-and-ingress-without-access",
    lambda: access_stack(
        [{"hostname": "grafana.example.org", "service": "http://grafana.monitoring.svc:80"}], access_app(policies=[])
    ),
    "Access application for grafana.example.org has no policy.",
    "tunnel ingress grafana.example.org does not require an Access token (access.required).",
)
MACHINE_ROUTE = "telemetry.example.org^/api/v1/write(/.*)?$"
MACHINES = {"serviceTokenHostnames": [MACHINE_ROUTE]}
TOKEN = [{"serviceToken": {"tokenId": "token-1"}}]


def machine_stack(
    includes: Sequence[Mapping[str, Any]], decision: str = "non_identity", config: Mapping[str, Any] | None = None
) -> StackValidationArgs:
    """A collector's write path behind an Access application whose one policy is `admins`."""
    route = {
        **admin_ingress("telemetry.example.org"),
        "path": "^/api/v1/write(/.*)?$",
        "service": "http://prometheus.monitoring.svc:9090",
    }
    policy = Res(
        ACCESS_POLICY, "admins", {"accountId": "acct", "name": "collectors", "decision": decision, "includes": includes}
    )
    app = access_app("telemetry-metrics", "telemetry.example.org/api/v1/write")
    return access_stack([route], policy, app, config=config)


case("SEC-03", "pass", "machine-route-admits-its-service-token", lambda: machine_stack(TOKEN, config=MACHINES))
case(
    "SEC-03",
    "violate",
    "machine-route-admits-any-service-token",
    lambda: machine_stack([{"anyValidServiceToken": {}}], config=MACHINES),
    f"machine route {MACHINE_ROUTE} admits more than service tokens (Access policy 'admins').",
)
case(
    "SEC-03",
    "violate",
    "machine-route-with-an-allow-policy",
    lambda: machine_stack([*TOKEN, {"group": {"id": "admins-group"}}], decision="allow", config=MACHINES),
    f"machine route {MACHINE_ROUTE} admits more than service tokens (Access policy 'admins').",
)
case(
    "SEC-03",
    "unknown",
    "aud-tag-computed",
    lambda: access_stack([admin_ingress(audTags=UNKNOWN)], access_policy(MFA), access_app()),
)
case(
    "SEC-03",
    "unknown",
    "hostname",
    lambda: access_stack([{"hostname": UNKNOWN, "service": "http://x.svc"}]),
    cannot_run=True,
)

# --- SEC-04 ------------------------------------------------------------------------------------
case("SEC-04", "pass", "mfa-policy", lambda: S([access_policy(MFA), access_app()]))
case(
    "SEC-04",
    "pass",
    "inline-hardware-key",
    lambda: S(
        [
            access_app(
                policies=[{"name": "inline", "decision": "allow", "requires": [{"authMethod": {"authMethod": "hwk"}}]}]
            )
        ]
    ),
)
case(
    "SEC-04",
    "violate",
    "password-only-and-month-long-session",
    lambda: S([access_policy(), access_app(sessionDuration="720h")]),
    "Access policy 'admins' of application 'grafana' allows without a second factor.",
    "Access application 'grafana' keeps sessions for 720h.",
)
case(
    "SEC-04",
    "violate",
    "inline-without-mfa",
    lambda: S([access_app(policies=[{"name": "inline", "decision": "allow", "includes": [{"everyone": {}}]}])]),
    "Access policy 'inline' of application 'grafana' allows without a second factor.",
)
case("SEC-04", "unknown", "requires", lambda: S([access_policy(UNKNOWN), access_app()]), cannot_run=True)

# --- SEC-05 ------------------------------------------------------------------------------------
NODE_INIT = {"ipConfigs": [{"ipv4": {"address": "192.168.68.71/24", "gateway": "192.168.68.1"}}]}
case("SEC-05", "pass", "talos-node", lambda: R(VM, vm(["kubernetes", "mode-normal"], initialization=NODE_INIT)))
case(
    "SEC-05",
    "pass",
    "non-kubernetes-guest-may-have-keys",
    lambda: R(VM, vm(["gaming"], initialization={"userAccount": {"keys": ["ssh-ed25519 AAAA"]}})),
)
case(
    "SEC-05",
    "violate",
    "keys-and-password",
    lambda: R(
        VM,
        vm(
            ["kubernetes"], initialization={**NODE_INIT, "userAccount": {"keys": ["ssh-ed25519 AAAA"], "password": "x"}}
        ),
    ),
    "Kubernetes node VM 'subject' installs SSH keys through cloud-init.",
    "Kubernetes node VM 'subject' sets a cloud-init password.",
)
case(
    "SEC-05",
    "violate",
    "oci-node-ssh-keys",
    lambda: R(
        INSTANCE, instance(freeformTags={"role": "kubernetes"}, metadata={"ssh_authorized_keys": "ssh-ed25519 AAAA"})
    ),
    "Kubernetes node instance 'subject' installs SSH keys through its metadata.",
)
case(
    "SEC-05",
    "unknown",
    "keys",
    lambda: R(VM, vm(["kubernetes"], initialization={"userAccount": {"keys": UNKNOWN}})),
    cannot_run=True,
)


# --- SEC-06 ------------------------------------------------------------------------------------
def node_stack(url: Any, linked: bool = True, tags: Sequence[str] = ("kubernetes",)) -> StackValidationArgs:
    download = Res(DOWNLOAD, "talos-image", {"url": url, "checksum": "ab", "checksumAlgorithm": "sha256"})
    node = Res(
        VM,
        "node",
        vm(tags, disks=[{"interface": "scsi0", "fileId": "local:iso/talos.img", "size": 50}]),
        inputs_from={"disks": ["talos-image"]} if linked else {},
    )
    return S([download, node])


case("SEC-06", "pass", "factory-image", lambda: node_stack(TALOS_URL))
case("SEC-06", "pass", "not-a-node", lambda: node_stack("https://example.org/win11.iso", tags=("gaming",)))
case(
    "SEC-06",
    "violate",
    "foreign-image",
    lambda: node_stack("https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"),
    "Kubernetes node VM 'node' boots https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img, "
    "not a pinned Talos Image Factory image.",
)
case(
    "SEC-06",
    "violate",
    "unpinned-version",
    lambda: node_stack(TALOS_URL.replace("v1.10.6", "latest")),
    f"Kubernetes node VM 'node' boots {TALOS_URL.replace('v1.10.6', 'latest')}, "
    "not a pinned Talos Image Factory image.",
)
case(
    "SEC-06",
    "violate",
    "image-not-from-this-stack",
    lambda: node_stack(TALOS_URL, linked=False),
    "Kubernetes node VM 'node' boots no image downloaded by this stack.",
)
case(
    "SEC-06",
    "violate",
    "not-a-schematic-id",
    lambda: node_stack(TALOS_URL.replace("ab" * 32, "my-talos")),
    f"Kubernetes node VM 'node' boots {TALOS_URL.replace('ab' * 32, 'my-talos')}, "
    "not a pinned Talos Image Factory image.",
)
case("SEC-06", "unknown", "url", lambda: node_stack(UNKNOWN), cannot_run=True)

# --- SEC-07 ------------------------------------------------------------------------------------
case("SEC-07", "pass", "restricted", lambda: R(DEPLOYMENT, deployment()))
case(
    "SEC-07",
    "pass",
    "system-namespace",
    lambda: R(
        DAEMONSET,
        deployment(
            {"name": "agent", "image": "cilium:1.17.6", "securityContext": {"privileged": True}},
            namespace="kube-system",
        ),
    ),
)
case(
    "SEC-07",
    "violate",
    "bare-container",
    lambda: R(DEPLOYMENT, deployment({"name": "web", "image": "web:1.0"}, securityContext={})),
    "'subject' container 'web' lacks runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities.drop [ALL], "
    "seccompProfile RuntimeDefault.",
)
case(
    "SEC-07",
    "violate",
    "host-access-and-root",
    lambda: R(
        DEPLOYMENT,
        deployment(
            restricted_container(
                securityContext={
                    "allowPrivilegeEscalation": False,
                    "privileged": True,
                    "runAsUser": 0,
                    "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_BIND_SERVICE"]},
                }
            ),
            hostPID=True,
            volumes=[{"name": "root", "hostPath": {"path": "/"}}],
        ),
    ),
    "'subject' shares the node's PID namespace (hostPID: true).",
    "'subject' mounts hostPath volume(s) root.",
    "'subject' container 'web' lacks a non-zero runAsUser, privileged: false, no added capabilities (SYS_ADMIN).",
)
case(
    "SEC-07",
    "unknown",
    "run-as-non-root",
    lambda: R(DEPLOYMENT, deployment(securityContext={"runAsNonRoot": UNKNOWN})),
    cannot_run=True,
)


# --- SEC-08 ------------------------------------------------------------------------------------
def namespace(name: str, level: Any = None) -> dict[str, Any]:
    labels = {} if level is None else {"pod-security.kubernetes.io/enforce": level}
    return {"metadata": {"name": name, "labels": labels}}


case("SEC-08", "pass", "restricted", lambda: R(NAMESPACE, namespace("apps", "restricted")))
case("SEC-08", "pass", "privileged-system", lambda: R(NAMESPACE, namespace("kube-system", "privileged")))
case("SEC-08", "violate", "unlabelled", lambda: R(NAMESPACE, namespace("apps")), "namespace apps has no enforce label.")
case(
    "SEC-08",
    "violate",
    "privileged-app",
    lambda: R(NAMESPACE, namespace("apps", "privileged")),
    "namespace apps has enforce=privileged.",
)
case(
    "SEC-08",
    "unknown",
    "labels",
    lambda: R(NAMESPACE, {"metadata": {"name": "apps", "labels": UNKNOWN}}),
    cannot_run=True,
)

# --- SEC-09 ------------------------------------------------------------------------------------
case(
    "SEC-09",
    "pass",
    "secret-refs-and-paths",
    lambda: R(
        DEPLOYMENT,
        deployment(
            restricted_container(
                env=[
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "TOKEN_FILE", "value": "/run/secrets/token"},
                    {"name": "LOG_LEVEL", "value": "info"},
                ]
            )
        ),
    ),
)
case(
    "SEC-09",
    "pass",
    "settings-configmap",
    lambda: R(CONFIGMAP, {"metadata": {"name": "settings"}, "data": {"LOG_LEVEL": "info"}}),
)
case(
    "SEC-09",
    "violate",
    "env-password",
    lambda: R(DEPLOYMENT, deployment(restricted_container(env=[{"name": "DB_PASSWORD", "value": "hunter2"}]))),
    "'subject' container 'web' sets DB_PASSWORD in plain text.",
)
case(
    "SEC-09",
    "violate",
    "configmap-key-material",
    lambda: R(
        CONFIGMAP,
        {
            "metadata": {"name": "settings"},
            "data": {"api_key": "abc123", "tls.pem": "-----BEGIN RSA PRIVATE KEY-----\nMII..."},
        },
    ),
    "ConfigMap 'settings' holds api_key in plain text.",
    "ConfigMap 'settings' holds tls.pem in plain text.",
)
case(
    "SEC-09",
    "unknown",
    "env-value",
    lambda: R(DEPLOYMENT, deployment(restricted_container(env=[{"name": "API_TOKEN", "value": UNKNOWN}]))),
    cannot_run=True,
)

# --- SEC-10 ------------------------------------------------------------------------------------
case(
    "SEC-10",
    "pass",
    "secrets-listed",
    lambda: R(TALOS_SECRETS, {"talosVersion": "v1.10"}, aso=["machineSecrets", "clientConfiguration"]),
)
case("SEC-10", "pass", "not-sensitive", lambda: R(VCN, VCN_PROPS))
case(
    "SEC-10",
    "violate",
    "machine-secrets-in-clear",
    lambda: R(TALOS_SECRETS, {"talosVersion": "v1.10"}),
    "Secrets 'subject' does not keep machineSecrets, clientConfiguration secret.",
)
case(
    "SEC-10",
    "violate",
    "kubeconfig-client-key",
    lambda: R("talos:cluster/kubeconfig:Kubeconfig", {"node": "192.168.68.71"}, aso=["kubeconfigRaw"]),
    "Kubeconfig 'subject' does not keep kubernetesClientConfiguration secret.",
)
case(
    "SEC-10",
    "violate",
    "webhook-mapping-in-clear",
    lambda: R(
        "authentik:index/propertyMappingNotification:PropertyMappingNotification",
        {"name": "homelab-ntfy-headers", "expression": "return {'Authorization': 'Bearer tk_x'}"},
    ),
    "PropertyMappingNotification 'subject' does not keep expression secret.",
)
case(
    "SEC-10",
    "unknown",
    "props",
    lambda: R(TALOS_SECRETS, {"talosVersion": UNKNOWN}, aso=["machineSecrets", "clientConfiguration"]),
)

# --- SEC-11 ------------------------------------------------------------------------------------
case("SEC-11", "pass", "launch-options", lambda: R(INSTANCE, instance()))
case(
    "SEC-11",
    "pass",
    "create-time-flag",
    lambda: R(
        INSTANCE, instance(launchOptions={"networkType": "PARAVIRTUALIZED"}, isPvEncryptionInTransitEnabled=True)
    ),
)
case(
    "SEC-11",
    "violate",
    "unset",
    lambda: R(INSTANCE, instance(launchOptions={"networkType": "PARAVIRTUALIZED"})),
    "instance 'subject' does not encrypt volume traffic in transit.",
)
case(
    "SEC-11",
    "unknown",
    "flag",
    lambda: R(INSTANCE, instance(launchOptions={"isPvEncryptionInTransitEnabled": UNKNOWN})),
    cannot_run=True,
)

# --- SEC-12 ------------------------------------------------------------------------------------
case("SEC-12", "pass", "v2-only", lambda: R(INSTANCE, instance()))
case(
    "SEC-12",
    "violate",
    "legacy-endpoints",
    lambda: R(INSTANCE, instance(instanceOptions={"areLegacyImdsEndpointsDisabled": False})),
    "instance 'subject' still serves the legacy IMDS v1 endpoints.",
)
case(
    "SEC-12",
    "unknown",
    "flag",
    lambda: R(INSTANCE, instance(instanceOptions={"areLegacyImdsEndpointsDisabled": UNKNOWN})),
    cannot_run=True,
)

# --- SEC-13 ------------------------------------------------------------------------------------
DIGEST = "sha256:" + "0" * 64
case(
    "SEC-13",
    "pass",
    "tag-and-digest",
    lambda: R(
        DEPLOYMENT,
        deployment(restricted_container(), restricted_container("sidecar", image=f"docker.io/library/nginx@{DIGEST}")),
    ),
)
case(
    "SEC-13",
    "pass",
    "digest-required",
    lambda: R(
        DEPLOYMENT,
        deployment(restricted_container(image=f"ghcr.io/example/web:1.2.3@{DIGEST}")),
        config={"requireDigest": True},
    ),
)
case(
    "SEC-13",
    "violate",
    "floating",
    lambda: R(
        DEPLOYMENT,
        deployment(
            restricted_container("a", image="nginx"),
            restricted_container("b", image="registry.local:5000/team/app:latest"),
            restricted_container("c", image="ghcr.io/example/app:stable"),
        ),
    ),
    "'subject' container 'a' image nginx has no tag (implicitly latest).",
    "'subject' container 'b' image registry.local:5000/team/app:latest uses the floating tag latest.",
    "'subject' container 'c' image ghcr.io/example/app:stable uses the floating tag stable.",
)
case(
    "SEC-13",
    "violate",
    "tag-when-digest-required",
    lambda: R(DEPLOYMENT, deployment(restricted_container()), config={"requireDigest": True}),
    "'subject' container 'web' image ghcr.io/example/web:1.2.3 is not pinned by digest.",
)
case(
    "SEC-13",
    "unknown",
    "image",
    lambda: R(DEPLOYMENT, deployment(restricted_container(image=UNKNOWN))),
    cannot_run=True,
)

# --- SEC-16 ------------------------------------------------------------------------------------
DOWNLOAD_PROPS = {
    "nodeName": "pve",
    "datastoreId": "local",
    "contentType": "iso",
    "url": TALOS_URL,
    "checksum": "4e1e" * 16,
    "checksumAlgorithm": "sha256",
}
case("SEC-16", "pass", "verified", lambda: R(DOWNLOAD, DOWNLOAD_PROPS))
case(
    "SEC-16",
    "violate",
    "plain-http-unverified",
    lambda: R(DOWNLOAD, {**DOWNLOAD_PROPS, "url": "http://mirror/talos.iso", "verify": False, "checksum": None}),
    "download 'subject' fetches http://mirror/talos.iso without https.",
    "download 'subject' skips TLS verification (verify=false).",
    "download 'subject' is not checked against a sha256/sha512 checksum.",
)
case(
    "SEC-16",
    "violate",
    "md5",
    lambda: R(DOWNLOAD, {**DOWNLOAD_PROPS, "checksumAlgorithm": "md5"}),
    "download 'subject' is not checked against a sha256/sha512 checksum.",
)
case("SEC-16", "unknown", "url", lambda: R(DOWNLOAD, {**DOWNLOAD_PROPS, "url": UNKNOWN}), cannot_run=True)


# --- BUD-01 / BUD-06 -----------------------------------------------------------------------------
ALL_MODES = ("mode-gaming", "mode-normal", "mode-testing")
HOST = {"reservedMb": 12288, "otherStacksMb": {"testing": 4096}}


def host_stack(
    gaming_mb: Any = 32768, worker_mb: Any = 12288, config: Mapping[str, Any] | None = None, **extra: Any
) -> StackValidationArgs:
    guests = [
        Res(VM, "prod-cp-1", vm(["kubernetes", *ALL_MODES], 4096)),
        Res(VM, "prod-worker-1", vm(["kubernetes", *ALL_MODES], worker_mb)),
        Res(VM, "gaming", vm(["mode-gaming"], gaming_mb, **extra)),
    ]
    return S(guests, config={**HOST, **(config or {})})


case("BUD-01", "pass", "prod-plan", host_stack)
case("BUD-01", "pass", "no-guests", lambda: S([Res(VCN, "vcn", VCN_PROPS)], config={"reservedMb": 99999}))
case(
    "BUD-01",
    "violate",
    "gaming-over-the-host",
    lambda: host_stack(40960),
    "mode gaming needs 68.0 GiB (56.0 GiB guests here + 0.0 GiB other stacks + 12.0 GiB host reservations), "
    "over the host's 64.0 GiB.",
)
case(
    "BUD-01",
    "violate",
    "ballooning",
    lambda: S([Res(VM, "gaming", {**vm(["mode-gaming"]), "memory": {"dedicated": 8192, "floating": 16384}})]),
    "guest 'gaming' balloons to 16384 MiB, above its 8192 MiB.",
)
case(
    "BUD-01",
    "violate",
    "untagged-guest-counts-everywhere",
    lambda: S([Res(VM, "big", vm([], 57344))], config={"reservedMb": 12288}),
    "mode normal needs 68.0 GiB (56.0 GiB guests here + 0.0 GiB other stacks + 12.0 GiB host reservations), "
    "over the host's 64.0 GiB.",
    "mode testing needs 68.0 GiB (56.0 GiB guests here + 0.0 GiB other stacks + 12.0 GiB host reservations), "
    "over the host's 64.0 GiB.",
    "mode gaming needs 68.0 GiB (56.0 GiB guests here + 0.0 GiB other stacks + 12.0 GiB host reservations), "
    "over the host's 64.0 GiB.",
)
case("BUD-01", "unknown", "memory", lambda: host_stack(UNKNOWN), cannot_run=True)

case(
    "BUD-06",
    "pass",
    "recorded-targets",
    lambda: host_stack(config={"modeTargetsMb": {"normal": 28672, "testing": 32768, "gaming": 61440}}),
)
case(
    "BUD-06",
    "violate",
    "prd-gaming-target",
    host_stack,
    "mode gaming needs 60.0 GiB (48.0 GiB guests here + 0.0 GiB other stacks + 12.0 GiB host reservations), "
    "over its 48.0 GiB target.",
)
case(
    "BUD-06",
    "violate",
    "bigger-worker",
    lambda: host_stack(worker_mb=16384, config={"modeTargetsMb": {"normal": 28672, "testing": 32768}}),
    "mode normal needs 32.0 GiB (20.0 GiB guests here + 0.0 GiB other stacks + 12.0 GiB host reservations), "
    "over its 28.0 GiB target.",
    "mode testing needs 36.0 GiB (20.0 GiB guests here + 4.0 GiB other stacks + 12.0 GiB host reservations), "
    "over its 32.0 GiB target.",
)
case("BUD-06", "unknown", "memory", lambda: host_stack(worker_mb=UNKNOWN), cannot_run=True)

# --- BUD-07 ------------------------------------------------------------------------------------
CT = "proxmoxve:index/containerLegacy:ContainerLegacy"
case("BUD-07", "pass", "prod-node-in-normal-mode", lambda: R(VM, vm(["kubernetes", *ALL_MODES], onBoot=True)))
case("BUD-07", "pass", "dev-node-off-at-boot", lambda: R(VM, vm(["kubernetes", "mode-testing"], onBoot=False)))
case("BUD-07", "pass", "gaming-off-at-boot", lambda: R(VM, vm(["mode-gaming"], onBoot=False)))
# Untagged guests run in every mode (BUD-01 counts them in normal mode too): starting them is right.
case("BUD-07", "pass", "untagged-runs-everywhere", lambda: R(VM, vm(["scratch"], onBoot=True)))
case("BUD-07", "pass", "not-a-guest", lambda: R(VCN, VCN_PROPS))
# Boundary: one normal-mode tag among others is enough; the host boots into normal mode.
case("BUD-07", "pass", "boundary-normal-among-modes", lambda: R(VM, vm(["mode-gaming", "mode-normal"], onBoot=True)))
# Config override: a host that boots into testing mode lets testing guests start.
case(
    "BUD-07",
    "pass",
    "override-boot-into-testing",
    lambda: R(VM, vm(["mode-testing"], onBoot=True), config={"bootModes": ["normal", "testing"]}),
)
case(
    "BUD-07",
    "violate",
    "override-boot-modes-exclude-normal",
    lambda: R(VM, vm(["mode-normal"], onBoot=True), config={"bootModes": ["testing"]}),
    "guest 'subject' runs only in mode(s) normal, not in the boot mode(s) testing, but starts on boot.",
)
case(
    "BUD-07",
    "violate",
    "dev-starts-on-boot",
    lambda: R(VM, vm(["kubernetes", "mode-testing"], onBoot=True)),
    "guest 'subject' runs only in mode(s) testing, not in the boot mode(s) normal, but starts on boot.",
)
# Boundary: unset means the provider's default, which is to start on boot.
case(
    "BUD-07",
    "violate",
    "boundary-unset-defaults-to-start",
    lambda: R(VM, vm(["mode-gaming"])),
    "guest 'subject' runs only in mode(s) gaming, not in the boot mode(s) normal, but starts on boot "
    "(unset: the provider's default).",
)
case(
    "BUD-07",
    "violate",
    "container",
    lambda: R(CT, {"nodeName": "pve", "tags": ["mode-testing"], "startOnBoot": True}),
    "guest 'subject' runs only in mode(s) testing, not in the boot mode(s) normal, but starts on boot.",
)
case("BUD-07", "unknown", "tags", lambda: R(VM, {**vm([]), "tags": UNKNOWN, "onBoot": True}), cannot_run=True)
case("BUD-07", "unknown", "on-boot", lambda: R(VM, vm(["mode-testing"], onBoot=UNKNOWN)), cannot_run=True)
# A normal-mode guest never reads onBoot, so an unknown value does not stop the rule.
case("BUD-07", "unknown", "on-boot-of-normal-guest", lambda: R(VM, vm(["mode-normal"], onBoot=UNKNOWN)))

# --- BUD-02 ------------------------------------------------------------------------------------
case("BUD-02", "pass", "a1", lambda: R(INSTANCE, instance()))
case("BUD-02", "pass", "micro", lambda: R(INSTANCE, instance(shape="VM.Standard.E2.1.Micro", shapeConfig=None)))
case(
    "BUD-02",
    "violate",
    "paid-shape",
    lambda: R(INSTANCE, instance(shape="VM.Standard.E4.Flex")),
    "instance 'subject' uses shape VM.Standard.E4.Flex, which is not Always Free.",
)
case("BUD-02", "unknown", "shape", lambda: R(INSTANCE, instance(shape=UNKNOWN)), cannot_run=True)
# The catalogue: every OCI type the cloud stack registers is in it; anything else is refused.
case("BUD-02", "pass", "network-in-catalogue", lambda: R(VCN, VCN_PROPS))
case("BUD-02", "pass", "not-oci", lambda: R(VM, vm(["mode-normal"])))
case("BUD-02", "pass", "oci-provider", lambda: R("pulumi:providers:oci", {"region": "eu-frankfurt-1"}))
case(
    "BUD-02",
    "violate",
    "paid-service",
    lambda: R("oci:FileStorage/fileSystem:FileSystem", {"compartmentId": "c", "availabilityDomain": "AD-1"}),
    "'subject' is a oci:FileStorage/fileSystem:FileSystem, which is not in the Always Free catalogue.",
)
# A type outside the catalogue is refused whatever its inputs: an unknown input does not stop the rule.
case(
    "BUD-02",
    "unknown",
    "paid-service-with-unknown-input",
    lambda: R("oci:Database/autonomousDatabase:AutonomousDatabase", {"compartmentId": UNKNOWN}),
    "'subject' is a oci:Database/autonomousDatabase:AutonomousDatabase, which is not in the Always Free catalogue.",
)


# --- BUD-03 / BUD-04 -----------------------------------------------------------------------------
def a1(name: str, ocpus: Any, memory: Any, boot: Any = "50") -> Res:
    return Res(
        INSTANCE,
        name,
        instance(
            shapeConfig={"ocpus": ocpus, "memoryInGbs": memory},
            sourceDetails={"sourceType": "image", "sourceId": "img", "bootVolumeSizeInGbs": boot},
        ),
    )


def micro(name: str) -> Res:
    return Res(
        INSTANCE,
        name,
        instance(shape="VM.Standard.E2.1.Micro", shapeConfig=None, sourceDetails={"sourceType": "image"}),
    )


case("BUD-03", "pass", "fits", lambda: S([a1("oci-mgmt", 1, 6), a1("cloud-1", 1, 6), micro("m1"), micro("m2")]))
case(
    "BUD-03",
    "violate",
    "prd-original-plan",
    lambda: S([a1("oci-mgmt", 1, 6), a1("cloud-1", 1.5, 9), a1("cloud-2", 1.5, 9)]),
    "A1 instances use 4 OCPUs (oci-mgmt: 1 OCPU/6 GB, cloud-1: 1.5 OCPU/9 GB, cloud-2: 1.5 OCPU/9 GB), "
    "over the Always Free 2.",
    "A1 instances use 24 GB (oci-mgmt: 1 OCPU/6 GB, cloud-1: 1.5 OCPU/9 GB, cloud-2: 1.5 OCPU/9 GB), "
    "over the Always Free 12 GB.",
)
case(
    "BUD-03",
    "violate",
    "three-micros",
    lambda: S([micro("m1"), micro("m2"), micro("m3")]),
    "3 E2.1.Micro instances (m1, m2, m3), over the Always Free 2.",
)
case(
    "BUD-03",
    "pass",
    "paid-tenancy-allowance",
    lambda: S(
        [a1("oci-mgmt", 1, 6), a1("cloud-1", 1.5, 9), a1("cloud-2", 1.5, 9)], config={"a1Ocpus": 4, "a1MemoryGb": 24}
    ),
)
case("BUD-03", "unknown", "ocpus", lambda: S([a1("cloud-1", UNKNOWN, 6)]), cannot_run=True)

case(
    "BUD-04",
    "pass",
    "exactly-200",
    lambda: S(
        [a1("oci-mgmt", 1, 6, boot=None), a1("cloud-1", 1, 6, boot="100"), Res(VOLUME, "data", {"sizeInGbs": "50"})]
    ),
)
case(
    "BUD-04",
    "violate",
    "over-200",
    lambda: S(
        [a1("oci-mgmt", 1, 6, boot="100"), a1("cloud-1", 1, 6, boot="100"), Res(VOLUME, "data", {"sizeInGbs": "50"})]
    ),
    "block storage totals 250 GB (oci-mgmt boot 100, cloud-1 boot 100, data 50), over the Always Free 200 GB.",
)
case(
    "BUD-04",
    "violate",
    "volume-default-size-and-backups",
    lambda: S(
        [Res(VOLUME, "data", {"compartmentId": "c"})]
        + [Res("oci:Core/volumeBackup:VolumeBackup", f"b{i}", {"volumeId": "v"}) for i in range(6)]
    ),
    "block storage totals 1024 GB (data 1024), over the Always Free 200 GB.",
    "6 volume backups, over the Always Free 5.",
)
case("BUD-04", "unknown", "boot-size", lambda: S([a1("cloud-1", 1, 6, boot=UNKNOWN)]), cannot_run=True)


def sized_bucket(name: str, expected_gb: Any) -> Res:
    tags = {"role": "backups"} if expected_gb is None else {"role": "backups", "expected-gb": expected_gb}
    return Res(BUCKET, name, {"compartmentId": "c", "namespace": "n", "name": name, "freeformTags": tags})


# Object storage: every bucket counts at its declared size; exactly the allowance passes.
case("BUD-04", "pass", "buckets-exactly-20", lambda: S([sized_bucket("images", "1"), sized_bucket("backups", "19")]))
case(
    "BUD-04",
    "violate",
    "backups-over-20",
    lambda: S([sized_bucket("images", "1"), sized_bucket("backups", "19.5")]),
    "buckets hold up to 20.5 GB (images 1, backups 19.5), over the Always Free 20 GB.",
)
case(
    "BUD-04",
    "violate",
    "bucket-without-size",
    lambda: S([sized_bucket("backups", None)]),
    "bucket 'backups' declares no size (freeform tag expected-gb).",
)
case("BUD-04", "unknown", "bucket-size", lambda: S([sized_bucket("backups", UNKNOWN)]), cannot_run=True)

# --- BUD-08 ------------------------------------------------------------------------------------
STACK = "pulumi:pulumi:Stack"


def estimate(total: Any, currency: Any = "EUR") -> dict[str, Any]:
    """A `cost_estimate` output as the prod stack exports it (only what BUD-08 reads matters)."""
    return {"currency": currency, "yearly_total": total, "lines": [{"item": "domain", "monthly": 1, "yearly": 12}]}


def costed(cost_estimate: Any, config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    """A stack whose root exports `cost_estimate` (stack policies receive the root stack's outputs)."""
    root = Res(STACK, "homelab-prod", {"cost_estimate": cost_estimate}, parented=False)
    return S([root, Res(VM, "prod-cp-1", vm(["mode-normal"]))], config)


case("BUD-08", "pass", "within-the-cap-in-usd", lambda: costed(estimate(412.30, "USD")))
# 800 EUR at the default 1.16 USD/EUR is 928 USD.
case("BUD-08", "pass", "converted-through-the-stated-rate", lambda: costed(estimate(800)))
case("BUD-08", "pass", "no-estimate-exported", lambda: S([Res(VM, "dev-cp-1", vm(["mode-testing"]))]))
case(
    "BUD-08",
    "violate",
    "over-the-cap-after-conversion",
    lambda: costed(estimate(900)),
    "the yearly estimate is 900.00 EUR (1,044.00 USD), over the NFR-012 cap of 1,000.00 USD.",
)
case(
    "BUD-08",
    "violate",
    "over-the-cap-same-currency",
    lambda: costed(estimate(1200.5, "USD")),
    "the yearly estimate is 1,200.50 USD, over the NFR-012 cap of 1,000.00 USD.",
)
case(
    "BUD-08",
    "violate",
    "currencies-differ-without-a-rate",
    lambda: costed(estimate(300, "GBP")),
    "the yearly estimate is 300.00 GBP and the cap 1,000.00 USD, with no rate between them: not compared.",
)
case("BUD-08", "unknown", "estimate", lambda: costed(UNKNOWN), cannot_run=True)
case("BUD-08", "unknown", "total", lambda: costed(estimate(UNKNOWN)), cannot_run=True)

# --- BUD-05 ------------------------------------------------------------------------------------
case("BUD-05", "pass", "sized", lambda: R(DEPLOYMENT, deployment()))
case(
    "BUD-05",
    "violate",
    "unsized",
    lambda: R(DEPLOYMENT, deployment(restricted_container(resources={"limits": {"cpu": "1"}}))),
    "'subject' container 'web' has no requests.cpu, requests.memory, limits.memory.",
)
case(
    "BUD-05",
    "unknown",
    "resources",
    lambda: R(DEPLOYMENT, deployment(restricted_container(resources=UNKNOWN))),
    cannot_run=True,
)

# --- DAT-01 ------------------------------------------------------------------------------------
ZFS_PROPS = {
    "nodeName": "pve",
    "name": "tank",
    "raidlevel": "mirror",
    "devices": ["/dev/disk/by-id/a", "/dev/disk/by-id/b"],
}
case("DAT-01", "pass", "protected-pool", lambda: R(ZFS, ZFS_PROPS, protect=True))
case("DAT-01", "pass", "scratch-vm", lambda: R(VM, vm(["mode-testing", "scratch"])))
case("DAT-01", "pass", "protected-node", lambda: R(VM, vm(["kubernetes"]), protect=True))
case(
    "DAT-01",
    "violate",
    "unprotected-node",
    lambda: R(VM, vm(["kubernetes", "mode-normal"])),
    "'subject' is not protected; deleting it loses the guest's disks.",
)
case(
    "DAT-01",
    "violate",
    "zpool-command",
    lambda: R(
        "command:remote:Command",
        {
            "connection": {"host": "192.168.68.51"},
            "create": "zpool list tank || zpool create -o ashift=12 tank mirror a b",
        },
    ),
    "'subject' is not protected; deleting it loses the ZFS pool or datasets it created.",
)
case(
    "DAT-01",
    "violate",
    "unprotected-pool",
    lambda: R(ZFS, ZFS_PROPS),
    "'subject' is not protected; deleting it loses the ZFS pool and every dataset on it.",
)
case(
    "DAT-01",
    "violate",
    "stateful-instance",
    lambda: R(INSTANCE, instance(freeformTags={"managed-by": "pulumi", "data": "stateful"})),
    "'subject' is not protected; deleting it loses the guest's disks.",
)
case(
    "DAT-01",
    "violate",
    "machine-secrets",
    lambda: R(TALOS_SECRETS, {"talosVersion": "v1.10"}),
    "'subject' is not protected; deleting it loses the cluster's PKI "
    "(every node and client would need new credentials).",
)
case("DAT-01", "unknown", "vm-tags", lambda: R(VM, {**vm([]), "tags": UNKNOWN}), cannot_run=True)

# --- DAT-03 ------------------------------------------------------------------------------------
case("DAT-03", "pass", "locked", lambda: R(VM, vm(["stateful"], protection=True), protect=True))
case(
    "DAT-03",
    "violate",
    "unlocked",
    lambda: R(VM, vm(["stateful", "mode-normal"]), protect=True),
    "stateful VM 'subject' lacks the Proxmox protection flag.",
)
case("DAT-03", "unknown", "protection", lambda: R(VM, vm(["stateful"], protection=UNKNOWN)), cannot_run=True)


# --- DAT-04 ------------------------------------------------------------------------------------
def storage_class(name: str, policy: str | None, default: bool = False) -> Res:
    props: dict[str, Any] = {"metadata": {"name": name}, "provisioner": "csi.proxmox.sinextra.dev"}
    if default:
        props["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    if policy:
        props["reclaimPolicy"] = policy
    return Res(STORAGE_CLASS, name, props)


def claim(name: str, class_name: Any) -> Res:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
    if class_name is not None:
        spec["storageClassName"] = class_name
    return Res(PVC, name, {"metadata": {"name": name, "namespace": "apps"}, "spec": spec})


STS = Res(
    STATEFULSET,
    "db",
    {
        "metadata": {"name": "db"},
        "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": "retained"}}]},
    },
)
case(
    "DAT-04",
    "pass",
    "retained-classes",
    lambda: S(
        [
            storage_class("retained", "Retain", default=True),
            claim("photos", "retained"),
            claim("docs", None),
            claim("media", "nfs-media"),
            STS,
        ],
        config={"retainStorageClasses": ["nfs-media"]},
    ),
)
case(
    "DAT-04",
    "violate",
    "delete-policy-and-unknown-classes",
    lambda: S(
        [storage_class("fast", None), claim("photos", "fast"), claim("docs", None), claim("media", "local-path")]
    ),
    "claim photos uses storage class fast with reclaimPolicy Delete.",
    "claim docs uses the cluster's default storage class, which this stack does not declare.",
    "claim media uses storage class local-path, not known to retain volumes.",
)
case("DAT-04", "unknown", "class-name", lambda: S([claim("photos", UNKNOWN)]), cannot_run=True)

# --- DAT-05 ------------------------------------------------------------------------------------
PBS_PROPS = {"resourceId": "pbs", "server": "192.168.68.80", "datastore": "homelab", "username": "pve@pbs"}
case(
    "DAT-05", "pass", "key-and-fingerprint", lambda: R(PBS, {**PBS_PROPS, "encryptionKey": "k", "fingerprint": "aa:bb"})
)
case(
    "DAT-05",
    "pass",
    "generated-key",
    lambda: R(PBS, {**PBS_PROPS, "generateEncryptionKey": True, "fingerprint": "aa:bb"}),
)
case(
    "DAT-05",
    "violate",
    "plain",
    lambda: R(PBS, PBS_PROPS),
    "backup storage 'subject' stores backups unencrypted.",
    "backup storage 'subject' does not pin the server's certificate fingerprint.",
)
case("DAT-05", "unknown", "key", lambda: R(PBS, {**PBS_PROPS, "encryptionKey": UNKNOWN}), cannot_run=True)

# --- DAT-06 ------------------------------------------------------------------------------------
BUCKET_PROPS = {
    "compartmentId": "c",
    "namespace": "n",
    "name": "state",
    "versioning": "Enabled",
    "accessType": "NoPublicAccess",
}
case("DAT-06", "pass", "private-versioned", lambda: R(BUCKET, BUCKET_PROPS, protect=True))
case(
    "DAT-06",
    "violate",
    "public-unversioned",
    lambda: R(BUCKET, {**BUCKET_PROPS, "versioning": "Disabled", "accessType": "ObjectRead"}),
    "bucket 'subject' does not keep object versions.",
    "bucket 'subject' is public (ObjectRead).",
)
case("DAT-06", "unknown", "versioning", lambda: R(BUCKET, {**BUCKET_PROPS, "versioning": UNKNOWN}), cannot_run=True)

# --- OPS-01 ------------------------------------------------------------------------------------
case(
    "OPS-01",
    "pass",
    "tagged",
    lambda: R(VCN, {**VCN_PROPS, "freeformTags": {"managed-by": "pulumi", "stack": "cloud"}}),
)
case("OPS-01", "pass", "labelled", lambda: R(DEPLOYMENT, deployment()))
case(
    "OPS-01",
    "violate",
    "untagged-instance",
    lambda: R(INSTANCE, instance(freeformTags={"owner": "me"})),
    "'subject' lacks freeform tag(s) managed-by, stack.",
)
case(
    "OPS-01",
    "violate",
    "unlabelled-service",
    lambda: R(SERVICE, service()),
    "'subject' lacks label(s) app.kubernetes.io/name.",
)
case("OPS-01", "unknown", "tags", lambda: R(VCN, {**VCN_PROPS, "freeformTags": UNKNOWN}), cannot_run=True)

# --- OPS-02 ------------------------------------------------------------------------------------
RELEASE = {"chart": "cilium", "version": "1.17.6", "repositoryOpts": {"repo": "https://helm.cilium.io/"}}
case("OPS-02", "pass", "https-repo", lambda: R(HELM_RELEASE, RELEASE))
case(
    "OPS-02",
    "pass",
    "oci-chart",
    lambda: R(HELM_RELEASE, {"chart": "oci://ghcr.io/example/charts/app", "version": "v0.3.1"}),
)
case(
    "OPS-02",
    "violate",
    "range-over-http",
    lambda: R(HELM_RELEASE, {**RELEASE, "version": "~1.17", "repositoryOpts": {"repo": "http://charts.local"}}),
    "Helm chart cilium is not pinned to an exact version (version ~1.17).",
    "Helm chart cilium comes from http://charts.local, not an https/oci repository.",
)
case(
    "OPS-02",
    "violate",
    "unpinned",
    lambda: R(HELM_RELEASE, {"chart": "cilium", "repositoryOpts": {"repo": "https://helm.cilium.io/"}}),
    "Helm chart cilium is not pinned to an exact version (version unset).",
)
case("OPS-02", "unknown", "version", lambda: R(HELM_RELEASE, {**RELEASE, "version": UNKNOWN}), cannot_run=True)

# --- OPS-04 ------------------------------------------------------------------------------------
case("OPS-04", "pass", "known-type", lambda: R(VM, vm(["kubernetes"])))
case("OPS-04", "pass", "own-component-and-provider", lambda: R("homelab:proxmox:ZfsPool", {}))
case("OPS-04", "pass", "provider", lambda: R("pulumi:providers:proxmoxve", {"endpoint": "https://pve:8006/"}))
case(
    "OPS-04",
    "violate",
    "experimental-vm",
    lambda: R("proxmoxve:index/vm:Vm", {"nodeName": "pve"}),
    "'subject' has type proxmoxve:index/vm:Vm, which the policy pack does not know.",
)
case(
    "OPS-04",
    "violate",
    "unknown-provider",
    lambda: R("pulumi:providers:aws", {"region": "eu-central-1"}),
    "'subject' has type pulumi:providers:aws, which the policy pack does not know.",
)
case("OPS-04", "unknown", "props", lambda: R(VM, {"nodeName": UNKNOWN, "tags": UNKNOWN}))

# --- OPS-05 ------------------------------------------------------------------------------------
case("OPS-05", "pass", "parented", lambda: S([Res("command:local:Command", "inside", {"create": "true"})]))
case(
    "OPS-05",
    "violate",
    "stray",
    lambda: S([Res("command:local:Command", "stray", {"create": "true"}, parented=False)]),
    "command:local:Command 'stray' is not inside a component.",
)
case("OPS-05", "unknown", "props", lambda: S([Res("command:local:Command", "inside", {"create": UNKNOWN})]))

# --- NET-12 ------------------------------------------------------------------------------------
case("NET-12", "pass", "public-with-nsg", lambda: R(NLB, NLB_PROPS))
case(
    "NET-12",
    "pass",
    "private-without-nsg",
    lambda: R(NLB, {**NLB_PROPS, "isPrivate": True, "networkSecurityGroupIds": []}),
)
case(
    "NET-12",
    "violate",
    "public-without-nsg",
    lambda: R(NLB, {**NLB_PROPS, "networkSecurityGroupIds": []}),
    "public network load balancer 'subject' has no network security group.",
)
case(
    "NET-12",
    "violate",
    "public-by-default",
    lambda: R(NLB, {"compartmentId": "c", "subnetId": "s"}),
    "public network load balancer 'subject' has no network security group.",
)
case("NET-12", "unknown", "nsgs", lambda: R(NLB, {**NLB_PROPS, "networkSecurityGroupIds": UNKNOWN}), cannot_run=True)

# --- DAT-07 ------------------------------------------------------------------------------------
BACKUP_JOB = "proxmoxve:backup/job:Job"
LIFECYCLE = "oci:ObjectStorage/objectLifecyclePolicy:ObjectLifecyclePolicy"
VOLUME_BACKUP_POLICY = "oci:Core/volumeBackupPolicy:VolumeBackupPolicy"
BACKUP_BUCKET = {**BUCKET_PROPS, "name": "homelab-backups", "freeformTags": {"role": "backups"}}


def lifecycle(objects_days: Any = 30, versions_days: Any = 30, bucket: Any = "homelab-backups") -> Res:
    rules = [
        {
            "name": "a",
            "action": "DELETE",
            "target": "objects",
            "isEnabled": True,
            "timeAmount": str(objects_days),
            "timeUnit": "DAYS",
        },
        {
            "name": "b",
            "action": "DELETE",
            "target": "previous-object-versions",
            "isEnabled": True,
            "timeAmount": str(versions_days),
            "timeUnit": "DAYS",
        },
        {
            "name": "c",
            "action": "ABORT",
            "target": "multipart-uploads",
            "isEnabled": True,
            "timeAmount": "1",
            "timeUnit": "DAYS",
        },
    ]
    return Res(LIFECYCLE, "lifecycle", {"namespace": "n", "bucket": bucket, "rules": rules})


def backup_stack(*extra: Res, config: Mapping[str, Any] | None = None, bucket: Mapping[str, Any] = BACKUP_BUCKET):
    return S([Res(BUCKET, "offsite-bucket", bucket, protect=True), *extra], config=config)


JOB = Res(
    BACKUP_JOB,
    "vzdump",
    {"resourceId": "homelab-guests", "storage": "tank-backups", "pruneBackups": {"keep-daily": "7"}},
)
case("DAT-07", "pass", "bucket-with-lifecycle", lambda: backup_stack(lifecycle(), JOB))
case("DAT-07", "pass", "not-a-backup-bucket", lambda: backup_stack(bucket=BUCKET_PROPS))
# Boundary: exactly the minimum passes, one day under it does not.
case("DAT-07", "pass", "boundary-at-minimum", lambda: backup_stack(lifecycle(7, 7)))
case(
    "DAT-07",
    "violate",
    "boundary-under-minimum",
    lambda: backup_stack(lifecycle(30, 6)),
    "backup bucket 'offsite-bucket' deletes previous-object-versions after 6 days, under the 7-day minimum.",
)
# Config override: a stricter minimum.
case(
    "DAT-07",
    "violate",
    "override-min-keep-days",
    lambda: backup_stack(lifecycle(30, 30), config={"minKeepDays": 60}),
    "backup bucket 'offsite-bucket' deletes objects after 30 days, under the 60-day minimum.",
    "backup bucket 'offsite-bucket' deletes previous-object-versions after 30 days, under the 60-day minimum.",
)
case(
    "DAT-07",
    "violate",
    "no-lifecycle-no-prune",
    lambda: backup_stack(Res(BACKUP_JOB, "vzdump", {"resourceId": "j", "storage": "s"})),
    "vzdump job 'vzdump' never prunes: every archive is kept until the storage is full.",
    "backup bucket 'offsite-bucket' has no lifecycle policy: it keeps every backup forever.",
)
case(
    "DAT-07",
    "violate",
    "volume-backup-without-retention",
    lambda: backup_stack(
        lifecycle(),
        Res(
            VOLUME_BACKUP_POLICY,
            "weekly",
            {"schedules": [{"backupType": "FULL", "period": "ONE_WEEK", "retentionSeconds": 0}]},
        ),
    ),
    "volume backup policy 'weekly' has a schedule without retention.",
)
case(
    "DAT-07",
    "unknown",
    "bucket-name",
    lambda: backup_stack(lifecycle(), bucket={**BACKUP_BUCKET, "name": UNKNOWN}),
    cannot_run=True,
)
# --- DAT-08 ------------------------------------------------------------------------------------
COMMAND = "command:remote:Command"
OCI_S3 = "https://ns.compat.objectstorage.eu-paris-1.oraclecloud.com"
OVH_S3 = "https://s3.gra.io.cloud.ovh.net"
MINIO_S3 = "https://minio.example.net"


def data_volume(data_class: Any = "critical", holds: Any = "authentik omni") -> Res:
    tags = {"role": "management", "data-class": data_class, "holds": holds}
    return Res(VOLUME, "oci-mgmt-data", {"availabilityDomain": "AD-1", "sizeInGbs": "50", "freeformTags": tags})


def dump_job(*targets: Any, holds: Any = ("authentik", "omni")) -> Res:
    manifest = {"backup": {"holds": list(holds), "targets": list(targets)}}
    return Res(COMMAND, "management-db-timer", {"create": "install", "triggers": ["other-trigger", manifest]})


def labelled_namespace(name: str, data_class: str = "critical") -> Res:
    props = {"metadata": {"name": name, "labels": {"homelab.dev/data-class": data_class}}}
    return Res(NAMESPACE, f"ns-{name}", props)


def velero(location_url: str, bucket: str, namespaces: Any) -> Res:
    location = {"name": "offsite", "bucket": bucket, "config": {"s3Url": location_url}}
    template = {"includedNamespaces": namespaces, "storageLocation": "offsite"}
    values = {
        "configuration": {"backupStorageLocation": [location]},
        "schedules": {"critical": {"schedule": "0 2 * * *", "template": template}},
    }
    return Res(HELM_RELEASE, "velero", {"chart": "velero", "values": values})


case("DAT-08", "pass", "dump-leaves-oci", lambda: S([data_volume(), dump_job(f"{OCI_S3}/b", f"{OVH_S3}/offsite")]))
# Boundary: one target at another site is enough; the holder's own site alone is not.
case("DAT-08", "pass", "boundary-one-offsite-target", lambda: S([data_volume(), dump_job(f"{OVH_S3}/offsite")]))
case("DAT-08", "pass", "not-an-offsite-class", lambda: S([data_volume("media")]))
case("DAT-08", "pass", "untagged-volume", lambda: S([Res(VOLUME, "scratch", {"sizeInGbs": "50"})]))
case(
    "DAT-08",
    "pass",
    "velero-schedule-to-ovh",
    lambda: S([labelled_namespace("immich"), velero(OVH_S3, "offsite", ["immich", "nextcloud"])]),
)
case(
    "DAT-08",
    "violate",
    "boundary-only-own-site",
    lambda: S([data_volume(), dump_job(f"{OCI_S3}/b")]),
    "'authentik' (critical, on 'oci-mgmt-data' at oci) is backed up only to oci: no copy leaves its site.",
    "'omni' (critical, on 'oci-mgmt-data' at oci) is backed up only to oci: no copy leaves its site.",
)
case(
    "DAT-08",
    "violate",
    "holder-not-in-the-job",
    lambda: S([data_volume(), dump_job(f"{OVH_S3}/offsite", holds=("authentik",))]),
    "'omni' (critical, on 'oci-mgmt-data' at oci) is covered by no backup job.",
)
case(
    "DAT-08",
    "violate",
    "unknown-endpoint-is-no-site",
    lambda: S([data_volume(holds="authentik"), dump_job(f"{MINIO_S3}/b", holds=("authentik",))]),
    "'authentik' (critical, on 'oci-mgmt-data' at oci) is backed up only to no known site: no copy leaves its site.",
)
case(
    "DAT-08",
    "violate",
    "namespace-not-scheduled",
    lambda: S([labelled_namespace("vaultwarden"), velero(OVH_S3, "offsite", ["immich"])]),
    "'vaultwarden' (critical, on 'ns-vaultwarden' at home) is covered by no backup job.",
)
case(
    "DAT-08",
    "unknown",
    "manifest-not-known",
    lambda: S([data_volume(), Res(COMMAND, "job", {"create": "x", "triggers": [UNKNOWN]})]),
    cannot_run=True,
)
# An unknown trigger elsewhere does not stop the rule when every holder is already covered offsite.
case(
    "DAT-08",
    "unknown",
    "other-trigger-unknown",
    lambda: S([data_volume(), dump_job(f"{OVH_S3}/o"), Res(COMMAND, "other", {"create": "x", "triggers": [UNKNOWN]})]),
)

# Holders a Proxmox VM or an OCI instance declares (etcd on a control plane); a Kubernetes job's
# manifest in its `homelab.dev/backup` annotation (the etcd snapshot CronJob).
CRONJOB = "kubernetes:batch/v1:CronJob"


def etcd_vm(*extra: str, holding: Sequence[str] = ("data-class-critical", "holds-prod-etcd")) -> Res:
    tags = sorted({"prod", "kubernetes", "talos", *holding, *extra})
    return Res(VM, "talos-prod-cp-1", {"name": "prod-cp-1", "nodeName": "pve", "tags": tags})


def etcd_instance() -> Res:
    tags = {"role": "talos-node", "data-class": "critical", "holds": "cloud-etcd"}
    return Res(INSTANCE, "cloud-cloud-1-instance", {"shape": "VM.Standard.A1.Flex", "freeformTags": tags})


def snapshot_job(*targets: str, holds: Sequence[str] = ("prod-etcd",), text: Any = None) -> Res:
    value = text if text is not None else json.dumps({"backup": {"holds": list(holds), "targets": list(targets)}})
    metadata = {"name": "etcd-backup", "namespace": "etcd-backup", "annotations": {"homelab.dev/backup": value}}
    return Res(CRONJOB, "etcd-backup-cronjob", {"metadata": metadata, "spec": {"schedule": "0 2 * * *"}})


case("DAT-08", "pass", "etcd-snapshot-leaves-home", lambda: S([etcd_vm(), snapshot_job(f"{OCI_S3}/b")]))
# Boundary: a holds tag alone declares no class, so the VM holds nothing the rule must follow.
case("DAT-08", "pass", "vm-holds-tag-without-class", lambda: S([etcd_vm(holding=("holds-prod-etcd",))]))
case(
    "DAT-08",
    "pass",
    "cloud-etcd-snapshot-at-ovh",
    lambda: S([etcd_instance(), snapshot_job(f"{OVH_S3}/offsite", holds=("cloud-etcd",))]),
)
case(
    "DAT-08",
    "violate",
    "vm-holder-without-job",
    lambda: S([etcd_vm()]),
    "'prod-etcd' (critical, on 'talos-prod-cp-1' at home) is covered by no backup job.",
)
case(
    "DAT-08",
    "violate",
    "cloud-etcd-snapshot-stays-on-oci",
    lambda: S([etcd_instance(), snapshot_job(f"{OCI_S3}/b", holds=("cloud-etcd",))]),
    "'cloud-etcd' (critical, on 'cloud-cloud-1-instance' at oci) is backed up only to oci: no copy leaves its site.",
)
case(
    "DAT-08",
    "violate",
    "annotation-not-a-manifest",
    lambda: S([etcd_vm(), snapshot_job(text="daily at 02:00")]),
    "'prod-etcd' (critical, on 'talos-prod-cp-1' at home) is covered by no backup job.",
)
# A VM that declares a class but names no holder is the holder itself (its VM name).
case(
    "DAT-08",
    "violate",
    "vm-class-without-holds-is-its-own-holder",
    lambda: S([etcd_vm(holding=("data-class-critical",)), snapshot_job(f"{OCI_S3}/b")]),
    "'prod-cp-1' (critical, on 'talos-prod-cp-1' at home) is covered by no backup job.",
)
case(
    "DAT-08",
    "unknown",
    "annotation-not-known",
    lambda: S([etcd_vm(), snapshot_job(text=UNKNOWN)]),
    cannot_run=True,
)

VELERO_SCHEDULE = "kubernetes:velero.io/v1:Schedule"


def velero_schedule(ttl: Any) -> Res:
    template: dict[str, Any] = {"includedNamespaces": ["vaultwarden"], "storageLocation": "offsite"}
    if ttl is not None:
        template["ttl"] = ttl
    spec = {"schedule": "0 2 * * *", "template": template}
    return Res(VELERO_SCHEDULE, "critical", {"apiVersion": "velero.io/v1", "kind": "Schedule", "spec": spec})


case("DAT-07", "pass", "velero-schedule-with-ttl", lambda: backup_stack(lifecycle(), velero_schedule("720h0m0s")))
case("DAT-07", "pass", "velero-ttl-boundary-at-minimum", lambda: backup_stack(lifecycle(), velero_schedule("168h0m0s")))
case(
    "DAT-07",
    "violate",
    "velero-ttl-boundary-under-minimum",
    lambda: backup_stack(lifecycle(), velero_schedule("167h59m0s")),
    "Velero schedule 'critical' keeps backups 167.983 hours, under the 7-day minimum.",
)
case(
    "DAT-07",
    "violate",
    "velero-schedule-without-ttl",
    lambda: backup_stack(lifecycle(), velero_schedule(None)),
    "Velero schedule 'critical' has no TTL (or one that does not parse: None).",
)
case(
    "DAT-07",
    "violate",
    "velero-override-min-keep-days",
    lambda: backup_stack(lifecycle(60, 60), velero_schedule("720h0m0s"), config={"minKeepDays": 60}),
    "Velero schedule 'critical' keeps backups 720 hours, under the 60-day minimum.",
)
case("DAT-07", "unknown", "velero-ttl", lambda: backup_stack(lifecycle(), velero_schedule(UNKNOWN)), cannot_run=True)
# Identity rules live in their own module (registered into CASES on import).
import tests.policies.cases_identity  # noqa: E402, F401

# --- NET-13 ------------------------------------------------------------------------------------
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def deny(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "default-deny-ingress", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], **spec},
    }


case(
    "NET-13",
    "pass",
    "deployment-and-release-denied",
    lambda: S(
        [
            Res(DEPLOYMENT, "web", deployment()),
            Res(NETPOL, "apps-deny", deny("apps")),
            Res(HELM_RELEASE, "eso", {"chart": "external-secrets", "namespace": "external-secrets"}),
            Res(NETPOL, "eso-deny", deny("external-secrets")),
        ]
    ),
)
case(
    "NET-13",
    "pass",
    "system-namespace",
    lambda: S([Res(HELM_RELEASE, "cilium", {"chart": "cilium", "namespace": "kube-system"})]),
)
case(
    "NET-13",
    "pass",
    "config-override-system-namespaces",
    lambda: S([Res(DEPLOYMENT, "web", deployment())], config={"systemNamespaces": ["kube-system", "apps"]}),
)
case(
    "NET-13",
    "violate",
    "no-policy",
    lambda: S([Res(DEPLOYMENT, "web", deployment())]),
    "namespace apps runs 'web' but has no default-deny ingress policy.",
)
case(
    "NET-13",
    "violate",
    "policy-with-ingress-rule-is-an-allow",
    lambda: S([Res(DEPLOYMENT, "web", deployment()), Res(NETPOL, "allow", deny("apps", ingress=[{"from": []}]))]),
    "namespace apps runs 'web' but has no default-deny ingress policy.",
)
case(
    "NET-13",
    "violate",
    "boundary-selects-some-pods-only",
    lambda: S(
        [
            Res(DEPLOYMENT, "web", deployment()),
            Res(
                NETPOL,
                "partial",
                {
                    "metadata": {"namespace": "apps"},
                    "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]},
                },
            ),
        ]
    ),
    "namespace apps runs 'web' but has no default-deny ingress policy.",
)
case(
    "NET-13",
    "violate",
    "policy-in-other-namespace",
    lambda: S(
        [Res(HELM_RELEASE, "argocd", {"chart": "argo-cd", "namespace": "argocd"}), Res(NETPOL, "d", deny("apps"))]
    ),
    "namespace argocd runs 'argocd' but has no default-deny ingress policy.",
)
case(
    "NET-13",
    "unknown",
    "release-namespace",
    lambda: S([Res(HELM_RELEASE, "app", {"chart": "app", "namespace": UNKNOWN})]),
    cannot_run=True,
)

# --- OPS-06 ------------------------------------------------------------------------------------
GITOPS = {"argocdObjects": ["Deployment/komga/komga", "ConfigMap/glance/glance-config"]}
case(
    "OPS-06",
    "pass",
    "not-in-gitops",
    lambda: R(NAMESPACE, {"metadata": {"name": "komga"}}, config=GITOPS),
)
case(
    "OPS-06",
    "pass",
    "same-name-other-namespace",
    lambda: R(DEPLOYMENT, {**deployment(), "metadata": {"name": "komga", "namespace": "apps"}}, config=GITOPS),
)
case(
    "OPS-06",
    "violate",
    "declared-in-gitops",
    lambda: R(DEPLOYMENT, {**deployment(), "metadata": {"name": "komga", "namespace": "komga"}}, config=GITOPS),
    "Deployment/komga/komga is declared under gitops/ (Argo CD) and created by this stack (Pulumi).",
)
case(
    "OPS-06",
    "violate",
    "tracked-by-argocd",
    lambda: R(
        CONFIGMAP,
        {"metadata": {"name": "x", "namespace": "apps", "labels": {"app.kubernetes.io/managed-by": "argocd"}}},
    ),
    "ConfigMap/apps/x is created by Pulumi but marked for Argo CD (managed-by: argocd).",
)
case(
    "OPS-06",
    "unknown",
    "name",
    lambda: R(CONFIGMAP, {"metadata": {"name": UNKNOWN, "namespace": "apps"}}, config=GITOPS),
    cannot_run=True,
)
