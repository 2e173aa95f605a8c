"""Argo CD on PROD managing DEV, PROD and CLOUD (FR-004), and the access it gets to each cluster.

Ownership (docs/decisions/platform-ownership.md): Pulumi installs Argo CD once and keeps owning its
release, its cluster registrations and its root ApplicationSet; Argo CD owns everything under
`gitops/` and never renders its own chart, so the two never fight over an object.

Threat model:
- Login is OIDC through Authentik only (`admin.enabled: false`, no Dex): members of the admin group
  get `role:admin`, everyone else gets nothing (`policy.default` empty). The client secret lives in
  a labelled Secret referenced as `$argocd-oidc:clientSecret`, never in Helm values or git.
- Other clusters are reached with a dedicated `argocd-manager` ServiceAccount token created in that
  cluster by its own stack (`ArgoCdClusterAccess`), never the Talos admin kubeconfig: revoking
  Argo CD is deleting one token, and the admin certificate never leaves the operator's machine.
- The CA of each cluster is pinned (`insecure: false`).
"""

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.k8s.crds import ARGO_CD, crd_step
from components.k8s.labels import managed_labels, namespace_metadata

ARGO_REPOSITORY = "https://argoproj.github.io/argo-helm"
NAMESPACE = "argocd"
OIDC_SECRET = "argocd-oidc"
MANAGER = "argocd-manager"
IN_CLUSTER = "https://kubernetes.default.svc"
CLUSTER_SECRET_LABEL = "argocd.argoproj.io/secret-type"
ENV_LABEL = "homelab.dev/environment"
SYNC_WAVES = tuple(range(5))
"""0 CRDs/operators, 1 storage and secrets, 2 platform, 3 apps, 4 optional."""

# Without this check a parent Application treats a child as healthy as soon as it exists, so the
# next sync wave starts before the previous one is up (Argo CD removed the built-in check in 1.8).
APPLICATION_HEALTH_LUA = """hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
end
return hs
"""


@dataclass(frozen=True)
class OidcClient:
    """The Authentik client the identity stack exports as `oidc_argocd`."""

    issuer: pulumi.Input[str]
    client_id: pulumi.Input[str]
    client_secret: pulumi.Input[str]


@dataclass(frozen=True)
class RegisteredCluster:
    """A destination cluster: its API, its pinned CA and the `argocd-manager` token."""

    name: str
    environment: str
    server: pulumi.Input[str]
    ca_data: pulumi.Input[str]
    """Base64 PEM of the cluster CA (`certificate-authority-data`)."""
    token: pulumi.Input[str]


class ArgoCdArgs(TypedDict):
    chart_version: str
    """Exact argo-cd chart version, e.g. `10.1.1`."""
    app_version: str
    """The Argo CD version that chart ships (its CRDs are applied first), e.g. `v3.4.4`."""
    hostname: str
    oidc: OidcClient
    admin_group: str
    repo_url: str
    revision: str
    path: str
    """Folder of the repository holding `overlays/<environment>` (checked by the stack)."""
    clusters: NotRequired[Mapping[str, RegisteredCluster]]
    environment: NotRequired[str]
    """Label of the cluster Argo CD runs in (default `prod`)."""


def oidc_config(oidc_issuer: str, client_id: str) -> str:
    return yaml.safe_dump(
        {
            "name": "Authentik",
            "issuer": oidc_issuer,
            "clientID": client_id,
            "clientSecret": f"${OIDC_SECRET}:clientSecret",
            "requestedScopes": ["openid", "profile", "email"],
            # The CLI logs in with PKCE (no client secret on laptops).
            "enablePKCEAuthentication": True,
        },
        sort_keys=True,
    )


def argocd_values(hostname: str, admin_group: str, oidc: pulumi.Output[str]) -> dict[str, Any]:
    return {
        "crds": {"install": False, "keep": True},
        "global": {"domain": hostname},
        "dex": {"enabled": False},
        "configs": {
            # TLS ends at Cloudflare; the tunnel connector speaks plain HTTP inside the cluster.
            "params": {"server.insecure": True},
            "cm": {
                "url": f"https://{hostname}",
                "admin.enabled": False,
                "oidc.config": oidc,
                "resource.customizations.health.argoproj.io_Application": APPLICATION_HEALTH_LUA,
            },
            "rbac": {"policy.default": "", "scopes": "[groups]", "policy.csv": f"g, {admin_group}, role:admin\n"},
        },
    }


class ArgoCd(pulumi.ComponentResource):
    """Argo CD (pinned chart, CRDs first), its cluster registrations and the root ApplicationSet."""

    namespace: str
    root_name: str

    def __init__(self, name: str, args: ArgoCdArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:ArgoCd", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        crds = crd_step(name, ARGO_CD, args["app_version"], child)
        labels = managed_labels("argocd")
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(NAMESPACE, "restricted"), opts=child
        )
        in_ns = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[namespace]))
        oidc = args["oidc"]
        oidc_secret = k8s.core.v1.Secret(
            f"{name}-oidc",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=OIDC_SECRET,
                namespace=NAMESPACE,
                # Argo CD resolves `$<secret>:<key>` only in Secrets that carry this label.
                labels={**labels, "app.kubernetes.io/part-of": "argocd"},
            ),
            type="Opaque",
            string_data=pulumi.Output.secret({"clientSecret": oidc.client_secret}),
            opts=in_ns,
        )
        config = pulumi.Output.all(oidc.issuer, oidc.client_id).apply(lambda v: oidc_config(str(v[0]), str(v[1])))
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="argocd",
            chart="argo-cd",
            version=args["chart_version"],
            namespace=NAMESPACE,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ARGO_REPOSITORY),
            values=argocd_values(args["hostname"], args["admin_group"], config),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[oidc_secret, *crds])),
        )
        environment = args.get("environment", "prod")
        secrets = [
            _cluster_secret(
                f"{name}-cluster-in-cluster",
                cluster_name="in-cluster",
                environment=environment,
                server=IN_CLUSTER,
                config_json=None,
                labels=labels,
                opts=in_ns,
            )
        ]
        for key, cluster in sorted(args.get("clusters", {}).items()):
            config_json = pulumi.Output.all(cluster.ca_data, cluster.token).apply(
                lambda v: json.dumps(
                    {"bearerToken": v[1], "tlsClientConfig": {"insecure": False, "caData": v[0]}}, sort_keys=True
                )
            )
            secrets.append(
                _cluster_secret(
                    f"{name}-cluster-{key}",
                    cluster_name=cluster.name,
                    environment=cluster.environment,
                    server=cluster.server,
                    config_json=config_json,
                    labels=labels,
                    opts=in_ns,
                )
            )
        self.namespace = NAMESPACE
        self.root_name = "homelab-root"
        k8s.apiextensions.CustomResource(
            f"{name}-root",
            api_version="argoproj.io/v1alpha1",
            kind="ApplicationSet",
            metadata={"name": self.root_name, "namespace": NAMESPACE, "labels": labels},
            spec=root_application_set(args["repo_url"], args["revision"], args["path"]),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[release, *secrets])),
        )
        self.register_outputs({"namespace": NAMESPACE, "root_name": self.root_name})


def _cluster_secret(
    resource_name: str,
    *,
    cluster_name: str,
    environment: str,
    server: pulumi.Input[str],
    config_json: pulumi.Input[str] | None,
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    config: pulumi.Input[str] = (
        config_json if config_json is not None else json.dumps({"tlsClientConfig": {"insecure": False}}, sort_keys=True)
    )
    return k8s.core.v1.Secret(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"cluster-{cluster_name}",
            namespace=NAMESPACE,
            labels={**labels, CLUSTER_SECRET_LABEL: "cluster", ENV_LABEL: environment},
        ),
        type="Opaque",
        string_data=pulumi.Output.secret({"name": cluster_name, "server": server, "config": config}),
        opts=opts,
    )


def root_application_set(repo_url: str, revision: str, path: str) -> dict[str, Any]:
    """One Application per registered cluster, rendering `<path>/overlays/<environment>`.

    Waves order the objects inside each Application (annotation `argocd.argoproj.io/sync-wave`);
    DEV's overlay is the same base with smaller replicas and requests.
    """
    env = '{{ index .metadata.labels "' + ENV_LABEL + '" }}'
    return {
        "goTemplate": True,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [{"clusters": {"selector": {"matchExpressions": [{"key": ENV_LABEL, "operator": "Exists"}]}}}],
        "template": {
            "metadata": {"name": "homelab-{{ .name }}", "labels": {ENV_LABEL: env}},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo_url, "targetRevision": revision, "path": f"{path}/overlays/{env}"},
                "destination": {"server": "{{ .server }}"},
                "syncPolicy": {
                    "automated": {"prune": True, "selfHeal": True},
                    # Namespaces are the platform's (Pulumi, with their default-deny policies).
                    "syncOptions": ["CreateNamespace=false", "ServerSideApply=true"],
                    "retry": {"limit": 5, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "10m"}},
                },
            },
        },
    }


class ArgoCdClusterAccessArgs(TypedDict):
    server: pulumi.Input[str]
    """The API URL Argo CD (at home, on PROD) uses for this cluster."""
    kubeconfig: pulumi.Input[str]
    """The cluster's admin kubeconfig (only its CA is read)."""


class ArgoCdClusterAccess(pulumi.ComponentResource):
    """In a destination cluster: the `argocd-manager` ServiceAccount, its binding and a token Secret.

    The token is long-lived (a `kubernetes.io/service-account-token` Secret) because Argo CD keeps no
    way to renew a projected token for a remote cluster; rotate it by replacing the Secret.
    """

    registration: pulumi.Output[dict[str, Any]]
    """{server, ca_data, token} as one secret output (the stack exports it as `argocd_cluster`)."""

    def __init__(self, name: str, args: ArgoCdClusterAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:ArgoCdClusterAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = managed_labels(MANAGER)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=MANAGER, namespace="kube-system", labels=labels),
            opts=child,
        )
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{MANAGER}-role", labels=labels),
            # What `argocd cluster add` grants: Argo CD applies arbitrary manifests from gitops/.
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=["*"], resources=["*"], verbs=["*"]),
                k8s.rbac.v1.PolicyRuleArgs(non_resource_urls=["*"], verbs=["*"]),
            ],
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{MANAGER}-role-binding", labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role.metadata.name
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=MANAGER, namespace="kube-system")],
            opts=child,
        )
        token = k8s.core.v1.Secret(
            f"{name}-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{MANAGER}-token",
                namespace="kube-system",
                labels=labels,
                annotations={"kubernetes.io/service-account.name": MANAGER},
            ),
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[account], additional_secret_outputs=["data"])
            ),
        )
        ca = pulumi.Output.from_input(args["kubeconfig"]).apply(kubeconfig_ca)
        bearer = token.data.apply(lambda data: base64.b64decode((data or {}).get("token", "")).decode())
        self.registration = pulumi.Output.secret(
            pulumi.Output.all(args["server"], ca, bearer).apply(
                lambda v: {"server": v[0], "ca_data": v[1], "token": v[2]}
            )
        )
        self.register_outputs({"registration": self.registration})


def kubeconfig_ca(kubeconfig: str) -> str:
    """The base64 CA of the first cluster of a kubeconfig (what Argo CD pins)."""
    document = yaml.safe_load(kubeconfig) or {}
    clusters = document.get("clusters") or []
    if not clusters:
        raise ValueError("kubeconfig has no cluster")
    return str(clusters[0]["cluster"]["certificate-authority-data"])
