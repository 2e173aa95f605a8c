"""`S3Bucket`: one bucket behind an S3-compatible API (path-style, as OCI requires) and its credentials.

The one shape every backup writer and reader takes: Velero's storage location, the etcd snapshot
job's targets, the nightly dump's targets and the Pulumi state it reads. `site` (`oci`, `ovh`)
names a bucket in environment variables and logs; where a bucket *is* for the offsite policy comes
from its endpoint (`homelab.backup_evidence.site_of`), never from this label.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class S3Bucket:
    """A bucket and the credentials its writer (or reader) uses."""

    site: str
    """Lower-case letters and digits: part of environment variable names (`S3_BUCKET_<site>`)."""
    endpoint: pulumi.Input[str]
    """`https://<namespace>.compat.objectstorage.<region>.oraclecloud.com` for OCI,
    `https://s3.<region>.io.cloud.ovh.net` for OVH."""
    region: pulumi.Input[str]
    bucket: pulumi.Input[str]
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]


def targets_problem(targets: Sequence[S3Bucket]) -> str | None:
    """Why `targets` cannot be written to one after the other (none, a site twice, a bad site), or None."""
    sites = [t.site for t in targets]
    if not targets or len(set(sites)) != len(sites):
        return f"needs at least one target, each site once (got {sites})"
    bad = [site for site in sites if not (site.isalnum() and site.islower() and site.isascii())]
    if bad:
        return f"target site {bad[0]!r} must be lower-case letters and digits"
    return None
