"""The platform layer as each stack composes it: config -> component args, and the checks that span keys.

Shared by `prod` and `cloud` (and `dev` for Argo CD's access): secrets (cert-manager, External
Secrets, the store, the catalog's app secrets), network policies, Argo CD, Longhorn, Twingate.
Every bad value is one `ConfigError` naming its key, raised before any resource is registered.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

from components.k8s.argocd import ArgoCd, ArgoCdClusterAccess, OidcClient, RegisteredCluster
from components.k8s.crds import ARGO_CD, EXTERNAL_SECRETS
from components.k8s.network_policy import IngressAllows, NetworkPolicies, PolicyTarget
from components.k8s.secrets import (
    MIN_REFRESH_SECONDS,
    AppSecret,
    AppSecrets,
    CertManager,
    ExternalSecrets,
    refresh_seconds,
)
from components.k8s.storage import NfsMediaStorage
from components.k8s.twingate import CLIENT_NAMESPACE, TwingateClient
from components.manifests import ManifestLockError, manifest_files
from stacks.catalog import Location, Service
from stacks.config.base import NAMESPACE, ConfigError, Problem, SecretSpec
from stacks.config.platform import ArgoCdConfig, PlatformConfig, SecretsConfig, TwingateClientConfig
from stacks.velero import etcd_backup_problems, velero_problems

PLATFORM_SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "bitwardenAccessToken",
        "the access token of this cluster's Bitwarden Secrets Manager machine account (read access to its project)",
    ),
)
TWINGATE_SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "twingateApiToken",
        "a Twingate API token with Read, Write & Provision permission (admin console > Settings > API)",
    ),
)

# Namespaces of the platform itself and who may reach their pods (besides the same namespace).
# kube-apiserver: admission webhooks; monitoring: metrics scrapes once the monitoring stack lands.
PLATFORM_NAMESPACES: Mapping[str, IngressAllows] = {
    "cert-manager": IngressAllows(from_namespaces=("monitoring",), from_entities=("kube-apiserver",)),
    "external-secrets": IngressAllows(from_namespaces=("monitoring",), from_entities=("kube-apiserver",)),
    "cloudflared": IngressAllows(same_namespace=False, from_namespaces=("monitoring",)),
    "twingate": IngressAllows(same_namespace=False),
    # The headless client runs on the host network (no pod traffic to admit); denied all the same.
    CLIENT_NAMESPACE: IngressAllows(same_namespace=False),
    # Argo CD's UI is published through the tunnel connector.
    "argocd": IngressAllows(from_namespaces=("cloudflared", "monitoring")),
    # The kubelet's CSI calls and the engines' replication arrive from the nodes themselves.
    # Grafana, Prometheus and Alertmanager (admin apps) and the cloud's telemetry arrive through the
    # tunnel connector; the API server calls the prometheus-operator's admission webhook. Scrapes
    # and Grafana -> Prometheus/Loki stay inside the namespace; Alloy runs on the host network (it
    # receives Talos's logs on each node's loopback), so its pushes to Loki come from the nodes.
    "monitoring": IngressAllows(
        from_namespaces=("cloudflared",), from_entities=("kube-apiserver", "host", "remote-node")
    ),
    # The cloud's collector (stacks/telemetry.py): it only sends; Talos reaches it on the host network,
    # and the collector (host network) scrapes the kube-state-metrics beside it on its own node.
    "telemetry": IngressAllows(same_namespace=False, from_entities=("host",)),
    # ntfy: the phone app and the web UI through the tunnel, Alertmanager publishing from monitoring.
    "ntfy": IngressAllows(from_namespaces=("cloudflared", "monitoring")),
    "longhorn-system": IngressAllows(
        from_namespaces=("monitoring",), from_entities=("host", "remote-node", "kube-apiserver")
    ),
    # Velero's server and node agents talk through the API server and write to the bucket directly:
    # only metrics scrapes come in (PROD's Prometheus; on CLOUD the collector on the node's host network).
    "velero": IngressAllows(same_namespace=False, from_namespaces=("monitoring",), from_entities=("host",)),
    # The etcd snapshot job only calls out (Talos API, bucket): nothing comes in.
    "etcd-backup": IngressAllows(same_namespace=False),
}
SECRET_NAME_SUFFIX = "-secrets"


def app_secrets(
    services: Iterable[Service], location: Location, secrets: SecretsConfig, where: str = "catalog.services"
) -> list[AppSecret]:
    """One `AppSecret` per service of `location` that names Bitwarden secrets, checked against the store."""
    declared = secrets.bitwarden.keys
    allowed = set(secrets.bitwarden.allowed_namespaces)
    found: list[AppSecret] = []
    for service in sorted(services, key=lambda s: s.name):
        if service.location != location or not service.secrets:
            continue
        key = f"{NAMESPACE}:{where}.{service.name}.secrets"
        namespace = service.namespace
        if namespace is None:
            raise ConfigError(f"{key}: only a cluster-hosted service (upstream *.svc.cluster.local) can have secrets")
        if namespace not in allowed:
            raise ConfigError(
                f"{key}: namespace {namespace!r} is not allowed by the store "
                f"(add it to {NAMESPACE}:platform.secrets.bitwarden.allowed_namespaces)"
            )
        data: dict[str, str] = {}
        for secret_key, bitwarden_key in sorted(service.secrets.items()):
            if bitwarden_key not in declared:
                raise ConfigError(
                    f"{key}.{secret_key}: Bitwarden secret {bitwarden_key!r} is not declared in "
                    f"{NAMESPACE}:platform.secrets.bitwarden.keys"
                )
            data[secret_key] = declared[bitwarden_key]
        found.append(AppSecret(name=f"{service.name}{SECRET_NAME_SUFFIX}", namespace=namespace, data=data))
    return found


def platform_problems(
    platform: PlatformConfig,
    services: Iterable[Service] = (),
    location: Location | None = None,
    root: Path | None = None,
) -> Iterator[Problem]:
    """Cross-key checks of `homelab:platform` (and of the catalog's secrets at `location`), raised by
    each stack's `load()` before any resource is registered."""
    secrets = platform.secrets
    if secrets is not None:
        if location is not None:
            app_secrets(services, location, secrets)  # a builder: raises its own ConfigError naming the key
        try:
            seconds = refresh_seconds(secrets.refresh_interval)
        except ValueError as exc:
            yield "platform.secrets.refresh_interval", str(exc)
        else:
            if seconds < MIN_REFRESH_SECONDS:
                yield (
                    "platform.secrets.refresh_interval",
                    f"{secrets.refresh_interval} is under one hour (the Bitwarden SDK server logs in on every refresh)",
                )
        yield from _pinned_problems(
            EXTERNAL_SECRETS, secrets.external_secrets_version, "platform.secrets.external_secrets_version"
        )
    if platform.argocd is not None:
        yield from _pinned_problems(ARGO_CD, platform.argocd.app_version, "platform.argocd.app_version")
        yield from gitops_path_problems(platform.argocd, root)
    yield from velero_problems(platform.velero)
    yield from etcd_backup_problems(platform.etcd_backup)
    if platform.twingate is not None:
        yield from _image_tag_problems(platform.twingate.image, "platform.twingate.image")
        client = platform.twingate.client
        if client is not None:
            yield from _image_tag_problems(client.image, "platform.twingate.client.image")
            if location != "cloud":
                yield (
                    "platform.twingate.client",
                    "only the cloud stack runs the headless client "
                    "(it holds the key of the service account the home Resources admit)",
                )


def _image_tag_problems(image: str, key: str) -> Iterator[Problem]:
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag[:1].isdigit():
        yield key, f"{image!r} must carry an exact version tag (e.g. :1.56.0)"


def _pinned_problems(source: str, version: str, key: str) -> Iterator[Problem]:
    """The CRDs of that version must be pinned in the vendored-manifest lock."""
    try:
        manifest_files(source, version if version.startswith("v") else f"v{version}")
    except ManifestLockError as exc:
        yield key, str(exc)


def gitops_path_problems(argocd: ArgoCdConfig, root: Path | None = None) -> Iterator[Problem]:
    """The root ApplicationSet's folder and one overlay per environment it renders must exist."""
    base = (root or _project_root()) / argocd.path
    key = "platform.argocd.path"
    if argocd.path.startswith("/") or ".." in Path(argocd.path).parts or not base.is_dir():
        yield key, f"{argocd.path!r} is not a folder of this repository"
        return
    environments = {"prod", *(c.environment for c in argocd.clusters.values())}
    for environment in sorted(environments):
        overlay = base / "overlays" / environment / "kustomization.yaml"
        if not overlay.is_file():
            yield key, f"{argocd.path}/overlays/{environment}/kustomization.yaml does not exist"


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def secrets_layer(
    platform: PlatformConfig,
    services: Iterable[Service],
    location: Location,
    opts: pulumi.ResourceOptions,
) -> ExternalSecrets | None:
    """cert-manager, External Secrets with the cluster's store, and the catalog's app secrets."""
    secrets = platform.secrets
    if secrets is None:
        return None
    specs = app_secrets(services, location, secrets)  # checked by platform_problems() in load() already
    cert_manager = CertManager("cert-manager", {"chart_version": secrets.cert_manager_version}, opts=opts)
    bitwarden = secrets.bitwarden
    eso = ExternalSecrets(
        "external-secrets",
        {
            "chart_version": secrets.external_secrets_version,
            "cert_manager": cert_manager,
            "access_token": pulumi.Config(NAMESPACE).require_secret("bitwardenAccessToken"),
            "store": {
                "organization_id": bitwarden.organization_id,
                "project_id": bitwarden.project_id,
                "api_url": bitwarden.api_url,
                "identity_url": bitwarden.identity_url,
                "allowed_namespaces": list(bitwarden.allowed_namespaces),
            },
        },
        opts=opts,
    )
    if specs:
        AppSecrets(
            "app-secrets", {"secrets": specs, "store": eso, "refresh_interval": secrets.refresh_interval}, opts=opts
        )
    return eso


def policy_targets(
    platform_namespaces: Sequence[str], app_namespaces: Sequence[str], app_allows: IngressAllows
) -> list[PolicyTarget]:
    targets = [PolicyTarget(ns, PLATFORM_NAMESPACES[ns]) for ns in sorted(set(platform_namespaces))]
    targets += [PolicyTarget(ns, app_allows) for ns in sorted(set(app_namespaces) - set(platform_namespaces))]
    return targets


def twingate_client(
    client: TwingateClientConfig,
    service_key: pulumi.Input[str],
    k8s: pulumi.ProviderResource,
    opts: pulumi.ResourceOptions,
) -> list[pulumi.Resource]:
    """CLOUD: the headless Twingate client on every node and, with `nfs_media`, the `nfs-media` class
    on the home export the client reaches (the NFS CSI driver mounts from the node, through the
    client's routes). `opts` carries the cluster's provider and what the client waits for (the CNI)."""
    on_client = TwingateClient(
        "cloud-twingate-client",
        {"image": client.image, "service_key": service_key, "kubernetes_provider": k8s},
        opts=opts,
    )
    created: list[pulumi.Resource] = [on_client]
    if client.nfs_media is not None:
        nfs = client.nfs_media
        created.append(
            NfsMediaStorage(
                "cloud-media-storage",
                {
                    "chart_version": nfs.csi_chart_version,
                    "server": str(nfs.server),
                    "share": nfs.share,
                    "class_name": nfs.class_name,
                },
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[on_client])),
            )
        )
    return created


def network_policies(targets: Sequence[PolicyTarget], opts: pulumi.ResourceOptions) -> NetworkPolicies:
    return NetworkPolicies("network-policies", {"targets": targets}, opts=opts)


def oidc_from_reference(reference: pulumi.StackReference, stack_name: str) -> OidcClient:
    """The Argo CD client the identity stack exports as `oidc_argocd`; fails loudly when missing."""
    key = "oidc_argocd"

    def field(name: str) -> pulumi.Output[str]:
        def pick(value: Any) -> str:
            if not isinstance(value, Mapping) or not value.get(name):
                raise ConfigError(
                    f"{NAMESPACE}:platform.argocd.identity_stack: stack {stack_name!r} exports no "
                    f"`{key}.{name}` (land the identity stack's Argo CD client and run `pulumi up` there first)"
                )
            return str(value[name])

        return reference.get_output(key).apply(pick)

    return OidcClient(
        issuer=field("issuer"), client_id=field("client_id"), client_secret=pulumi.Output.secret(field("client_secret"))
    )


def argocd_layer(
    argocd: ArgoCdConfig,
    references: Mapping[str, pulumi.StackReference],
    opts: pulumi.ResourceOptions,
) -> ArgoCd:
    identity = references[argocd.identity_stack]
    clusters: dict[str, RegisteredCluster] = {}
    for name, cluster in sorted(argocd.clusters.items()):
        registration = pulumi.Output.secret(references[cluster.stack].require_output("argocd_cluster"))
        clusters[name] = RegisteredCluster(
            name=name,
            environment=cluster.environment,
            server=registration.apply(lambda r: str((r or {}).get("server", ""))),
            ca_data=registration.apply(lambda r: str((r or {}).get("ca_data", ""))),
            token=registration.apply(lambda r: str((r or {}).get("token", ""))),
        )
    return ArgoCd(
        "argocd",
        {
            "chart_version": argocd.chart_version,
            "app_version": argocd.app_version,
            "hostname": argocd.hostname,
            "oidc": oidc_from_reference(identity, argocd.identity_stack),
            "admin_group": argocd.admin_group,
            "repo_url": argocd.repo_url,
            "revision": argocd.revision,
            "path": argocd.path,
            "clusters": clusters,
        },
        opts=opts,
    )


def argocd_access(server: pulumi.Input[str], kubeconfig: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
    """In DEV or CLOUD: the `argocd-manager` account PROD's Argo CD uses; exported as `argocd_cluster`."""
    access = ArgoCdClusterAccess("argocd-access", {"server": server, "kubeconfig": kubeconfig}, opts=opts)
    pulumi.export("argocd_cluster", access.registration)
