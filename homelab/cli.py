"""The `homelab` command: see what each stack would build, and whether it passes the gate, offline.

    homelab preview [dev|prod|cloud ...|--all] [--json]
    homelab report STACK [--output FILE]          (prod: FILE's cost chart beside it, <name>-cost.svg)
    homelab exposure [STACK ...|--all] [--json]     (homelab/exposure.py)
    homelab policy-config STACK
    homelab state-backend init|check|history|restore ...   (homelab/state_backend.py)
    homelab vendor [--check]
    homelab known-hosts STACK [--file FILE]       (homelab/known_hosts.py)
    homelab kubeconfig|talosconfig [STACK ...] [--output FILE]   (homelab/clientconfig.py)

Each stack is previewed in two views (see docs/decisions/0001-offline-preview.md): as a first preview
(every id and computed output unknown) and as an update against simulated provider state.

Exit codes: 0 clean, 1 a mandatory policy violation in either view, 2 the preview could not complete
(invalid config or usage, a provider check failed, or the two views registered different resources).
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pulumi

from components.manifests import ManifestLockError
from homelab import clientconfig, known_hosts, state_backend
from homelab.budget import cost_estimate
from homelab.chart import cost_chart_svg
from homelab.engine import ProviderCheckError
from homelab.exposure import Exposure, exposures
from homelab.exposure import json_document as exposure_json
from homelab.exposure import render_text as exposure_text
from homelab.graph_checks import GRAPH_CHECKS
from homelab.policy_config import STACKS, config_path, policy_config, render, stale_policy_configs, write_policy_configs
from homelab.policy_eval import PackConfigError, evaluate, load_pack_config
from homelab.render import StackResult, ViewResult, json_document, text_report, view_mismatch
from homelab.report import group_by_nfr, render_markdown
from homelab.simulate import SimulationError
from homelab.stackrun import project_root, run_stack
from homelab.vendor import vendor
from policies.rules import RULES
from stacks import STACK_MODULES

EXIT_OK, EXIT_VIOLATION, EXIT_INVALID = 0, 1, 2


class UsageError(Exception):
    """The command line asks for something that does not exist."""


def preview_stack(stack: str, root: Path | None = None) -> StackResult:
    """Run one stack offline and evaluate the pack on it; user errors become `result.error`."""
    root = root or project_root()
    started = time.perf_counter()
    result = StackResult(stack=stack)
    try:
        # The same file the real CLI is given with --policy-pack-config (see README).
        config = result.config = load_pack_config(config_path(stack, root))
        # The update view (against simulated provider state), then the first preview; both must
        # register the same resources.
        result.recording = run_stack(stack, root)
        result.findings = evaluate(result.recording, RULES, config)
        result.groups = group_by_nfr(result.findings, RULES, GRAPH_CHECKS, config, result.recording)
        first = run_stack(stack, root, view="first-preview")
        result.first_preview = ViewResult(first, evaluate(first, RULES, config))
        result.mismatch = view_mismatch(first, result.recording)
    except (pulumi.RunError, PackConfigError) as exc:
        # Config errors are pulumi.RunErrors: one line that names the key, never a traceback.
        result.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    except ProviderCheckError as exc:
        result.error = f"provider check failed: {exc.failures[0]}" + (
            f" (and {len(exc.failures) - 1} more)" if len(exc.failures) > 1 else ""
        )
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
    if args.json:
        print(json.dumps(json_document(results), indent=2, sort_keys=False))
    else:
        for result in results:
            sys.stdout.write(text_report(result))
            if result.error is not None:
                print(f"homelab: {result.stack}: {result.error}", file=sys.stderr)
        summary = ", ".join(f"{r.stack}={_verdict(r)}" for r in results)
        print(f"Summary: {summary}")
    return max((r.exit_code for r in results), default=EXIT_OK)


def cmd_report(args: argparse.Namespace) -> int:
    stack = _stacks([args.stack], False)[0]
    result = preview_stack(stack, _root(args))
    if result.error is not None or result.recording is None:
        print(f"homelab: {stack}: {result.error}", file=sys.stderr)
        return EXIT_INVALID
    # Beside a report file, the cost chart is a file of its own (Markdown renderers such as GitHub's
    # show a linked SVG but drop inline ones); on standard output it is inline.
    cost = cost_estimate(result.recording)
    chart = Path(args.output).with_name(f"{Path(args.output).stem}-cost.svg") if args.output and cost else None
    markdown = render_markdown(
        stack,
        result.recording,
        result.findings,
        RULES,
        GRAPH_CHECKS,
        config=result.config,
        first_preview=result.first_preview.findings if result.first_preview else None,
        cost_chart=chart.name if chart else None,
    )
    if args.output:
        if chart is not None and cost is not None:
            chart.write_text(cost_chart_svg(cost), encoding="utf-8")
            print(f"wrote {chart}")
        Path(args.output).write_text(markdown, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(markdown)
    return result.exit_code


def cmd_policy_config(args: argparse.Namespace) -> int:
    """Print, write or check the `--policy-pack-config` documents generated from the stacks' data."""
    root = _root(args)
    try:
        if args.write:
            for path in write_policy_configs(root):
                print(f"wrote {path.relative_to(root)}")
            return EXIT_OK
        if args.check:
            stale = stale_policy_configs(root)
            for stack in stale:
                print(f"homelab: {config_path(stack, root).relative_to(root)} is stale; run `make policy-config`")
            return EXIT_VIOLATION if stale else EXIT_OK
        stacks = _stacks([args.stack] if args.stack else [], not args.stack)
        for stack in stacks:
            sys.stdout.write(render(policy_config(stack, root)))
    except pulumi.RunError as exc:
        print(f"homelab: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def cmd_vendor(args: argparse.Namespace) -> int:
    """Fetch and verify the pinned upstream manifests (`vendor/manifests.lock.yaml`)."""
    root = _root(args)
    try:
        lines, problems = vendor(root, check_only=args.check)
    except ManifestLockError as exc:
        print(f"homelab: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except FileNotFoundError:
        print(f"homelab: {root.name}: no vendor/manifests.lock.yaml", file=sys.stderr)
        return EXIT_INVALID
    for line in lines:
        print(line)
    for problem in problems:
        print(f"homelab: {problem}", file=sys.stderr)
    return EXIT_VIOLATION if problems else EXIT_OK


def _verdict(result: StackResult) -> str:
    if result.mismatch:
        return "views differ"
    if result.error is not None and result.error.startswith("provider check failed"):
        return "provider check failed"
    return {EXIT_OK: "ok", EXIT_VIOLATION: "blocked by policy", EXIT_INVALID: "invalid config"}[result.exit_code]


def cmd_exposure(args: argparse.Namespace) -> int:
    """Every public hostname with its tier, gate(s), backend and cluster, from the recorded graph."""
    root = _root(args)
    results: dict[str, list[Exposure] | str] = {}
    for stack in _stacks(args.stacks, args.all):
        try:
            results[stack] = exposures(run_stack(stack, root), load_pack_config(config_path(stack, root)))
        except (pulumi.RunError, PackConfigError) as exc:
            results[stack] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        except SimulationError as exc:
            results[stack] = f"offline engine: {exc}"
    if args.json:
        print(exposure_json(results))
    else:
        for stack, rows in results.items():
            if isinstance(rows, str):
                print(f"homelab: {stack}: {rows}", file=sys.stderr)
            else:
                sys.stdout.write(exposure_text(stack, rows))
    if any(isinstance(rows, str) for rows in results.values()):
        return EXIT_INVALID
    ungated = any(r.problem for rows in results.values() if not isinstance(rows, str) for r in rows)
    return EXIT_VIOLATION if ungated else EXIT_OK


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

    exposure = commands.add_parser(
        "exposure", help="every public hostname with its tier, gate(s), backend and cluster (exit 1 if one is ungated)"
    )
    exposure.add_argument("stacks", nargs="*", metavar="STACK", help=f"one of {', '.join(STACK_MODULES)}")
    exposure.add_argument("--all", action="store_true", help="every stack (the default when none is named)")
    exposure.add_argument("--json", action="store_true", help="print JSON instead of a table")
    exposure.set_defaults(func=cmd_exposure)

    report = commands.add_parser("report", help="write the Markdown compliance report of one stack")
    report.add_argument("stack", metavar="STACK", help=f"one of {', '.join(STACK_MODULES)}")
    report.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    report.set_defaults(func=cmd_report)

    config = commands.add_parser(
        "policy-config", help="the --policy-pack-config documents, generated from the stacks' own data"
    )
    config.add_argument("stack", nargs="?", metavar="STACK", choices=STACKS, help="one stack (default: all)")
    mode = config.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="regenerate policies/config/<stack>.json")
    mode.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale")
    config.set_defaults(func=cmd_policy_config)

    state_backend.add_parser(commands)
    known_hosts.add_parser(commands)
    clientconfig.add_parsers(commands)
    vendored = commands.add_parser(
        "vendor", help="download the pinned upstream manifests and verify them against vendor/manifests.lock.yaml"
    )
    vendored.add_argument(
        "--check", action="store_true", help="download nothing; exit 1 if a file is missing or differs"
    )
    vendored.set_defaults(func=cmd_vendor)
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
