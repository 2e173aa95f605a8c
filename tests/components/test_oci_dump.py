"""NightlyDump: credentials and key only through secret stdin; one script dumps Authentik and Omni,
encrypts, uploads to every target; the install command carries the backup manifest DAT-08 reads."""

import subprocess

import pulumi
import pytest
from pulumi_command import remote

from components.oci.dump import (
    ETCD_IMAGE,
    LOCK_PATH,
    STATE_KEEP,
    STATE_KEEP_DIR,
    NightlyDump,
    dump_script,
    install_script,
)
from components.s3bucket import S3Bucket

OCI = "https://ns.compat.objectstorage.eu-paris-1.oraclecloud.com"
OVH = "https://s3.gra.io.cloud.ovh.net"


def _target(site: str, endpoint: str, bucket: str, secret: str) -> S3Bucket:
    return S3Bucket(
        site=site,
        endpoint=endpoint,
        region="eu-paris-1" if site == "oci" else "gra",
        bucket=bucket,
        access_key_id=pulumi.Output.secret(f"AKIA{site.upper()}"),
        secret_access_key=pulumi.Output.secret(secret),
    )


def program(targets: list[S3Bucket] | None = None, state: bool = False, **extra):
    def run():
        if state:
            extra["state_source"] = _state()
        NightlyDump(
            "db",
            {
                "connection": remote.ConnectionArgs(host="10.0.0.10", user="ubuntu", private_key="not-a-key"),
                "targets": targets
                if targets is not None
                else [
                    _target("oci", OCI, "homelab-backups", "very-secret"),
                    _target("ovh", OVH, "homelab-offsite", "ovh-secret"),
                ],
                "encryption_key": pulumi.Output.secret("dump-key"),
                "calendar": "*-*-* 02:15:00",
                **extra,
            },
        )

    return run


def test_secrets_travel_only_in_secret_stdin(record):
    rec = record(program())
    command = rec.get("command:remote:Command", "db-timer")
    assert command.is_secret("stdin")
    for secret in ("very-secret", "ovh-secret", "dump-key"):
        assert secret not in command.inputs["create"] and secret not in str(command.inputs["triggers"])
    stdin = command.inputs["stdin"]
    assert "S3_SECRET_oci=very-secret" in stdin and "S3_SECRET_ovh=ovh-secret" in stdin
    assert "S3_TARGETS='oci ovh'" in stdin and "S3_BUCKET_ovh=homelab-offsite" in stdin
    assert command.inputs["logging"] == "none"
    assert command.delete_before_replace is True
    assert "systemctl disable --now homelab-offsite-dump.timer" in command.inputs["delete"]


def test_install_command_carries_the_backup_manifest(record):
    command = record(program()).get("command:remote:Command", "db-timer")
    assert command.inputs["triggers"] == [
        {
            "backup": {
                "holds": ["authentik", "omni"],
                "targets": [f"{OCI}/homelab-backups", f"{OVH}/homelab-offsite"],
            }
        }
    ]
    only_authentik = record(program(holders=["authentik"])).get("command:remote:Command", "db-timer")
    assert only_authentik.inputs["triggers"][0]["backup"]["holds"] == ["authentik"]
    assert "etcdctl" not in only_authentik.inputs["create"]


def _state() -> S3Bucket:
    return S3Bucket(
        site="oci",
        endpoint=OCI,
        region="eu-paris-1",
        bucket="homelab-pulumi-state",
        access_key_id=pulumi.Output.secret("AKIASTATE"),
        secret_access_key=pulumi.Output.secret("state-secret"),
    )


def test_the_pulumi_state_is_copied_with_its_own_secret_credentials(record):
    command = record(program(state=True)).get("command:remote:Command", "db-timer")
    stdin = command.inputs["stdin"]
    assert command.is_secret("stdin") and "STATE_SECRET=state-secret" in stdin
    assert "STATE_BUCKET=homelab-pulumi-state" in stdin and f"STATE_ENDPOINT={OCI}" in stdin
    assert "state-secret" not in command.inputs["create"]
    # The manifest names the state: it goes wherever the dumps go.
    assert command.inputs["triggers"][0]["backup"]["holds"] == ["authentik", "omni", "pulumi-state"]
    script = dump_script(state=True)
    # Only the state tree, read with the state's credentials exported to the CLI container alone.
    assert 's3 cp --recursive "s3://$STATE_BUCKET/.pulumi/" /out/' in script
    assert 'local -x AWS_ACCESS_KEY_ID="$STATE_KEY_ID"' in script
    assert 'keys[pulumi-state.tar.gz]="pulumi-state/$stamp.tar.gz.enc"' in script
    # An empty or unreadable state fails the job (after the other dumps are uploaded) instead of uploading nothing.
    assert 'if read_state && [ -n "$(ls -A "$work/pulumi-state")" ]; then' in script
    assert script.index("read_state()") < script.index('for name in "${!keys[@]}"')
    # Without a state source nothing of it is in the script.
    plain = record(program()).get("command:remote:Command", "db-timer")
    assert "STATE_" not in plain.inputs["stdin"] and "read_state" not in plain.inputs["create"]


@pytest.mark.parametrize(
    ("targets", "extra", "message"),
    [
        ([], {}, "needs at least one target"),
        ([_target("oci", OCI, "a", "s"), _target("oci", OCI, "b", "s")], {}, "each site once"),
        ([_target("OVH!", OVH, "a", "s")], {}, "must be lower-case letters and digits"),
        (None, {"holders": ["grafana"]}, "holders must be some of"),
    ],
)
def test_bad_targets_are_refused(record, targets, extra, message):
    with pytest.raises(Exception, match=message):
        record(program(targets, **extra))


def test_env_file_is_root_only_and_scripts_parse():
    install = install_script("*-*-* 02:15:00")
    assert "umask 077" in install and "chmod 0600 /etc/homelab/offsite.env.new" in install
    for script in (install, dump_script(), dump_script(["authentik"]), dump_script(state=True)):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    dump = dump_script()
    assert "set -euo pipefail" in dump and 'rm -rf "$work"' in dump and "trap finish EXIT" in dump
    assert "pg_dump produced nothing" in dump


def test_every_run_records_its_result_for_the_backup_alerts():
    dump = dump_script()
    # The EXIT trap is set before the data-volume guard: an unmounted volume is a failed night too.
    assert dump.index("trap finish EXIT") < dump.index("mountpoint -q /srv/homelab")
    assert 'if [ "$rc" = 0 ]; then metric offsite-dump 1; else metric offsite-dump 0; fi' in dump
    assert "textfile_dir=/var/lib/homelab/node-exporter" in dump
    assert "sudo install -d -m 0755 /var/lib/homelab/node-exporter" in install_script("*-*-* 02:15:00")


def test_the_newest_state_copies_stay_on_the_data_volume(tmp_path):
    script = dump_script(state=True)
    keep = script[script.index("# The encrypted state stays") : script.index('exit "$failed"')]
    assert "pulumi-state" not in dump_script().split("for name in")[1]  # no state, nothing kept
    keep = keep.replace(STATE_KEEP_DIR, str(tmp_path / "kept"))
    (tmp_path / "kept").mkdir()
    for day in range(1, 10):
        (tmp_path / "kept" / f"202611{day:02d}T021500Z.tar.gz.enc").write_text("old")
    work = tmp_path / "work"
    work.mkdir()
    (work / "pulumi-state.tar.gz.enc").write_text("new")
    run = f"set -euo pipefail\nwork={work}\nstamp=20261201T021500Z\n{keep}"
    subprocess.run(["bash", "-c", run], check=True, timeout=30)
    kept = sorted(p.name for p in (tmp_path / "kept").iterdir())
    assert len(kept) == STATE_KEEP and kept[-1] == "20261201T021500Z.tar.gz.enc"
    assert kept[0] == "20261104T021500Z.tar.gz.enc"  # the oldest three went


def test_a_night_the_data_volume_is_not_mounted_is_recorded_as_failed(tmp_path):
    # The real script, its lock and textfile directory moved into a scratch dir: /srv/homelab is not
    # a mount point here, so the guard stops the run, and the EXIT trap records the failure.
    dump = dump_script().replace(LOCK_PATH, str(tmp_path / "lock"))
    dump = dump.replace("textfile_dir=/var/lib/homelab/node-exporter", f"textfile_dir={tmp_path}")
    result = subprocess.run(["bash", "-c", dump], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "not mounted" in result.stderr
    written = (tmp_path / "homelab_backup_offsite-dump.prom").read_text(encoding="utf-8")
    assert 'homelab_backup_last_status{job="offsite-dump"} 0' in written


def test_dump_is_locked_guarded_and_ordered():
    dump = dump_script()
    # One run at a time (the timer and a manual run), and never against an unmounted data volume.
    assert dump.index("flock -w 3600 9") < dump.index("mountpoint -q /srv/homelab") < dump.index("pg_dump")
    # Omni's etcd through its own network namespace, only while Omni runs; an enabled Omni that is
    # down fails the job instead of silently skipping it.
    assert f'--network "container:$omni" -v "$work:/out" {ETCD_IMAGE}' in dump
    assert "etcdctl --endpoints http://localhost:2379 snapshot save /out/omni-etcd.db" in dump
    assert "omni is enabled but not running" in dump and "failed=1" in dump
    # Each dump encrypted once, uploaded to every target; secrets passed by name, never on a command line.
    assert dump.count("openssl enc -aes-256-cbc -pbkdf2") == 1
    assert "for target in $S3_TARGETS" in dump and "-e AWS_SECRET_ACCESS_KEY -e" in dump
    assert 'export AWS_ACCESS_KEY_ID="${!key_id}"' in dump
    assert dump.rstrip().endswith('exit "$failed"')
