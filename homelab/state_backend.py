"""`homelab state-backend`: create, verify and restore the bucket the Pulumi state lives in.

    homelab state-backend init    [--bucket B] (--namespace NS --region R | --endpoint URL --region R) [--force]
    homelab state-backend check   (same target options)
    homelab state-backend history STACK
    homelab state-backend restore STACK VERSION_ID

The state bucket must exist before any stack does, so no stack can create it: this command does,
through the S3 API (OCI Object Storage's S3 compatibility endpoint, path-style). It is idempotent:
`init` on a protected bucket changes nothing, `check` changes nothing ever. It refuses a bucket that
is public, and one that holds objects outside the Pulumi backend's `.pulumi/` tree unless `--force`.

Credentials are read from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, exactly as the Pulumi CLI
reads them for this backend, and are never printed.

Exit codes: 0 the bucket is protected (or was made so), 1 it is not (or was refused), 2 bad input,
missing or rejected credentials, unreachable endpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from homelab import s3

OWNED_PREFIX = ".pulumi/"
"""Everything a Pulumi DIY backend writes lives under `<prefix>.pulumi/` (stacks, history, locks, meta)."""
PROJECT = "homelab"
DEFAULT_BUCKET = "homelab-pulumi-state"
DEFAULT_KEEP_DAYS = 90
MAX_KEEP_DAYS = 3650
EXIT_OK, EXIT_PROBLEM, EXIT_INVALID = 0, 1, 2


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "state-backend", help="create, verify or restore the S3 bucket the Pulumi state lives in (OCI, path-style)"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="create the bucket or bring it to the protected state (idempotent)")
    check = actions.add_parser("check", help="verify the bucket's protection; changes nothing")
    history = actions.add_parser("history", help="list the stored versions of a stack's state")
    restore = actions.add_parser("restore", help="make a previous version of a stack's state current again")
    for sub in (init, check, history, restore):
        _target_options(sub)
    init.add_argument("--force", action="store_true", help="use a bucket that holds objects outside .pulumi/")
    for sub in (history, restore):
        sub.add_argument("stack", metavar="STACK", help="stack name (dev, prod, cloud)")
    restore.add_argument("version_id", metavar="VERSION_ID", help="a version id printed by `history`")
    parser.set_defaults(func=run)


def _target_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--bucket", default=env("HOMELAB_STATE_BUCKET", DEFAULT_BUCKET), help="bucket name")
    parser.add_argument(
        "--namespace", default=env("HOMELAB_STATE_NAMESPACE"), help="OCI Object Storage namespace of the tenancy"
    )
    parser.add_argument("--region", default=env("HOMELAB_STATE_REGION"), help="region id, e.g. eu-frankfurt-1")
    parser.add_argument(
        "--endpoint",
        default=env("HOMELAB_STATE_ENDPOINT"),
        help="any other S3 endpoint (https://...); default: OCI's compatibility endpoint of --namespace",
    )
    parser.add_argument("--prefix", default="", help="key prefix inside the bucket (ending in /)")
    parser.add_argument(
        "--keep-days",
        type=int,
        default=DEFAULT_KEEP_DAYS,
        help=f"days a replaced state version is kept (default {DEFAULT_KEEP_DAYS})",
    )


def _target(args: argparse.Namespace) -> s3.Target:
    if not args.region:
        raise s3.S3Error("--region (or HOMELAB_STATE_REGION) is required")
    if not 1 <= args.keep_days <= MAX_KEEP_DAYS:
        raise s3.S3Error(f"--keep-days: must be between 1 and {MAX_KEEP_DAYS}, got {args.keep_days}")
    if args.endpoint:
        endpoint = args.endpoint
    elif args.namespace:
        endpoint = s3.oci_endpoint(args.namespace, args.region)
    else:
        raise s3.S3Error("--namespace (OCI) or --endpoint is required")
    return s3.Target(bucket=args.bucket, region=args.region, endpoint=endpoint, prefix=args.prefix)


def _credentials() -> tuple[str, str]:
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise s3.S3Error(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (an OCI Customer Secret Key; the Pulumi "
            "CLI reads the same variables for this backend)"
        )
    return key, secret


def state_key(target: s3.Target, stack: str) -> str:
    """Where a project-scoped DIY backend keeps a stack's current checkpoint."""
    return f"{target.prefix}{OWNED_PREFIX}stacks/{PROJECT}/{stack}.json"


def run(args: argparse.Namespace) -> int:
    try:
        target = _target(args)
        client = s3.make_client(target, *_credentials())
        return _ACTIONS[args.action](client, target, args)
    except s3.S3Error as exc:
        print(f"homelab: state-backend: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except s3.RefusedError as exc:
        print(f"homelab: state-backend: refused: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def _init(client: Any, target: s3.Target, args: argparse.Namespace) -> int:
    changes = s3.ensure(client, target, args.keep_days, OWNED_PREFIX, force=args.force)
    print(f"bucket {target.bucket} on {target.host}: " + ("; ".join(changes) if changes else "already protected"))
    return _report(client, target, args)


def _check(client: Any, target: s3.Target, args: argparse.Namespace) -> int:
    return _report(client, target, args)


def _report(client: Any, target: s3.Target, args: argparse.Namespace) -> int:
    state = s3.inspect(client, target, args.keep_days, OWNED_PREFIX)
    if not state.exists:
        print(f"bucket {target.bucket} does not exist on {target.host}: run `homelab state-backend init`")
        return EXIT_PROBLEM
    for control in state.controls:
        print(f"  {control.status:<11} {control.name}: {control.detail}")
    if state.unexpected:
        print(f"  problem     contents: objects outside {target.prefix}{OWNED_PREFIX}: {', '.join(state.unexpected)}")
    print(f"pulumi login '{s3.pulumi_login_url(target)}'")
    return EXIT_PROBLEM if state.problems or state.unexpected else EXIT_OK


def _history(client: Any, target: s3.Target, args: argparse.Namespace) -> int:
    key = state_key(target, args.stack)
    found = s3.versions(client, target, key)
    if not found:
        print(f"no state stored at {key}")
        return EXIT_PROBLEM
    for version in found:
        marker = "current" if version.latest else ""
        print(f"{version.version_id}  {version.modified}  {version.size:>9} B  {marker}")
    return EXIT_OK


def _restore(client: Any, target: s3.Target, args: argparse.Namespace) -> int:
    key = state_key(target, args.stack)
    if args.version_id not in {v.version_id for v in s3.versions(client, target, key)}:
        raise s3.S3Error(f"VERSION_ID {args.version_id!r} is not a version of {key} (see `history {args.stack}`)")
    new_version = s3.restore_version(client, target, key, args.version_id)
    print(f"{key}: version {args.version_id} is current again (stored as {new_version}); run `pulumi refresh`")
    return EXIT_OK


_ACTIONS = {"init": _init, "check": _check, "history": _history, "restore": _restore}
