"""Secrets on a cluster (FR-009): cert-manager, External Secrets with Bitwarden, one store, app secrets.

Threat model: no secret is ever in git. The one secret External Secrets cannot fetch for itself,
the Bitwarden machine-account access token, is a Pulumi stack secret that Pulumi writes into a
Kubernetes Secret in the operator's namespace. Everything human-managed comes from Bitwarden
through the cluster's single `ClusterSecretStore`, which serves only the namespaces listed in
config (a compromised app namespace that is not listed cannot read anything). ExternalSecrets name
each Bitwarden secret explicitly (`data[]`): `dataFrom.find` would return the whole organisation.

Order (the SDK server's pod mounts `bitwarden-tls-certs` and never starts without it):
cert-manager (with its CRDs) -> self-signed ClusterIssuer -> CA Certificate -> CA Issuer ->
leaf Certificate `bitwarden-tls-certs` (tls.crt, tls.key, ca.crt) -> External Secrets CRDs and
chart with the bitwarden-sdk-server -> ClusterSecretStore -> ExternalSecrets. The CA keeps its own
Secret: issuing from the leaf's Secret makes clients reject the chain.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.crds import EXTERNAL_SECRETS, crd_step
from components.k8s.labels import managed_labels, namespace_metadata

CERT_MANAGER_REPOSITORY = "https://charts.jetstack.io"
EXTERNAL_SECRETS_REPOSITORY = "https://charts.external-secrets.io"
CERT_MANAGER_NAMESPACE = "cert-manager"
ESO_NAMESPACE = "external-secrets"
SELF_SIGNED_ISSUER = "homelab-selfsigned"
TLS_SECRET = "bitwarden-tls-certs"
CA_SECRET = "bitwarden-ca"
TOKEN_SECRET = "bitwarden-access-token"
TOKEN_KEY = "token"
STORE_NAME = "bitwarden"
SDK_SERVER = "bitwarden-sdk-server"
SDK_PORT = 9998
MIN_REFRESH_SECONDS = 3600

_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def sdk_server_dns_names(namespace: str = ESO_NAMESPACE) -> list[str]:
    return [f"{SDK_SERVER}.{namespace}.svc.cluster.local", f"{SDK_SERVER}.{namespace}.svc", "localhost"]


def refresh_seconds(interval: str) -> int:
    """Seconds of a Go duration made of h/m/s parts (`1h`, `90m`, `1h30m`); ValueError otherwise."""
    import re  # noqa: PLC0415 (only here)

    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", interval)
    if not interval or parts is None:
        raise ValueError(f"{interval!r} is not a duration like 1h or 90m")
    hours, minutes, seconds = (int(p) if p else 0 for p in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


class CertManagerArgs(TypedDict):
    chart_version: str
    """Exact cert-manager chart version, e.g. `v1.20.2`."""


class CertManager(pulumi.ComponentResource):
    """cert-manager (its chart installs and keeps its CRDs) and a self-signed ClusterIssuer that roots private CAs."""

    issuer_name: str
    ready: list[pulumi.Resource]
    """What a Certificate or Issuer must depend on."""

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:CertManager", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(CERT_MANAGER_NAMESPACE, "restricted"), opts=child
        )
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="cert-manager",
            chart="cert-manager",
            version=args["chart_version"],
            namespace=CERT_MANAGER_NAMESPACE,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CERT_MANAGER_REPOSITORY),
            values={
                # Installed by the chart, kept on uninstall (components/k8s/crds.py says why).
                "crds": {"enabled": True, "keep": True},
                "global": {"leaderElection": {"namespace": CERT_MANAGER_NAMESPACE}},
                "prometheus": {"enabled": True},
            },
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-selfsigned",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": SELF_SIGNED_ISSUER, "labels": managed_labels("cert-manager")},
            spec={"selfSigned": {}},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[release])),
        )
        self.issuer_name = SELF_SIGNED_ISSUER
        self.ready = [release, issuer]
        self.register_outputs({"issuer_name": SELF_SIGNED_ISSUER})


class BitwardenStore(TypedDict):
    """The Bitwarden Secrets Manager project one ClusterSecretStore reads."""

    organization_id: str
    project_id: str
    api_url: str
    identity_url: str
    allowed_namespaces: Sequence[str]
    """Namespaces whose ExternalSecrets this store serves."""


class ExternalSecretsArgs(TypedDict):
    chart_version: str
    """Exact External Secrets chart version, e.g. `2.9.0` (its bitwarden-sdk-server subchart is pinned by it)."""
    cert_manager: CertManager
    access_token: pulumi.Input[str]
    """The machine account's access token (a stack secret; written to a Secret, never logged)."""
    store: BitwardenStore


class ExternalSecrets(pulumi.ComponentResource):
    """The TLS chain of the SDK server, External Secrets with the SDK server, the cluster's store."""

    store_name: str
    ready: list[pulumi.Resource]
    """What an ExternalSecret must depend on."""

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:ExternalSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        store = args["store"]
        if not store["allowed_namespaces"]:
            raise ValueError(f"ExternalSecrets {name!r}: the store must allow at least one namespace")
        crds = crd_step(name, EXTERNAL_SECRETS, args["chart_version"], child)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(ESO_NAMESPACE, "restricted"), opts=child
        )
        in_ns = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[namespace]))
        after_cm = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[namespace, *args["cert_manager"].ready])
        )
        labels = managed_labels("external-secrets")
        ca = k8s.apiextensions.CustomResource(
            f"{name}-ca",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": CA_SECRET, "namespace": ESO_NAMESPACE, "labels": labels},
            spec={
                "isCA": True,
                "commonName": "homelab bitwarden-sdk-server CA",
                "secretName": CA_SECRET,
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {
                    "kind": "ClusterIssuer",
                    "name": args["cert_manager"].issuer_name,
                    "group": "cert-manager.io",
                },
            },
            opts=after_cm,
        )
        ca_issuer = k8s.apiextensions.CustomResource(
            f"{name}-ca-issuer",
            api_version="cert-manager.io/v1",
            kind="Issuer",
            metadata={"name": CA_SECRET, "namespace": ESO_NAMESPACE, "labels": labels},
            spec={"ca": {"secretName": CA_SECRET}},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[ca])),
        )
        leaf = k8s.apiextensions.CustomResource(
            f"{name}-tls",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": TLS_SECRET, "namespace": ESO_NAMESPACE, "labels": labels},
            spec={
                # A CA issuer writes tls.crt, tls.key and ca.crt: the three files the SDK server mounts.
                "secretName": TLS_SECRET,
                "dnsNames": sdk_server_dns_names(),
                "duration": "2160h",
                "renewBefore": "360h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "usages": ["server auth"],
                "issuerRef": {"kind": "Issuer", "name": CA_SECRET, "group": "cert-manager.io"},
            },
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[ca_issuer])),
        )
        token = k8s.core.v1.Secret(
            f"{name}-access-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=TOKEN_SECRET, namespace=ESO_NAMESPACE, labels=labels),
            type="Opaque",
            string_data=pulumi.Output.secret({TOKEN_KEY: args["access_token"]}),
            opts=in_ns,
        )
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="external-secrets",
            chart="external-secrets",
            version=args["chart_version"],
            namespace=ESO_NAMESPACE,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=EXTERNAL_SECRETS_REPOSITORY),
            values=external_secrets_values(),
            # The SDK server's pod mounts the leaf Secret: issue it before the chart waits on the pod.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[leaf, *crds])),
        )
        cluster_store = k8s.apiextensions.CustomResource(
            f"{name}-store",
            api_version="external-secrets.io/v1",
            kind="ClusterSecretStore",
            metadata={"name": STORE_NAME, "labels": labels},
            spec=cluster_store_spec(store),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[release, token])),
        )
        self.store_name = STORE_NAME
        self.ready = [cluster_store]
        self.register_outputs({"store_name": STORE_NAME})


def external_secrets_values() -> dict[str, Any]:
    return {
        "installCRDs": False,
        "securityContext": _RESTRICTED_CONTAINER,
        "webhook": {"securityContext": _RESTRICTED_CONTAINER},
        "certController": {"securityContext": _RESTRICTED_CONTAINER},
        SDK_SERVER: {
            "enabled": True,
            "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "securityContext": _RESTRICTED_CONTAINER,
        },
    }


def cluster_store_spec(store: BitwardenStore) -> dict[str, Any]:
    """The ClusterSecretStore's spec: one Bitwarden project, served to the listed namespaces only."""
    return {
        "conditions": [{"namespaces": sorted(store["allowed_namespaces"])}],
        "provider": {
            "bitwardensecretsmanager": {
                "apiURL": store["api_url"],
                "identityURL": store["identity_url"],
                "bitwardenServerSDKURL": f"https://{SDK_SERVER}.{ESO_NAMESPACE}.svc.cluster.local:{SDK_PORT}",
                "caProvider": {"type": "Secret", "name": TLS_SECRET, "key": "ca.crt", "namespace": ESO_NAMESPACE},
                "organizationID": store["organization_id"],
                "projectID": store["project_id"],
                "auth": {
                    "secretRef": {
                        # namespace explicit: a ClusterSecretStore has no namespace of its own.
                        "credentials": {"name": TOKEN_SECRET, "key": TOKEN_KEY, "namespace": ESO_NAMESPACE}
                    }
                },
            }
        },
    }


@dataclass(frozen=True)
class AppSecret:
    """One Kubernetes Secret an app needs, each key read from one named Bitwarden secret."""

    name: str
    namespace: str
    data: Mapping[str, str]
    """Key in the Kubernetes Secret -> UUID of the Bitwarden secret."""


class AppSecretsArgs(TypedDict):
    secrets: Sequence[AppSecret]
    store: ExternalSecrets
    refresh_interval: NotRequired[str]
    """At least `1h` (the SDK server logs in to Bitwarden on every request)."""


class AppSecrets(pulumi.ComponentResource):
    """One ExternalSecret per app secret, with explicit `data[]` keys (never `dataFrom.find`)."""

    def __init__(self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:AppSecrets", name, None, opts)
        interval = args.get("refresh_interval", "1h")
        if refresh_seconds(interval) < MIN_REFRESH_SECONDS:
            raise ValueError(f"AppSecrets {name!r}: refresh interval {interval} is under one hour")
        store = args["store"]
        after = pulumi.ResourceOptions(parent=self, depends_on=store.ready)
        for secret in args["secrets"]:
            if not secret.data:
                raise ValueError(f"AppSecrets {name!r}: {secret.namespace}/{secret.name} names no key")
            k8s.apiextensions.CustomResource(
                f"{name}-{secret.namespace}-{secret.name}",
                api_version="external-secrets.io/v1",
                kind="ExternalSecret",
                metadata={"name": secret.name, "namespace": secret.namespace, "labels": managed_labels(secret.name)},
                spec=external_secret_spec(secret, store.store_name, interval),
                opts=after,
            )
        self.register_outputs({})


def external_secret_spec(secret: AppSecret, store_name: str, interval: str) -> dict[str, Any]:
    return {
        "refreshInterval": interval,
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name},
        "target": {"name": secret.name, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
        "data": [{"secretKey": key, "remoteRef": {"key": uuid}} for key, uuid in sorted(secret.data.items())],
    }
