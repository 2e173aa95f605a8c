"""What the pack knows about resource types: tokens, families, and the closed world of known types.

Provider tokens move between SDK versions (pulumi-proxmoxve v8 renamed its VM), so rules match
sets of tokens, and OPS-04 fails on any custom resource type that is not listed here: a new
provider or a renamed token must be reviewed (and covered by rules) before it reaches `pulumi up`.
"""

from collections.abc import Mapping

# --- Proxmox VE (bpg provider through pulumi-proxmoxve 8.x; v7 tokens still matched) -----------
PVE_VM_TYPES = frozenset(
    {
        "proxmoxve:index/vmLegacy:VmLegacy",
        "proxmoxve:VM/virtualMachine:VirtualMachine",
    }
)
PVE_CONTAINER_TYPES = frozenset(
    {
        "proxmoxve:index/containerLegacy:ContainerLegacy",
        "proxmoxve:CT/container:Container",
    }
)
PVE_DOWNLOAD_TYPES = frozenset(
    {
        "proxmoxve:download/file:File",
        "proxmoxve:download/fileLegacy:FileLegacy",
        "proxmoxve:Download/file:File",
    }
)
PVE_ZFS_POOL_TYPES = frozenset({"proxmoxve:node/disk/zfs:Zfs"})
PVE_PBS_TYPES = frozenset({"proxmoxve:storage/pbs:Pbs", "proxmoxve:storage/pbsLegacy:PbsLegacy"})

# --- Oracle Cloud --------------------------------------------------------------------------------
OCI_SECURITY_LIST = "oci:Core/securityList:SecurityList"
OCI_DEFAULT_SECURITY_LIST = "oci:Core/defaultSecurityList:DefaultSecurityList"
OCI_SECURITY_LIST_TYPES = frozenset({OCI_SECURITY_LIST, OCI_DEFAULT_SECURITY_LIST})
OCI_NSG_RULE = "oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule"
OCI_VCN = "oci:Core/vcn:Vcn"
OCI_INSTANCE = "oci:Core/instance:Instance"
OCI_PUBLIC_IP = "oci:Core/publicIp:PublicIp"
OCI_VOLUME = "oci:Core/volume:Volume"
OCI_BOOT_VOLUME = "oci:Core/bootVolume:BootVolume"
OCI_BACKUP_TYPES = frozenset({"oci:Core/volumeBackup:VolumeBackup", "oci:Core/bootVolumeBackup:BootVolumeBackup"})
OCI_BUCKET = "oci:ObjectStorage/bucket:Bucket"
OCI_LIFECYCLE_POLICY = "oci:ObjectStorage/objectLifecyclePolicy:ObjectLifecyclePolicy"
OCI_VOLUME_BACKUP_POLICY = "oci:Core/volumeBackupPolicy:VolumeBackupPolicy"
VELERO_SCHEDULE = "kubernetes:velero.io/v1:Schedule"
PVE_BACKUP_JOB = "proxmoxve:backup/job:Job"
OCI_NLB = "oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer"

# --- Cloudflare (v6 tokens; the v5 DNS token is matched too) --------------------------------------
CF_TUNNEL = "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared"
CF_TUNNEL_CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
CF_DNS_TYPES = frozenset({"cloudflare:index/dnsRecord:DnsRecord", "cloudflare:index/record:Record"})
CF_ACCESS_APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
CF_ACCESS_POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"

# --- Kubernetes ------------------------------------------------------------------------------------
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
K8S_PVC = "kubernetes:core/v1:PersistentVolumeClaim"
K8S_STATEFULSET = "kubernetes:apps/v1:StatefulSet"
K8S_STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
K8S_HELM_TYPES = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"})

# --- Talos -----------------------------------------------------------------------------------------
TALOS_SECRETS = "talos:machine/secrets:Secrets"

# Inbound NAT / port-forward resources of router and cloud providers: none may exist (NFR-007,
# zero open ports). Kept beside the closed world so a new provider is reviewed against both.
PORT_FORWARD_TYPES: Mapping[str, str] = {
    "unifi:port/forward:Forward": "UniFi port forward",
    "unifi:index/portForward:PortForward": "UniFi port forward",
    "openstack:networking/portForwardingV2:PortForwardingV2": "OpenStack floating-IP port forwarding",
    "routeros:index/ipFirewallNat:IpFirewallNat": "MikroTik RouterOS NAT rule",
    "routeros:IpFirewallNat:IpFirewallNat": "MikroTik RouterOS NAT rule",
    "opnsense:index/firewallNat:FirewallNat": "OPNsense NAT rule",
    "pfsense:index/firewallNatPortForward:FirewallNatPortForward": "pfSense port forward",
}

# Every custom resource type the stacks register, plus the types the rules are written for (pod
# templates, Services, claims, volumes...), with what it is. Provider resources
# (`pulumi:providers:<pkg>`) are known when their package is. Adding a type here is a review step:
# check which rules cover it (and write the ones that should).
KNOWN_TYPES: Mapping[str, str] = {
    # Proxmox host and guests
    "proxmoxve:index/vmLegacy:VmLegacy": "Proxmox VM",
    "proxmoxve:download/file:File": "image download onto a Proxmox datastore",
    "proxmoxve:node/disk/zfs:Zfs": "ZFS pool",
    "proxmoxve:storage/zfspool:Zfspool": "Proxmox storage backed by a ZFS dataset",
    "proxmoxve:storage/pbs:Pbs": "Proxmox Backup Server storage",
    "proxmoxve:storage/directory:Directory": "Proxmox storage backed by a host directory",
    PVE_BACKUP_JOB: "vzdump backup job (schedule, guests, retention)",
    "proxmoxve:index/roleLegacy:RoleLegacy": "Proxmox API role",
    "proxmoxve:index/userLegacy:UserLegacy": "Proxmox API user",
    "proxmoxve:user/token:Token": "Proxmox API token",
    "proxmoxve:network/linux/bridge:Bridge": "Linux bridge on the host",
    "proxmoxve:hardware/mapping/pci:Pci": "PCI resource mapping (GPU passthrough)",
    # Host configuration over SSH and local tooling
    "command:remote:Command": "command run on a host over SSH",
    "command:remote:CopyToRemote": "file copied to a host over SSH",
    "command:local:Command": "command run on the machine running Pulumi",
    # Talos
    "talos:imageFactory/schematic:Schematic": "Talos Image Factory schematic",
    "talos:machine/secrets:Secrets": "Talos cluster PKI and tokens",
    "talos:machine/configurationApply:ConfigurationApply": "Talos machine configuration",
    "talos:machine/bootstrap:Bootstrap": "Talos etcd bootstrap",
    "talos:cluster/kubeconfig:Kubeconfig": "Kubernetes admin credentials from Talos",
    # Oracle Cloud
    "oci:Core/vcn:Vcn": "OCI virtual cloud network",
    "oci:Core/subnet:Subnet": "OCI subnet",
    "oci:Core/internetGateway:InternetGateway": "OCI internet gateway (egress)",
    "oci:Core/routeTable:RouteTable": "OCI route table",
    "oci:Core/securityList:SecurityList": "OCI security list",
    "oci:Core/defaultSecurityList:DefaultSecurityList": "OCI default security list (taken over)",
    "oci:Core/networkSecurityGroup:NetworkSecurityGroup": "OCI network security group",
    "oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule": "OCI NSG rule",
    "oci:Core/instance:Instance": "OCI compute instance",
    "oci:Core/image:Image": "OCI custom image",
    "oci:Core/shapeManagement:ShapeManagement": "OCI image shape compatibility",
    "oci:Core/volume:Volume": "OCI block volume",
    OCI_VOLUME_BACKUP_POLICY: "OCI volume backup policy (schedule and retention)",
    "oci:Core/volumeBackupPolicyAssignment:VolumeBackupPolicyAssignment": "OCI volume backup policy assignment",
    OCI_LIFECYCLE_POLICY: "OCI Object Storage lifecycle policy (retention of objects and versions)",
    "oci:Core/volumeAttachment:VolumeAttachment": "OCI block volume attachment",
    "oci:Core/bootVolume:BootVolume": "OCI boot volume",
    "oci:Core/publicIp:PublicIp": "OCI public IP",
    "oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer": "OCI network load balancer",
    "oci:NetworkLoadBalancer/listener:Listener": "OCI network load balancer listener",
    "oci:NetworkLoadBalancer/networkLoadBalancersBackendSetsUnified:NetworkLoadBalancersBackendSetsUnified": (
        "OCI network load balancer backend set"
    ),
    "oci:ObjectStorage/bucket:Bucket": "OCI object storage bucket",
    "oci:ObjectStorage/storageObject:StorageObject": "OCI object storage object",
    "oci:Bastion/bastion:Bastion": "OCI Bastion (managed SSH jump, no open port)",
    "oci:Bastion/session:Session": "OCI Bastion session (time-limited)",
    "oci:Identity/customerSecretKey:CustomerSecretKey": "OCI S3-compatible credentials",
    # Cloudflare
    "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared": "Cloudflare tunnel",
    "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig": "tunnel ingress",
    "cloudflare:index/dnsRecord:DnsRecord": "Cloudflare DNS record",
    "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication": "Cloudflare Access application",
    "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy": "Cloudflare Access policy",
    # SEC-10 (clientSecret stays a secret output), SEC-03 (the machine routes it admits).
    "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken": "Cloudflare Access service token",
    "cloudflare:index/zeroTrustAccessIdentityProvider:ZeroTrustAccessIdentityProvider": "Access identity provider",
    # Authentik (identity layer of the cloud stack; SEC-20..SEC-24 cover applications, gates and MFA)
    **{
        f"authentik:index/{t[0].lower() + t[1:]}:{t}": what
        for t, what in {
            "Group": "Authentik group",
            "User": "Authentik user (service account)",
            "Token": "Authentik API token",
            "RbacRole": "Authentik RBAC role",
            "RbacPermissionRole": "Authentik RBAC permission of a role",
            "Flow": "Authentik flow",
            "FlowStageBinding": "Authentik stage bound to a flow",
            "PolicyBinding": "Authentik policy/group binding",
            "PolicyPassword": "Authentik password policy",
            "PolicyEventMatcher": "Authentik event matcher policy",
            "EventRule": "Authentik notification rule",
            "EventTransport": "Authentik notification transport",
            "Brand": "Authentik brand (flows per domain)",
            "Blueprint": "Authentik blueprint (embedded outpost providers)",
            "Application": "Authentik application",
            "ProviderOauth2": "Authentik OAuth2/OIDC provider",
            "ProviderProxy": "Authentik proxy provider",
            "ProviderSaml": "Authentik SAML provider",
            "PropertyMappingProviderSaml": "Authentik SAML attribute mapping",
            "PropertyMappingNotification": "Authentik notification mapping (webhook body or headers; SEC-10)",
            "StagePrompt": "Authentik prompt stage",
            "StagePromptField": "Authentik prompt field",
            "StageUserWrite": "Authentik user-write stage",
            "StageUserLogin": "Authentik login stage",
            "StageUserLogout": "Authentik logout stage",
            "StageDeny": "Authentik deny stage",
            "StageInvitation": "Authentik invitation stage",
            "StageIdentification": "Authentik identification stage",
            "StagePassword": "Authentik password stage",
            "StageEmail": "Authentik e-mail stage",
            "StageAuthenticatorTotp": "Authentik TOTP enrolment stage",
            "StageAuthenticatorWebauthn": "Authentik WebAuthn enrolment stage",
            "StageAuthenticatorValidate": "Authentik MFA validation stage",
        }.items()
    },
    # Kubernetes
    "kubernetes:core/v1:Namespace": "Kubernetes namespace",
    "kubernetes:core/v1:Secret": "Kubernetes secret",
    "kubernetes:core/v1:ConfigMap": "Kubernetes config map",
    "kubernetes:core/v1:Service": "Kubernetes service",
    "kubernetes:core/v1:ServiceAccount": "Kubernetes service account",
    "kubernetes:core/v1:PersistentVolumeClaim": "Kubernetes volume claim",
    "kubernetes:apps/v1:Deployment": "Kubernetes deployment",
    "kubernetes:apps/v1:StatefulSet": "Kubernetes stateful set",
    "kubernetes:apps/v1:DaemonSet": "Kubernetes daemon set",
    "kubernetes:batch/v1:Job": "Kubernetes job",
    "kubernetes:batch/v1:CronJob": "Kubernetes cron job",
    "kubernetes:storage.k8s.io/v1:StorageClass": "Kubernetes storage class",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole": "Kubernetes cluster role",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": "Kubernetes cluster role binding",
    "kubernetes:helm.sh/v3:Release": "Helm release",
    "kubernetes:helm.sh/v4:Chart": "Helm chart (rendered objects)",
    # Children of ConfigFile/ConfigGroup are registered by the Kubernetes provider under the
    # object's own type: the Gateway API CRDs arrive as CustomResourceDefinitions.
    "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition": "Kubernetes custom resource definition",
    # Gateway API (routes generated from the service catalog; no Service of type LoadBalancer)
    "kubernetes:gateway.networking.k8s.io/v1:Gateway": "Gateway API gateway",
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": "Gateway API HTTP route",
    "kubernetes:gateway.networking.k8s.io/v1beta1:ReferenceGrant": "Gateway API cross-namespace grant",
    "kubernetes:core/v1:LimitRange": "Kubernetes limit range",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": "Kubernetes network policy (default-deny and allows)",
    "kubernetes:cilium.io/v2:CiliumNetworkPolicy": "Cilium network policy (allows from cluster entities)",
    # Platform CRDs (cert-manager, External Secrets, Argo CD)
    "kubernetes:cert-manager.io/v1:ClusterIssuer": "cert-manager cluster issuer",
    "kubernetes:cert-manager.io/v1:Issuer": "cert-manager issuer",
    "kubernetes:cert-manager.io/v1:Certificate": "cert-manager certificate (private CA, SDK server TLS)",
    "kubernetes:external-secrets.io/v1:ClusterSecretStore": "External Secrets store (Bitwarden project)",
    "kubernetes:external-secrets.io/v1:ExternalSecret": "External Secrets secret (explicit Bitwarden keys)",
    "kubernetes:argoproj.io/v1alpha1:ApplicationSet": "Argo CD ApplicationSet (the gitops/ root)",
    "kubernetes:argoproj.io/v1alpha1:Application": "Argo CD Application",
    # Twingate (no inbound port: connectors dial out)
    "twingate:index/twingateRemoteNetwork:TwingateRemoteNetwork": "Twingate remote network",
    "twingate:index/twingateConnector:TwingateConnector": "Twingate connector",
    "twingate:index/twingateConnectorTokens:TwingateConnectorTokens": "Twingate connector tokens",
    "twingate:index/twingateResource:TwingateResource": "Twingate resource (address and ports)",
    "twingate:index/twingateServiceAccount:TwingateServiceAccount": "Twingate service account",
    "twingate:index/twingateServiceAccountKey:TwingateServiceAccountKey": "Twingate service account key",
    # prometheus-operator objects (alerts, probes and scrape targets generated from the catalog and
    # the threshold table; they configure Prometheus and expose nothing)
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": "Prometheus alert rules",
    # Velero (DAT-07: every schedule keeps its backups for a set time)
    "kubernetes:velero.io/v1:BackupStorageLocation": "Velero backup storage location (the offsite bucket)",
    "kubernetes:velero.io/v1:Schedule": "Velero backup schedule (one per data class)",
    # Talos' own API credential for a namespace (spec.roles; the control planes' machine config
    # limits the roles it may hold): it grants no Kubernetes permission and exposes nothing.
    "kubernetes:talos.dev/v1alpha1:ServiceAccount": "Talos API service account (etcd snapshots)",
    "kubernetes:monitoring.coreos.com/v1:Probe": "blackbox probe",
    "kubernetes:monitoring.coreos.com/v1:PodMonitor": "Prometheus pod scrape",
    "kubernetes:monitoring.coreos.com/v1alpha1:ScrapeConfig": "Prometheus static scrape target",
    # Pulumi itself
    "pulumi:pulumi:StackReference": "reference to another stack's outputs",
}

# Providers the program may configure (`pulumi:providers:<package>`).
KNOWN_PROVIDER_PACKAGES = frozenset(
    {"proxmoxve", "talos", "oci", "cloudflare", "kubernetes", "command", "authentik", "twingate"}
)

# Component tokens of provider SDKs (remote or multi-language components); our own components
# (`homelab:*`) are known by construction: they register nothing a provider manages themselves.
KNOWN_COMPONENT_TYPES = frozenset(
    {"kubernetes:helm.sh/v4:Chart", "kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup"}
)


def is_known_type(resource_type: str) -> bool:
    if resource_type in KNOWN_TYPES or resource_type in KNOWN_COMPONENT_TYPES:
        return True
    if resource_type.startswith("homelab:") or resource_type == "pulumi:pulumi:Stack":
        return True
    if resource_type.startswith("pulumi:providers:"):
        return resource_type.removeprefix("pulumi:providers:") in KNOWN_PROVIDER_PACKAGES
    return False
