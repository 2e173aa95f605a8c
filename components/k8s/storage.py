"""Kubernetes storage classes: `local-path` (DEV) and `nfs-media` (PROD, backed by the ZFS NFS export).

Both classes keep volumes when a claim is deleted (`reclaimPolicy: Retain`): deleting a PVC by
mistake must not delete the data behind it.
"""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

LOCAL_PATH_DIR = "/var/local-path-provisioner"
# Like k3s, run the provisioner in kube-system: its helper pods need hostPath and root, which only
# the system namespace allows, so no extra privileged namespace is opened.
SYSTEM_NAMESPACE = "kube-system"
NFS_CSI_REPOSITORY = "https://raw.githubusercontent.com/kubernetes-csi/csi-driver-nfs/master/charts"
NFS_CSI_PROVISIONER = "nfs.csi.k8s.io"


def local_path_talos_patch() -> str:
    """Talos machine patch the local-path provisioner needs: its host directory bind-mounted into the
    kubelet with shared propagation (Talos' root filesystem is read-only outside /var)."""
    return json.dumps(
        {
            "machine": {
                "kubelet": {
                    "extraMounts": [
                        {
                            "destination": LOCAL_PATH_DIR,
                            "type": "bind",
                            "source": LOCAL_PATH_DIR,
                            "options": ["bind", "rshared", "rw"],
                        }
                    ]
                }
            }
        },
        sort_keys=True,
    )


_SETUP = """#!/bin/sh
set -eu
mkdir -p "$VOL_DIR"
chmod 0777 "$VOL_DIR"
"""
_TEARDOWN = """#!/bin/sh
set -eu
rm -rf "$VOL_DIR"
"""
_HELPER_POD = """apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  priorityClassName: system-node-critical
  tolerations:
    - key: node.kubernetes.io/disk-pressure
      operator: Exists
      effect: NoSchedule
  containers:
    - name: helper-pod
      image: busybox:1.37.0
      imagePullPolicy: IfNotPresent
"""


class LocalPathStorageArgs(TypedDict):
    version: str
    """local-path-provisioner release, e.g. `v0.0.31`."""
    namespace: NotRequired[str]
    """Defaults to kube-system; any other namespace is created with Pod Security `privileged`."""
    default_class: NotRequired[bool]


class LocalPathStorage(pulumi.ComponentResource):
    """Rancher's local-path provisioner and the `local-path` class (node-local volumes for DEV)."""

    storage_class_name: pulumi.Output[str]

    def __init__(self, name: str, args: LocalPathStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:LocalPathStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns_name = args.get("namespace", SYSTEM_NAMESPACE)
        labels = {"app.kubernetes.io/name": "local-path-provisioner", "app.kubernetes.io/managed-by": "pulumi"}

        in_ns = child
        if ns_name != SYSTEM_NAMESPACE:
            # The helper pods mount host paths as root: their namespace must allow privileged pods.
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=ns_name,
                    labels={**labels, "pod-security.kubernetes.io/enforce": "privileged"},
                ),
                opts=child,
            )
            in_ns = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[namespace]))
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="local-path-provisioner", namespace=ns_name, labels=labels),
            opts=in_ns,
        )
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-cluster-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="local-path-provisioner", labels=labels),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""],
                    resources=["nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"],
                    verbs=["get", "list", "watch"],
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""],
                    resources=["persistentvolumes"],
                    verbs=["get", "list", "watch", "create", "patch", "update", "delete"],
                ),
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["events"], verbs=["create", "patch"]),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["storage.k8s.io"], resources=["storageclasses"], verbs=["get", "list", "watch"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["pods"], verbs=["create", "delete"]),
            ],
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-cluster-role-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="local-path-provisioner", labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role.metadata.name
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account.metadata.name, namespace=ns_name)],
            opts=child,
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="local-path-config", namespace=ns_name, labels=labels),
            data={
                "config.json": json.dumps(
                    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [LOCAL_PATH_DIR]}]}
                ),
                "setup": _SETUP,
                "teardown": _TEARDOWN,
                "helperPod.yaml": _HELPER_POD,
            },
            opts=in_ns,
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="local-path-provisioner", namespace=ns_name, labels=labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"app.kubernetes.io/name": "local-path-provisioner"}
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=account.metadata.name,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="local-path-provisioner",
                                image=f"rancher/local-path-provisioner:{args['version']}",
                                image_pull_policy="IfNotPresent",
                                command=[
                                    "local-path-provisioner",
                                    "--debug",
                                    "start",
                                    "--config",
                                    "/etc/config/config.json",
                                ],
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="POD_NAMESPACE",
                                        value_from=k8s.core.v1.EnvVarSourceArgs(
                                            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(
                                                field_path="metadata.namespace"
                                            )
                                        ),
                                    ),
                                    k8s.core.v1.EnvVarArgs(name="CONFIG_MOUNT_PATH", value="/etc/config/"),
                                ],
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="config-volume", mount_path="/etc/config/")
                                ],
                                # The provisioner only talks to the API server; the root-running
                                # helper pods it spawns are what need the privileged namespace.
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    run_as_non_root=True,
                                    run_as_user=65534,
                                    run_as_group=65534,
                                    allow_privilege_escalation=False,
                                    read_only_root_filesystem=True,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                                ),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "10m", "memory": "32Mi"}, limits={"memory": "128Mi"}
                                ),
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="config-volume",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config.metadata.name),
                            )
                        ],
                    ),
                ),
            ),
            opts=in_ns,
        )
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="local-path",
                labels=labels,
                annotations={
                    "storageclass.kubernetes.io/is-default-class": "true"
                    if args.get("default_class", True)
                    else "false"
                },
            ),
            provisioner="rancher.io/local-path",
            reclaim_policy="Retain",
            volume_binding_mode="WaitForFirstConsumer",
            opts=child,
        )
        self.storage_class_name = storage_class.metadata.apply(lambda m: m.name or "local-path")
        self.register_outputs({"storage_class_name": self.storage_class_name})


class NfsMediaStorageArgs(TypedDict):
    chart_version: str
    """csi-driver-nfs chart version, e.g. `v4.11.0`."""
    server: pulumi.Input[str]
    """NFS server address (the Proxmox host)."""
    share: pulumi.Input[str]
    """Exported path (`/tank/media`)."""
    class_name: NotRequired[str]


class NfsMediaStorage(pulumi.ComponentResource):
    """The NFS CSI driver and the `nfs-media` class on the host's ZFS media export."""

    storage_class_name: pulumi.Output[str]

    def __init__(self, name: str, args: NfsMediaStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:NfsMediaStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        driver = k8s.helm.v3.Release(
            f"{name}-csi-driver",
            name="csi-driver-nfs",
            chart="csi-driver-nfs",
            version=args["chart_version"],
            namespace="kube-system",
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=NFS_CSI_REPOSITORY),
            values={"controller": {"replicas": 1}, "externalSnapshotter": {"enabled": False}},
            opts=child,
        )
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.get("class_name", "nfs-media"), labels={"app.kubernetes.io/managed-by": "pulumi"}
            ),
            provisioner=NFS_CSI_PROVISIONER,
            parameters={"server": args["server"], "share": args["share"]},
            reclaim_policy="Retain",
            volume_binding_mode="Immediate",
            allow_volume_expansion=True,
            mount_options=["nfsvers=4.2", "hard", "noatime"],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[driver])),
        )
        self.storage_class_name = storage_class.metadata.apply(lambda m: m.name or "nfs-media")
        self.register_outputs({"storage_class_name": self.storage_class_name})
