"""etcd snapshots as `prod` composes them: the Talos access patch on control planes only, the
offsite bucket from the cloud stack, the critical class' schedule, the protection row, and bad input
(one error naming the key, exit 2)."""

import json
from pathlib import Path

import pytest
import yaml

from homelab import stackrun
from homelab.backup_evidence import ANNOTATION, vm_holdings
from homelab.cli import main
from homelab.policy_config import config_path
from homelab.policy_eval import evaluate, load_pack_config
from stacks.backups import class_policies
from stacks.config import ConfigError

OCI_S3 = "https://axofflinens1.compat.objectstorage.eu-paris-1.oraclecloud.com"
APPLY = "talos:machine/configurationApply:ConfigurationApply"


def test_prod_snapshots_etcd_to_the_offsite_bucket_on_the_critical_schedule(previewed):
    rec = previewed("prod").recording
    component = rec.get("homelab:k8s:EtcdBackup", "etcd-backup")
    job = rec.get("kubernetes:batch/v1:CronJob", "etcd-backup-cronjob")
    assert job.parent == component.urn
    assert job.inputs["spec"]["schedule"] == class_policies(None)["critical"].schedule
    config = json.loads(stackrun.load_stack_input("prod").config["homelab:cluster"])
    pod = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["TARGETS"] == "oci" and env["CLUSTER"] == config["name"]
    assert env["S3_ENDPOINT_oci"] == OCI_S3 and env["S3_BUCKET_oci"] == "homelab-backups"
    assert pod["initContainers"][0]["image"] == f"ghcr.io/siderolabs/talosctl:{config['talos_version']}"
    assert rec.get("kubernetes:core/v1:Secret", "etcd-backup-sse-c").is_secret("data.sse-c.key")
    policies = {r.name for r in rec.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert "network-policies-etcd-backup-deny" in policies


def test_prod_control_planes_declare_etcd_and_the_job_names_its_offsite_copy(previewed):
    result = previewed("prod")
    rec = result.recording
    held = {vm.name: vm_holdings(vm.inputs["tags"]) for vm in rec.by_type("proxmoxve:index/vmLegacy:VmLegacy")}
    assert {name for name, holdings in held.items() if holdings} == {
        r.name for r in rec.by_type("proxmoxve:index/vmLegacy:VmLegacy") if "-cp-" in r.name
    }
    assert all(h.holds == ("prod-etcd",) and h.data_class == "critical" for found in held.values() for h in found)
    job = rec.get("kubernetes:batch/v1:CronJob", "etcd-backup-cronjob")
    evidence = json.loads(job.inputs["metadata"]["annotations"][ANNOTATION])
    assert evidence == {"backup": {"holds": ["prod-etcd"], "targets": [f"{OCI_S3}/homelab-backups"]}}
    assert not [f for f in result.findings if f.rule_id == "DAT-08"]


def test_only_control_planes_grant_the_backup_role(previewed):
    rec = previewed("prod").recording
    granted = {r.name for r in rec.by_type(APPLY) if "kubernetesTalosAPIAccess" in json.dumps(r.inputs, default=str)}
    control_planes = {r.name for r in rec.by_type(APPLY) if "-cp-" in r.name}
    assert granted == control_planes and granted


def test_prod_etcd_counts_its_offsite_snapshot(previewed):
    rows = {r["holder"]: r for r in previewed("prod").recording.outputs["backup_protection"].value}
    assert "etcd-snapshot@oci" in rows["prod-etcd"]["copies"]
    assert rows["prod-etcd"]["verdict"] == "3-2-1"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "homelab:etcdSnapshotKey: required secret is not set while homelab:platform.etcd_backup is true"),
        ("c2hvcnQ=", "homelab:etcdSnapshotKey: must decode to 32 bytes, not 5"),
        ("not base64!", "homelab:etcdSnapshotKey: must be base64"),
    ],
)
def test_a_bad_snapshot_key_names_the_key(value, fragment):
    inp = stackrun.load_stack_input("prod")
    config = {k: v for k, v in inp.config.items() if k != "homelab:etcdSnapshotKey"}
    if value is not None:
        config["homelab:etcdSnapshotKey"] = value
    keys = [k for k in inp.secret_keys if k != "homelab:etcdSnapshotKey" or value is not None]
    with pytest.raises(ConfigError) as error:
        stackrun.check_stack_config("prod", config, keys)
    assert str(error.value).startswith(fragment)


def test_cli_reports_a_bad_switch_as_exit_2(isolated_project: Path, capsys):
    path = isolated_project / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["homelab:platform"]["etcd_backup"] = "daily"
    path.write_text(yaml.safe_dump(document))
    code = main(["--project-dir", str(isolated_project), "preview", "prod"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "homelab:platform.etcd_backup" in err


def test_cloud_snapshots_etcd_where_velero_writes_and_to_the_oci_bucket(previewed):
    rec = previewed("cloud").recording
    job = rec.get("kubernetes:batch/v1:CronJob", "etcd-backup-cronjob")
    env = {
        e["name"]: e.get("value")
        for e in job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    # OVH is configured in the committed cloud stack: the cloud's data leaves OCI (stacks.velero.cloud_bucket);
    # the small snapshots go to the OCI bucket as well (a third copy, on a second medium).
    assert env["TARGETS"] == "ovh oci" and env["CLUSTER"] == "homelab-cloud"
    assert env["S3_ENDPOINT_ovh"] == "https://s3.gra.io.cloud.ovh.net"
    assert env["S3_BUCKET_oci"] == "homelab-backups"
    granted = [r.name for r in rec.by_type(APPLY) if "kubernetesTalosAPIAccess" in json.dumps(r.inputs, default=str)]
    assert granted == ["cloud-cloud-1-config"]
    rows = {r["holder"]: r for r in rec.outputs["backup_protection"].value}
    # On the node (block volume), in its weekly boot-volume backup, in the OCI bucket and at OVH
    # (object storage): counted, never asserted.
    assert rows["cloud-etcd"]["copies"] == [
        "primary@oci",
        "volume-backup@oci",
        "etcd-snapshot@oci",
        "etcd-snapshot@ovh",
    ]
    assert rows["cloud-etcd"]["three_two_one"] is True
    # The control plane's instance declares cloud-etcd; the job's annotation names its OVH copy.
    instance = rec.get("oci:Core/instance:Instance", "cloud-cloud-1-instance")
    assert instance.inputs["freeformTags"]["holds"] == "cloud-etcd"
    assert instance.inputs["freeformTags"]["data-class"] == "critical"
    evidence = json.loads(job.inputs["metadata"]["annotations"][ANNOTATION])
    assert evidence["backup"]["holds"] == ["cloud-etcd"]
    assert [t.split("/")[2].split(".")[-2] for t in evidence["backup"]["targets"]] == ["ovh", "oraclecloud"]


def test_cloud_snapshots_without_a_bucket_credential_name_the_switch():
    inp = stackrun.load_stack_input("cloud")
    backups = json.loads(inp.config["homelab:backups"])
    backups["oci_bucket"] = {**backups.get("oci_bucket", {}), "issue_credentials": False}
    backups.pop("ovh")
    platform = json.loads(inp.config["homelab:platform"])
    platform.pop("velero")
    config = {**inp.config, "homelab:backups": json.dumps(backups), "homelab:platform": json.dumps(platform)}
    with pytest.raises(ConfigError, match=r"^homelab:platform\.etcd_backup: .*issue_credentials is false"):
        stackrun.check_stack_config("cloud", config, inp.secret_keys)


def test_without_the_switch_nothing_is_registered_or_claimed():
    platform = json.loads(stackrun.load_stack_input("prod").config["homelab:platform"])
    recording = stackrun.run_stack("prod", overrides={"platform": {**platform, "etcd_backup": False}})
    assert not recording.by_type("homelab:k8s:EtcdBackup")
    assert not any("kubernetesTalosAPIAccess" in json.dumps(r.inputs, default=str) for r in recording.by_type(APPLY))
    rows = {r["holder"]: r for r in recording.outputs["backup_protection"].value}
    assert not any(c.startswith("etcd-snapshot") for c in rows["prod-etcd"]["copies"])
    # The control plane still holds etcd: the offsite policy now finds it uncovered.
    findings = evaluate(recording, config=load_pack_config(config_path("prod")))
    found = [f.message for f in findings if f.rule_id == "DAT-08"]
    assert [m.split(" Fix:")[0] for m in found] == [
        "[DAT-08] 'prod-etcd' (critical, on 'talos-prod-cp-1' at home) is covered by no backup job."
    ]
