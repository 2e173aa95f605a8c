"""`EtcdBackup` under the offline engine: objects, inputs, parents, order, secrets, bad input."""

import base64
import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.k8s.etcd_backup import (
    KEY_FILE,
    KEY_SECRET,
    S3_SECRET,
    TALOS_ROLE,
    TALOS_SECRET_PATH,
    EtcdBackup,
    EtcdBackupArgs,
    sse_c_key_problem,
    talos_access_patch,
    upload_script,
)
from components.oci.dump import AWS_CLI_IMAGE
from components.s3bucket import S3Bucket
from homelab.backup_evidence import ANNOTATION
from homelab.engine import Recording, run_program
from tests.components.bad_input import assert_fails_registering_no_child

SECRET = "kubernetes:core/v1:Secret"
CRONJOB = "kubernetes:batch/v1:CronJob"
ACCOUNT = "kubernetes:talos.dev/v1alpha1:ServiceAccount"
ENDPOINT = "https://axns.compat.objectstorage.eu-paris-1.oraclecloud.com"
OVH = "https://s3.gra.io.cloud.ovh.net"
KEY = base64.b64encode(b"k" * 32).decode()


def args(**changes) -> EtcdBackupArgs:
    base: EtcdBackupArgs = {
        "cluster": "prod",
        "holder": "prod-etcd",
        "talos_version": "v1.11.5",
        "node": "192.168.10.21",
        "schedule": "0 2 * * *",
        "uploader_image": AWS_CLI_IMAGE,
        "targets": [
            S3Bucket(
                site="oci",
                endpoint=ENDPOINT,
                region="eu-paris-1",
                bucket="homelab-backups",
                access_key_id=pulumi.Output.secret("AKID0123"),
                secret_access_key=pulumi.Output.secret("s3cr3t/key+"),
            ),
            S3Bucket(
                site="ovh",
                endpoint=OVH,
                region="gra",
                bucket="homelab-offsite",
                access_key_id=pulumi.Output.secret("OVHKEY"),
                secret_access_key=pulumi.Output.secret("ovh-secret"),
            ),
        ],
        "sse_c_key": pulumi.Config("homelab").require_secret("etcdSnapshotKey"),
    }
    return {**base, **changes}  # type: ignore[typeddict-item]


def program(**changes):
    def run():
        provider = k8s.Provider("k8s", kubeconfig="{}", cluster_identifier="test")
        EtcdBackup("etcd-backup", args(**changes), opts=pulumi.ResourceOptions(providers=[provider]))

    return run


SECRETS = {"homelab:etcdSnapshotKey": KEY}


@pytest.fixture(scope="module")
def rec():
    return run_program(
        program(), project="homelab", stack="test", config=SECRETS, secret_keys=sorted(SECRETS), preview=False
    )


def _pod(rec: Recording) -> dict:
    return rec.get(CRONJOB, "etcd-backup-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_every_child_belongs_to_the_component(rec):
    component = rec.get("homelab:k8s:EtcdBackup", "etcd-backup")
    assert {r.name for r in rec.children_of(component)} == {
        "etcd-backup-namespace",
        "etcd-backup-talos-account",
        "etcd-backup-s3",
        "etcd-backup-sse-c",
        "etcd-backup-cronjob",
    }


def test_namespace_is_restricted(rec):
    labels = rec.get("kubernetes:core/v1:Namespace", "etcd-backup-namespace").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_talos_account_holds_only_the_backup_role(rec):
    account = rec.get(ACCOUNT, "etcd-backup-talos-account")
    assert account.inputs["spec"] == {"roles": [TALOS_ROLE]}
    assert account.inputs["metadata"]["namespace"] == "etcd-backup"
    # Talos writes the Secret under the account's name: that is what the pod mounts.
    volumes = {v["name"]: v for v in _pod(rec)["volumes"]}
    assert volumes["talos"]["secret"]["secretName"] == account.inputs["metadata"]["name"]


def test_job_waits_for_the_account_and_secrets(rec):
    job = rec.get(CRONJOB, "etcd-backup-cronjob")
    for name in ("etcd-backup-namespace", "etcd-backup-talos-account", "etcd-backup-s3", "etcd-backup-sse-c"):
        assert rec.waits_for(job, rec.named(name)), name


def test_snapshot_then_upload_with_pinned_images(rec):
    spec = rec.get(CRONJOB, "etcd-backup-cronjob").inputs["spec"]
    assert spec["schedule"] == "0 2 * * *" and spec["concurrencyPolicy"] == "Forbid"
    pod = _pod(rec)
    (snapshot,) = pod["initContainers"]
    assert snapshot["image"] == "ghcr.io/siderolabs/talosctl:v1.11.5"
    assert snapshot["args"] == ["etcd", "snapshot", "/work/etcd.snapshot", "--nodes", "192.168.10.21"]
    assert {m["mountPath"] for m in snapshot["volumeMounts"]} == {"/work", TALOS_SECRET_PATH}
    (upload,) = pod["containers"]
    assert upload["image"] == AWS_CLI_IMAGE
    assert upload["command"][:2] == ["/bin/sh", "-c"] and upload["command"][2] == upload_script()
    env = {e["name"]: e for e in upload["env"]}
    # Every target by its site: the script loops over TARGETS and reads each one's settings by name.
    assert env["TARGETS"]["value"] == "oci ovh"
    assert env["S3_ENDPOINT_oci"]["value"] == ENDPOINT and env["S3_BUCKET_oci"]["value"] == "homelab-backups"
    assert env["S3_ENDPOINT_ovh"]["value"] == OVH and env["S3_REGION_ovh"]["value"] == "gra"
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"]["value"] == "when_required"
    for site in ("oci", "ovh"):
        for name, key in (
            (f"S3_KEY_ID_{site}", f"{site}_access_key_id"),
            (f"S3_SECRET_{site}", f"{site}_secret_access_key"),
        ):
            assert env[name]["valueFrom"]["secretKeyRef"] == {"name": S3_SECRET, "key": key}
            assert "value" not in env[name]
    for container in (snapshot, upload):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]} and context["runAsNonRoot"] is True
        assert container["resources"]["limits"]["memory"]
    assert pod["automountServiceAccountToken"] is False


def test_job_names_its_holder_and_bucket_for_the_offsite_policy(rec):
    annotations = rec.get(CRONJOB, "etcd-backup-cronjob").inputs["metadata"]["annotations"]
    assert json.loads(annotations[ANNOTATION]) == {
        "backup": {"holds": ["prod-etcd"], "targets": [f"{ENDPOINT}/homelab-backups", f"{OVH}/homelab-offsite"]}
    }


def test_upload_is_sse_c_encrypted_to_every_target_and_a_failed_one_fails_the_run():
    script = upload_script()
    assert "--sse-c AES256 --sse-c-key fileb:///etc/etcd-backup/sse-c.key" in script
    assert "s3://$bucket/$key" in script and 'key="etcd/$CLUSTER/' in script
    assert "for site in $TARGETS; do" in script
    # One target failing does not stop the next; the run still fails (and alerts) at the end.
    assert "failed=1" in script and script.rstrip().endswith('exit "$failed"')


def test_credentials_and_key_are_secret_and_the_key_outlives_the_stack(rec):
    s3 = rec.get(SECRET, "etcd-backup-s3")
    assert set(s3.inputs["stringData"]) == {
        "oci_access_key_id",
        "oci_secret_access_key",
        "ovh_access_key_id",
        "ovh_secret_access_key",
    }
    assert all(s3.is_secret(f"stringData.{key}") for key in s3.inputs["stringData"])
    assert s3.inputs["stringData"]["ovh_secret_access_key"] == "ovh-secret"
    key = rec.get(SECRET, "etcd-backup-sse-c")
    assert key.inputs["metadata"]["name"] == KEY_SECRET
    assert key.is_secret(f"data.{KEY_FILE}") and key.inputs["data"][KEY_FILE] == KEY
    assert key.retain_on_delete


def test_talos_access_patch_allows_only_the_backup_role_from_the_namespace():
    features = json.loads(talos_access_patch())["machine"]["features"]
    assert features == {
        "kubernetesTalosAPIAccess": {
            "enabled": True,
            "allowedRoles": ["os:etcd:backup"],
            "allowedKubernetesNamespaces": ["etcd-backup"],
        }
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (KEY, None),
        (f"{KEY}\n", None),
        (base64.b64encode(b"k" * 31).decode(), "not 31"),
        (base64.b64encode(b"k" * 33).decode(), "not 33"),
        ("not base64 at all!", "must be base64"),
    ],
)
def test_sse_c_key_problem(value, problem):
    found = sse_c_key_problem(value)
    assert found is None if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"talos_version": "1.11.5"}, "talos_version"),
        ({"uploader_image": "public.ecr.aws/aws-cli/aws-cli"}, "uploader_image"),
        ({"holder": ""}, "holder"),
        ({"targets": []}, "at least one target"),
    ],
)
def test_bad_input_registers_no_child(changes, message):
    assert_fails_registering_no_child(program(**changes), message, "homelab:k8s:EtcdBackup", SECRETS)
