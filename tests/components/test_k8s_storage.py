"""Storage classes: local-path (DEV) and nfs-media (PROD), both retaining volumes."""

import json

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.storage import LocalPathStorage, NfsMediaStorage, local_path_talos_patch

SC = "kubernetes:storage.k8s.io/v1:StorageClass"


def program():
    provider = k8s.Provider("k8s", kubeconfig="{}", cluster_identifier="test")
    opts = pulumi.ResourceOptions(providers=[provider])
    LocalPathStorage("local", {"version": "v0.0.31"}, opts=opts)
    NfsMediaStorage("media", {"chart_version": "v4.11.0", "server": "192.168.68.51", "share": "/tank/media"}, opts=opts)


def test_local_path_class_retains_and_waits_for_the_consumer(record):
    rec = record(program)
    sc = rec.get(SC, "local-class")
    assert sc.inputs["metadata"]["name"] == "local-path"
    assert sc.inputs["provisioner"] == "rancher.io/local-path"
    assert sc.inputs["reclaimPolicy"] == "Retain"
    assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    deployment = rec.get("kubernetes:apps/v1:Deployment", "local-deployment")
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "rancher/local-path-provisioner:v0.0.31"
    assert deployment.inputs["metadata"]["namespace"] == "kube-system"
    assert not rec.by_type("kubernetes:core/v1:Namespace")  # no extra privileged namespace
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False
    component = rec.get("homelab:k8s:LocalPathStorage", "local")
    assert all(r.parent == component.urn for r in rec.resources if r.name.startswith("local-"))


def test_talos_patch_mounts_the_provisioner_directory():
    patch = json.loads(local_path_talos_patch())
    mount = patch["machine"]["kubelet"]["extraMounts"][0]
    assert mount["source"] == mount["destination"] == "/var/local-path-provisioner"
    assert "rshared" in mount["options"]


def test_nfs_media_class_points_at_the_zfs_export_and_retains(record):
    rec = record(program)
    driver = rec.get("kubernetes:helm.sh/v3:Release", "media-csi-driver")
    assert driver.inputs["chart"] == "csi-driver-nfs" and driver.inputs["version"] == "v4.11.0"
    sc = rec.get(SC, "media-class")
    assert sc.inputs["metadata"]["name"] == "nfs-media"
    assert sc.inputs["provisioner"] == "nfs.csi.k8s.io"
    assert sc.inputs["parameters"] == {"server": "192.168.68.51", "share": "/tank/media"}
    assert sc.inputs["reclaimPolicy"] == "Retain"
    assert driver.urn in sc.dependencies
