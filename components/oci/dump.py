"""`NightlyDump`: the management VM's PostgreSQL (Authentik's database) dumped offsite every night.

A systemd timer on the VM runs `pg_dump -Fc` inside the running `postgresql` container, encrypts the
dump with AES-256 (openssl, PBKDF2) under a key held as a Pulumi secret, and uploads it with the
pinned AWS CLI container to the offsite bucket through the S3 API (path-style; request checksums only
when required, which OCI and OVH need), with its SHA-256 in the object metadata so a restore can
verify it (`homelab.s3.fetch_checked`). The bucket's lifecycle policy, not this job, expires old
dumps. The credentials and the encryption key reach the VM only through the command's stdin and
live in a root-only file.

Restore: docs/runbooks/restore.md ("Authentik's database").
"""

import shlex
from typing import TypedDict

import pulumi
from pulumi_command import remote

from components.oci.compose import COMPOSE_PATH

SCRIPT_PATH = "/usr/local/sbin/homelab-offsite-dump"
ENV_PATH = "/etc/homelab/offsite.env"
UNIT = "homelab-offsite-dump"
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.50"
"""Pinned: a new CLI can change its S3 defaults (2.23 started sending CRC checksums by default)."""


class NightlyDumpArgs(TypedDict):
    """Inputs of `NightlyDump`."""

    connection: pulumi.Input[remote.ConnectionArgs] | remote.ConnectionArgsDict
    endpoint: pulumi.Input[str]
    region: str
    bucket: pulumi.Input[str]
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]
    encryption_key: pulumi.Input[str]
    """Passphrase the dumps are encrypted with (a secret; keep a copy outside the cloud)."""
    calendar: str
    """systemd OnCalendar of the dump (UTC)."""


def _q(value: str) -> str:
    return shlex.quote(value)


def dump_script(database: str = "authentik", user: str = "authentik") -> str:
    return f"""#!/bin/bash
# Managed by Pulumi (homelab NightlyDump): dump, encrypt and upload {database} offsite.
set -euo pipefail
set -a
# shellcheck source=/dev/null
. {ENV_PATH}
set +a
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
docker compose -f {COMPOSE_PATH} exec -T postgresql pg_dump -U {_q(user)} -Fc {_q(database)} > "$work/dump"
[ -s "$work/dump" ] || {{ echo "pg_dump produced nothing" >&2; exit 1; }}
openssl enc -aes-256-cbc -pbkdf2 -iter 200000 -salt -pass env:DUMP_KEY -in "$work/dump" -out "$work/dump.enc"
digest=$(sha256sum "$work/dump.enc" | cut -d' ' -f1)
docker run --rm -v "$work:/data:ro" \\
  -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION \\
  -e AWS_REQUEST_CHECKSUM_CALCULATION=when_required -e AWS_RESPONSE_CHECKSUM_VALIDATION=when_required \\
  {AWS_CLI_IMAGE} --endpoint-url "$S3_ENDPOINT" \\
  s3 cp /data/dump.enc "s3://$S3_BUCKET/pgdump/{database}/$stamp.dump.enc" \\
  --metadata "sha256=$digest" --only-show-errors
echo "uploaded pgdump/{database}/$stamp.dump.enc ($digest)"
"""


def install_script(calendar: str) -> str:
    """Idempotent: env file from stdin (root-only), the script, and its timer."""
    service = (
        "[Unit]\nDescription=homelab: nightly offsite dump of the management database\n"
        "After=docker.service\nRequires=docker.service\n\n"
        f"[Service]\nType=oneshot\nExecStart={SCRIPT_PATH}\n"
    )
    timer = (
        "[Unit]\nDescription=homelab: nightly offsite dump\n\n"
        f"[Timer]\nOnCalendar={calendar}\nRandomizedDelaySec=600\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return "\n".join(
        [
            "# shellcheck disable=SC2016",
            "set -eu",
            "umask 077",
            "sudo install -d -m 0700 /etc/homelab",
            f"sudo tee {ENV_PATH}.new >/dev/null",
            f"sudo chmod 0600 {ENV_PATH}.new && sudo mv {ENV_PATH}.new {ENV_PATH}",
            f"printf '%s' {_q(dump_script())} | sudo tee {SCRIPT_PATH} >/dev/null",
            f"sudo chmod 0700 {SCRIPT_PATH}",
            f"printf '%s' {_q(service)} | sudo tee /etc/systemd/system/{UNIT}.service >/dev/null",
            f"printf '%s' {_q(timer)} | sudo tee /etc/systemd/system/{UNIT}.timer >/dev/null",
            "sudo systemctl daemon-reload",
            f"sudo systemctl enable --now {UNIT}.timer",
        ]
    )


def uninstall_script() -> str:
    return "\n".join(
        [
            f"sudo systemctl disable --now {UNIT}.timer 2>/dev/null || true",
            f"sudo rm -f {SCRIPT_PATH} {ENV_PATH} /etc/systemd/system/{UNIT}.service /etc/systemd/system/{UNIT}.timer",
            "sudo systemctl daemon-reload",
        ]
    )


def _env(values: dict[str, str]) -> str:
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


class NightlyDump(pulumi.ComponentResource):
    """The nightly, encrypted, verified offsite dump of the management VM's database."""

    def __init__(self, name: str, args: NightlyDumpArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:NightlyDump", name, None, opts)
        env = pulumi.Output.all(
            args["endpoint"], args["bucket"], args["access_key_id"], args["secret_access_key"], args["encryption_key"]
        ).apply(
            lambda v: _env(
                {
                    "S3_ENDPOINT": v[0],
                    "S3_BUCKET": v[1],
                    "AWS_DEFAULT_REGION": args["region"],
                    "AWS_ACCESS_KEY_ID": v[2],
                    "AWS_SECRET_ACCESS_KEY": v[3],
                    "DUMP_KEY": v[4],
                }
            )
        )
        remote.Command(
            f"{name}-timer",
            connection=args["connection"],
            create=install_script(args["calendar"]),
            delete=uninstall_script(),
            stdin=pulumi.Output.secret(env),
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self),
                pulumi.ResourceOptions(
                    delete_before_replace=True, additional_secret_outputs=["stdout", "stderr", "stdin"]
                ),
            ),
        )
        self.register_outputs({})
