"""`homelab state-backend` and the S3 helpers, against moto's in-process S3 (path-style, OCI endpoint).

moto implements the S3 API, not OCI's subset of it: these tests prove the client code (what is
created, checked, refused, restored); the NotImplemented paths OCI takes are tested with a client
that answers like OCI does.
"""

import gzip
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from homelab import s3
from homelab.cli import main

NAMESPACE, REGION, BUCKET = "axtenancy", "eu-frankfurt-1", "homelab-pulumi-state"
ENDPOINT = f"https://{NAMESPACE}.compat.objectstorage.{REGION}.oraclecloud.com"
TARGET = ["--namespace", NAMESPACE, "--region", REGION, "--bucket", BUCKET]
LOGIN = (
    f"pulumi login 's3://{BUCKET}?endpoint={NAMESPACE}.compat.objectstorage.{REGION}.oraclecloud.com"
    f"&region={REGION}&s3ForcePathStyle=true'"
)


@pytest.fixture(autouse=True)
def oci_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto answers a custom endpoint only when told it is one; the code under test is unchanged.
    monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", ENDPOINT)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOMELABTEST00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "homelab-test-secret")
    for name in ("HOMELAB_STATE_BUCKET", "HOMELAB_STATE_NAMESPACE", "HOMELAB_STATE_REGION", "HOMELAB_STATE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def moto_s3() -> Iterator[Any]:
    with mock_aws():
        yield raw_client()


def raw_client() -> Any:
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}),
    )


def target() -> s3.Target:
    return s3.Target(bucket=BUCKET, region=REGION, endpoint=ENDPOINT)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["state-backend", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def make_bucket(client: Any) -> None:
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})


def test_init_creates_a_protected_bucket_and_prints_the_login_url(moto_s3: Any, capsys: Any) -> None:
    code, out, err = run(capsys, "init", *TARGET)
    assert (code, err) == (0, "")
    assert "created the bucket" in out
    assert out.rstrip().splitlines()[-1] == LOGIN
    assert moto_s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    block = moto_s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = moto_s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [(r["ID"], r["Status"], r["NoncurrentVersionExpiration"]["NoncurrentDays"]) for r in rules] == [
        (s3.LIFECYCLE_RULE_ID, "Enabled", 90)
    ]
    sse = moto_s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_init_is_idempotent_and_check_changes_nothing(moto_s3: Any, capsys: Any) -> None:
    assert run(capsys, "init", *TARGET)[0] == 0
    code, out, _ = run(capsys, "init", *TARGET)
    assert code == 0
    assert f"bucket {BUCKET} on {NAMESPACE}.compat" in out and "already protected" in out
    code, out, _ = run(capsys, "check", *TARGET)
    assert code == 0
    assert "problem" not in out
    assert out.rstrip().endswith(LOGIN)


def test_check_reports_a_missing_bucket_and_each_lost_protection(moto_s3: Any, capsys: Any) -> None:
    code, out, _ = run(capsys, "check", *TARGET)
    assert code == 1 and "does not exist" in out
    assert run(capsys, "init", *TARGET)[0] == 0
    moto_s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    moto_s3.delete_bucket_lifecycle(Bucket=BUCKET)
    code, out, _ = run(capsys, "check", *TARGET)
    assert code == 1
    assert "problem     versioning: versioning is suspended" in out
    assert "problem     lifecycle: no rule keeping previous versions 90 days" in out
    # init repairs exactly what check found.
    code, out, _ = run(capsys, "init", *TARGET)
    assert code == 0 and "enabled versioning" in out and "kept previous versions 90 days" in out


def test_a_different_retention_updates_the_lifecycle_rule(moto_s3: Any, capsys: Any) -> None:
    assert run(capsys, "init", *TARGET)[0] == 0
    assert run(capsys, "check", *TARGET, "--keep-days", "30")[0] == 1
    assert run(capsys, "init", *TARGET, "--keep-days", "30")[0] == 0
    rules = moto_s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30


def test_public_bucket_is_refused_and_left_untouched(moto_s3: Any, capsys: Any) -> None:
    make_bucket(moto_s3)
    moto_s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    code, _, err = run(capsys, "init", *TARGET, "--force")
    assert code == 1
    assert err.count("\n") == 1 and "refused" in err and "public" in err and "READ" in err
    assert "Status" not in moto_s3.get_bucket_versioning(Bucket=BUCKET)
    assert run(capsys, "check", *TARGET)[0] == 1


def test_unexpected_objects_need_force(moto_s3: Any, capsys: Any) -> None:
    make_bucket(moto_s3)
    moto_s3.put_object(Bucket=BUCKET, Key="photos/2024/img.jpg", Body=b"x")
    code, _, err = run(capsys, "init", *TARGET)
    assert code == 1 and "photos/2024/img.jpg" in err and "--force" in err
    assert "Status" not in moto_s3.get_bucket_versioning(Bucket=BUCKET)
    code, out, _ = run(capsys, "init", *TARGET, "--force")
    # Protected now, but check still says the bucket is shared.
    assert code == 1 and "objects outside .pulumi/" in out
    assert moto_s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_an_existing_pulumi_backend_is_adopted_without_force(moto_s3: Any, capsys: Any) -> None:
    make_bucket(moto_s3)
    moto_s3.put_object(Bucket=BUCKET, Key=".pulumi/meta.yaml", Body=b"version: 1\n")
    code, out, _ = run(capsys, "init", *TARGET)
    assert code == 0 and "enabled versioning" in out


def test_prefix_is_part_of_the_login_url_and_of_what_is_owned(moto_s3: Any, capsys: Any) -> None:
    make_bucket(moto_s3)
    moto_s3.put_object(Bucket=BUCKET, Key="homelab/.pulumi/meta.yaml", Body=b"version: 1\n")
    code, out, _ = run(capsys, "init", *TARGET, "--prefix", "homelab/")
    assert code == 0
    assert f"s3://{BUCKET}/homelab?endpoint=" in out


@set_initial_no_auth_action_count(0)
@mock_aws
def _run_with_auth(*args: str) -> int:
    return main(["state-backend", *args])


def test_wrong_credentials_are_one_clear_error(capsys: Any) -> None:
    assert _run_with_auth("check", *TARGET) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert "rejected the credentials (InvalidAccessKeyId" in lines[0]
    assert "homelab-test-secret" not in captured.err + captured.out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--namespace", NAMESPACE, "--region", REGION, "--bucket", "Homelab_State"],
            "bucket 'Homelab_State'",
        ),
        (["--namespace", NAMESPACE, "--region", "frankfurt"], "region 'frankfurt'"),
        (["--region", REGION], "--namespace (OCI) or --endpoint is required"),
        ([*TARGET, "--keep-days", "0"], "--keep-days: must be between 1 and 3650, got 0"),
        ([*TARGET, "--prefix", "/abs"], "prefix '/abs'"),
    ],
)
def test_bad_input_is_exit_2_naming_the_option(capsys: Any, args: list[str], fragment: str) -> None:
    code, _, err = run(capsys, "check", *args)
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_missing_credentials(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = run(capsys, "check", *TARGET)
    assert code == 2 and "AWS_SECRET_ACCESS_KEY must be set" in err


def test_state_round_trip_restores_a_previous_version(moto_s3: Any, capsys: Any) -> None:
    assert run(capsys, "init", *TARGET)[0] == 0
    key = ".pulumi/stacks/homelab/prod.json"
    good = b'{"version": 3, "checkpoint": {"latest": {"resources": [1, 2, 3]}}}'
    moto_s3.put_object(Bucket=BUCKET, Key=key, Body=good)
    moto_s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"version": 3, "checkpoint": {}}')  # a bad update
    code, out, _ = run(capsys, "history", *TARGET, "prod")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("current")
    old_version = lines[1].split()[0]
    code, out, _ = run(capsys, "restore", *TARGET, "prod", old_version)
    assert code == 0 and "is current again" in out
    assert moto_s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == good
    # History is kept: the bad update is still there to inspect.
    assert len(s3.versions(moto_s3, target(), key)) == 3
    code, _, err = run(capsys, "restore", *TARGET, "prod", "no-such-version")
    assert code == 2 and "is not a version of" in err


def test_database_dump_round_trip_is_verified(moto_s3: Any) -> None:
    make_bucket(moto_s3)
    offsite = s3.Target(bucket=BUCKET, region=REGION, endpoint=ENDPOINT, prefix="offsite/")
    client = s3.make_client(offsite, "AKIAHOMELABTEST00001", "homelab-test-secret")
    older = gzip.compress(b"-- PostgreSQL database dump\nCREATE TABLE a();\n")
    newer = gzip.compress(b"-- PostgreSQL database dump\nCREATE TABLE a();\nCREATE TABLE b();\n")
    s3.put_checked(client, offsite, "pgdump/authentik/20261130T021500Z.sql.gz", older)
    digest = s3.put_checked(client, offsite, "pgdump/authentik/20261201T021500Z.sql.gz", newer)
    key = s3.latest_key(client, offsite, "pgdump/authentik/")
    assert key == "offsite/pgdump/authentik/20261201T021500Z.sql.gz"
    assert gzip.decompress(s3.fetch_checked(client, offsite, key)).endswith(b"CREATE TABLE b();\n")
    # A dump altered after upload is refused, not restored.
    moto_s3.put_object(Bucket=BUCKET, Key=key, Body=older, Metadata={s3.CHECKSUM_KEY: digest})
    with pytest.raises(s3.S3Error, match="does not match the stored"):
        s3.fetch_checked(client, offsite, key)


class OciLike:
    """A client that answers the calls OCI's S3 API lacks with NotImplemented, and forwards the rest."""

    MISSING = frozenset({"get_public_access_block", "get_bucket_lifecycle_configuration", "get_bucket_encryption"})

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in self.MISSING:

            def refuse(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": "NotImplemented", "Message": "no"}}, name)

            return refuse
        return getattr(self.inner, name)


def test_controls_an_endpoint_lacks_are_named_not_reported_as_protected(moto_s3: Any) -> None:
    make_bucket(moto_s3)
    moto_s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    state = s3.inspect(OciLike(moto_s3), target(), 90, ".pulumi/")
    controls = {c.name: c for c in state.controls}
    assert controls["public access"].status == "ok"
    assert controls["public access block"].status == "unsupported"
    assert "NoPublicAccess" in controls["public access block"].detail
    assert controls["lifecycle"].status == "unsupported"
    assert "object lifecycle policy" in controls["lifecycle"].detail
    assert controls["encryption"].status == "ok"
    assert state.problems == []
