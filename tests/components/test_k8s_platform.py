"""The platform components under the offline engine: order, inputs, parents, secrets, bad input."""

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.k8s.argocd import (
    APPLICATION_HEALTH_LUA,
    ArgoCd,
    ArgoCdClusterAccess,
    OidcClient,
    RegisteredCluster,
    kubeconfig_ca,
)
from components.k8s.longhorn import Longhorn, longhorn_talos_patch, missing_extensions
from components.k8s.network_policy import IngressAllows, NetworkPolicies, PolicyTarget
from components.k8s.secrets import AppSecret, AppSecrets, CertManager, ExternalSecrets, refresh_seconds
from components.k8s.twingate import TwingateServiceAccess, TwingateSite, TwingateTarget

CR = "kubernetes:{}"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
STORE = {
    "organization_id": "00000000-0000-4000-8000-000000000001",
    "project_id": "00000000-0000-4000-8000-000000000002",
    "api_url": "https://api.bitwarden.eu",
    "identity_url": "https://identity.bitwarden.eu",
    "allowed_namespaces": ["romm", "vaultwarden"],
}


def provider() -> k8s.Provider:
    return k8s.Provider("k8s", kubeconfig="{}", cluster_identifier="test")


def secrets_program(refresh: str = "1h"):
    def program():
        opts = pulumi.ResourceOptions(providers=[provider()])
        cm = CertManager("cert-manager", {"chart_version": "v1.20.2"}, opts=opts)
        eso = ExternalSecrets(
            "eso",
            {
                "chart_version": "2.9.0",
                "cert_manager": cm,
                "access_token": pulumi.Config("homelab").require_secret("bitwardenAccessToken"),
                "store": STORE,  # type: ignore[typeddict-item]
            },
            opts=opts,
        )
        AppSecrets(
            "apps",
            {
                "secrets": [AppSecret("romm-secrets", "romm", {"ROMM_AUTH_SECRET_KEY": "uuid-1", "DB": "uuid-2"})],
                "store": eso,
                "refresh_interval": refresh,
            },
            opts=opts,
        )

    return program


def depends(rec, resource, other) -> bool:
    return other.urn in resource.dependencies


def test_tls_chain_is_issued_before_the_sdk_server_and_the_store_waits_for_both(record):
    rec = record(secrets_program(), secrets={"homelab:bitwardenAccessToken": "0.token"})
    cm_release = rec.get(RELEASE, "cert-manager-release")
    assert cm_release.inputs["values"]["crds"] == {"enabled": True, "keep": True}
    assert not rec.by_type("kubernetes:yaml/v2:ConfigGroup") or all(
        not r.name.startswith("cert-manager") for r in rec.by_type("kubernetes:yaml/v2:ConfigGroup")
    )
    issuer = rec.get(CR.format("cert-manager.io/v1:ClusterIssuer"), "cert-manager-selfsigned")
    ca = rec.get(CR.format("cert-manager.io/v1:Certificate"), "eso-ca")
    ca_issuer = rec.get(CR.format("cert-manager.io/v1:Issuer"), "eso-ca-issuer")
    leaf = rec.get(CR.format("cert-manager.io/v1:Certificate"), "eso-tls")
    eso = rec.get(RELEASE, "eso-release")
    eso_crds = rec.get("kubernetes:yaml/v2:ConfigGroup", "eso-crds")
    assert eso_crds.inputs["files"] == ["vendor/manifests/external-secrets/v2.9.0/bundle.yaml"]
    assert depends(rec, eso, eso_crds)
    store = rec.get(CR.format("external-secrets.io/v1:ClusterSecretStore"), "eso-store")
    token = rec.get(SECRET, "eso-access-token")
    assert depends(rec, ca, issuer) and depends(rec, ca, cm_release)
    assert depends(rec, ca_issuer, ca) and depends(rec, leaf, ca_issuer)
    assert depends(rec, eso, leaf), "the SDK server's pod mounts bitwarden-tls-certs"
    assert depends(rec, store, eso) and depends(rec, store, token)
    # The CA keeps its own Secret; the leaf is the one the SDK server mounts.
    assert ca.inputs["spec"]["isCA"] is True and ca.inputs["spec"]["secretName"] == "bitwarden-ca"
    assert leaf.inputs["spec"]["secretName"] == "bitwarden-tls-certs"
    assert leaf.inputs["spec"]["issuerRef"] == {"kind": "Issuer", "name": "bitwarden-ca", "group": "cert-manager.io"}
    assert "bitwarden-sdk-server.external-secrets.svc.cluster.local" in leaf.inputs["spec"]["dnsNames"]
    values = eso.inputs["values"]
    assert values["installCRDs"] is False and values["bitwarden-sdk-server"]["enabled"] is True
    assert (
        eso.inputs["version"] == "2.9.0"
        and eso.inputs["repositoryOpts"]["repo"] == "https://charts.external-secrets.io"
    )


def test_store_serves_only_the_allowed_namespaces_and_reads_the_token_secret(record):
    rec = record(secrets_program(), secrets={"homelab:bitwardenAccessToken": "0.token"})
    spec = rec.get(CR.format("external-secrets.io/v1:ClusterSecretStore"), "eso-store").inputs["spec"]
    assert spec["conditions"] == [{"namespaces": ["romm", "vaultwarden"]}]
    bw = spec["provider"]["bitwardensecretsmanager"]
    assert bw["apiURL"] == "https://api.bitwarden.eu" and bw["identityURL"] == "https://identity.bitwarden.eu"
    assert bw["bitwardenServerSDKURL"] == "https://bitwarden-sdk-server.external-secrets.svc.cluster.local:9998"
    assert bw["caProvider"] == {
        "type": "Secret",
        "name": "bitwarden-tls-certs",
        "key": "ca.crt",
        "namespace": "external-secrets",
    }
    assert bw["auth"]["secretRef"]["credentials"] == {
        "name": "bitwarden-access-token",
        "key": "token",
        "namespace": "external-secrets",
    }
    token = rec.get(SECRET, "eso-access-token")
    assert token.is_secret("stringData") and token.inputs["stringData"] == {"token": "0.token"}


def test_external_secret_names_each_key_and_refreshes_hourly(record):
    rec = record(secrets_program("2h"), secrets={"homelab:bitwardenAccessToken": "0.token"})
    es = rec.get(CR.format("external-secrets.io/v1:ExternalSecret"), "apps-romm-romm-secrets")
    spec = es.inputs["spec"]
    assert "dataFrom" not in spec
    assert spec["data"] == [
        {"secretKey": "DB", "remoteRef": {"key": "uuid-2"}},
        {"secretKey": "ROMM_AUTH_SECRET_KEY", "remoteRef": {"key": "uuid-1"}},
    ]
    assert spec["refreshInterval"] == "2h"
    assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "bitwarden"}
    assert depends(rec, es, rec.get(CR.format("external-secrets.io/v1:ClusterSecretStore"), "eso-store"))
    component = rec.get("homelab:k8s:AppSecrets", "apps")
    assert es.parent == component.urn


@pytest.mark.parametrize(("interval", "seconds"), [("1h", 3600), ("90m", 5400), ("1h30m", 5400), ("59m59s", 3599)])
def test_refresh_seconds(interval, seconds):
    assert refresh_seconds(interval) == seconds


@pytest.mark.parametrize("interval", ["", "1d", "soon", "1h "])
def test_refresh_seconds_rejects_non_durations(interval):
    with pytest.raises(ValueError, match="is not a duration"):
        refresh_seconds(interval)


def test_a_refresh_under_an_hour_is_refused(record):
    with pytest.raises(Exception, match="under one hour"):
        record(secrets_program("59m"), secrets={"homelab:bitwardenAccessToken": "0.token"})


OIDC = OidcClient(issuer="https://auth.example.net/application/o/argocd/", client_id="argocd", client_secret="s3cret")


def argocd_program():
    opts = pulumi.ResourceOptions(providers=[provider()])
    ArgoCd(
        "argocd",
        {
            "chart_version": "10.1.1",
            "app_version": "v3.4.4",
            "hostname": "argocd.example.net",
            "oidc": OIDC,
            "admin_group": "admin",
            "repo_url": "https://github.com/example/homelab",
            "revision": "main",
            "path": "gitops",
            "clusters": {
                "dev": RegisteredCluster("dev", "dev", "https://192.168.68.61:6443", "Q0E=", "sa-token"),
            },
        },
        opts=opts,
    )


def test_argocd_logs_in_through_authentik_only(record):
    rec = record(argocd_program)
    release = rec.get(RELEASE, "argocd-release")
    assert release.inputs["chart"] == "argo-cd" and release.inputs["version"] == "10.1.1"
    values = release.inputs["values"]
    assert values["dex"]["enabled"] is False and values["crds"]["install"] is False
    cm = values["configs"]["cm"]
    assert cm["admin.enabled"] is False and cm["url"] == "https://argocd.example.net"
    oidc = json.loads(json.dumps(__import__("yaml").safe_load(cm["oidc.config"])))
    assert oidc["issuer"] == OIDC.issuer and oidc["clientID"] == "argocd"
    assert oidc["clientSecret"] == "$argocd-oidc:clientSecret"  # never the value itself
    assert "s3cret" not in json.dumps(values)
    assert values["configs"]["rbac"] == {
        "policy.default": "",
        "scopes": "[groups]",
        "policy.csv": "g, admin, role:admin\n",
    }
    assert cm["resource.customizations.health.argoproj.io_Application"] == APPLICATION_HEALTH_LUA
    secret = rec.get(SECRET, "argocd-oidc")
    assert (
        secret.is_secret("stringData") and secret.inputs["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
    )
    assert depends(rec, release, secret)
    crds = rec.get("kubernetes:yaml/v2:ConfigGroup", "argocd-crds")
    assert crds.inputs["files"] == [
        "vendor/manifests/argo-cd/v3.4.4/application-crd.yaml",
        "vendor/manifests/argo-cd/v3.4.4/applicationset-crd.yaml",
        "vendor/manifests/argo-cd/v3.4.4/appproject-crd.yaml",
    ]
    assert depends(rec, release, crds)


def test_argocd_registers_clusters_with_a_pinned_ca_and_a_service_account_token(record):
    rec = record(argocd_program)
    dev = rec.get(SECRET, "argocd-cluster-dev")
    assert dev.is_secret("stringData")
    labels = dev.inputs["metadata"]["labels"]
    assert labels["argocd.argoproj.io/secret-type"] == "cluster" and labels["homelab.dev/environment"] == "dev"
    config = json.loads(dev.inputs["stringData"]["config"])
    assert config == {"bearerToken": "sa-token", "tlsClientConfig": {"caData": "Q0E=", "insecure": False}}
    local = rec.get(SECRET, "argocd-cluster-in-cluster")
    assert local.inputs["stringData"]["server"] == "https://kubernetes.default.svc"
    assert local.inputs["metadata"]["labels"]["homelab.dev/environment"] == "prod"


def test_root_application_set_renders_each_environment_overlay(record):
    rec = record(argocd_program)
    root = rec.get(CR.format("argoproj.io/v1alpha1:ApplicationSet"), "argocd-root")
    spec = root.inputs["spec"]
    source = spec["template"]["spec"]["source"]
    assert source["repoURL"] == "https://github.com/example/homelab" and source["targetRevision"] == "main"
    assert source["path"] == 'gitops/overlays/{{ index .metadata.labels "homelab.dev/environment" }}'
    sync = spec["template"]["spec"]["syncPolicy"]
    assert sync["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=false" in sync["syncOptions"]
    assert depends(rec, root, rec.get(RELEASE, "argocd-release"))
    assert depends(rec, root, rec.get(SECRET, "argocd-cluster-dev"))


def test_cluster_access_uses_a_dedicated_service_account_token(record):
    kubeconfig = (
        "clusters:\n- name: dev\n  cluster:\n    server: https://x:6443\n    certificate-authority-data: Q0FEQVRB\n"
    )

    def program():
        access = ArgoCdClusterAccess(
            "access",
            {"server": "https://x:6443", "kubeconfig": kubeconfig},
            opts=pulumi.ResourceOptions(providers=[provider()]),
        )
        pulumi.export("registration", access.registration)

    rec = record(program, preview=False)
    token = rec.get(SECRET, "access-token")
    assert token.inputs["type"] == "kubernetes.io/service-account-token"
    assert token.inputs["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "argocd-manager"}
    binding = rec.get("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "access-binding")
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "argocd-manager", "namespace": "kube-system"}
    ]
    output = rec.outputs["registration"]
    assert output.secret and output.value["ca_data"] == "Q0FEQVRB" and output.value["server"] == "https://x:6443"
    assert output.value["token"].startswith("offline-placeholder-service-account-token-")


def test_kubeconfig_ca_needs_a_cluster():
    with pytest.raises(ValueError, match="no cluster"):
        kubeconfig_ca("apiVersion: v1\nclusters: []\n")


def test_longhorn_default_class_retains_with_one_replica(record):
    def program():
        Longhorn(
            "longhorn",
            {"chart_version": "1.9.2", "replica_count": 1},
            opts=pulumi.ResourceOptions(providers=[provider()]),
        )

    rec = record(program)
    values = rec.get(RELEASE, "longhorn-release").inputs["values"]
    assert values["persistence"] == {
        "defaultClass": True,
        "defaultClassReplicaCount": 1,
        "reclaimPolicy": "Retain",
        "defaultFsType": "ext4",
    }
    assert values["defaultSettings"]["defaultReplicaCount"] == 1
    assert values["defaultSettings"]["replicaSoftAntiAffinity"] is True
    namespace = rec.get("kubernetes:core/v1:Namespace", "longhorn-namespace")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


@pytest.mark.parametrize("replicas", [0, 4])
def test_longhorn_replica_count_boundaries(record, replicas):
    def program():
        Longhorn("longhorn", {"chart_version": "1.9.2", "replica_count": replicas})

    with pytest.raises(Exception, match=r"replica_count must be 1\.\.3"):
        record(program)


def test_longhorn_talos_patch_and_extensions():
    mount = json.loads(longhorn_talos_patch())["machine"]["kubelet"]["extraMounts"][0]
    assert mount == {
        "destination": "/var/lib/longhorn",
        "type": "bind",
        "source": "/var/lib/longhorn",
        "options": ["bind", "rshared", "rw"],
    }
    assert missing_extensions(["siderolabs/iscsi-tools"]) == ["siderolabs/util-linux-tools"]
    assert missing_extensions(["siderolabs/util-linux-tools", "siderolabs/iscsi-tools"]) == []


def test_network_policies_deny_then_allow(record):
    def program():
        NetworkPolicies(
            "np",
            {
                "targets": [
                    PolicyTarget("romm", IngressAllows(from_namespaces=("cloudflared", "monitoring"))),
                    PolicyTarget("cert-manager", IngressAllows(from_entities=("kube-apiserver",))),
                    PolicyTarget("twingate", IngressAllows(same_namespace=False)),
                ]
            },
            opts=pulumi.ResourceOptions(providers=[provider()]),
        )

    rec = record(program)
    deny = rec.get(NETPOL, "np-romm-deny").inputs
    assert deny["metadata"]["name"] == "default-deny-ingress"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    allow = rec.get(NETPOL, "np-romm-allow").inputs["spec"]["ingress"][0]["from"]
    assert allow == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cloudflared"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
    entities = rec.get(CR.format("cilium.io/v2:CiliumNetworkPolicy"), "np-cert-manager-entities").inputs["spec"]
    assert entities == {"endpointSelector": {}, "ingress": [{"fromEntities": ["kube-apiserver"]}]}
    assert [r.name for r in rec.by_type(NETPOL) if r.name.startswith("np-twingate")] == ["np-twingate-deny"]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([PolicyTarget("a"), PolicyTarget("a")], "listed twice"),
        ([PolicyTarget("a", IngressAllows(from_entities=("everything",)))], "unknown Cilium entity"),
    ],
)
def test_network_policies_bad_input(record, targets, message):
    with pytest.raises(Exception, match=message):
        record(lambda: NetworkPolicies("np", {"targets": targets}))


def twingate_program(image: str = "twingate/connector:1.56.0"):
    def program():
        import pulumi_twingate as twingate

        tg = twingate.Provider("twingate", api_token=pulumi.Output.secret("t"), network="example")
        TwingateSite(
            "home",
            {
                "network": "example",
                "remote_network": "homelab-home",
                "location": "ON_PREMISE",
                "image": image,
                "kubernetes_provider": provider(),
                "targets": {"nfs-media": TwingateTarget("192.168.68.51", ("2049",))},
                "access_service_account_ids": ["sa-1"],
            },
            opts=pulumi.ResourceOptions(providers=[tg]),
        )

    return program


def test_twingate_connector_tokens_stay_secret_and_resources_are_narrow(record):
    rec = record(twingate_program(), preview=False)
    secret = rec.get(SECRET, "home-connector-tokens")
    assert secret.is_secret("stringData") and set(secret.inputs["stringData"]) == {"access-token", "refresh-token"}
    resource = rec.get("twingate:index/twingateResource:TwingateResource", "home-nfs-media").inputs
    assert resource["address"] == "192.168.68.51"
    assert resource["protocols"] == {
        "allowIcmp": False,
        "tcp": {"policy": "RESTRICTED", "ports": ["2049"]},
        "udp": {"policy": "DENY_ALL"},
    }
    assert resource["accessServices"] == [{"serviceAccountId": "sa-1"}]
    deployment = rec.get("kubernetes:apps/v1:Deployment", "home-connector")
    pod = deployment.inputs["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert "value" not in env["TWINGATE_ACCESS_TOKEN"] and "secretKeyRef" in env["TWINGATE_ACCESS_TOKEN"]["valueFrom"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Kubernetes objects go to the cluster, Twingate objects to Twingate.
    assert "pulumi:providers:kubernetes" in (deployment.provider or "")
    assert "pulumi:providers:twingate" in (
        rec.get("twingate:index/twingateConnector:TwingateConnector", "home-connector").provider or ""
    )


def test_twingate_image_needs_an_exact_tag(record):
    with pytest.raises(Exception, match="exact version tag"):
        record(twingate_program("twingate/connector:latest"))


def twingate_client_program(image: str = "twingate/client:1.0.0", nfs: bool = True):
    """The cloud stack's wiring: the service account key -> the headless client -> nfs-media."""

    def program():
        import pulumi_twingate as twingate

        from stacks.config.platform import TwingateClientConfig
        from stacks.platform import network_policies, policy_targets, twingate_client

        tg = twingate.Provider("twingate", api_token=pulumi.Output.secret("t"), network="example")
        nodes = TwingateServiceAccess(
            "cloud-nodes", {"name": "homelab-cloud-nodes"}, opts=pulumi.ResourceOptions(providers=[tg])
        )
        config = TwingateClientConfig.model_validate(
            {
                "image": image,
                "nfs_media": {"server": "192.168.68.51", "share": "/tank/media", "csi_chart_version": "v4.11.0"}
                if nfs
                else None,
            }
        )
        k8s_provider = provider()
        cni = k8s.core.v1.Namespace("cni-stand-in", opts=pulumi.ResourceOptions(provider=k8s_provider))
        on_cluster = pulumi.ResourceOptions(providers=[k8s_provider], depends_on=[cni])
        layers = twingate_client(config, nodes.key, k8s_provider, on_cluster)
        # As the cloud stack does: the client's namespace gets its default-deny (NET-13).
        network_policies(
            policy_targets(["twingate-client"], [], IngressAllows()),
            pulumi.ResourceOptions(providers=[k8s_provider], depends_on=layers),
        )

    return program


def test_twingate_client_puts_the_service_key_routes_on_every_node(record):
    rec = record(twingate_client_program(), preview=False)
    key = rec.get(SECRET, "cloud-twingate-client-service-key")
    assert key.is_secret("stringData")
    assert list(key.inputs["stringData"]) == ["service_key.json"]
    assert key.inputs["metadata"]["namespace"] == "twingate-client"
    daemonset = rec.get("kubernetes:apps/v1:DaemonSet", "cloud-twingate-client-daemonset")
    pod = daemonset.inputs["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True  # the kubelet's and the CSI node plugin's mounts use these routes
    [container] = pod["containers"]
    assert container["image"] == "twingate/client:1.0.0"
    assert container["securityContext"]["capabilities"] == {"add": ["NET_ADMIN"]}
    assert container["securityContext"]["privileged"] is False
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["service-key"]["mountPath"] == "/etc/twingate/service_key.json"
    assert mounts["service-key"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tun"]["hostPath"] == {"path": "/dev/net/tun", "type": "CharDevice"}
    assert volumes["service-key"]["secret"] == {"secretName": "service-key", "defaultMode": 0o400}
    namespace = rec.get("kubernetes:core/v1:Namespace", "cloud-twingate-client-namespace")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    # The media class mounts the home export through the client, after it.
    storage_class = rec.get("kubernetes:storage.k8s.io/v1:StorageClass", "cloud-media-storage-class")
    assert storage_class.inputs["parameters"] == {"server": "192.168.68.51", "share": "/tank/media"}
    assert "nfsvers=4.2" in storage_class.inputs["mountOptions"]  # NFSv4: TCP 2049 only, the one port admitted
    storage = rec.get("homelab:k8s:NfsMediaStorage", "cloud-media-storage")
    assert daemonset.urn in storage.dependencies
    assert any(
        urn.endswith("::cni-stand-in")
        for urn in rec.get("homelab:k8s:TwingateClient", "cloud-twingate-client").dependencies
    )
    assert "pulumi:providers:kubernetes" in (daemonset.provider or "")


def test_twingate_client_objects_validate_and_pass_the_pack_with_their_exemptions(record):
    from homelab.policy_config import config_path
    from homelab.policy_eval import evaluate, load_pack_config
    from policies.rules import RULES
    from tests.stacks.test_k8s_schemas import objects, validate

    rec = record(twingate_client_program(nfs=False), preview=False)
    for _name, type_, document in objects(rec.resources):
        validate(type_, document, "1.33.0")
    mine = ("cloud-twingate-client", "cloud-nodes")
    blocking = [
        (f.rule_id, f.resource_name, f.message)
        for f in evaluate(rec, RULES, load_pack_config(config_path("cloud")))
        if f.blocking and (f.resource_name or "").startswith(mine)
    ]
    assert blocking == []
    # Without the recorded exemptions the same objects are blocked: the exemptions are what admits them.
    flagged = {(f.rule_id, f.resource_name) for f in evaluate(rec, RULES) if f.blocking}
    assert {
        ("SEC-07", "cloud-twingate-client-daemonset"),
        ("NET-05", "cloud-twingate-client-daemonset"),
        ("SEC-08", "cloud-twingate-client-namespace"),
    } <= flagged


def test_twingate_client_image_needs_an_exact_tag(record):
    with pytest.raises(Exception, match="exact version tag"):
        record(twingate_client_program("twingate/client:latest"))


def test_an_unpinned_crd_version_is_refused(record):
    def program():
        cm = CertManager("cert-manager", {"chart_version": "v1.20.2"})
        ExternalSecrets(
            "eso",
            {"chart_version": "2.8.0", "cert_manager": cm, "access_token": "t", "store": STORE},  # type: ignore[typeddict-item]
        )

    with pytest.raises(Exception, match=r"external-secrets v2\.8\.0 is not pinned"):
        record(program)
