"""Buckets the homelab keeps its state and its offsite copies in, spoken to through the S3 API.

The Pulumi state backend (`homelab state-backend`) and the offsite backups (the management VM's
nightly database dump) live in S3-compatible object storage: OCI Object Storage's Amazon S3
Compatibility API by default, any S3 endpoint (OVH) when configured. This module is the one place
that talks to such a bucket:

- `make_client` builds a boto3 client the way OCI requires it: path-style addressing on
  `https://<namespace>.compat.objectstorage.<region>.oraclecloud.com`, SigV4, and *no* default
  request checksums (boto3 >= 1.36 adds CRC32 trailers that OCI and OVH reject).
- `inspect` reads a bucket's protection (versioning, public access, encryption, lifecycle, what it
  holds); `ensure` creates or repairs it and refuses what it must not touch (objects it did not
  expect, public access).
- `restore_version` and `put_checked` / `fetch_checked` are the restore half: a previous version of
  an object copied back over the current one, and a dump stored with its SHA-256 and verified on
  the way back.

Threat model: the bucket holds the state of every stack (resource ids, encrypted secrets) and the
database dumps (password hashes). A public bucket or a lost version is the failure this guards
against; the credentials are the operator's Customer Secret Key, read from the environment like the
Pulumi CLI reads them, and never printed.

What this cannot prove offline: the tests run against moto's S3, which implements the API, not
OCI's or OVH's subset of it. Where an endpoint answers `NotImplemented` for a control (OCI has no
public-access-block or lifecycle call in its S3 API), `inspect` says so and names the native control
to check instead, rather than reporting success.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pyright: ignore[reportMissingImports]
else:
    S3Client = Any

# Bucket names both OCI and S3-compatible targets accept, and that stay valid in a path-style URL:
# 3-63 lower-case letters, digits, dots and dashes, starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAMESPACE = re.compile(r"^[a-z0-9]{1,64}$")
_REGION = re.compile(r"^[a-z]{2,}(-[a-z]+)+-[0-9]+$")
_OTHER_REGION = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PREFIX = re.compile(r"^[A-Za-z0-9._/-]*$")

PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
LIFECYCLE_RULE_ID = "homelab-keep-noncurrent-versions"
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "AuthorizationHeaderMalformed"}
)
_UNSUPPORTED_CODES = frozenset({"NotImplemented", "MethodNotAllowed", "UnsupportedOperation"})
CHECKSUM_KEY = "sha256"
"""User metadata key (`x-amz-meta-sha256`) that carries a stored object's SHA-256."""


class S3Error(Exception):
    """A problem the operator must fix before the command can do anything (exit 2)."""


class CredentialError(S3Error):
    """The endpoint rejected the access key or its signature."""


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a bucket name this project accepts, or None."""
    if not _BUCKET.match(name):
        return "must be 3-63 lower-case letters, digits, dots and dashes, starting and ending with a letter or digit"
    if ".." in name or re.fullmatch(r"[0-9.]+", name):
        return "must not contain '..' or look like an IP address"
    return None


@dataclass(frozen=True)
class Target:
    """One bucket on one S3 endpoint, and the part of it the homelab owns."""

    bucket: str
    region: str
    endpoint: str
    """`https://host[:port]`; for OCI `https://<namespace>.compat.objectstorage.<region>.oraclecloud.com`."""
    prefix: str = ""
    """Key prefix inside the bucket (`""` or ending in `/`)."""

    def __post_init__(self) -> None:
        problem = bucket_name_problem(self.bucket)
        if problem:
            raise S3Error(f"bucket {self.bucket!r}: {problem}")
        # OCI's region ids (eu-frankfurt-1) build its endpoint; other providers name theirs freely (OVH: gra).
        oci = ".oraclecloud.com" in self.endpoint or ".oci.customer-oci.com" in self.endpoint
        if not (_REGION if oci else _OTHER_REGION).match(self.region):
            example = "eu-frankfurt-1" if oci else "gra or eu-west-par"
            raise S3Error(f"region {self.region!r}: must be a region id such as {example}")
        if not self.endpoint.startswith(("https://", "http://")):
            raise S3Error(f"endpoint {self.endpoint!r}: must be an http(s):// URL")
        prefix = self.prefix
        if not _PREFIX.match(prefix) or prefix.startswith("/") or (prefix and not prefix.endswith("/")):
            raise S3Error(f"prefix {self.prefix!r}: must be empty or a relative key prefix ending in '/'")

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[1].rstrip("/")


def oci_endpoint(namespace: str, region: str) -> str:
    """OCI's path-style S3 compatibility endpoint of a tenancy namespace."""
    if not _NAMESPACE.match(namespace):
        raise S3Error(
            f"namespace {namespace!r}: must be the tenancy's Object Storage namespace (lower-case letters, digits)"
        )
    if not _REGION.match(region):
        raise S3Error(f"region {region!r}: must be a region id such as eu-frankfurt-1")
    return f"https://{namespace}.compat.objectstorage.{region}.oraclecloud.com"


def pulumi_login_url(target: Target) -> str:
    """The exact `pulumi login` URL of a state bucket (path-style, as OCI requires)."""
    path = f"/{target.prefix.rstrip('/')}" if target.prefix else ""
    return f"s3://{target.bucket}{path}?endpoint={target.host}&region={target.region}&s3ForcePathStyle=true"


def make_client(target: Target, access_key: str, secret_key: str) -> S3Client:
    """A boto3 S3 client for `target`: path-style, SigV4, no checksum trailers OCI/OVH reject."""
    import boto3  # noqa: PLC0415 (previews never pay for boto3's import)
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def _code(exc: Exception) -> str:
    response: Mapping[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(error.get("Code") or status or type(exc).__name__)


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError  # noqa: PLC0415 (see make_client)

    return ClientError


def _connection_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError  # noqa: PLC0415

    return (EndpointConnectionError, NoCredentialsError)


Status = Literal["ok", "problem", "unsupported"]


@dataclass(frozen=True)
class Control:
    """One protection of a bucket, as read from the endpoint."""

    name: str
    status: Status
    detail: str


@dataclass
class BucketState:
    """What `inspect` found."""

    exists: bool
    controls: list[Control] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    """Keys outside the prefix the homelab owns (first few only)."""

    @property
    def public(self) -> bool:
        return any(c.name == "public access" and c.status == "problem" for c in self.controls)

    @property
    def problems(self) -> list[Control]:
        return [c for c in self.controls if c.status == "problem"]


def _call(operation: str, fn: Any, /, **kwargs: Any) -> Any:
    """Call one S3 operation; credential failures become `CredentialError`, unreachable endpoints `S3Error`."""
    client_error = _client_error()
    try:
        return fn(**kwargs)
    except client_error as exc:
        if _code(exc) in _CREDENTIAL_CODES:
            raise CredentialError(
                f"the endpoint rejected the credentials ({_code(exc)} on {operation}): check "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (an OCI Customer Secret Key of a user allowed to "
                "manage the bucket)"
            ) from None
        raise
    except _connection_errors() as exc:
        raise S3Error(f"cannot reach the endpoint ({type(exc).__name__}): {exc}") from None


def bucket_exists(client: S3Client, target: Target) -> bool:
    client_error = _client_error()
    try:
        _call("HeadBucket", client.head_bucket, Bucket=target.bucket)
    except client_error as exc:
        code = _code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied", "Forbidden"):
            # HEAD carries no error body: ask a call that does whether the key itself is the problem.
            _call("ListBuckets", client.list_buckets)
            raise S3Error(
                f"bucket {target.bucket!r} exists but these credentials may not use it (403): "
                "it belongs to another tenancy or the user's policy does not cover it"
            ) from None
        raise S3Error(f"HeadBucket {target.bucket!r} failed: {code}") from None
    return True


def _optional(operation: str, fn: Any, /, missing: Iterable[str], **kwargs: Any) -> tuple[str, Any]:
    """("ok", response) | ("missing", None) | ("unsupported", code) for a configuration read."""
    client_error = _client_error()
    try:
        return "ok", _call(operation, fn, **kwargs)
    except client_error as exc:
        code = _code(exc)
        if code in missing:
            return "missing", None
        if code in _UNSUPPORTED_CODES or code == "501":
            return "unsupported", code
        raise S3Error(f"{operation} on {kwargs.get('Bucket')!r} failed: {code}") from None


def _public_access(client: S3Client, target: Target) -> list[Control]:
    """Two controls: whether anything is public now, and whether public access is blocked for later."""
    acl = _call("GetBucketAcl", client.get_bucket_acl, Bucket=target.bucket)
    public_grants = [g["Permission"] for g in acl.get("Grants", []) if g.get("Grantee", {}).get("URI") in PUBLIC_GROUPS]
    status, response = _optional(
        "GetBucketPolicyStatus", client.get_bucket_policy_status, ("NoSuchBucketPolicy",), Bucket=target.bucket
    )
    if public_grants:
        public = Control("public access", "problem", f"the bucket ACL grants {', '.join(public_grants)} to everyone")
    elif status == "ok" and response["PolicyStatus"].get("IsPublic"):
        public = Control("public access", "problem", "the bucket policy makes it public")
    else:
        public = Control("public access", "ok", "no public grant or policy")
    status, response = _optional(
        "GetPublicAccessBlock",
        client.get_public_access_block,
        ("NoSuchPublicAccessBlockConfiguration",),
        Bucket=target.bucket,
    )
    flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    if status == "unsupported":
        block = Control(
            "public access block",
            "unsupported",
            "the endpoint has no public-access block: keep the bucket's visibility 'Private' natively "
            "(OCI: `oci os bucket get --bucket-name <bucket>` shows public-access-type NoPublicAccess)",
        )
    elif status == "missing" or not all(
        (response or {}).get("PublicAccessBlockConfiguration", {}).get(f) for f in flags
    ):
        block = Control("public access block", "problem", "public access is not blocked")
    else:
        block = Control("public access block", "ok", "all four blocks on")
    return [public, block]


def _versioning(client: S3Client, target: Target) -> Control:
    response = _call("GetBucketVersioning", client.get_bucket_versioning, Bucket=target.bucket)
    status = response.get("Status", "Disabled")
    if status == "Enabled":
        return Control("versioning", "ok", "enabled")
    return Control("versioning", "problem", f"versioning is {status.lower()}: an overwritten state would be lost")


def _encryption(client: S3Client, target: Target) -> Control:
    status, response = _optional(
        "GetBucketEncryption",
        client.get_bucket_encryption,
        ("ServerSideEncryptionConfigurationNotFoundError",),
        Bucket=target.bucket,
    )
    if status == "unsupported":
        return Control("encryption", "ok", "the endpoint encrypts every object at rest (OCI: always, AES-256)")
    if status == "missing":
        return Control("encryption", "problem", "no default server-side encryption")
    rules = response["ServerSideEncryptionConfiguration"]["Rules"]
    algorithms = sorted({r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules})
    return Control("encryption", "ok", ", ".join(algorithms))


def _lifecycle(client: S3Client, target: Target, keep_days: int) -> Control:
    status, response = _optional(
        "GetBucketLifecycleConfiguration",
        client.get_bucket_lifecycle_configuration,
        ("NoSuchLifecycleConfiguration",),
        Bucket=target.bucket,
    )
    if status == "unsupported":
        return Control(
            "lifecycle",
            "unsupported",
            f"the endpoint has no S3 lifecycle API: set the native rule instead (OCI: an object lifecycle "
            f"policy deleting previous versions after {keep_days} days)",
        )
    for rule in (response or {}).get("Rules", []):
        if rule.get("ID") != LIFECYCLE_RULE_ID:
            continue
        days = rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
        if rule.get("Status") == "Enabled" and days == keep_days:
            return Control("lifecycle", "ok", f"previous versions kept {keep_days} days")
        return Control(
            "lifecycle", "problem", f"rule {LIFECYCLE_RULE_ID} keeps previous versions {days} days, want {keep_days}"
        )
    return Control("lifecycle", "problem", f"no rule keeping previous versions {keep_days} days")


def _unexpected(client: S3Client, target: Target, owned: str, limit: int = 5) -> list[str]:
    found: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in _call("ListObjectsV2", paginator.paginate, Bucket=target.bucket):
        for item in page.get("Contents", []):
            if not item["Key"].startswith(owned):
                found.append(item["Key"])
                if len(found) >= limit:
                    return found
    return found


def inspect(client: S3Client, target: Target, keep_days: int, owned_prefix: str) -> BucketState:
    """Read every protection of the bucket; raises `CredentialError`/`S3Error` on access problems."""
    if not bucket_exists(client, target):
        return BucketState(exists=False)
    state = BucketState(exists=True)
    state.controls = [
        *_public_access(client, target),
        _versioning(client, target),
        _encryption(client, target),
        _lifecycle(client, target, keep_days),
    ]
    state.unexpected = _unexpected(client, target, target.prefix + owned_prefix)
    return state


class RefusedError(Exception):
    """The bucket must not be touched (exit 1): public, or holding objects nobody expected."""


def ensure(client: S3Client, target: Target, keep_days: int, owned_prefix: str, force: bool = False) -> list[str]:
    """Create the bucket or bring it to the protected state; returns what was changed (idempotent)."""
    state = inspect(client, target, keep_days, owned_prefix)
    changes: list[str] = []
    if state.exists:
        if state.public:
            detail = next(c.detail for c in state.controls if c.name == "public access")
            raise RefusedError(
                f"bucket {target.bucket!r} is public ({detail}): make it private by hand and rotate anything "
                "it ever held before using it"
            )
        if state.unexpected and not force:
            raise RefusedError(
                f"bucket {target.bucket!r} holds objects outside {target.prefix + owned_prefix!r} "
                f"({', '.join(state.unexpected)}): use another bucket or pass --force"
            )
    else:
        kwargs: dict[str, Any] = {"Bucket": target.bucket}
        if target.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": target.region}
        _call("CreateBucket", client.create_bucket, **kwargs)
        changes.append("created the bucket")
        state = inspect(client, target, keep_days, owned_prefix)
    by_name = {c.name: c for c in state.controls}

    def needs(name: str) -> bool:
        return by_name[name].status == "problem"

    if needs("public access block"):
        _call(
            "PutPublicAccessBlock",
            client.put_public_access_block,
            Bucket=target.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        changes.append("blocked public access")
    if needs("versioning"):
        _call(
            "PutBucketVersioning",
            client.put_bucket_versioning,
            Bucket=target.bucket,
            VersioningConfiguration={"Status": "Enabled"},
        )
        changes.append("enabled versioning")
    if needs("encryption"):
        _call(
            "PutBucketEncryption",
            client.put_bucket_encryption,
            Bucket=target.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        changes.append("set default encryption (AES256)")
    if needs("lifecycle"):
        _call(
            "PutBucketLifecycleConfiguration",
            client.put_bucket_lifecycle_configuration,
            Bucket=target.bucket,
            LifecycleConfiguration={"Rules": lifecycle_rules(keep_days)},
        )
        changes.append(f"kept previous versions {keep_days} days")
    return changes


def lifecycle_rules(keep_days: int) -> list[dict[str, Any]]:
    """The one lifecycle rule: previous versions expire `keep_days` after they were replaced."""
    return [
        {
            "ID": LIFECYCLE_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": keep_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }
    ]


# --- restore -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    key: str
    version_id: str
    latest: bool
    size: int
    modified: str


def versions(client: S3Client, target: Target, key: str) -> list[Version]:
    """Every stored version of `key`, newest first (delete markers left out)."""
    response = _call("ListObjectVersions", client.list_object_versions, Bucket=target.bucket, Prefix=key)
    found = [
        Version(v["Key"], v["VersionId"], bool(v["IsLatest"]), int(v["Size"]), v["LastModified"].isoformat())
        for v in response.get("Versions", [])
        if v["Key"] == key
    ]
    return sorted(found, key=lambda v: v.modified, reverse=True)


def restore_version(client: S3Client, target: Target, key: str, version_id: str) -> str:
    """Make `version_id` the current version of `key` again (a copy: history stays intact)."""
    response = _call(
        "CopyObject",
        client.copy_object,
        Bucket=target.bucket,
        Key=key,
        CopySource={"Bucket": target.bucket, "Key": key, "VersionId": version_id},
    )
    return str(response.get("VersionId", ""))


def put_checked(client: S3Client, target: Target, key: str, body: bytes) -> str:
    """Store `body` with its SHA-256 in the object's metadata; returns the digest."""
    digest = hashlib.sha256(body).hexdigest()
    _call(
        "PutObject",
        client.put_object,
        Bucket=target.bucket,
        Key=target.prefix + key,
        Body=body,
        Metadata={CHECKSUM_KEY: digest},
    )
    return digest


def latest_key(client: S3Client, target: Target, prefix: str) -> str | None:
    """The newest object under `prefix` (dump names sort by their UTC timestamp)."""
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in _call("ListObjectsV2", paginator.paginate, Bucket=target.bucket, Prefix=target.prefix + prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return max(keys) if keys else None


def fetch_checked(client: S3Client, target: Target, full_key: str) -> bytes:
    """Download an object and verify it against the SHA-256 it was stored with."""
    response = _call("GetObject", client.get_object, Bucket=target.bucket, Key=full_key)
    body: bytes = response["Body"].read()
    expected = response.get("Metadata", {}).get(CHECKSUM_KEY)
    if expected is None:
        raise S3Error(f"{full_key}: stored without a sha256: cannot verify it")
    actual = hashlib.sha256(body).hexdigest()
    if actual != expected:
        raise S3Error(f"{full_key}: sha256 {actual} does not match the stored {expected}")
    return body
