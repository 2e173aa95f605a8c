"""Twingate (FR-010): a connector per site, the Resources behind it, and who may reach them.

A Twingate connector only dials out (to the Twingate relays/controller, TCP 443 and UDP 30000-31000
for peer-to-peer), so the home router opens no port: a client is admitted by the Twingate
controller, and its traffic to a Resource flows through the outbound connection the connector
keeps. The Remote Network, the connector, its tokens and the Resources are created with Twingate's
own Pulumi provider (`pulumi_twingate`, maintained by Twingate); the tokens never leave Pulumi's
state and a Kubernetes Secret (both secret). Only the tenant, the admin API token and the access
groups are made by hand in the admin console (docs/runbooks/platform.md).

Resources are narrow: one address and the TCP ports it needs (NFS: 2049), nothing else, and only
the listed groups or service accounts may use them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_twingate as twingate

from components.k8s.labels import managed_labels, namespace_metadata

NAMESPACE = "twingate"


@dataclass(frozen=True)
class TwingateTarget:
    """A Twingate Resource: one address and the TCP ports clients may use on it."""

    address: str
    tcp_ports: tuple[str, ...]


class TwingateSiteArgs(TypedDict):
    network: str
    """The tenant, `<network>.twingate.com`."""
    remote_network: str
    location: str
    image: str
    """Connector image at an exact tag, e.g. `twingate/connector:1.80.0`."""
    kubernetes_provider: pulumi.ProviderResource
    targets: NotRequired[Mapping[str, TwingateTarget]]
    access_group_ids: NotRequired[Sequence[pulumi.Input[str]]]
    access_service_account_ids: NotRequired[Sequence[pulumi.Input[str]]]


class TwingateSite(pulumi.ComponentResource):
    """A Remote Network with one connector running in this cluster, and its Resources.

    Pass the Twingate provider in `opts.providers`; the Kubernetes objects use `kubernetes_provider`.
    """

    remote_network_id: pulumi.Output[str]
    connector_id: pulumi.Output[str]

    def __init__(self, name: str, args: TwingateSiteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:TwingateSite", name, None, opts)
        image = args["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or not tag[0].isdigit():
            raise ValueError(f"TwingateSite {name!r}: image {image!r} must carry an exact version tag")
        child = pulumi.ResourceOptions(parent=self)
        network = twingate.TwingateRemoteNetwork(
            f"{name}-network", name=args["remote_network"], location=args["location"], opts=child
        )
        connector = twingate.TwingateConnector(
            f"{name}-connector", remote_network_id=network.id, name=f"{name}-connector-1", opts=child
        )
        # The SDK marks both tokens secret itself.
        tokens = twingate.TwingateConnectorTokens(f"{name}-tokens", connector_id=connector.id, opts=child)
        groups = list(args.get("access_group_ids", ()))
        services = list(args.get("access_service_account_ids", ()))
        for key, target in sorted(args.get("targets", {}).items()):
            if not target.tcp_ports:
                raise ValueError(f"TwingateSite {name!r}: target {key!r} names no TCP port")
            twingate.TwingateResource(
                f"{name}-{key}",
                name=key,
                address=target.address,
                remote_network_id=network.id,
                protocols=twingate.TwingateResourceProtocolsArgs(
                    allow_icmp=False,
                    tcp=twingate.TwingateResourceProtocolsTcpArgs(policy="RESTRICTED", ports=list(target.tcp_ports)),
                    udp=twingate.TwingateResourceProtocolsUdpArgs(policy="DENY_ALL"),
                ),
                access_groups=[twingate.TwingateResourceAccessGroupArgs(group_id=g) for g in groups] or None,
                access_services=[twingate.TwingateResourceAccessServiceArgs(service_account_id=s) for s in services]
                or None,
                opts=child,
            )

        on_cluster = pulumi.ResourceOptions(parent=self, provider=args["kubernetes_provider"])
        labels = managed_labels("twingate-connector")
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(NAMESPACE, "restricted"), opts=on_cluster
        )
        in_ns = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespace]))
        secret = k8s.core.v1.Secret(
            f"{name}-connector-tokens",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="connector-tokens", namespace=NAMESPACE, labels=labels),
            type="Opaque",
            string_data=pulumi.Output.secret(
                {"access-token": tokens.access_token, "refresh-token": tokens.refresh_token}
            ),
            opts=in_ns,
        )

        def from_secret(key: str) -> k8s.core.v1.EnvVarSourceArgs:
            return k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret.metadata.name, key=key)
            )

        k8s.apps.v1.Deployment(
            f"{name}-connector",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="twingate-connector", namespace=NAMESPACE, labels=labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # One connector per site; a second would need its own tokens (one token pair per connector).
                replicas=1,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=65532,
                            run_as_group=65532,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="connector",
                                image=image,
                                env=[
                                    k8s.core.v1.EnvVarArgs(name="TWINGATE_NETWORK", value=args["network"]),
                                    k8s.core.v1.EnvVarArgs(
                                        name="TWINGATE_ACCESS_TOKEN", value_from=from_secret("access-token")
                                    ),
                                    k8s.core.v1.EnvVarArgs(
                                        name="TWINGATE_REFRESH_TOKEN", value_from=from_secret("refresh-token")
                                    ),
                                    k8s.core.v1.EnvVarArgs(name="TWINGATE_LABEL_DEPLOYED_BY", value="pulumi"),
                                ],
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                    read_only_root_filesystem=False,
                                ),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "256Mi"}
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=in_ns,
        )
        self.remote_network_id = network.id
        self.connector_id = connector.id
        self.register_outputs({"remote_network_id": network.id, "connector_id": connector.id})


class TwingateServiceAccessArgs(TypedDict):
    name: str


class TwingateServiceAccess(pulumi.ComponentResource):
    """A Twingate service account and its key: how a headless client (CLOUD nodes) reaches home Resources."""

    service_account_id: pulumi.Output[str]
    key: pulumi.Output[str]

    def __init__(self, name: str, args: TwingateServiceAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:TwingateServiceAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = twingate.TwingateServiceAccount(f"{name}-account", name=args["name"], opts=child)
        key = twingate.TwingateServiceAccountKey(
            f"{name}-key",
            service_account_id=account.id,
            name=f"{args['name']}-key",
            opts=child,
        )
        self.service_account_id = account.id
        self.key = pulumi.Output.secret(key.token)
        self.register_outputs({"service_account_id": account.id})


CLIENT_NAMESPACE = "twingate-client"
SERVICE_KEY_FILE = "service_key.json"
SERVICE_KEY_DIR = "/etc/twingate"


class TwingateClientArgs(TypedDict):
    image: str
    """Headless client image at an exact tag (`twingate/client:<version>`)."""
    service_key: pulumi.Input[str]
    """The service account key (`TwingateServiceAccess.key`); kept secret."""
    kubernetes_provider: pulumi.ProviderResource


class TwingateClient(pulumi.ComponentResource):
    """The headless Twingate client on every node of this cluster, so the nodes reach the Resources
    the service account may use (the home NFS export) without a port opened anywhere.

    Why on the host network: a Twingate Resource is reached by a *client*, which adds a TUN interface
    and routes for the Resources' addresses. Volumes are mounted by the node (the kubelet and the NFS
    CSI node plugin, both on the host network), not by the pod that uses them, so the routes must be
    in the node's network namespace: one client per node, `hostNetwork`, `NET_ADMIN` and the node's
    `/dev/net/tun`, as root (Twingate's documented container setup, image `twingate/client`, with the
    key at `/etc/twingate/service_key.json`). That is a privileged workload: it runs alone in a
    namespace of its own whose Pod Security level is `privileged`, under recorded exemptions
    (policies/exemptions.yaml). Resources addressed by IP need no Twingate DNS on the node.

    The key reaches the node only through a Secret (mode 0400 in the pod). A rotated key updates the
    Secret; the pods read it when they start (`kubectl -n twingate-client rollout restart ds/twingate-client`).
    """

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: TwingateClientArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:TwingateClient", name, None, opts)
        image = args["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or not tag[0].isdigit():
            raise ValueError(f"TwingateClient {name!r}: image {image!r} must carry an exact version tag")
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args["kubernetes_provider"])
        labels = managed_labels("twingate-client")
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(CLIENT_NAMESPACE, "privileged"), opts=on_cluster
        )
        in_ns = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespace]))
        secret = k8s.core.v1.Secret(
            f"{name}-service-key",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="service-key", namespace=CLIENT_NAMESPACE, labels=labels),
            type="Opaque",
            string_data=pulumi.Output.secret(
                pulumi.Output.from_input(args["service_key"]).apply(lambda key: {SERVICE_KEY_FILE: key})
            ),
            opts=in_ns,
        )
        k8s.apps.v1.DaemonSet(
            f"{name}-daemonset",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="twingate-client", namespace=CLIENT_NAMESPACE, labels=labels),
            spec=k8s.apps.v1.DaemonSetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                update_strategy=k8s.apps.v1.DaemonSetUpdateStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDaemonSetArgs(max_unavailable=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        host_network=True,
                        # Cluster names still resolve for the client itself on the host network.
                        dns_policy="ClusterFirstWithHostNet",
                        automount_service_account_token=False,
                        # Every node mounts volumes, control planes included (CLOUD schedules on them).
                        tolerations=[
                            k8s.core.v1.TolerationArgs(
                                key="node-role.kubernetes.io/control-plane", operator="Exists", effect="NoSchedule"
                            )
                        ],
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="client",
                                image=image,
                                # The documented container setup: root, the runtime's default
                                # capabilities plus NET_ADMIN (the TUN interface and its routes).
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    run_as_user=0,
                                    run_as_non_root=False,
                                    allow_privilege_escalation=False,
                                    privileged=False,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(add=["NET_ADMIN"]),
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="service-key",
                                        mount_path=f"{SERVICE_KEY_DIR}/{SERVICE_KEY_FILE}",
                                        sub_path=SERVICE_KEY_FILE,
                                        read_only=True,
                                    ),
                                    k8s.core.v1.VolumeMountArgs(name="tun", mount_path="/dev/net/tun"),
                                ],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "256Mi"}
                                ),
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="service-key",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(
                                    secret_name=secret.metadata.name, default_mode=0o400
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tun",
                                host_path=k8s.core.v1.HostPathVolumeSourceArgs(path="/dev/net/tun", type="CharDevice"),
                            ),
                        ],
                    ),
                ),
            ),
            opts=in_ns,
        )
        self.namespace = namespace.metadata.apply(lambda m: m.name or CLIENT_NAMESPACE)
        self.register_outputs({"namespace": self.namespace})
