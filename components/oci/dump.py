"""`NightlyDump`: the management VM's data (Authentik's database, Omni's etcd) dumped offsite nightly.

A systemd timer on the VM runs one script that, under a lock (a manual run and the timer never
overlap) and only while the data volume is mounted:

1. dumps Authentik's PostgreSQL database (`pg_dump -Fc` inside the running `postgresql` container);
2. snapshots Omni's embedded etcd (`etcdctl snapshot save` from a pinned etcd image sharing the Omni
   container's network namespace, Omni's documented backup of an embedded etcd). Omni's etcd values
   are already encrypted with its GPG key (`omniEtcdPrivateKey`), which a restore needs too. Before
   Omni's first start (its Compose profile still off) there is nothing to dump and the step says so;
   an Omni that should run but does not fails the job;
3. with `state_source`, copies every stack's Pulumi state (the state bucket's `.pulumi/` tree, read
   with the S3 API) into a tarball: the state's copy away from its bucket, and with OVH away from OCI;
   the newest encrypted copies also stay on the data volume (block storage, the state's second medium);
4. encrypts each dump with AES-256 (openssl, PBKDF2) under a key held as a Pulumi secret;
5. uploads every encrypted dump to each target (the OCI offsite bucket, and OVH when configured)
   through the S3 API with the pinned AWS CLI container (path-style; request checksums only when
   required, which OCI and OVH need), the SHA-256 in the object metadata so a restore can verify it
   (`homelab.s3.fetch_checked`). A failing target does not stop the others; the job fails at the end;
6. records the run's result (`offsite-dump`) as textfile metrics, which the VM's Alloy ships to
   PROD: a failed or missed night raises the backup alerts.

The targets' lifecycle policies, not this job, expire old dumps. Credentials and the encryption key
reach the VM only through the command's stdin and live in a root-only file. The install command's
`triggers` carry the backup manifest (what it copies, where to) that DAT-08 reads.

Restore: docs/runbooks/restore.md ("Authentik's database", "Omni's state", "The Pulumi state").
"""

import shlex
from collections.abc import Sequence
from typing import Literal, NotRequired, TypedDict

import pulumi
from pulumi_command import remote

from components.monitoring.textfile import VM_TEXTFILE_DIR, metric_function
from components.oci.compose import COMPOSE_PATH, DATA_DIR, DATA_GUARD, OMNI_PROFILE
from components.oci.compose import ENV_PATH as COMPOSE_ENV_PATH
from components.s3bucket import S3Bucket, targets_problem
from homelab.backup_evidence import manifest, target_url

SCRIPT_PATH = "/usr/local/sbin/homelab-offsite-dump"
ENV_PATH = "/etc/homelab/offsite.env"
LOCK_PATH = "/run/lock/homelab-offsite-dump.lock"
UNIT = "homelab-offsite-dump"
DUMP_JOB = "offsite-dump"
"""The `job` label of the dump's result (components/monitoring/textfile.py): a failed or missed night alerts."""
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.50"
"""Pinned: a new CLI can change its S3 defaults (2.23 started sending CRC checksums by default)."""
ETCD_IMAGE = "gcr.io/etcd-development/etcd:v3.5.21"
"""Pinned etcdctl (the official multi-arch etcd image); `snapshot save` is a client call, so it works
against the etcd Omni embeds."""
OMNI_ETCD_ENDPOINT = "http://localhost:2379"
"""Omni's embedded etcd listens here (its `--etcd-endpoints` default), inside Omni's container."""

Dumped = Literal["authentik", "omni"]
DUMPED: tuple[Dumped, ...] = ("authentik", "omni")
"""What the job dumps, by data-holder name (stacks/backups.py), in this order."""


STATE_HOLDER = "pulumi-state"
"""The data holder (stacks/backups.py) the state copy covers."""
STATE_KEEP_DIR = f"{DATA_DIR}/pulumi-state"
"""Where the newest encrypted state copies stay on the VM's data volume (a second medium)."""
STATE_KEEP = 7


class NightlyDumpArgs(TypedDict):
    """Inputs of `NightlyDump`."""

    connection: pulumi.Input[remote.ConnectionArgs] | remote.ConnectionArgsDict
    targets: Sequence[S3Bucket]
    """Where every dump goes, in this order (at least one)."""
    encryption_key: pulumi.Input[str]
    """Passphrase the dumps are encrypted with (a secret; keep a copy outside the cloud)."""
    calendar: str
    """systemd OnCalendar of the dump (UTC)."""
    holders: NotRequired[Sequence[Dumped]]
    """What to dump (default: everything in `DUMPED`)."""
    state_source: NotRequired[S3Bucket]
    """Also copy the Pulumi state bucket's `.pulumi/` tree (its credentials need only read access)."""


def _q(value: str) -> str:
    return shlex.quote(value)


_AUTHENTIK = f"""# Authentik's database.
docker compose -f {COMPOSE_PATH} exec -T postgresql pg_dump -U authentik -Fc authentik > "$work/authentik.dump"
[ -s "$work/authentik.dump" ] || {{ echo "pg_dump produced nothing" >&2; exit 1; }}
keys[authentik.dump]="pgdump/authentik/$stamp.dump.enc"
"""

_OMNI = f"""# Omni's embedded etcd (nothing to dump before Omni's first start).
if omni=$(docker compose -f {COMPOSE_PATH} ps -q --status running omni) && [ -n "$omni" ]; then
  docker run --rm --network "container:$omni" -v "$work:/out" {ETCD_IMAGE} \
    etcdctl --endpoints {OMNI_ETCD_ENDPOINT} snapshot save /out/omni-etcd.db >/dev/null
  [ -s "$work/omni-etcd.db" ] || {{ echo "etcdctl snapshot produced nothing" >&2; exit 1; }}
  keys[omni-etcd.db]="omni/etcd/$stamp.db.enc"
elif grep -qx 'COMPOSE_PROFILES={OMNI_PROFILE}' {COMPOSE_ENV_PATH} 2>/dev/null; then
  echo "omni is enabled but not running: its etcd was not dumped" >&2
  failed=1
else
  echo "omni has not been started yet: nothing to dump"
fi
"""

_STATE = f"""# Every stack's Pulumi state: the state bucket's .pulumi/ tree (checkpoints, history, locks).
read_state() {{  # its own credentials, exported to the AWS CLI container only
  local -x AWS_ACCESS_KEY_ID="$STATE_KEY_ID" AWS_SECRET_ACCESS_KEY="$STATE_SECRET" AWS_DEFAULT_REGION="$STATE_REGION"
  mkdir -p "$work/pulumi-state"
  docker run --rm -v "$work/pulumi-state:/out" \\
    -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION \\
    -e AWS_REQUEST_CHECKSUM_CALCULATION=when_required -e AWS_RESPONSE_CHECKSUM_VALIDATION=when_required \\
    {AWS_CLI_IMAGE} --endpoint-url "$STATE_ENDPOINT" \\
    s3 cp --recursive "s3://$STATE_BUCKET/.pulumi/" /out/ --only-show-errors
}}
if read_state && [ -n "$(ls -A "$work/pulumi-state")" ]; then
  tar -C "$work" -czf "$work/pulumi-state.tar.gz" pulumi-state
  keys[pulumi-state.tar.gz]="pulumi-state/$stamp.tar.gz.enc"
else
  echo "the Pulumi state could not be read from bucket $STATE_BUCKET" >&2
  failed=1
fi
"""

_STATE_KEEP = f"""# The encrypted state stays on the data volume too (block storage, a second medium): the newest
# {STATE_KEEP} copies.
if [ -f "$work/pulumi-state.tar.gz.enc" ]; then
  install -d -m 0700 {STATE_KEEP_DIR}
  cp "$work/pulumi-state.tar.gz.enc" "{STATE_KEEP_DIR}/$stamp.tar.gz.enc"
  find {STATE_KEEP_DIR} -maxdepth 1 -name '*.tar.gz.enc' -printf '%f\\n' | sort -r | tail -n +{STATE_KEEP + 1} \\
    | while read -r old; do rm -f "{STATE_KEEP_DIR}/$old"; done
fi
"""

_STEPS: dict[Dumped, str] = {"authentik": _AUTHENTIK, "omni": _OMNI}


def dump_script(holders: Sequence[Dumped] = DUMPED, state: bool = False) -> str:
    steps = "".join(_STEPS[h] for h in DUMPED if h in holders) + (_STATE if state else "")
    return f"""#!/bin/bash
# Managed by Pulumi (homelab NightlyDump): dump, encrypt and upload the management data offsite.
set -euo pipefail
exec 9>{LOCK_PATH}
flock -w 3600 9 || {{ echo "another offsite dump is still running" >&2; exit 1; }}
textfile_dir={VM_TEXTFILE_DIR}
# shellcheck disable=SC2329 # called by finish, the EXIT trap
{metric_function()}work=""
# shellcheck disable=SC2329 # the EXIT trap
finish() {{  # every way out records the run's result for the backup alerts
  local rc=$?
  rm -rf "$work"
  if [ "$rc" = 0 ]; then metric {DUMP_JOB} 1; else metric {DUMP_JOB} 0; fi
}}
trap finish EXIT
{DATA_GUARD}set -a
# shellcheck source=/dev/null
. {ENV_PATH}
set +a
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$(mktemp -d)
failed=0
declare -A keys=()
{steps}for name in "${{!keys[@]}}"; do
  openssl enc -aes-256-cbc -pbkdf2 -iter 200000 -salt -pass env:DUMP_KEY -in "$work/$name" -out "$work/$name.enc"
  digest=$(sha256sum "$work/$name.enc" | cut -d' ' -f1)
  for target in $S3_TARGETS; do
    endpoint="S3_ENDPOINT_$target" bucket="S3_BUCKET_$target" region="S3_REGION_$target"
    key_id="S3_KEY_ID_$target" secret="S3_SECRET_$target"
    if (
      export AWS_ACCESS_KEY_ID="${{!key_id}}" AWS_SECRET_ACCESS_KEY="${{!secret}}" AWS_DEFAULT_REGION="${{!region}}"
      docker run --rm -v "$work:/data:ro" \
        -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION \
        -e AWS_REQUEST_CHECKSUM_CALCULATION=when_required -e AWS_RESPONSE_CHECKSUM_VALIDATION=when_required \
        {AWS_CLI_IMAGE} --endpoint-url "${{!endpoint}}" \
        s3 cp "/data/$name.enc" "s3://${{!bucket}}/${{keys[$name]}}" \
        --metadata "sha256=$digest" --only-show-errors
    ); then
      echo "uploaded ${{keys[$name]}} to $target ($digest)"
    else
      echo "upload of ${{keys[$name]}} to $target failed" >&2
      failed=1
    fi
  done
done
{_STATE_KEEP if state else ""}exit "$failed"
"""


def install_script(calendar: str, holders: Sequence[Dumped] = DUMPED, state: bool = False) -> str:
    """Idempotent: env file from stdin (root-only), the script, and its timer."""
    service = (
        "[Unit]\nDescription=homelab: nightly offsite dump of the management data (Authentik, Omni)\n"
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
            f"sudo install -d -m 0755 {VM_TEXTFILE_DIR}",
            f"sudo tee {ENV_PATH}.new >/dev/null",
            f"sudo chmod 0600 {ENV_PATH}.new && sudo mv {ENV_PATH}.new {ENV_PATH}",
            f"printf '%s' {_q(dump_script(holders, state))} | sudo tee {SCRIPT_PATH} >/dev/null",
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
    """The nightly, encrypted, verified offsite dump of the management VM's data."""

    def __init__(self, name: str, args: NightlyDumpArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:NightlyDump", name, None, opts)
        targets = list(args["targets"])
        holders = tuple(args.get("holders", DUMPED))
        problem = targets_problem(targets)
        if problem is not None:
            raise ValueError(f"NightlyDump {name!r}: {problem}")
        sites = [t.site for t in targets]
        unknown = sorted(set(holders) - set(DUMPED))
        if not holders or unknown:
            raise ValueError(f"NightlyDump {name!r}: holders must be some of {list(DUMPED)}, got {list(holders)}")

        state = args.get("state_source")

        # Every bucket's five settings, resolved together: the targets in order, then the state source.
        buckets = [*targets, *([state] if state is not None else [])]

        def env(values: list[str]) -> str:
            lines = {"DUMP_KEY": values[0], "S3_TARGETS": " ".join(sites)}
            for i, bucket in enumerate(buckets):
                endpoint, region, bucket_name, key_id, secret = values[1 + 5 * i : 6 + 5 * i]
                is_state = i == len(targets)
                prefix = "STATE_" if is_state else "S3_"
                suffix = "" if is_state else f"_{bucket.site}"
                lines |= {
                    f"{prefix}ENDPOINT{suffix}": endpoint,
                    f"{prefix}BUCKET{suffix}": bucket_name,
                    f"{prefix}REGION{suffix}": region,
                    f"{prefix}KEY_ID{suffix}": key_id,
                    f"{prefix}SECRET{suffix}": secret,
                }
            return _env(lines)

        inputs: list[pulumi.Input[str]] = [args["encryption_key"]]
        for bucket in buckets:
            inputs += [bucket.endpoint, bucket.region, bucket.bucket, bucket.access_key_id, bucket.secret_access_key]
        copied = [*holders, *([STATE_HOLDER] if state is not None else [])]
        urls = [
            pulumi.Output.all(t.endpoint, t.bucket).apply(lambda v: target_url(str(v[0]), str(v[1]))) for t in targets
        ]
        remote.Command(
            f"{name}-timer",
            connection=args["connection"],
            create=install_script(args["calendar"], holders, state is not None),
            delete=uninstall_script(),
            stdin=pulumi.Output.secret(pulumi.Output.all(*inputs).apply(env)),
            # What the job copies and where: a change reinstalls it; DAT-08 reads it.
            triggers=[pulumi.Output.all(*urls).apply(lambda found: manifest(copied, [str(u) for u in found]))],
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self),
                pulumi.ResourceOptions(
                    delete_before_replace=True, additional_secret_outputs=["stdout", "stderr", "stdin"]
                ),
            ),
        )
        self.register_outputs({})
