"""Velero as `prod` and `cloud` compose it: schedules from the backup plan, the bucket each writes to,
secrets, the namespace's policies, and bad input (one error naming the key, nothing registered)."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import stacks
from homelab import stackrun
from homelab.cli import main
from homelab.engine import Recording, StackOutputs, run_program
from homelab.simulate import fake_hex
from stacks.backups import ClassPolicyConfig
from stacks.catalog import DataClass, build_catalog
from stacks.config import ConfigError
from stacks.velero import schedules
from tests.stacks.test_platform import load_error

CATALOG = build_catalog("example.net")
VELERO = "homelab:k8s:Velero"
BSL = "kubernetes:velero.io/v1:BackupStorageLocation"
SCHEDULE = "kubernetes:velero.io/v1:Schedule"


def test_cloud_schedules_follow_the_classes_and_leave_media_out():
    found = {s.name: s for s in schedules(CATALOG, "cloud")}
    assert set(found) == {"critical", "important"}  # navidrome (media) has no schedule
    critical = found["critical"]
    assert critical.namespaces == ("baikal", "immich", "nextcloud", "vaultwarden")
    assert critical.volumes is True and critical.ttl_hours == 30 * 24 and critical.cron == "0 2 * * *"
    important = found["important"]
    assert important.namespaces == ("mealie", "n8n")
    # Important is local-only by its class policy: its schedule keeps the objects, not the volumes.
    assert important.volumes is False and important.ttl_hours == 7 * 24


def test_a_class_sent_offsite_gets_its_volumes_copied():
    classes: dict[DataClass, ClassPolicyConfig] = {
        "important": ClassPolicyConfig(local_keep="7d", offsite=True, offsite_keep="14d", schedule="30 3 * * *")
    }
    important = next(s for s in schedules(CATALOG, "prod", classes) if s.name == "important")
    assert important.namespaces == ("argocd", "monitoring")
    assert important.volumes is True and important.ttl_hours == 14 * 24 and important.cron == "30 3 * * *"


OCI_S3 = "https://axofflinens1.compat.objectstorage.eu-paris-1.oraclecloud.com"


@pytest.mark.parametrize(
    ("stack", "bucket", "endpoint", "prefix"),
    [
        # PROD's data leaves home for the OCI bucket (the cloud stack's outputs).
        ("prod", "homelab-backups", OCI_S3, "velero/prod"),
        # CLOUD's data leaves OCI for OVH, configured in the committed cloud stack.
        ("cloud", "homelab-offsite-example", "https://s3.gra.io.cloud.ovh.net", "velero/cloud"),
    ],
)
def test_each_cluster_writes_offsite_to_its_own_folder(previewed, stack, bucket, endpoint, prefix):
    rec = previewed(stack).recording
    assert rec.get(VELERO, "velero")
    spec = rec.get(BSL, "velero-location").inputs["spec"]
    assert spec["objectStorage"] == {"bucket": bucket, "prefix": prefix}
    assert spec["config"]["s3Url"] == endpoint
    credentials = rec.get("kubernetes:core/v1:Secret", "velero-credentials")
    assert credentials.is_secret("stringData.cloud")
    assert rec.get("kubernetes:core/v1:Secret", "velero-repository-password").is_secret(
        "stringData.repository-password"
    )
    policies = {r.name for r in rec.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert {"network-policies-velero-deny", "network-policies-velero-allow"} <= policies
    names = {r.inputs["metadata"]["name"] for r in rec.by_type(SCHEDULE)}
    assert names == ({"important"} if stack == "prod" else {"critical", "important"})


def test_cloud_velero_without_ovh_uses_the_key_the_offsite_bucket_issues():
    config = stackrun.load_stack_input("cloud").config
    backups = json.loads(config["homelab:backups"])
    backups.pop("ovh")
    recording = stackrun.run_stack("cloud", overrides={"backups": backups})
    spec = recording.get(BSL, "velero-location").inputs["spec"]
    assert spec["objectStorage"]["bucket"] == "homelab-backups" and spec["config"]["s3Url"] == OCI_S3
    assert recording.get("oci:Identity/customerSecretKey:CustomerSecretKey", "offsite-s3-key")
    credentials = recording.get("kubernetes:core/v1:Secret", "velero-credentials").inputs["stringData"]["cloud"]
    # The simulated provider names the key as OCI does (its id is the access key).
    assert f"aws_access_key_id = {fake_hex('customer-secret-key-offsite-s3-key', 40)}" in credentials


def test_protection_counts_velero_only_where_it_copies_offsite(previewed):
    cloud = {r["holder"]: r for r in previewed("cloud").recording.outputs["backup_protection"].value}
    assert "velero@ovh" in cloud["vaultwarden"]["copies"]
    assert not any(c.startswith("velero@") for c in cloud["navidrome"]["copies"])


def _velero(stack: str, **changes: Any):
    def edit(platform: dict[str, Any]) -> None:
        platform["velero"] = {**platform["velero"], **changes}

    return edit


@pytest.mark.parametrize(
    ("stack", "changes", "fragment"),
    [
        ("prod", {"chart_version": "~12.1"}, "homelab:platform.velero.chart_version: must be an exact chart version"),
        ("cloud", {"chart_version": "latest"}, "homelab:platform.velero.chart_version"),
        ("prod", {"plugin_image": "velero/velero-plugin-for-aws:v1.13.1"}, "homelab:platform.velero.plugin_image"),
        ("cloud", {"plugin_image": "velero/velero-plugin-for-aws:latest"}, "exact version tag"),
        ("prod", {"app_version": "v1.17.0"}, "homelab:platform.velero.app_version: velero v1.17.0 is not pinned"),
        ("cloud", {"prefix": "Not_A_Name"}, "homelab:platform.velero.prefix"),
        ("prod", {"schedule": "0 2 * * *"}, "homelab:platform.velero.schedule: unknown key"),
    ],
)
def test_bad_velero_config_names_the_key(stack, changes, fragment):
    assert fragment in load_error(stack, _velero(stack, **changes))


def test_a_short_repository_password_is_refused():
    inp = stackrun.load_stack_input("cloud")
    config = {**inp.config, "homelab:veleroRepositoryPassword": "short"}
    with pytest.raises(ConfigError, match=r"^homelab:veleroRepositoryPassword: must be at least 16 characters$"):
        stackrun.check_stack_config("cloud", config, inp.secret_keys)


def test_cloud_velero_without_bucket_credentials_is_refused():
    inp = stackrun.load_stack_input("cloud")
    backups = json.loads(inp.config.get("homelab:backups", "{}"))
    backups["oci_bucket"] = {**backups.get("oci_bucket", {}), "issue_credentials": False}
    backups.pop("ovh")  # with OVH configured, Velero writes there and needs no OCI key
    config = {**inp.config, "homelab:backups": json.dumps(backups)}
    with pytest.raises(ConfigError, match=r"^homelab:platform\.velero: .*issue_credentials is false"):
        stackrun.check_stack_config("cloud", config, inp.secret_keys)


@pytest.mark.parametrize("stack", ["prod", "cloud"])
def test_a_missing_repository_password_names_the_key(stack):
    inp = stackrun.load_stack_input(stack)
    config = {k: v for k, v in inp.config.items() if k != "homelab:veleroRepositoryPassword"}
    keys = [k for k in inp.secret_keys if k != "homelab:veleroRepositoryPassword"]
    with pytest.raises(
        ConfigError, match=r"^homelab:veleroRepositoryPassword: required secret is not set while homelab:platform"
    ):
        stackrun.check_stack_config(stack, config, keys)


def test_cli_reports_an_old_plugin_as_exit_2(isolated_project: Path, capsys):
    path = isolated_project / "Pulumi.cloud.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["homelab:platform"]["velero"]["plugin_image"] = "velero/velero-plugin-for-aws:v1.12.1"
    path.write_text(yaml.safe_dump(document))
    code = main(["--project-dir", str(isolated_project), "preview", "cloud"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "homelab:platform.velero.plugin_image" in err


def test_prod_fails_loudly_when_the_cloud_stack_issues_no_credentials():
    refs = {name: stackrun._outputs_of(name, None) for name in ("dev", "cloud")}
    cloud = refs["cloud"]
    refs["cloud"] = StackOutputs(
        values={k: v for k, v in cloud.values.items() if k != "offsite_s3_credentials"}, secret_names=cloud.secret_names
    )
    inp = stackrun.load_stack_input("prod")
    recording = Recording(project="homelab", stack="prod")
    with pytest.raises(ConfigError, match=r"stack 'cloud' exports no `offsite_s3_credentials\.access_key_id`"):
        run_program(
            lambda: stacks.build("prod"),
            project="homelab",
            stack="prod",
            config=inp.config,
            secret_keys=inp.secret_keys,
            stack_outputs=lambda name: refs[name.rsplit("/", 1)[-1]],
            into=recording,
        )
