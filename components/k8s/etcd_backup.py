"""`EtcdBackup`: a cluster's etcd snapshot, taken on a schedule and stored off the node (FR-024).

docs/decisions/etcd-snapshots.md is the design: a CronJob in its own namespace whose pod holds a
Talos API credential limited to `os:etcd:backup`, runs `talosctl etcd snapshot` into an emptyDir,
checks it, and uploads it to every target bucket under `etcd/<cluster>/<UTC time>.snapshot`,
encrypted with SSE-C (a failing target does not stop the others; the run fails at the end). The
buckets' lifecycle rules expire old snapshots. The CronJob names the data holder it copies and the
buckets it writes in its `homelab.dev/backup` annotation (homelab/backup_evidence.py): the offsite
policy (DAT-08) reads coverage from it.

Threat model: the Talos credential can take etcd snapshots and nothing else (the control planes'
`kubernetesTalosAPIAccess` allows only that role, only from this namespace: `talos_access_patch`);
a snapshot holds every Secret of the cluster, so it leaves the pod only encrypted with a 32-byte
key the cluster never sees in plain text outside this namespace's Secret. The S3 credentials can
write the buckets. Both Secrets live in a namespace that runs nothing else, under restricted Pod
Security, with default-deny ingress (the stack's NetworkPolicies); the pod needs egress to the
Talos API and the buckets.

Order: namespace -> the Talos `ServiceAccount` (Talos writes the Secret of the same name holding
a talosconfig for the role) and the two Secrets -> the CronJob.
"""

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.labels import managed_labels, namespace_metadata
from components.s3bucket import S3Bucket, targets_problem
from homelab.backup_evidence import ANNOTATION, annotation, target_url

NAMESPACE = "etcd-backup"
NAME = "etcd-backup"
TALOS_ROLE = "os:etcd:backup"
TALOS_SECRET_PATH = "/var/run/secrets/talos.dev"
"""Where talosctl looks for the in-cluster talosconfig."""
S3_SECRET = "etcd-backup-s3"
KEY_SECRET = "etcd-backup-sse-c"
KEY_FILE = "sse-c.key"
KEY_PATH = "/etc/etcd-backup"
WORK = "/work"
UID = 65534
TALOSCTL_IMAGE = "ghcr.io/siderolabs/talosctl"
SSE_C_KEY_BYTES = 32
DEADLINE_SECONDS = 3600
"""How long one run (snapshot and upload, retries included) may take before its Job fails."""


def talos_access_patch(namespace: str = NAMESPACE) -> str:
    """Control-plane machine-config patch: the Talos API reachable from `namespace` for etcd backups only."""
    features = {
        "kubernetesTalosAPIAccess": {
            "enabled": True,
            "allowedRoles": [TALOS_ROLE],
            "allowedKubernetesNamespaces": [namespace],
        }
    }
    return json.dumps({"machine": {"features": features}}, sort_keys=True)


def sse_c_key_problem(value: str) -> str | None:
    """Why `value` is not a base64-encoded 32-byte SSE-C key (`openssl rand -base64 32`), or None."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "must be base64 (`openssl rand -base64 32`)"
    if len(raw) != SSE_C_KEY_BYTES:
        return f"must decode to {SSE_C_KEY_BYTES} bytes, not {len(raw)} (`openssl rand -base64 32`)"
    return None


def upload_script() -> str:
    """Check the snapshot and upload it to every target, SSE-C encrypted. Each run writes new objects
    (safe to re-run)."""
    return f"""#!/bin/sh
# Managed by Pulumi (homelab EtcdBackup): check the etcd snapshot and upload it to every target.
set -eu
snapshot={WORK}/etcd.snapshot
size=$(wc -c < "$snapshot")
# bbolt pages plus etcd's trailing SHA-256: anything else is a truncated or foreign file.
if [ "$size" -lt 4096 ] || [ $((size % 512)) -ne 32 ]; then
  echo "etcd-backup: $snapshot ($size bytes) is not a complete etcd snapshot" >&2
  exit 1
fi
digest=$(sha256sum "$snapshot" | cut -d' ' -f1)
key="etcd/$CLUSTER/$(date -u +%Y%m%dT%H%M%SZ).snapshot"
# OCI's S3 compatibility API serves path-style addresses only.
aws configure set default.s3.addressing_style path
failed=0
for site in $TARGETS; do
  eval "endpoint=\\$S3_ENDPOINT_$site bucket=\\$S3_BUCKET_$site region=\\$S3_REGION_$site"
  eval "key_id=\\$S3_KEY_ID_$site secret=\\$S3_SECRET_$site"
  # shellcheck disable=SC2154 # set by the eval above
  if AWS_ACCESS_KEY_ID="$key_id" AWS_SECRET_ACCESS_KEY="$secret" AWS_DEFAULT_REGION="$region" \\
    aws --endpoint-url "$endpoint" s3 cp "$snapshot" "s3://$bucket/$key" \\
      --sse-c AES256 --sse-c-key fileb://{KEY_PATH}/{KEY_FILE} \\
      --metadata "sha256=$digest" --only-show-errors; then
    echo "etcd-backup: uploaded $key to $site ($size bytes, sha256 $digest)"
  else
    echo "etcd-backup: upload of $key to $site failed" >&2
    failed=1
  fi
done
exit "$failed"
"""


class EtcdBackupArgs(TypedDict):
    """Inputs of `EtcdBackup`."""

    cluster: str
    """The cluster's name: the folder `etcd/<cluster>/` in the bucket."""
    holder: str
    """The data holder the snapshots copy (the backup plan's `<environment>-etcd`): named, with the
    buckets' URLs, in the CronJob's `homelab.dev/backup` annotation, the offsite policy's evidence."""
    talos_version: str
    """The cluster's Talos version (`v1.11.5`): the talosctl image's tag."""
    node: str
    """A control-plane node's address: the member the snapshot is taken from."""
    schedule: str
    """Cron expression (UTC): the `critical` class' schedule."""
    uploader_image: str
    """The pinned AWS CLI image (`components.oci.dump.AWS_CLI_IMAGE`)."""
    targets: Sequence[S3Bucket]
    """Every bucket a snapshot is uploaded to (at least one, each site once)."""
    sse_c_key: pulumi.Input[str]
    """Base64 of the 32-byte SSE-C key (a secret)."""


def _restricted() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=UID,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def _env(name: str, secret: str, key: str) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(
        name=name,
        value_from=k8s.core.v1.EnvVarSourceArgs(secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)),
    )


def _target_env(target: S3Bucket) -> list[k8s.core.v1.EnvVarArgs]:
    """One target's settings, named by its site (the upload script reads them by name)."""
    site = target.site
    return [
        k8s.core.v1.EnvVarArgs(name=f"S3_ENDPOINT_{site}", value=target.endpoint),
        k8s.core.v1.EnvVarArgs(name=f"S3_BUCKET_{site}", value=target.bucket),
        k8s.core.v1.EnvVarArgs(name=f"S3_REGION_{site}", value=target.region),
        _env(f"S3_KEY_ID_{site}", S3_SECRET, f"{site}_access_key_id"),
        _env(f"S3_SECRET_{site}", S3_SECRET, f"{site}_secret_access_key"),
    ]


class EtcdBackup(pulumi.ComponentResource):
    """A daily etcd snapshot of one cluster, SSE-C encrypted in the offsite bucket."""

    namespace: str
    cron_job_name: str

    def __init__(self, name: str, args: EtcdBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:k8s:EtcdBackup", name, None, opts)
        if not args["talos_version"].startswith("v"):
            raise ValueError(f"EtcdBackup {name!r}: talos_version {args['talos_version']!r} must look like v1.11.5")
        if not args["holder"]:
            raise ValueError(f"EtcdBackup {name!r}: holder must name the data holder the snapshots copy")
        if ":" not in args["uploader_image"].rpartition("/")[2]:
            raise ValueError(f"EtcdBackup {name!r}: uploader_image {args['uploader_image']!r} needs an exact tag")
        targets = list(args["targets"])
        problem = targets_problem(targets)
        if problem is not None:
            raise ValueError(f"EtcdBackup {name!r}: {problem}")
        sites = [t.site for t in targets]
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_metadata(NAMESPACE, "restricted"), opts=child
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        account = k8s.apiextensions.CustomResource(
            f"{name}-talos-account",
            api_version="talos.dev/v1alpha1",
            kind="ServiceAccount",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=NAMESPACE, labels=managed_labels(NAME)),
            spec={"roles": [TALOS_ROLE]},
            opts=in_ns,
        )
        s3 = k8s.core.v1.Secret(
            f"{name}-s3",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=S3_SECRET, namespace=NAMESPACE, labels=managed_labels(S3_SECRET)),
            type="Opaque",
            string_data={
                key: pulumi.Output.secret(value)
                for t in targets
                for key, value in (
                    (f"{t.site}_access_key_id", t.access_key_id),
                    (f"{t.site}_secret_access_key", t.secret_access_key),
                )
            },
            opts=in_ns,
        )
        # `data` takes base64: the mounted file is the raw 32 bytes the AWS CLI's fileb:// reads.
        key = k8s.core.v1.Secret(
            f"{name}-sse-c",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KEY_SECRET, namespace=NAMESPACE, labels=managed_labels(KEY_SECRET)
            ),
            type="Opaque",
            data={KEY_FILE: pulumi.Output.secret(args["sse_c_key"]).apply(lambda v: v.strip())},
            # Snapshots already in the bucket cannot be read without it: never delete it with the stack.
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        resources = k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "512Mi"}
        )
        work = k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK)
        snapshot = k8s.core.v1.ContainerArgs(
            name="snapshot",
            image=f"{TALOSCTL_IMAGE}:{args['talos_version']}",
            args=["etcd", "snapshot", f"{WORK}/etcd.snapshot", "--nodes", args["node"]],
            security_context=_restricted(),
            resources=resources,
            volume_mounts=[
                work,
                k8s.core.v1.VolumeMountArgs(name="talos", mount_path=TALOS_SECRET_PATH, read_only=True),
            ],
        )
        upload = k8s.core.v1.ContainerArgs(
            name="upload",
            image=args["uploader_image"],
            command=["/bin/sh", "-c", upload_script()],
            env=[
                k8s.core.v1.EnvVarArgs(name="CLUSTER", value=args["cluster"]),
                k8s.core.v1.EnvVarArgs(name="TARGETS", value=" ".join(sites)),
                *(env for t in targets for env in _target_env(t)),
                # OCI and OVH refuse the checksums newer AWS SDKs send by default (platform facts §5).
                k8s.core.v1.EnvVarArgs(name="AWS_REQUEST_CHECKSUM_CALCULATION", value="when_required"),
                k8s.core.v1.EnvVarArgs(name="AWS_RESPONSE_CHECKSUM_VALIDATION", value="when_required"),
                k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
            ],
            security_context=_restricted(),
            resources=resources,
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
                k8s.core.v1.VolumeMountArgs(name="key", mount_path=KEY_PATH, read_only=True),
            ],
        )
        pod = k8s.core.v1.PodSpecArgs(
            restart_policy="OnFailure",
            automount_service_account_token=False,
            security_context=k8s.core.v1.PodSecurityContextArgs(
                run_as_non_root=True,
                run_as_user=UID,
                run_as_group=UID,
                fs_group=UID,
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            init_containers=[snapshot],
            containers=[upload],
            volumes=[
                k8s.core.v1.VolumeArgs(name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="2Gi")),
                k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                k8s.core.v1.VolumeArgs(name="talos", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=NAME)),
                k8s.core.v1.VolumeArgs(name="key", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=KEY_SECRET)),
            ],
        )
        labels = managed_labels(NAME)
        urls = [
            pulumi.Output.all(t.endpoint, t.bucket).apply(lambda v: target_url(str(v[0]), str(v[1]))) for t in targets
        ]
        evidence = pulumi.Output.all(*urls).apply(lambda found: annotation([args["holder"]], [str(u) for u in found]))
        job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAME, namespace=NAMESPACE, labels=labels, annotations={ANNOTATION: evidence}
            ),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args["schedule"],
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=2,
                        active_deadline_seconds=DEADLINE_SECONDS,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels), spec=pod
                        ),
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, account, s3, key]),
        )
        self.namespace = NAMESPACE
        self.cron_job_name = NAME
        self.register_outputs({"namespace": NAMESPACE, "cron_job": job.metadata.apply(lambda m: m.name)})
