"""`TalosCluster`: one Talos Linux cluster, whatever its nodes run on.

Everything Talos lives here once (Image Factory schematic, machine secrets, machine configuration,
apply, bootstrap, health, kubeconfig, talosconfig); a `TalosSubstrate` only creates the machines.
The same component builds the DEV and PROD clusters on Proxmox and the CLOUD cluster on OCI.
"""

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NotRequired, TypedDict, TypeVar

import pulumi
import pulumiverse_talos as talos
import pulumiverse_talos.client as talos_client
import pulumiverse_talos.cluster as talos_cluster
import pulumiverse_talos.machine as talos_machine
from pulumi_command import local
from pulumiverse_talos import imagefactory

from components.talos import readiness
from components.talos.substrate import (
    BootImage,
    NodeRole,
    StaticNetwork,
    TalosNode,
    TalosSubstrate,
    required_extensions,
)

KUBERNETES_API_PORT = 6443
T = TypeVar("T")
TALOS_API_PORT = 50000


class TalosClusterArgs(TypedDict):
    """Inputs of `TalosCluster` (substrate-neutral)."""

    cluster_name: str
    """Kubernetes cluster name (`homelab-dev`); also the talosconfig context name."""
    endpoint_host: pulumi.Input[str]
    """Host or IP of the Kubernetes API endpoint; the cluster endpoint is `https://<host>:6443`."""
    talos_version: str
    """Talos release the nodes install, e.g. `v1.10.6`. Changing it never replaces a machine."""
    kubernetes_version: str
    """Kubernetes release written into the machine configuration, e.g. `1.33.3`."""
    nodes: Mapping[str, TalosNode]
    """Nodes keyed by stable node name."""
    substrate: TalosSubstrate
    """Where the machines run (Proxmox VMs, OCI instances)."""
    extensions: NotRequired[Sequence[str]]
    """Official Image Factory system extensions (e.g. `siderolabs/iscsi-tools`), on top of what the
    substrate requires."""
    network: NotRequired[StaticNetwork]
    """Static addressing written into the machine configuration; omit where the substrate's DHCP
    assigns `TalosNode.address` (clouds)."""
    config_contract: NotRequired[str]
    """Talos machine-configuration contract (`v1.10`). Defaults to the minor of `talos_version`;
    pin it to the version the cluster was created with so an OS upgrade does not switch on new
    config defaults behind your back."""
    extra_config_patches: NotRequired[Sequence[str]]
    """Further machine-configuration patches (YAML or JSON) applied to every node."""
    control_plane_config_patches: NotRequired[Sequence[str]]
    """Further patches applied to control-plane nodes only (etcd, API server, scheduler settings)."""
    api_endpoints: NotRequired[Sequence[pulumi.Input[str]]]
    """Where the Talos API is reached from the machine running Pulumi (talosctl `--endpoints`), when
    that is not the nodes' own addresses: a load balancer in front of nodes on private addresses.
    Each request still names its target by `TalosNode.address`; the endpoint's apid forwards it.
    Defaults to the control-plane addresses."""
    cert_sans: NotRequired[Sequence[pulumi.Input[str]]]
    """Extra names or IPs the nodes' Talos API and the Kubernetes API server certificates carry
    (`machine.certSANs`, `cluster.apiServer.certSANs`), so TLS to `api_endpoints` and to a cluster
    endpoint that is not a node address verifies."""


def talos_minor(version: str) -> str:
    """`v1.10.6` -> `v1.10` (the machine-configuration contract of a release)."""
    parts = version.lstrip("v").split(".")
    return f"v{parts[0]}.{parts[1]}"


def schematic_document(extensions: Sequence[str]) -> str:
    """The Image Factory customization for a set of official extensions (stable order)."""
    return json.dumps(
        {"customization": {"systemExtensions": {"officialExtensions": sorted(set(extensions))}}},
        sort_keys=True,
    )


def _machine_secrets_args(secrets: Any) -> talos_machine.MachineSecretsArgs:
    """Rebuild the generated secrets as Args classes: invokes serialise output objects with
    snake_case nested keys, which the provider rejects; Args classes go out in camelCase."""
    m = talos_machine

    def cert(value: Any) -> talos_machine.CertificateArgs:
        return m.CertificateArgs(cert=value.cert, key=value.key)

    certs = secrets.certs
    return m.MachineSecretsArgs(
        certs=m.CertificatesArgs(
            etcd=cert(certs.etcd),
            k8s=cert(certs.k8s),
            k8s_aggregator=cert(certs.k8s_aggregator),
            k8s_serviceaccount=m.KeyArgs(key=certs.k8s_serviceaccount.key),
            os=cert(certs.os),
        ),
        cluster=m.ClusterArgs(id=secrets.cluster.id, secret=secrets.cluster.secret),
        secrets=m.KubernetesSecretsArgs(
            bootstrap_token=secrets.secrets.bootstrap_token,
            secretbox_encryption_secret=secrets.secrets.secretbox_encryption_secret,
            aescbc_encryption_secret=secrets.secrets.aescbc_encryption_secret,
        ),
        trustdinfo=m.TrustdInfoArgs(token=secrets.trustdinfo.token),
    )


def node_patch(node: TalosNode, installer_image: str, network: StaticNetwork | None) -> str:
    """Per-node machine settings: install target, hostname and (on a LAN) static addressing."""
    machine_network: dict[str, Any] = {"hostname": node.name}
    if network is not None:
        machine_network["nameservers"] = list(network.nameservers)
        machine_network["interfaces"] = [
            {
                # The one virtio NIC; matching by kind keeps the patch valid whatever the kernel names it.
                "deviceSelector": {"physical": True},
                "dhcp": False,
                "addresses": [f"{node.address}/{network.prefix_length}"],
                "routes": [{"network": "0.0.0.0/0", "gateway": network.gateway}],
            }
        ]
    return json.dumps(
        {
            "machine": {
                "install": {"disk": node.install_disk, "image": installer_image, "wipe": False},
                "network": machine_network,
            }
        },
        sort_keys=True,
    )


def cert_sans_patch(sans: Sequence[str], role: NodeRole) -> str:
    """Extra certificate names: the Talos API on every node, the API server on control planes."""
    patch: dict[str, Any] = {"machine": {"certSANs": list(sans)}}
    if role == "controlplane":
        patch["cluster"] = {"apiServer": {"certSANs": list(sans)}}
    return json.dumps(patch, sort_keys=True)


def cluster_patch(nodes: Mapping[str, TalosNode]) -> str:
    """Cluster-wide settings: Cilium replaces both the default CNI and kube-proxy."""
    has_workers = any(n.role == "worker" for n in nodes.values())
    cluster: dict[str, Any] = {
        "network": {"cni": {"name": "none"}},
        "proxy": {"disabled": True},
    }
    if not has_workers:
        # A control-plane-only cluster (DEV's single node) must run workloads on that node.
        cluster["allowSchedulingOnControlPlanes"] = True
    return json.dumps({"cluster": cluster}, sort_keys=True)


class TalosCluster(pulumi.ComponentResource):
    """A Talos cluster: boot image, machines (via the substrate), configuration, bootstrap, access."""

    schematic_id: pulumi.Output[str]
    installer_image: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    node_addresses: pulumi.Output[dict[str, str]]
    kubeconfig: pulumi.Output[str]
    talosconfig: pulumi.Output[str]
    machines: Mapping[str, pulumi.Resource]
    """The substrate's machine per node (for `depends_on` by consumers)."""
    node_public_ips: pulumi.Output[dict[str, str]]
    """Public address per node, for the nodes whose machine has one (cloud instances); empty for
    machines on a private network (Proxmox VMs)."""
    ready: pulumi.Output[str]
    """The health gate's output: resolves once the one-time bootstrap check passed."""

    def __init__(self, name: str, args: TalosClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:talos:TalosCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        nodes = dict(sorted(args["nodes"].items()))
        control_planes = [n for n in nodes.values() if n.role == "controlplane"]
        if not control_planes:
            raise ValueError(f"TalosCluster {name!r} needs at least one control-plane node")
        substrate = args["substrate"]
        talos_version = args["talos_version"]
        contract = args.get("config_contract") or talos_minor(talos_version)
        network = args.get("network")

        extensions = [*required_extensions(substrate), *args.get("extensions", ())]
        schematic = imagefactory.Schematic(f"{name}-schematic", schematic=schematic_document(extensions), opts=child)
        urls = imagefactory.get_urls_output(
            talos_version=talos_version,
            schematic_id=schematic.id,
            platform=substrate.platform,
            architecture=substrate.architecture,
            opts=pulumi.InvokeOutputOptions(parent=self),
        ).urls
        self.schematic_id = schematic.id
        self.installer_image = urls.installer
        image = BootImage(
            talos_version=talos_version,
            schematic_id=schematic.id,
            installer_image=urls.installer,
            disk_image_url=urls.disk_image,
        )

        # The cluster's identity (CAs, bootstrap token, encryption keys): losing it means rebuilding
        # the cluster, and a new contract version must not regenerate it.
        secrets = talos_machine.Secrets(
            f"{name}-secrets",
            talos_version=contract,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    protect=True,
                    ignore_changes=["talosVersion"],
                    additional_secret_outputs=["machineSecrets", "clientConfiguration"],
                ),
            ),
        )
        machine_secrets = pulumi.Output.secret(secrets.machine_secrets.apply(_machine_secrets_args))
        client_configuration = secrets.client_configuration

        def client_args(convert: Callable[[Any], T]) -> pulumi.Output[T]:
            # The client key is an admin credential: keep it secret on every input it reaches.
            return pulumi.Output.secret(client_configuration.apply(convert))

        endpoint_host = pulumi.Output.from_input(args["endpoint_host"])
        self.endpoint = endpoint_host.apply(lambda host: f"https://{host}:{KUBERNETES_API_PORT}")
        shared_patches = [cluster_patch(nodes), *args.get("extra_config_patches", ())]
        # On a LAN every node answers the Talos API itself; behind a load balancer every request
        # enters there and names its target node, which the endpoint's apid reaches privately.
        explicit_endpoints: list[pulumi.Input[str]] = list(args.get("api_endpoints", ()))
        api_endpoints = explicit_endpoints or [n.address for n in control_planes]
        api_endpoint = api_endpoints[0]
        # Invokes take one Input of a list, not a list of Inputs.
        endpoint_list: pulumi.Output[list[str]] = pulumi.Output.all(*api_endpoints).apply(
            lambda endpoints: [str(e) for e in endpoints]
        )
        cert_sans: pulumi.Output[list[str]] = pulumi.Output.all(*args.get("cert_sans", ())).apply(
            lambda sans: sorted({str(s) for s in sans})
        )

        machine_configurations: dict[str, pulumi.Output[str]] = {}
        for key, node in nodes.items():
            node_patches = pulumi.Output.all(urls.installer, cert_sans).apply(
                lambda values, node=node: [
                    node_patch(node, values[0], network),
                    *([cert_sans_patch(values[1], node.role)] if values[1] else []),
                    *substrate.config_patches(node),
                ]
            )
            role_patches = list(args.get("control_plane_config_patches", ())) if node.role == "controlplane" else []
            patches = node_patches.apply(lambda own, role_patches=role_patches: [*shared_patches, *role_patches, *own])
            configuration = talos_machine.get_configuration_output(
                cluster_name=args["cluster_name"],
                cluster_endpoint=self.endpoint,
                machine_type=node.role,
                machine_secrets=machine_secrets,
                talos_version=contract,
                kubernetes_version=args["kubernetes_version"],
                config_patches=patches,
                docs=False,
                examples=False,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            machine_configurations[key] = pulumi.Output.secret(configuration.machine_configuration)

        self.machines = substrate.create_machines(self, image, nodes, machine_configurations)

        applies: dict[str, talos_machine.ConfigurationApply] = {}
        for key, node in nodes.items():
            applies[key] = talos_machine.ConfigurationApply(
                f"{name}-{key}-config",
                node=node.address,
                endpoint=explicit_endpoints[0] if explicit_endpoints else node.address,
                client_configuration=client_args(_client_args_as(talos_machine.ClientConfigurationArgs)),
                machine_configuration_input=machine_configurations[key],
                apply_mode="auto",
                # Deleting this resource must never wipe a node: a reset is an explicit talosctl step.
                on_destroy=talos_machine.ConfigurationApplyOnDestroyArgs(reset=False, graceful=True, reboot=False),
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        depends_on=[self.machines[key]], additional_secret_outputs=["machineConfiguration"]
                    ),
                ),
            )

        first = control_planes[0]
        bootstrap = talos_machine.Bootstrap(
            f"{name}-bootstrap",
            node=first.address,
            endpoint=api_endpoint,
            client_configuration=client_args(_client_args_as(talos_machine.ClientConfigurationArgs)),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=list(applies.values()))),
        )

        kubeconfig = talos_cluster.Kubeconfig(
            f"{name}-kubeconfig",
            node=first.address,
            endpoint=api_endpoint,
            client_configuration=client_args(_client_args_as(talos_cluster.KubeconfigClientConfigurationArgs)),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[bootstrap],
                    additional_secret_outputs=["kubeconfigRaw", "kubernetesClientConfiguration"],
                ),
            ),
        )

        # The health gate runs once, when the cluster is created, never on a later `up` (the
        # provider's health data source is capped at 5 minutes and ran on every `up`, so a slow first
        # boot failed and a powered-off DEV blocked every update). See components/talos/readiness.py.
        client = kubeconfig.kubernetes_client_configuration
        gate = local.Command(
            f"{name}-health-gate",
            create=pulumi.Output.all(self.endpoint, endpoint_list).apply(
                lambda values: readiness_command(values[0], values[1])
            ),
            update="echo 'health gate: checked when the cluster was bootstrapped; not repeated'",
            environment=pulumi.Output.secret(
                client.apply(
                    lambda c: {
                        readiness.ENV_CA: c.ca_certificate or "",
                        readiness.ENV_CERT: c.client_certificate or "",
                        readiness.ENV_KEY: c.client_key or "",
                    }
                )
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[bootstrap, kubeconfig])),
        )
        self.ready = gate.id
        # Consumers of the Kubernetes API (Cilium first) read the kubeconfig: it resolves after the gate.
        kubeconfig_raw = pulumi.Output.all(kubeconfig.kubeconfig_raw, gate.id).apply(lambda v: str(v[0]))
        self.kubeconfig = pulumi.Output.secret(kubeconfig_raw)

        talosconfig = talos_client.get_configuration_output(
            cluster_name=args["cluster_name"],
            client_configuration=client_args(_client_args_as(talos_client.GetConfigurationClientConfigurationArgs)),
            endpoints=endpoint_list,
            nodes=[n.address for n in nodes.values()],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.talosconfig = pulumi.Output.secret(talosconfig.talos_config)
        self.node_addresses = pulumi.Output.from_input({key: node.address for key, node in nodes.items()})
        public_ips: dict[str, pulumi.Output[str]] = {
            key: address
            for key, machine in self.machines.items()
            if isinstance(address := getattr(machine, "public_ip", None), pulumi.Output)
        }
        self.node_public_ips = pulumi.Output.all(**public_ips) if public_ips else pulumi.Output.from_input({})

        self.register_outputs(
            {
                "schematic_id": self.schematic_id,
                "installer_image": self.installer_image,
                "endpoint": self.endpoint,
                "node_addresses": self.node_addresses,
                "node_public_ips": self.node_public_ips,
                "kubeconfig": self.kubeconfig,
                "talosconfig": self.talosconfig,
                "ready": self.ready,
            }
        )


def readiness_command(kubernetes_endpoint: str, talos_endpoints: Sequence[str], timeout_seconds: int = 1200) -> str:
    """The one-time probe: Talos API endpoints open, Kubernetes `/readyz` ok, retried up to the deadline."""
    parts = ["python3", "-m", "components.talos.readiness", "--kubernetes-endpoint", kubernetes_endpoint]
    for endpoint in talos_endpoints:
        parts += ["--talos-endpoint", endpoint]
    parts += ["--timeout-seconds", str(int(timeout_seconds))]
    return " ".join(shlex.quote(p) for p in parts)


def _client_args_as(args_class: Callable[..., T]) -> Callable[[Any], T]:
    """Convert the generated client configuration into `args_class`: each Talos resource and invoke
    has its own Args type for the same three fields, and invokes need Args (not output objects)."""

    def convert(value: Any) -> T:
        return args_class(
            ca_certificate=value.ca_certificate,
            client_certificate=value.client_certificate,
            client_key=value.client_key,
        )

    return convert


def talos_provider(name: str, opts: pulumi.ResourceOptions | None = None) -> talos.Provider:
    """The explicit Talos provider (default providers are disabled project-wide)."""
    return talos.Provider(name, image_factory_url="https://factory.talos.dev", opts=opts)
