"""NightlyDump: credentials and key only through secret stdin; the script dumps, encrypts, verifies."""

import subprocess

import pulumi
from pulumi_command import remote

from components.oci.dump import NightlyDump, dump_script, install_script


def program():
    def run():
        NightlyDump(
            "db",
            {
                "connection": remote.ConnectionArgs(host="10.0.0.10", user="ubuntu", private_key="not-a-key"),
                "endpoint": "https://ns.compat.objectstorage.eu-paris-1.oraclecloud.com",
                "region": "eu-paris-1",
                "bucket": "homelab-backups",
                "access_key_id": pulumi.Output.secret("AKIAEXAMPLE"),
                "secret_access_key": pulumi.Output.secret("very-secret"),
                "encryption_key": pulumi.Output.secret("dump-key"),
                "calendar": "*-*-* 02:15:00",
            },
        )

    return run


def test_secrets_travel_only_in_secret_stdin(record):
    rec = record(program())
    command = rec.get("command:remote:Command", "db-timer")
    assert command.is_secret("stdin")
    assert "very-secret" not in command.inputs["create"] and "dump-key" not in command.inputs["create"]
    assert (
        "AWS_SECRET_ACCESS_KEY='very-secret'" in command.inputs["stdin"]
        or "AWS_SECRET_ACCESS_KEY=very-secret" in command.inputs["stdin"]
    )
    assert command.inputs["logging"] == "none"
    assert command.delete_before_replace is True
    assert "systemctl disable --now homelab-offsite-dump.timer" in command.inputs["delete"]


def test_env_file_is_root_only_and_scripts_parse():
    install = install_script("*-*-* 02:15:00")
    assert "umask 077" in install and "chmod 0600 /etc/homelab/offsite.env.new" in install
    for script in (install, dump_script()):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    dump = dump_script()
    assert "set -euo pipefail" in dump and "trap 'rm -rf \"$work\"' EXIT" in dump
    assert "pg_dump produced nothing" in dump
