"""`Velero`: the Kubernetes layer of the backup design (FR-024) on one cluster.

Velero backs up the objects of the namespaces a schedule names and, with file-system backup
(Kopia, run by the node agent on every node), the contents of their volumes, into an S3 bucket
offsite (the OCI backup bucket, or OVH for CLOUD when configured). One schedule per data class
(`BackupSchedule`, derived from the catalog by `stacks.velero`): its cron, its namespaces, its TTL,
and whether volume contents are copied. Media namespaces get no schedule at all.

Threat model: the bucket credentials can read and write every backup, and the Kopia repository
password decrypts them; both are Kubernetes Secrets written by Pulumi from secret outputs in the
`velero` namespace, which only cluster admins can read (Talos also encrypts Secrets in etcd).
The Kopia repository is encrypted client-side with that password before anything leaves the
cluster; the bucket adds Object Storage's own encryption at rest. Velero's server holds
cluster-admin (it must read and recreate every object), so the namespace gets nothing but
Velero, ingress is denied except Prometheus' scrapes (`stacks.platform.PLATFORM_NAMESPACES`), and
no Service of it is published.

Order: the namespace (Pod Security `privileged`: the node agent runs as root and mounts the
kubelet's pod directory `/var/lib/kubelet/pods` from the host, which Talos' default `baseline`
level refuses) -> Velero's CRDs (the release's files pinned in vendor/manifests.lock.yaml, applied
by Pulumi because Helm installs `crds/` once and never upgrades them; the chart runs with
`skip_crds` and `upgradeCRDs: false`) -> the two Secrets -> the chart (with no storage location of
its own: `backupsEnabled`/`snapshotsEnabled` false) -> the BackupStorageLocation -> the schedules.

The repository password must exist before Velero's first backup: Velero creates
`velero-repo-credentials` with a well-known default password when the Secret is missing, and a
repository created with one password cannot be opened with another. Changing the password later
therefore needs a new repository (docs/runbooks/restore.md, "Velero").
"""

import configparser
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.labels import managed_labels, namespace_metadata
from components.s3bucket import S3Bucket

VMWARE_TANZU = "https://vmware-tanzu.github.io/helm-charts"
NAMESPACE = "velero"
RELEASE = "velero"
LOCATION = "offsite"
METRICS_PORT = "http-monitoring"
"""The server container's metrics port (8085) as the chart names it when `metrics.enabled`."""
SERVER_POD_LABELS = {"app.kubernetes.io/name": "velero", "name": "velero"}
"""Labels of the server's pods only (the node agents' pods say `name: node-agent`)."""
CREDENTIALS_SECRET = "velero-offsite-credentials"
CREDENTIALS_KEY = "cloud"
REPOSITORY_SECRET = "velero-repo-credentials"
"""The name and key Velero reads the Kopia repository password from (pkg/repository/keys)."""
REPOSITORY_KEY = "repository-password"
MIN_REPOSITORY_PASSWORD = 16
AWS_PLUGIN_IMAGE = "velero/velero-plugin-for-aws"
MIN_AWS_PLUGIN = (1, 14, 3)
"""The first plugin release whose S3 client works against OCI and OVH again (platform facts §5:
plugins from 1.9.1 on send request checksums these endpoints refuse; the fix landed in 1.14.3)."""
_PLUGIN_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


def plugin_image_problem(image: str) -> str | None:
    """Why `image` is not an acceptable AWS object-store plugin image, or None."""
    repository, _, tag = image.rpartition(":")
    if repository.removeprefix("docker.io/") != AWS_PLUGIN_IMAGE:
        return f"must be {AWS_PLUGIN_IMAGE}:<version>"
    match = _PLUGIN_TAG.match(tag)
    if match is None:
        return "must carry an exact version tag like v1.14.3"
    version = tuple(int(part) for part in match.groups())
    if version < MIN_AWS_PLUGIN:
        minimum = ".".join(str(part) for part in MIN_AWS_PLUGIN)
        return f"{tag} sends request checksums OCI and OVH refuse; use v{minimum} or newer"
    return None


@dataclass(frozen=True)
class BackupSchedule:
    """One Velero schedule: the namespaces of one data class."""

    name: str
    cron: str
    """Cron expression (UTC)."""
    namespaces: tuple[str, ...]
    ttl_hours: int
    volumes: bool
    """Copy volume contents (file-system backup) as well as the objects."""


class VeleroArgs(TypedDict):
    """Inputs of `Velero`."""

    chart_version: str
    """Exact chart version (`12.1.0` ships Velero v1.18.1)."""
    crd_files: Sequence[str]
    """Velero's CRDs as vendored manifest files (`components.manifests.manifest_files`)."""
    plugin_image: str
    """`velero/velero-plugin-for-aws:<tag>`, at least v1.14.3 (`plugin_image_problem`)."""
    location: S3Bucket
    """The bucket Velero writes to (path-style S3 API)."""
    prefix: str
    """Folder of this cluster's backups in the bucket (`velero/prod`): one bucket serves both clusters."""
    repository_password: pulumi.Input[str]
    """The Kopia repository password (a secret; at least 16 characters)."""
    schedules: Sequence[BackupSchedule]


def credentials_file(access_key_id: str, secret_access_key: str) -> str:
    """The AWS shared-credentials file the plugin reads (`AWS_SHARED_CREDENTIALS_FILE`)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser["default"] = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key}
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def location_config(region: str, endpoint: str) -> dict[str, str]:
    """The AWS plugin's BackupStorageLocation config for a non-AWS S3 endpoint.

    Path-style addressing (OCI's compat endpoint has no virtual-host form there) and no request
    checksum algorithm: OCI and OVH refuse the CRC32 checksums newer AWS SDKs add by default.
    """
    return {"region": region, "s3Url": endpoint, "s3ForcePathStyle": "true", "checksumAlgorithm": ""}


def chart_values(plugin_image: str) -> dict[str, Any]:
    """Values of the `velero` chart: no location or schedule of its own, Kopia node agent on."""
    return {
        "upgradeCRDs": False,
        "cleanUpCRDs": False,
        # The BackupStorageLocation and the schedules are Pulumi's objects (schema-checked in the
        # tests); the chart would otherwise template an empty default location.
        "backupsEnabled": False,
        "snapshotsEnabled": False,
        "credentials": {"useSecret": True, "existingSecret": CREDENTIALS_SECRET},
        "initContainers": [
            {
                "name": "velero-plugin-for-aws",
                "image": plugin_image,
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
            }
        ],
        "deployNodeAgent": True,
        # Talos runs the kubelet with the default root dir: the node agent reads pod volumes there.
        "nodeAgent": {"podVolumePath": "/var/lib/kubelet/pods"},
        "configuration": {
            "uploaderType": "kopia",
            "defaultBackupStorageLocation": LOCATION,
            # Volume contents only where a schedule asks for them (its class), never by default.
            "defaultVolumesToFsBackup": False,
        },
        "metrics": {"enabled": True},
    }


class Velero(pulumi.ComponentResource):
    """Velero with its node agent, an offsite storage location and one schedule per data class."""

    namespace: str
    schedule_names: list[str]

    def __init__(self, name: str, args: VeleroArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:Velero", name, None, opts)
        problem = plugin_image_problem(args["plugin_image"])
        if problem is not None:
            raise ValueError(f"Velero {name!r}: plugin_image {args['plugin_image']!r} {problem}")
        seen: set[str] = set()
        for schedule in args["schedules"]:
            if schedule.name in seen:
                raise ValueError(f"Velero {name!r}: schedule {schedule.name!r} is listed twice")
            seen.add(schedule.name)
            if not schedule.namespaces:
                raise ValueError(f"Velero {name!r}: schedule {schedule.name!r} names no namespace")
            if schedule.ttl_hours < 1:
                raise ValueError(f"Velero {name!r}: schedule {schedule.name!r} needs a TTL of at least an hour")
        location = args["location"]
        child = pulumi.ResourceOptions(parent=self)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(NAMESPACE, "privileged"), opts=child
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        crds = k8s.yaml.v2.ConfigGroup(f"{name}-crds", files=list(args["crd_files"]), opts=child)

        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CREDENTIALS_SECRET, namespace=NAMESPACE, labels=managed_labels(CREDENTIALS_SECRET)
            ),
            type="Opaque",
            string_data={
                CREDENTIALS_KEY: pulumi.Output.secret(
                    pulumi.Output.all(location.access_key_id, location.secret_access_key).apply(
                        lambda keys: credentials_file(str(keys[0]), str(keys[1]))
                    )
                )
            },
            opts=in_ns,
        )
        repository = k8s.core.v1.Secret(
            f"{name}-repository-password",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=REPOSITORY_SECRET, namespace=NAMESPACE, labels=managed_labels(REPOSITORY_SECRET)
            ),
            type="Opaque",
            string_data={REPOSITORY_KEY: pulumi.Output.secret(args["repository_password"])},
            # The repository cannot be opened with another password: never delete it with the stack.
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=RELEASE,
            chart="velero",
            version=args["chart_version"],
            namespace=NAMESPACE,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=VMWARE_TANZU),
            skip_crds=True,
            values=chart_values(args["plugin_image"]),
            timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, crds, credentials, repository]),
        )
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[release, crds])

        storage = k8s.apiextensions.CustomResource(
            f"{name}-location",
            api_version="velero.io/v1",
            kind="BackupStorageLocation",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=LOCATION, namespace=NAMESPACE, labels=managed_labels(LOCATION)),
            spec={
                "provider": "aws",
                "default": True,
                "objectStorage": {"bucket": location.bucket, "prefix": args["prefix"]},
                "config": pulumi.Output.all(location.region, location.endpoint).apply(
                    lambda values: location_config(str(values[0]), str(values[1]))
                ),
                "credential": {"name": CREDENTIALS_SECRET, "key": CREDENTIALS_KEY},
                "accessMode": "ReadWrite",
            },
            opts=after_chart,
        )
        for schedule in args["schedules"]:
            k8s.apiextensions.CustomResource(
                f"{name}-schedule-{schedule.name}",
                api_version="velero.io/v1",
                kind="Schedule",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=schedule.name, namespace=NAMESPACE, labels=managed_labels(schedule.name)
                ),
                spec={
                    "schedule": schedule.cron,
                    "useOwnerReferencesInBackup": False,
                    "template": {
                        "includedNamespaces": list(schedule.namespaces),
                        "storageLocation": LOCATION,
                        "ttl": f"{schedule.ttl_hours}h0m0s",
                        # No CSI snapshots: they would stay on the node's disk, not offsite.
                        "snapshotVolumes": False,
                        "defaultVolumesToFsBackup": schedule.volumes,
                        "metadata": {"labels": {"homelab.dev/data-class": schedule.name}},
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release, crds, storage]),
            )
        self.namespace = NAMESPACE
        self.schedule_names = sorted(seen)
        self.register_outputs({"namespace": NAMESPACE, "schedules": self.schedule_names})
