"""Longhorn on PROD (FR-005): replicated block storage and the cluster's default `longhorn` class.

Talos ships neither iSCSI nor the util-linux tools Longhorn's engine calls, and its root filesystem
is read-only outside /var: the nodes need the `siderolabs/iscsi-tools` and
`siderolabs/util-linux-tools` extensions in their Image Factory schematic and `/var/lib/longhorn`
bind-mounted into the kubelet with shared propagation (`longhorn_talos_patch`). A schematic change
reaches running nodes through `talosctl upgrade`, never by replacing a VM (the Proxmox substrate
ignores boot-media changes).

Data protection: the class keeps volumes when a claim is deleted (`Retain`), and the replica count
is at most the number of workers (one at home today): Longhorn refuses to schedule more replicas
than nodes with soft anti-affinity off, which would leave every volume degraded.

The chart owns the `longhorn` StorageClass (its manager reconciles it from the chart's values), so
Pulumi sets it through `persistence.*` instead of declaring a second, fighting object.
"""

import json
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.labels import namespace_metadata

LONGHORN_REPOSITORY = "https://charts.longhorn.io"
NAMESPACE = "longhorn-system"
DATA_PATH = "/var/lib/longhorn"
CLASS_NAME = "longhorn"
REQUIRED_EXTENSIONS = ("siderolabs/iscsi-tools", "siderolabs/util-linux-tools")


def longhorn_talos_patch() -> str:
    """Talos machine patch: Longhorn's data directory bind-mounted into the kubelet (rshared)."""
    return json.dumps(
        {
            "machine": {
                "kubelet": {
                    "extraMounts": [
                        {
                            "destination": DATA_PATH,
                            "type": "bind",
                            "source": DATA_PATH,
                            "options": ["bind", "rshared", "rw"],
                        }
                    ]
                }
            }
        },
        sort_keys=True,
    )


def missing_extensions(extensions: list[str]) -> list[str]:
    return [ext for ext in REQUIRED_EXTENSIONS if ext not in extensions]


class LonghornArgs(TypedDict):
    chart_version: str
    """Exact Longhorn chart version, e.g. `1.9.2`."""
    replica_count: int
    """Replicas per volume; at most the number of worker nodes."""
    default_class: NotRequired[bool]


def longhorn_values(replicas: int, default_class: bool) -> dict[str, Any]:
    return {
        "persistence": {
            "defaultClass": default_class,
            "defaultClassReplicaCount": replicas,
            "reclaimPolicy": "Retain",
            "defaultFsType": "ext4",
        },
        "defaultSettings": {
            "defaultDataPath": DATA_PATH,
            "defaultReplicaCount": replicas,
            # One worker: a replica may never wait for a second node that does not exist.
            "replicaSoftAntiAffinity": replicas == 1,
            "storageMinimalAvailablePercentage": 15,
        },
        # The pre-upgrade hook Job is a Helm hook; Pulumi's Release runs hooks, but a failed check
        # would block every later `up` of this stack. Upgrades follow docs/runbooks instead.
        "preUpgradeChecker": {"jobEnabled": False},
        "longhornUI": {"replicas": 1},
    }


class Longhorn(pulumi.ComponentResource):
    """The `longhorn-system` namespace (privileged: the engine runs as root with host mounts) and the chart."""

    storage_class_name: str

    def __init__(self, name: str, args: LonghornArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:Longhorn", name, None, opts)
        replicas = args["replica_count"]
        if not 1 <= replicas <= 3:
            raise ValueError(f"Longhorn {name!r}: replica_count must be 1..3, got {replicas}")
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(NAMESPACE, "privileged"), opts=child
        )
        k8s.helm.v3.Release(
            f"{name}-release",
            name="longhorn",
            chart="longhorn",
            version=args["chart_version"],
            namespace=NAMESPACE,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=LONGHORN_REPOSITORY),
            values=longhorn_values(replicas, args.get("default_class", True)),
            timeout=900,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        self.storage_class_name = CLASS_NAME
        self.register_outputs({"storage_class_name": CLASS_NAME})
