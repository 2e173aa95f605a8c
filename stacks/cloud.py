"""The `cloud` stack: OCI Always Free network, management VM, CLOUD Talos cluster, Cloudflare.

Composition only: config -> components -> outputs. Both tunnels live here (Cloudflare is one
account): `prod`'s connector runs in the PROD cluster at home (the prod stack reads
`tunnel_token_prod`), `cloud`'s runs in the management VM's Compose project.
"""

import dataclasses
from collections.abc import Mapping

import pulumi
import pulumi_twingate as twingate

from components.authentik.specs import OUTPOST_ORIGIN, NtfyPush
from components.cloudflare.provider import cloudflare_provider
from components.cloudflare.routes import TunnelRoute
from components.cloudflare.tunnel import AccessIdentityProvider, AccessSettings, GatedRecords, Tunnel, zone_id
from components.command import command_provider
from components.derived import SecretDeriver
from components.k8s.etcd_backup import talos_access_patch
from components.k8s.gateway import CatalogGateway, GatewayRoute, gateway_route, is_cluster_service_url
from components.k8s.network_policy import IngressAllows
from components.k8s.twingate import CLIENT_NAMESPACE, TwingateServiceAccess, TwingateSite
from components.monitoring.logs import talos_logging_patches
from components.oci.api_endpoint import TalosApiEndpoint
from components.oci.backups import OffsiteBucket, VolumeBackups
from components.oci.compose import ComposeImages, ManagementServices, omni_start_script
from components.oci.dump import DUMPED, NightlyDump, NightlyDumpArgs
from components.oci.lookups import availability_domain, object_storage_namespace, ubuntu_image
from components.oci.management_vm import ManagementVm
from components.oci.network import AlwaysFreeNetwork, AlwaysFreeNetworkArgs
from components.oci.node import AlwaysFreeNode
from components.oci.provider import OciProviderArgs, oci_provider
from components.oci.tags import freeform_tags
from components.oci.talos_substrate import OciTalosSubstrate
from components.s3bucket import S3Bucket
from components.talos.cilium import Cilium
from components.talos.cluster import TalosCluster, talos_provider
from components.talos.kubernetes import kubernetes_provider
from components.talos.substrate import TalosNode
from homelab.backup_evidence import NAMESPACE_LABEL
from homelab.budget import A1_FLEX, Layout, Machine, always_free_summary, bucket_tags
from stacks import telemetry
from stacks.backups import (
    Offsite,
    etcd_holding,
    holders,
    hostname_classes,
    offsite_storage,
    protection_rows,
    protections,
    retention_days,
    volume_holder_tags,
)
from stacks.catalog import ADMIN_GROUP, Catalog, Location, Service, build_catalog
from stacks.config import ConfigError, SecretSpec, load_config
from stacks.config.base import raise_first_problem
from stacks.config.cloud import DERIVED_LENGTH_BYTES, CloudConfig, DerivedSecret, cloud_problems
from stacks.config.identity import IdentityConfig
from stacks.identity import (
    ACCESS_CLIENT,
    IDENTITY_SECRETS,
    NTFY_TOKEN_SYMBOLS,
    IdentityPlan,
    identity_plan,
    ntfy_push,
    ntfy_token,
    smtp_relay,
)
from stacks.platform import (
    PLATFORM_SECRETS,
    TWINGATE_SECRETS,
    argocd_access,
    network_policies,
    platform_problems,
    policy_targets,
    secrets_layer,
    twingate_client,
)
from stacks.velero import (
    ETCD_SECRETS,
    cloud_bucket,
    cloud_velero_problems,
    etcd_backup_layer,
    oci_offsite,
    ovh_offsite,
    velero_layer,
    velero_scrape,
)
from stacks.velero import SECRETS as VELERO_SECRETS

__all__ = ["SECRETS", "build", "cloud_layout", "load"]

SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "ociPrivateKey",
        "the PEM private key of the OCI API user (its fingerprint is homelab:oci.fingerprint)",
    ),
    SecretSpec(
        "cloudflareApiToken",
        "a Cloudflare API token with Tunnel Edit, Access Apps and Policies Edit, DNS Edit and Zone Read",
    ),
    SecretSpec(
        "secretSeed",
        "at least 32 random bytes (`openssl rand -base64 48`) every generated secret of this stack is derived from",
    ),
    SecretSpec(
        "managementSshPrivateKey",
        "the OpenSSH private key matching homelab:management.ssh_public_key (Pulumi's login over the OCI Bastion)",
    ),
    SecretSpec(
        "ovhS3AccessKey",
        "the access key of the OVH Object Storage user (only with homelab:backups.ovh)",
        required=False,
        required_with="backups.ovh",
    ),
    SecretSpec(
        "ovhS3SecretKey",
        "the secret key of the OVH Object Storage user (only with homelab:backups.ovh)",
        required=False,
        required_with="backups.ovh",
    ),
    SecretSpec(
        "omniEtcdPrivateKey",
        "the ASCII-armored GPG private key Omni encrypts its etcd with (`gpg --export-secret-key --armor`)",
    ),
)
SECRETS = (*SECRETS, *PLATFORM_SECRETS, *TWINGATE_SECRETS, *IDENTITY_SECRETS, *VELERO_SECRETS, *ETCD_SECRETS)
# CLOUD apps are reached through the Cilium Gateway's Envoy (Cilium entity `ingress`) and scraped by Prometheus.
APP_INGRESS = IngressAllows(from_namespaces=("monitoring",), from_entities=("ingress",))

MANAGEMENT_NAME = "oci-mgmt"
TALOS_IMAGE_ARCHIVE_GB = 1
"""Upper bound of the Talos OCI image archive kept in the image bucket (counted in the ledger)."""


def cloud_layout(config: CloudConfig) -> Layout:
    """What the stack's instances and volumes count against the Always Free allowance."""
    management = config.management
    return Layout(
        machines=(
            Machine(
                MANAGEMENT_NAME,
                A1_FLEX,
                management.ocpus,
                management.memory_gb,
                management.boot_volume_gb,
                keeps_boot_volume=ManagementVm.KEEPS_BOOT_VOLUME,
            ),
            *(
                Machine(
                    name,
                    A1_FLEX,
                    node.ocpus,
                    node.memory_gb,
                    node.boot_volume_gb,
                    keeps_boot_volume=OciTalosSubstrate.KEEPS_BOOT_VOLUME,
                )
                for name, node in sorted(config.cluster.nodes.items())
            ),
        ),
        block_volumes_gb={f"{MANAGEMENT_NAME}-data": management.data_volume_gb},
        # The CLOUD cluster's admin entry point (`TalosApiEndpoint`).
        network_load_balancers=1,
        object_storage_gb={
            config.cluster.image_bucket: TALOS_IMAGE_ARCHIVE_GB,
            config.backups.oci_bucket.name: config.backups.oci_bucket.expected_gb,
        },
    )


def _routes(catalog: Catalog, location: Location, gateway: str | None, machines: bool) -> list[TunnelRoute]:
    """Tunnel routes of one location. The cloud connector runs beside the CLOUD cluster, not in it:
    it reaches cluster Services through the cluster Gateway (routing by Host), Compose services
    directly. Machine entries (the collectors' write paths) exist only with telemetry on."""

    def origin(service: Service) -> tuple[str, str | None]:
        if service.sso == "proxy":
            return OUTPOST_ORIGIN, None  # the outpost, never the app (it forwards after the login)
        # The same test decides the Gateway's routes (`_gateway_routes`), so both always agree.
        in_cluster = is_cluster_service_url(service.upstream)
        if gateway is not None and in_cluster:
            return gateway, service.hostname
        return service.upstream, None

    routes: list[TunnelRoute] = []
    for service in catalog.ordered(location):
        if service.is_machine and not machines:
            continue
        target, host_header = origin(service)
        routes.append(
            TunnelRoute(
                key=service.name,
                hostname=service.hostname,
                path=service.path,
                service=target,
                admin=service.is_admin,
                machine=service.is_machine,
                http_host_header=host_header,
                # A Tier-1 hostname resolves only once its Authentik application exists.
                deferred_dns=service.tier == "sso",
            )
        )
    return routes


def _gateway_routes(catalog: Catalog) -> list[GatewayRoute]:
    """One Gateway route per CLOUD-cluster service, or one ConfigError naming the service's key."""
    routes: list[GatewayRoute] = []
    for service in catalog.ordered("cloud"):
        if not is_cluster_service_url(service.upstream):
            continue  # a Compose service on the management VM, reached by the connector directly
        try:
            routes.append(gateway_route(service.name, service.hostname, service.upstream, service.path))
        except ValueError as exc:
            raise ConfigError(f"homelab:catalog.services.{service.name}.upstream: {exc}") from None
    return routes


def load() -> CloudConfig:
    """The stack's config, validated: every check that needs no resource, before any is registered."""
    config = load_config(CloudConfig, SECRETS)
    raise_first_problem(cloud_problems(config))
    _check_backup_credentials(config)
    _check_backup_budget(config)
    catalog = build_catalog(config.catalog.domain, config.catalog.services)
    raise_first_problem(platform_problems(config.platform, catalog.services, "cloud"))
    raise_first_problem(cloud_velero_problems(config))
    return config


def _check_backup_budget(config: CloudConfig) -> None:
    """Backups count against Always Free like everything else: the bucket must fit the object storage left."""
    layout = cloud_layout(config)
    others = sum(v for k, v in layout.object_storage_gb.items() if k != config.backups.oci_bucket.name)
    free = config.quota.object_storage_gb - others
    if config.backups.oci_bucket.expected_gb > free:
        raise ConfigError(
            f"homelab:backups.oci_bucket.expected_gb: {config.backups.oci_bucket.expected_gb:g} GB does not fit the "
            f"{free:g} GB of Always Free object storage left ({config.quota.object_storage_gb:g} GB in total)"
        )


def _check_backup_credentials(config: CloudConfig) -> None:
    """A backup target without credentials is an error naming its key (before anything registers)."""
    if config.backups.ovh is None:
        return
    # Presence only (no Output: this check runs before the program, outside any event loop).
    secrets = pulumi.Config("homelab")
    has = {key: secrets.get(key) is not None for key in ("ovhS3AccessKey", "ovhS3SecretKey")}
    if not all(has.values()):
        missing = ", ".join(k for k, v in has.items() if not v)
        raise ConfigError(
            f"homelab:backups.ovh: the OVH target has no credentials; set {missing} with `pulumi config set --secret`"
        )


def _offsite(
    config: CloudConfig,
    *,
    compartment: str,
    namespace: pulumi.Output[str],
    oci: pulumi.ProviderResource,
    stack: str,
    data_volume_id: pulumi.Output[str],
    node_boot_volume_ids: Mapping[str, pulumi.Output[str]],
) -> tuple[OffsiteBucket, pulumi.Output[str]]:
    """The offsite layer: the OCI backup bucket (and its S3 credentials), weekly volume backups of the
    management VM's data volume and of the CLOUD nodes' boot volumes (etcd, local volumes)."""
    backups = config.backups
    critical = backups.classes.get("critical")
    keep = retention_days((critical.offsite_keep if critical else None) or "30d")
    bucket_args = {
        "compartment_id": compartment,
        "namespace": namespace,
        "bucket_name": backups.oci_bucket.name,
        "keep_days": keep,
        "freeform_tags": freeform_tags(stack, "backups") | bucket_tags(backups.oci_bucket.expected_gb),
    }
    if backups.oci_bucket.issue_credentials:
        bucket_args["credentials_user_id"] = config.oci.user_ocid
    bucket = OffsiteBucket("offsite", bucket_args, opts=pulumi.ResourceOptions(providers=[oci]))  # type: ignore[arg-type]
    if backups.volume_backups.enabled:
        VolumeBackups(
            "volumes",
            {
                "compartment_id": compartment,
                "volume_ids": {
                    f"{MANAGEMENT_NAME}-data": data_volume_id,
                    **{f"{key}-boot": volume for key, volume in node_boot_volume_ids.items()},
                },
                "free_backups": backups.volume_backups.free_backups,
                "freeform_tags": freeform_tags(stack, "backups"),
                "day_of_week": backups.volume_backups.day_of_week,
                "hour_of_day": backups.volume_backups.hour_of_day,
            },
            opts=pulumi.ResourceOptions(providers=[oci]),
        )
    endpoint = namespace.apply(lambda ns: f"https://{ns}.compat.objectstorage.{config.oci.region}.oraclecloud.com")
    pulumi.export("offsite_bucket", {"name": bucket.bucket_name, "endpoint": endpoint, "region": config.oci.region})
    if bucket.access_key_id is not None and bucket.secret_access_key is not None:
        pulumi.export(
            "offsite_s3_credentials",
            pulumi.Output.secret(
                {"access_key_id": bucket.access_key_id, "secret_access_key": bucket.secret_access_key}
            ),
        )
    return bucket, endpoint


def build() -> None:
    config = load()
    catalog = build_catalog(config.catalog.domain, config.catalog.services)
    gateway_routes = _gateway_routes(catalog)
    stack = pulumi.get_stack()
    secrets = pulumi.Config("homelab")
    derived = SecretDeriver(
        secrets.require_secret("secretSeed"),
        "cloud",
        lengths={str(purpose): size for purpose, size in DERIVED_LENGTH_BYTES.items()},
        generations={str(purpose): generation for purpose, generation in config.rotation.items()},
    )
    # Identity (docs/runbooks/identity.md): what Authentik must hold, from the catalog. Client
    # secrets are derived from the seed, so Cloudflare Access can be told its secret before
    # Authentik exists.
    plan = identity_plan(
        catalog,
        config.identity,
        config.cloudflare.team_name,
        config.cluster.gateway_port,
        lambda slug, generation: derived.token(f"oidc/{slug}", length=32, generation=generation),
    )
    smtp_password = secrets.get_secret("smtpPassword")
    relay = smtp_relay(config.identity, smtp_password is not None)
    # Authentik's ntfy publish token: owned here, granted by `prod` (stacks/identity.py).
    generation = config.identity.ntfy_token_generation
    push = ntfy_push(
        config.identity,
        catalog,
        derived.raw("ntfy/authentik", length=NTFY_TOKEN_SYMBOLS, generation=generation).apply(ntfy_token),
    )
    pulumi.export("always_free_usage", always_free_summary(cloud_layout(config), config.quota.limits()))

    oci_settings = config.oci
    compartment = oci_settings.compartment_ocid
    oci = oci_provider(
        "oci",
        OciProviderArgs(
            region=oci_settings.region,
            tenancy_ocid=oci_settings.tenancy_ocid,
            user_ocid=oci_settings.user_ocid,
            fingerprint=oci_settings.fingerprint,
            private_key=secrets.require_secret("ociPrivateKey"),
        ),
    )
    commands = command_provider("command")
    cloudflare = cloudflare_provider("cloudflare", secrets.require_secret("cloudflareApiToken"))
    talos_api = talos_provider("talos")

    ad = availability_domain(oci_settings.tenancy_ocid, oci_settings.availability_domain_number, oci)
    omni = config.management.omni
    network_args: AlwaysFreeNetworkArgs = {
        "compartment_id": compartment,
        "vcn_cidr": str(config.network.vcn_cidr),
        "subnet_cidr": str(config.network.subnet_cidr),
        "bastion_subnet_cidr": str(config.network.bastion_subnet_cidr),
        "dns_label": config.network.dns_label,
        "admin_cidrs": [str(c) for c in config.network.admin_cidrs],
        "freeform_tags": freeform_tags(stack, "network"),
        "bastion_name": f"homelab{stack}".replace("-", ""),
    }
    if omni.wireguard_public:
        network_args["omni_wireguard_port"] = omni.wireguard_port
    network = AlwaysFreeNetwork("cloud", network_args, opts=pulumi.ResourceOptions(providers=[oci]))

    access_client = next(c for c in plan.oidc if c.slug == ACCESS_CLIENT)
    authentik_host = catalog.by_name("authentik").hostname
    idp = AccessIdentityProvider(
        "authentik-idp",
        {
            "account_id": config.cloudflare.account_id,
            "issuer": f"https://{authentik_host}/application/o/{ACCESS_CLIENT}/",
            "client_id": access_client.slug,
            "client_secret": access_client.client_secret,
        },
        opts=pulumi.ResourceOptions(providers=[cloudflare]),
    )

    # Tunnels first: the management VM's Compose project needs the cloud tunnel's token.
    access = AccessSettings(
        team_name=config.cloudflare.team_name,
        identity_provider_id=idp.id,
        admin_group=ADMIN_GROUP,
        session_duration=config.cloudflare.session_duration,
    )
    zone = zone_id(config.catalog.domain, cloudflare)
    first_control_plane = next(
        str(node.address) for _, node in sorted(config.cluster.nodes.items()) if node.role == "controlplane"
    )
    gateways: dict[Location, str | None] = {
        "prod": None,
        "cloud": f"http://{first_control_plane}:{config.cluster.gateway_port}",
    }
    tunnel_secrets: dict[Location, DerivedSecret] = {"prod": "tunnel_secret_prod", "cloud": "tunnel_secret_cloud"}
    # The collectors' service token, admitted on PROD's machine routes (stacks/telemetry.py).
    ingest = telemetry.ingest(catalog, config.telemetry, config.cloudflare.account_id, cloudflare)
    if ingest is not None:
        telemetry.export_ingest(ingest)  # DEV's collector reads both (stacks/dev.py)
    tunnels: dict[Location, Tunnel] = {}
    for location, secret_name in tunnel_secrets.items():
        tunnels[location] = Tunnel(
            location,
            {
                "account_id": config.cloudflare.account_id,
                "zone_id": zone,
                "tunnel_name": f"homelab-{location}",
                "tunnel_secret": derived.b64(secret_name),
                "routes": _routes(catalog, location, gateways[location], machines=ingest is not None),
                "access": access,
                "machine_token_ids": [ingest.token.token_id] if ingest is not None else [],
            },
            opts=pulumi.ResourceOptions(providers=[cloudflare]),
        )

    management = config.management
    images = management.images
    services = ManagementServices(
        images=ComposeImages(
            authentik=images.authentik,
            postgres=images.postgres,
            redis=images.redis,
            omni=images.omni,
            cloudflared=images.cloudflared,
        ),
        authentik_hostname=catalog.by_name("authentik").hostname,
        omni_hostname=catalog.by_name("omni").hostname,
        omni_account_id=omni.account_id,
        omni_name=omni.name,
        omni_initial_users=tuple(omni.initial_users),
        omni_wireguard_port=omni.wireguard_port if omni.wireguard_public else None,
        outpost_upstreams=tuple((catalog.by_name(app.slug).hostname, first_control_plane) for app in plan.proxy),
        smtp=relay,
        telemetry=telemetry.vm_collector(ingest, config.telemetry, MANAGEMENT_NAME) if ingest is not None else None,
    )
    bootstrap_token = derived.token("authentik_bootstrap_token")
    vm = ManagementVm(
        MANAGEMENT_NAME,
        {
            "compartment_id": compartment,
            "availability_domain": ad,
            "subnet_id": network.subnet_id,
            "nsg_ids": [network.management_nsg_id],
            "image_id": ubuntu_image(compartment, management.ubuntu_version, oci),
            "region": oci_settings.region,
            "ocpus": management.ocpus,
            "memory_gb": management.memory_gb,
            "boot_volume_gb": management.boot_volume_gb,
            "data_volume_gb": management.data_volume_gb,
            "private_ip": str(management.address),
            "ssh_public_key": management.ssh_public_key,
            "ssh_private_key": secrets.require_secret("managementSshPrivateKey"),
            "bastion_id": network.bastion_id,
            "services": services,
            "secrets": {
                "authentik_secret_key": derived.b64("authentik_secret_key"),
                "authentik_bootstrap_password": derived.token("authentik_bootstrap_password"),
                "authentik_bootstrap_token": bootstrap_token,
                "postgres_password": derived.token("postgres_password"),
                "omni_etcd_key": secrets.require_secret("omniEtcdPrivateKey"),
                "tunnel_token": tunnels["cloud"].token,
                # Empty when the relay takes mail without a login (or there is no relay).
                "smtp_password": pulumi.Output.secret(smtp_password or ""),
                **(telemetry.vm_secrets(ingest) if ingest is not None else {}),
            },
            "freeform_tags": freeform_tags(stack, "management"),
            "data_volume_tags": volume_holder_tags(holders(catalog), "management-vm"),
            "command_provider": commands,
        },
        opts=pulumi.ResourceOptions(providers=[oci]),
    )

    cluster_settings = config.cluster
    # The nodes sit on private addresses: admins reach their APIs through a load balancer that
    # exists before them, so its public address can go into their first machine configuration.
    api_endpoint = TalosApiEndpoint(
        "cloud-api",
        {
            "compartment_id": compartment,
            "vcn_id": network.vcn_id,
            "subnet_id": network.subnet_id,
            "subnet_cidr": str(config.network.subnet_cidr),
            "private_address": str(cluster_settings.api_endpoint.private_address),
            "control_plane_addresses": {
                name: str(node.address)
                for name, node in sorted(cluster_settings.nodes.items())
                if node.role == "controlplane"
            },
            "admin_cidrs": [str(c) for c in config.network.admin_cidrs],
            "backend_nsg_id": network.talos_nsg_id,
            "freeform_tags": freeform_tags(stack, "talos-api-endpoint"),
            "reserved_public_ip": cluster_settings.api_endpoint.reserved_public_ip,
        },
        opts=pulumi.ResourceOptions(providers=[oci]),
    )
    substrate = OciTalosSubstrate(
        compartment_id=compartment,
        availability_domain=ad,
        subnet_id=network.subnet_id,
        nsg_ids=(network.talos_nsg_id,),
        object_storage_namespace=object_storage_namespace(compartment, oci),
        bucket_name=cluster_settings.image_bucket,
        freeform_tags=freeform_tags(stack, "talos-node"),
        bucket_tags=bucket_tags(TALOS_IMAGE_ARCHIVE_GB),
        reserved_public_ip=frozenset(k for k, n in cluster_settings.nodes.items() if n.reserved_public_ip),
        region=oci_settings.region,
        # etcd is a critical data holder of the backup plan: its instances say so (DAT-08's evidence).
        control_plane_holding=etcd_holding("cloud"),
    )
    nodes = {
        name: TalosNode(
            name=name,
            role=node.role,
            address=str(node.address),
            cores=node.ocpus,
            memory_mb=node.memory_gb * 1024,
            disk_gb=node.boot_volume_gb,
        )
        for name, node in sorted(cluster_settings.nodes.items())
    }
    talos = TalosCluster(
        "cloud",
        {
            "cluster_name": cluster_settings.name,
            "endpoint_host": api_endpoint.address,
            "api_endpoints": [api_endpoint.serving_address],
            "cert_sans": [api_endpoint.address],
            "talos_version": cluster_settings.talos_version,
            "kubernetes_version": cluster_settings.kubernetes_version,
            "nodes": nodes,
            "substrate": substrate,
            # Talos's service and kernel logs to the node-local collector.
            "extra_config_patches": talos_logging_patches() if ingest is not None else [],
            # The etcd snapshot job's Talos API access (os:etcd:backup only, from its namespace).
            "control_plane_config_patches": [talos_access_patch()] if config.platform.etcd_backup else [],
        },
        opts=pulumi.ResourceOptions(providers=[talos_api, oci, commands]),
    )
    k8s = kubernetes_provider("cloud-kubernetes", talos.kubeconfig, cluster_identifier=cluster_settings.name)
    cilium = Cilium(
        "cilium",
        {
            "cluster_name": cluster_settings.name,
            "chart_version": config.cilium.chart_version,
            "gateway_api_version": config.cilium.gateway_api_version,
            # The cloud connector runs on the management VM, outside the cluster: the Gateway listens
            # on the nodes' port 80 (reachable inside the subnet only), not through a LoadBalancer.
            "gateway_host_network": True,
        },
        opts=pulumi.ResourceOptions(providers=[k8s]),
    )
    gateway = CatalogGateway(
        "cloud",
        {
            "routes": gateway_routes,
            "listener_port": config.cluster.gateway_port,
            # Each app namespace says what its data is worth: DAT-08 checks Velero copies it offsite.
            "backend_namespace_labels": {
                h.namespace: {NAMESPACE_LABEL: h.data_class}
                for h in holders(catalog)
                if h.location == "cloud" and h.namespace is not None
            },
        },
        opts=pulumi.ResourceOptions(providers=[k8s], depends_on=[cilium]),
    )
    collector = (
        telemetry.cluster_collector(
            "cloud",
            telemetry.remote_target(ingest),
            config.telemetry.alloy_chart,
            cluster_settings.name,
            pulumi.ResourceOptions(providers=[k8s], depends_on=[cilium]),
            # The backup alerts on PROD read Velero's and the etcd snapshot CronJob's series.
            pod_scrapes=[velero_scrape()] if config.platform.velero is not None else [],
            cron_job_metrics_chart=config.telemetry.kube_state_metrics_chart if config.platform.etcd_backup else None,
        )
        if ingest is not None
        else None
    )
    offsite_bucket, offsite_endpoint = _offsite(
        config,
        compartment=compartment,
        namespace=object_storage_namespace(compartment, oci),
        oci=oci,
        stack=stack,
        data_volume_id=vm.data_volume_id,
        # The nodes' boot volumes hold etcd and the local volumes (AlwaysFreeNode keeps them).
        node_boot_volume_ids={
            key: node.boot_volume_id for key, node in talos.machines.items() if isinstance(node, AlwaysFreeNode)
        },
    )
    oci_bucket = oci_offsite(
        config,
        name=offsite_bucket.bucket_name,
        endpoint=offsite_endpoint,
        access_key_id=offsite_bucket.access_key_id,
        secret_access_key=offsite_bucket.secret_access_key,
    )
    velero_bucket = (
        cloud_bucket(config, oci_bucket) if config.platform.velero is not None or config.platform.etcd_backup else None
    )
    _platform(
        config,
        catalog,
        k8s,
        cilium,
        gateway,
        api_endpoint.address,
        talos.kubeconfig,
        collector,
        velero_bucket,
        oci_bucket,
    )

    _identity(
        plan,
        catalog=catalog,
        bootstrap_token=bootstrap_token,
        vm=vm,
        tunnels=tunnels,
        cloudflare=cloudflare,
        zone=zone,
        services=services,
        settings=config.identity,
        ntfy=push,
    )

    pulumi.export("kubeconfig", talos.kubeconfig)
    pulumi.export("talosconfig", talos.talosconfig)
    pulumi.export("kubernetes_endpoint", talos.endpoint)
    pulumi.export("talos_api_endpoint", api_endpoint.address)
    pulumi.export("tunnel_token_prod", tunnels["prod"].token)
    pulumi.export("tunnel_token_cloud", tunnels["cloud"].token)
    pulumi.export("tunnel_ids", {location: tunnel.tunnel_id for location, tunnel in tunnels.items()})
    pulumi.export("authentik_url", f"https://{services.authentik_hostname}")
    pulumi.export("authentik_bootstrap_token", pulumi.Output.secret(bootstrap_token))
    pulumi.export("omni_url", f"https://{services.omni_hostname}")
    pulumi.export("management_private_ip", vm.private_ip)
    pulumi.export("cloud_node_public_ips", talos.node_public_ips)
    pulumi.export("bastion_id", network.bastion_id)

    built = {"primary", "bucket-version"} | ({"volume-backup"} if config.backups.volume_backups.enabled else set())
    if config.platform.velero is not None:
        built.add("velero")
    if config.platform.etcd_backup:
        built.add("etcd-snapshot")
    targets = _dump_targets(config, offsite_bucket, offsite_endpoint)
    offsite = Offsite(ovh_bucket=False, home_mirror=False)
    if targets:
        dump_args: NightlyDumpArgs = {
            "connection": vm.connection,
            "targets": targets,
            "encryption_key": derived.token("offsite_dump_key"),
            "calendar": config.backups.dump_calendar,
            "holders": DUMPED,
        }
        state_bucket = config.backups.state_bucket
        oci_target = next((t for t in targets if t.site == "oci"), None)
        if state_bucket is not None and oci_target is not None:
            # Every stack's state, read with the offsite bucket's credentials (same namespace and region).
            dump_args["state_source"] = dataclasses.replace(oci_target, bucket=state_bucket)
            built |= {"state-dump", "state-local"}
        NightlyDump(
            "management-db",
            dump_args,
            opts=pulumi.ResourceOptions(providers=[commands], depends_on=[vm.prepared, offsite_bucket]),
        )
        built.add("nightly-dump")
        offsite = Offsite(
            oci_bucket=any(t.site == "oci" for t in targets),
            ovh_bucket=any(t.site == "ovh" for t in targets),
            home_mirror=False,
        )
    rows = protection_rows(
        protections(catalog, offsite, config.backups.classes, location="cloud", built=frozenset(built))
    )
    pulumi.export("backup_protection", rows)
    pulumi.export("offsite_storage", offsite_storage(config.backups.ovh))
    # Both tunnels live here: every public route's data class, for `homelab exposure`.
    pulumi.export("data_classes", hostname_classes(catalog))


def _dump_targets(config: CloudConfig, bucket: OffsiteBucket, endpoint: pulumi.Output[str]) -> list[S3Bucket]:
    """Where the management VM's nightly dump goes: the OCI bucket (when its credentials are issued)
    and the OVH bucket (when configured): the copy that leaves OCI."""
    oci = oci_offsite(
        config,
        # The configured name (the bucket's own input), known at a first preview for DAT-08; the dump
        # waits for the bucket itself through `depends_on`.
        name=config.backups.oci_bucket.name,
        endpoint=endpoint,
        access_key_id=bucket.access_key_id,
        secret_access_key=bucket.secret_access_key,
    )
    return [b for b in (oci, ovh_offsite(config)) if b is not None]


def _identity(
    plan: IdentityPlan,
    *,
    catalog: Catalog,
    bootstrap_token: pulumi.Output[str],
    vm: ManagementVm,
    tunnels: dict[Location, Tunnel],
    cloudflare: pulumi.ProviderResource,
    zone: pulumi.Output[str],
    services: ManagementServices,
    settings: IdentityConfig,
    ntfy: NtfyPush | None,
) -> None:
    """Authentik's configuration, the Tier-1 hostnames it gates, Omni's start, and their exports."""
    from components.authentik.identity import AuthentikIdentity, authentik_provider  # noqa: PLC0415 (this stack's SDK)

    authentik_host = services.authentik_hostname
    authentik = authentik_provider("authentik", f"https://{authentik_host}", bootstrap_token, vm.authentik_ready)
    identity = AuthentikIdentity(
        "authentik",
        {
            "authentik_host": authentik_host,
            "mfa_for_all": settings.mfa_for_all,
            "password_min_length": settings.password_min_length,
            "email": services.smtp is not None,
            "ntfy": ntfy,
            "oidc_clients": plan.oidc,
            "proxy_apps": plan.proxy,
            "saml_apps": plan.saml,
            "service_accounts": plan.service_accounts,
            "ready": [vm.authentik_ready],
        },
        opts=pulumi.ResourceOptions(providers=[authentik]),
    )
    for location, tunnel in tunnels.items():
        tier1 = {s.name: (s.hostname, identity.gates[s.name]) for s in catalog.at(location) if s.tier == "sso"}
        if tier1:
            GatedRecords(
                f"{location}-gated",
                {
                    "zone_id": zone,
                    "cname_target": tunnel.cname_target,
                    "gates": tier1,
                    "comment": f"tunnel homelab-{location}; gated by Authentik; managed by Pulumi",
                },
                opts=pulumi.ResourceOptions(providers=[cloudflare]),
            )
    if any(app.slug == services.authentik_omni_slug for app in plan.saml):
        omni_start = omni_start_script(services.omni_saml_metadata_url)
        vm.start_deferred("omni", omni_start, identity.gates[services.authentik_omni_slug])

    for client in plan.oidc:
        if client.slug != ACCESS_CLIENT:
            pulumi.export(f"oidc_{client.slug}", pulumi.Output.secret(identity.oidc[client.slug].as_output()))
    pulumi.export("authentik_service_tokens", pulumi.Output.secret(identity.service_account_tokens))
    if ntfy is not None:
        pulumi.export("ntfy_identity_publisher", pulumi.Output.secret({"topic": ntfy.topic, "token": ntfy.token}))


def _platform(  # noqa: PLR0917 (one call site: the stack's own composition)
    config: CloudConfig,
    catalog: Catalog,
    k8s: pulumi.ProviderResource,
    cni: pulumi.Resource,
    gateway: CatalogGateway,
    api_address: pulumi.Input[str],
    kubeconfig: pulumi.Input[str],
    collector: pulumi.Resource | None = None,
    velero_bucket: S3Bucket | None = None,
    oci_bucket: S3Bucket | None = None,
) -> None:
    """Secrets, Argo CD's access, Twingate, Velero and the namespaces' network policies on CLOUD."""
    platform = config.platform
    on_cluster = pulumi.ResourceOptions(providers=[k8s], depends_on=[cni])
    layers: list[pulumi.Resource] = [gateway]
    platform_namespaces: list[str] = []
    if collector is not None:
        layers.append(collector)
        platform_namespaces.append(telemetry.NAMESPACE)
    eso = secrets_layer(platform, catalog.services, "cloud", on_cluster)
    if eso is not None:
        layers.append(eso)
        platform_namespaces += ["cert-manager", "external-secrets"]
    if platform.argocd_access:
        # PROD's Argo CD reaches this API through the admin-only load balancer (docs/decisions/platform-ownership.md).
        argocd_access(pulumi.Output.concat("https://", api_address, ":6443"), kubeconfig, on_cluster)
    if platform.twingate is not None:
        tg = platform.twingate
        provider = twingate.Provider(
            "twingate", api_token=pulumi.Config("homelab").require_secret("twingateApiToken"), network=tg.network
        )
        on_twingate = pulumi.ResourceOptions(providers=[provider], depends_on=[cni])
        layers.append(
            TwingateSite(
                "cloud",
                {
                    "network": tg.network,
                    "remote_network": tg.remote_network,
                    "location": tg.location,
                    "image": tg.image,
                    "kubernetes_provider": k8s,
                    "access_group_ids": [tg.access_group] if tg.access_group else [],
                },
                opts=on_twingate,
            )
        )
        # The identity CLOUD nodes use (headless client) to reach home Resources such as NFS media.
        nodes = TwingateServiceAccess("cloud-nodes", {"name": "homelab-cloud-nodes"}, opts=on_twingate)
        pulumi.export("twingate_service_account_id", nodes.service_account_id)
        pulumi.export("twingate_service_key", nodes.key)
        platform_namespaces.append("twingate")
        if tg.client is not None:
            layers += twingate_client(tg.client, nodes.key, k8s, on_cluster)
            platform_namespaces.append(CLIENT_NAMESPACE)
    if platform.velero is not None and velero_bucket is not None:
        velero = velero_layer(platform.velero, "cloud", catalog, config.backups.classes, velero_bucket, on_cluster)
        layers.append(velero)
        platform_namespaces.append("velero")
    if platform.etcd_backup and velero_bucket is not None:
        # The snapshots go where Velero's backups go (OVH when configured: the cloud's data leaves OCI)
        # and, beside OVH, to the OCI bucket too: small files, a third copy on a second medium.
        cluster = config.cluster
        first = next(str(n.address) for _, n in sorted(cluster.nodes.items()) if n.role == "controlplane")
        layers.append(
            etcd_backup_layer(
                "cloud",
                cluster.name,
                cluster.talos_version,
                first,
                config.backups.classes,
                [velero_bucket, *([oci_bucket] if oci_bucket is not None and velero_bucket.site != "oci" else [])],
                on_cluster,
            )
        )
        platform_namespaces.append("etcd-backup")
    app_namespaces = sorted(
        {s.namespace for s in catalog.at("cloud") if s.namespace is not None} | set(platform.namespaces)
    )
    network_policies(
        policy_targets(platform_namespaces, app_namespaces, APP_INGRESS),
        pulumi.ResourceOptions(providers=[k8s], depends_on=[cni, *layers]),
    )
