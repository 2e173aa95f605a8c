"""The `homelab` command: see what each stack would build, and whether it passes the gate, offline.

    homelab preview [dev|prod|cloud ...|--all] [--json]
    homelab report STACK [--output FILE]
    homelab policy-config STACK

Exit codes: 0 clean, 1 a mandatory policy violation, 2 invalid config or usage.
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pulumi

from homelab.policy_eval import PackConfigError, evaluate, load_pack_config
from homelab.render import StackResult, json_document, text_report
from homelab.simulate import SimulationError
from homelab.stackrun import project_root, run_stack
from policies.rules import RULES
from stacks import STACK_MODULES

EXIT_OK, EXIT_VIOLATION, EXIT_INVALID = 0, 1, 2


class UsageError(Exception):
    """The command line asks for something that does not exist."""


def pack_config_path(stack: str, root: Path) -> Path:
    """The `--policy-pack-config` file the real CLI is given for `stack` (see README)."""
    return root / "policies" / "config" / f"{stack}.json"


def preview_stack(stack: str, root: Path | None = None) -> StackResult:
    """Run one stack offline and evaluate the pack on it; user errors become `result.error`."""
    root = root or project_root()
    started = time.perf_counter()
    result = StackResult(stack=stack)
    try:
        config = load_pack_config(pack_config_path(stack, root))
        result.recording = run_stack(stack, root)
        result.findings = evaluate(result.recording, RULES, config)
    except (pulumi.RunError, PackConfigError) as exc:
        # Config errors are pulumi.RunErrors: one line that names the key, never a traceback.
        result.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    except SimulationError as exc:
        result.error = f"offline engine: {exc}"
    result.seconds = time.perf_counter() - started
    return result


def _stacks(selected: Sequence[str], all_stacks: bool) -> list[str]:
    if all_stacks and selected:
        raise UsageError("give stack names or --all, not both")
    if all_stacks or not selected:
        return list(STACK_MODULES)
    unknown = [s for s in selected if s not in STACK_MODULES]
    if unknown:
        raise UsageError(f"unknown stack {unknown[0]!r}: this project defines {', '.join(STACK_MODULES)}")
    return list(dict.fromkeys(selected))


def _root(args: argparse.Namespace) -> Path:
    root = Path(args.project_dir).resolve() if args.project_dir else project_root()
    if not (root / "Pulumi.yaml").is_file():
        raise UsageError(f"{root}: not a Pulumi project (no Pulumi.yaml)")
    return root


def cmd_preview(args: argparse.Namespace) -> int:
    stacks = _stacks(args.stacks, args.all)
    root = _root(args)
    results = [preview_stack(stack, root) for stack in stacks]
    rule_nfrs = [(rule.id, rule.nfr) for rule in RULES]
    if args.json:
        print(json.dumps(json_document(results), indent=2, sort_keys=False))
    else:
        for result in results:
            sys.stdout.write(text_report(result, rule_nfrs))
            if result.error is not None:
                print(f"homelab: {result.stack}: {result.error}", file=sys.stderr)
        summary = ", ".join(f"{r.stack}={_verdict(r)}" for r in results)
        print(f"Summary: {summary}")
    return max((r.exit_code for r in results), default=EXIT_OK)


def _verdict(result: StackResult) -> str:
    return {EXIT_OK: "ok", EXIT_VIOLATION: "blocked by policy", EXIT_INVALID: "invalid config"}[result.exit_code]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homelab",
        description="Offline preview and policy gate for the homelab Pulumi stacks (no credentials, no CLI).",
    )
    parser.add_argument(
        "--project-dir", metavar="DIR", help="project whose stack files are read (default: this repository)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    preview = commands.add_parser("preview", help="run the real program offline and evaluate the policy pack")
    preview.add_argument("stacks", nargs="*", metavar="STACK", help=f"one of {', '.join(STACK_MODULES)}")
    preview.add_argument("--all", action="store_true", help="every stack (the default when none is named)")
    preview.add_argument("--json", action="store_true", help="print the documented JSON document instead of text")
    preview.set_defaults(func=cmd_preview)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"homelab: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
