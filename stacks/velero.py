"""The Kubernetes backup layer as `prod` and `cloud` compose it: config + backup plan -> `Velero` args.

What each schedule covers is derived from the backup plan (stacks/backups.py), never listed here:
one schedule per data class that has namespaces on the cluster, with the class' cron; `media`
gets none (local snapshots only, FR-025). Volume contents (Kopia file-system backup) are copied for
the classes whose policy sends them offsite (`critical` by default); the other classes' schedules
keep the namespaces' objects, their volumes' copy being the local layer's (vzdump at home). The
TTL is the class' offsite retention for offsite classes, its local retention otherwise.

Every bad value is one `ConfigError` naming its key, raised before any resource is registered.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi

from components.k8s.etcd_backup import EtcdBackup, sse_c_key_problem
from components.k8s.velero import (
    METRICS_PORT,
    MIN_REPOSITORY_PASSWORD,
    SERVER_POD_LABELS,
    BackupSchedule,
    Velero,
    plugin_image_problem,
)
from components.k8s.velero import NAMESPACE as VELERO_NAMESPACE
from components.manifests import ManifestLockError, manifest_files
from components.monitoring.metrics import PodScrape
from components.oci.dump import AWS_CLI_IMAGE
from components.s3bucket import S3Bucket
from stacks.backups import (
    ClassPolicyConfig,
    class_policies,
    etcd_holder,
    holders,
    namespaces_by_class,
    retention_days,
)
from stacks.catalog import Catalog, DataClass, Location
from stacks.config.base import NAMESPACE, ConfigError, Problem, SecretSpec, missing_secret_problem, raw_config
from stacks.config.platform import VeleroConfig

if TYPE_CHECKING:
    from stacks.config.cloud import CloudConfig

CRD_SOURCE = "velero"
PASSWORD_KEY = "veleroRepositoryPassword"
SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        PASSWORD_KEY,
        "the password Velero's Kopia repository is encrypted with (`openssl rand -base64 32`; keep a copy "
        "outside the cluster: a restore into a new cluster needs it)",
        required=False,
        required_with="platform.velero",
    ),
)
ETCD_KEY = "etcdSnapshotKey"
ETCD_SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        ETCD_KEY,
        "the SSE-C key etcd snapshots are encrypted with in the bucket (`openssl rand -base64 32`; keep a "
        "copy outside the cluster: a restore needs it)",
        required=False,
        required_with="platform.etcd_backup",
    ),
)
LOCAL_ONLY: frozenset[DataClass] = frozenset({"media"})
"""Classes Velero never backs up (FR-025: media stays local)."""


def velero_scrape() -> PodScrape:
    """Velero's server metrics (the Velero* backup alerts): a PodMonitor on PROD, the collector on CLOUD."""
    return PodScrape("velero", VELERO_NAMESPACE, SERVER_POD_LABELS, METRICS_PORT, {})


def velero_problems(velero: VeleroConfig | None) -> Iterator[Problem]:
    """Cross-key problems of `homelab:platform.velero` (raised by the stack's `load()`)."""
    if velero is None:
        return
    problem = plugin_image_problem(velero.plugin_image)
    if problem is not None:
        yield "platform.velero.plugin_image", f"{velero.plugin_image!r} {problem}"
    version = velero.app_version if velero.app_version.startswith("v") else f"v{velero.app_version}"
    try:
        manifest_files(CRD_SOURCE, version)
    except ManifestLockError as exc:
        yield "platform.velero.app_version", str(exc)
    missing = missing_secret_problem(SECRETS[0], "platform.velero is configured")
    if missing is not None:
        yield missing
    elif len(raw_config()[PASSWORD_KEY]) < MIN_REPOSITORY_PASSWORD:
        yield PASSWORD_KEY, f"must be at least {MIN_REPOSITORY_PASSWORD} characters"


def schedules(
    catalog: Catalog, location: Location, classes: Mapping[DataClass, ClassPolicyConfig] | None = None
) -> list[BackupSchedule]:
    """One schedule per data class with namespaces on `location`'s cluster (media excluded)."""
    policies = class_policies(classes)
    found: list[BackupSchedule] = []
    for data_class, namespaces in namespaces_by_class(holders(catalog), location).items():
        if data_class in LOCAL_ONLY:
            continue
        policy = policies[data_class]
        keep = policy.offsite_keep if policy.offsite and policy.offsite_keep else policy.local_keep
        found.append(
            BackupSchedule(
                name=data_class,
                cron=policy.schedule,
                namespaces=namespaces,
                ttl_hours=retention_days(keep) * 24,
                volumes=policy.offsite,
            )
        )
    return found


def bucket_from_reference(reference: pulumi.StackReference, stack_name: str) -> S3Bucket:
    """The cloud stack's offsite bucket (`offsite_bucket`) and its S3 credentials (`offsite_s3_credentials`)."""

    def field(output: str, name: str, secret: bool) -> pulumi.Output[str]:
        def pick(value: Any) -> str:
            if not isinstance(value, Mapping) or not value.get(name):
                hint = (
                    "set homelab:backups.oci_bucket.issue_credentials to true there"
                    if output == "offsite_s3_credentials"
                    else "land the offsite bucket there"
                )
                raise ConfigError(
                    f"{NAMESPACE}:platform.velero: stack {stack_name!r} exports no `{output}.{name}` "
                    f"({hint} and run `pulumi up` on it first)"
                )
            return str(value[name])

        picked = reference.get_output(output).apply(pick)
        return pulumi.Output.secret(picked) if secret else picked

    return S3Bucket(
        site="oci",
        bucket=field("offsite_bucket", "name", secret=False),
        endpoint=field("offsite_bucket", "endpoint", secret=False),
        region=field("offsite_bucket", "region", secret=False),
        access_key_id=field("offsite_s3_credentials", "access_key_id", secret=True),
        secret_access_key=field("offsite_s3_credentials", "secret_access_key", secret=True),
    )


def velero_layer(  # noqa: PLR0917 (one call per stack)
    velero: VeleroConfig,
    environment: Location,
    catalog: Catalog,
    classes: Mapping[DataClass, ClassPolicyConfig],
    bucket: S3Bucket,
    opts: pulumi.ResourceOptions,
) -> Velero:
    version = velero.app_version if velero.app_version.startswith("v") else f"v{velero.app_version}"
    return Velero(
        "velero",
        {
            "chart_version": velero.chart_version,
            "crd_files": manifest_files(CRD_SOURCE, version),
            "plugin_image": velero.plugin_image,
            "location": bucket,
            "prefix": f"velero/{velero.prefix or environment}",
            "repository_password": pulumi.Config(NAMESPACE).require_secret(PASSWORD_KEY),
            "schedules": schedules(catalog, environment, classes),
        },
        opts=opts,
    )


def cloud_velero_problems(config: "CloudConfig") -> Iterator[Problem]:
    """CLOUD's Velero needs S3 credentials for its target: OVH's secrets (checked with the OVH
    target) or the Customer Secret Key the offsite bucket issues."""
    writer = "velero" if config.platform.velero is not None else "etcd_backup" if config.platform.etcd_backup else None
    if writer is None or config.backups.ovh is not None:
        return
    if not config.backups.oci_bucket.issue_credentials:
        yield (
            f"platform.{writer}",
            f"the offsite bucket issues no S3 credentials for {writer} ({NAMESPACE}:backups.oci_bucket."
            f"issue_credentials is false); turn them on or configure {NAMESPACE}:backups.ovh",
        )


def oci_offsite(
    config: "CloudConfig",
    *,
    name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    access_key_id: pulumi.Input[str] | None,
    secret_access_key: pulumi.Input[str] | None,
) -> S3Bucket | None:
    """The OCI offsite bucket with the S3 credentials it issues (None when it issues none)."""
    if access_key_id is None or secret_access_key is None:
        return None
    return S3Bucket(
        site="oci",
        bucket=name,
        endpoint=endpoint,
        region=config.oci.region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
    )


def ovh_offsite(config: "CloudConfig") -> S3Bucket | None:
    """The OVH bucket (`homelab:backups.ovh`) with its S3 secrets, or None when OVH is not configured."""
    ovh = config.backups.ovh
    if ovh is None:
        return None
    secrets = pulumi.Config(NAMESPACE)
    return S3Bucket(
        site="ovh",
        bucket=ovh.bucket,
        endpoint=ovh.endpoint,
        region=ovh.region,
        access_key_id=secrets.require_secret("ovhS3AccessKey"),
        secret_access_key=secrets.require_secret("ovhS3SecretKey"),
    )


def cloud_bucket(config: "CloudConfig", oci: S3Bucket | None) -> S3Bucket:
    """Where CLOUD's Velero writes: OVH when configured (the cloud's data leaves OCI), else the OCI
    offsite bucket `oci` (stacks.backups.copies says the same)."""
    ovh = ovh_offsite(config)
    if ovh is not None:
        return ovh
    if oci is None:
        raise ConfigError(f"{NAMESPACE}:backups.oci_bucket.issue_credentials: Velero needs the bucket's S3 credentials")
    return oci


def etcd_backup_problems(enabled: bool) -> Iterator[Problem]:
    """`homelab:platform.etcd_backup` needs a valid `etcdSnapshotKey` (checked before anything registers)."""
    if not enabled:
        return
    missing = missing_secret_problem(ETCD_SECRETS[0], "platform.etcd_backup is true")
    if missing is not None:
        yield missing
        return
    problem = sse_c_key_problem(raw_config()[ETCD_KEY])
    if problem is not None:
        yield ETCD_KEY, problem


def etcd_backup_layer(  # noqa: PLR0917 (one call per stack)
    environment: Location,
    cluster: str,
    talos_version: str,
    node: str,
    classes: Mapping[DataClass, ClassPolicyConfig],
    buckets: Sequence[S3Bucket],
    opts: pulumi.ResourceOptions,
) -> EtcdBackup:
    """The etcd snapshot job of the backup plan's `<environment>-etcd` holder, on its class' schedule
    (`critical`); the bucket's lifecycle rule (the class' offsite retention) expires old snapshots."""
    holder = etcd_holder(environment)
    if holder is None:
        raise ConfigError(f"{NAMESPACE}:platform.etcd_backup: the backup plan has no etcd holder for {environment!r}")
    return EtcdBackup(
        "etcd-backup",
        {
            "cluster": cluster,
            "holder": holder.name,
            "talos_version": talos_version if talos_version.startswith("v") else f"v{talos_version}",
            "node": node,
            "schedule": class_policies(classes)[holder.data_class].schedule,
            "uploader_image": AWS_CLI_IMAGE,
            "targets": list(buckets),
            "sse_c_key": pulumi.Config(NAMESPACE).require_secret(ETCD_KEY),
        },
        opts=opts,
    )
