"""The nightly dump's S3 side against moto: both targets (OCI's endpoint and OVH's), the object layout
the dump script writes, its checksum metadata, and the restore the runbook describes.

moto proves the client side (keys, metadata, verification, decryption with the script's own openssl
parameters); it does not prove OVH's or OCI's S3 quirks (see docs/runbooks/restore.md). The upload
itself is the pinned AWS CLI's `s3 cp --metadata sha256=...` inside the script, which stores the
same user metadata as `put_checked` below.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from components.oci.dump import dump_script
from homelab import s3
from homelab.cli import main

OCI = s3.Target(
    bucket="homelab-backups",
    region="eu-paris-1",
    endpoint="https://axns.compat.objectstorage.eu-paris-1.oraclecloud.com",
)
OVH = s3.Target(bucket="homelab-offsite", region="gra", endpoint="https://s3.gra.io.cloud.ovh.net")
KEY = "offsite-dump-key-for-tests"
OPENSSL = ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "200000"]


@pytest.fixture(autouse=True)
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", f"{OCI.endpoint},{OVH.endpoint}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOMELABTEST00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "homelab-test-secret")
    with mock_aws():
        yield


def _openssl() -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is required in CI (the dump's encryption is checked with the real tool)")
        pytest.skip("openssl is not installed")


def _client(target: s3.Target) -> Any:
    return s3.make_client(target, "AKIAHOMELABTEST00001", "homelab-test-secret")


def test_ovh_bucket_is_provisioned_like_the_state_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--endpoint", OVH.endpoint, "--region", OVH.region, "--bucket", OVH.bucket, "--keep-days", "30"]
    assert main(["state-backend", "init", *args]) == 0
    assert main(["state-backend", "check", *args]) == 0
    capsys.readouterr()
    client = _client(OVH)
    assert client.get_bucket_versioning(Bucket=OVH.bucket)["Status"] == "Enabled"
    rules = client.get_bucket_lifecycle_configuration(Bucket=OVH.bucket)["Rules"]
    assert [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules] == [30]


def test_a_dump_uploaded_to_both_targets_restores_from_ovh(tmp_path: Any) -> None:
    _openssl()
    script = dump_script()
    # The keys the script writes (and the runbook restores from).
    assert 'keys[authentik.dump]="pgdump/authentik/$stamp.dump.enc"' in script
    assert 'keys[omni-etcd.db]="omni/etcd/$stamp.db.enc"' in script
    dump = tmp_path / "authentik.dump"
    dump.write_bytes(b"PGDMP" + os.urandom(4096))
    env = {**os.environ, "DUMP_KEY": KEY}
    # Encrypt exactly as the script does.
    subprocess.run(
        [*OPENSSL, "-salt", "-pass", "env:DUMP_KEY", "-in", str(dump), "-out", f"{dump}.enc"], env=env, check=True
    )
    sealed = (tmp_path / "authentik.dump.enc").read_bytes()
    key = "pgdump/authentik/20261201T021500Z.dump.enc"
    digests = set()
    for target in (OCI, OVH):
        client = _client(target)
        client.create_bucket(Bucket=target.bucket, CreateBucketConfiguration={"LocationConstraint": target.region})
        digests.add(s3.put_checked(client, target, key, sealed))
    assert len(digests) == 1  # one encrypted file, the same object at both sites
    # OCI is gone: restore from OVH, verified, then decrypted with the runbook's command.
    fetched = s3.fetch_checked(_client(OVH), OVH, key)
    (tmp_path / "fetched.enc").write_bytes(fetched)
    subprocess.run(
        [*OPENSSL, "-d", "-pass", "env:DUMP_KEY", "-in", str(tmp_path / "fetched.enc"), "-out", str(tmp_path / "out")],
        env=env,
        check=True,
    )
    assert (tmp_path / "out").read_bytes() == dump.read_bytes()


def test_a_corrupted_offsite_copy_is_refused() -> None:
    client = _client(OVH)
    client.create_bucket(Bucket=OVH.bucket, CreateBucketConfiguration={"LocationConstraint": OVH.region})
    key = "omni/etcd/20261201T021500Z.db.enc"
    s3.put_checked(client, OVH, key, b"sealed snapshot")
    # Overwritten with other bytes but the old digest (a truncated upload, a tampered object).
    client.put_object(Bucket=OVH.bucket, Key=key, Body=b"sealed snapsho", Metadata={"sha256": "0" * 64})
    with pytest.raises(s3.S3Error, match="does not match the stored"):
        s3.fetch_checked(client, OVH, key)
