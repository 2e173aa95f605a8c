"""Shared fixtures. Keep the suite fast: reuse these instead of previewing a stack again.

- `previewed(stack)` (session-scoped): the unmodified `dev`, `prod` or `cloud` stack exactly as
  `homelab preview <stack>` sees it (`homelab.render.StackResult`: the update view in `.recording`,
  `.findings`, `.groups`; the first preview in `.first_preview`; `.config`, `.exit_code`),
  previewed once per test session and shared by every test
  that reads it (tests/policies/previews.py holds the cache; `preview(stack)` there gives the same
  run as a `Preview`). The objects are shared: never edit them in place. To change config, call
  `run_stack(stack, overrides=...)` (or `shared_run(stack, overrides)` from previews.py when
  another test may ask for the same config and you only read the result); to change the graph,
  edit a copy (tests/test_mutations.py).
- `record(program, ...)`: run one component program under the offline engine (for component
  tests: cheaper than a whole stack).
- `isolated_project`: a scratch copy of the stack files and policy config, safe to break.
- `dev_run_modules`: what a fresh interpreter loads to run `dev` (one background subprocess).

Stack config validation has its own fast path, `homelab.stackrun.check_stack_config` (milliseconds,
no program run): use it for tests of what a config value does to validation.

The time budget: pytest under 60 s on 2 cores (`make test`). Where it goes, measured: a whole-stack
run costs 0.1 s (dev) to 0.7 s (prod, cloud), a component under `record` 10-50 ms, the collection
(imports of the SDKs, assertion rewriting) 6-8 s, the three session previews (six runs) about
4 s. So:
- never run a whole stack to test what `check_stack_config` or a component under `record` shows;
  a test that must run one with changed config reads `previewed` for the unmodified side;
- run a validator subprocess once for many inputs and judge each case from its report (the
  compose files, the CRD validators, shellcheck, promtool), never once per parametrized case;
- cache parsed schemas and other deterministic inputs at module or session scope;
- judge a graph mutation with the rule it targets (tests/test_mutations.py `caught`), not the pack.
The collector is tuned below for this suite; `pytest --durations=30` shows where time goes now.
"""

import gc
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from homelab.engine import Recording, run_program
from homelab.render import StackResult
from homelab.stackrun import project_root
from tests.policies.previews import previewed as _previewed
from tests.stacks.helpers import modules_loaded_by_a_dev_run, start_dev_run, stop_dev_run

# The garbage collector, tuned for this suite: the session holds over half a million long-lived
# objects (the provider SDKs, the cached previews), and an offline stack run allocates hundreds of
# thousands of short-lived ones (asyncio handles, futures, Outputs), some in reference cycles. With
# the default thresholds (700, 10, 10) the collector ran a full collection, walking every long-lived
# object (about half a second), several times per stack run: more than a third of the suite's time.
# A young generation of a million objects makes collections rare (most objects die by reference
# count before one runs; measured: a stack run costs a third less CPU than with 100 000, about what
# it costs with the collector off) for some 50 MB more memory; garbage is still collected, in bigger
# batches. It changes when memory is reclaimed, never what a test computes.
gc.set_threshold(1_000_000, 10, 10)

# CI runs the property tests with a fixed derivation of examples (no example database, no random
# seed), so a green main stays green on a clean clone; locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def encode_config(values: Mapping[str, Any]) -> dict[str, str]:
    """Encode config values as the language host does: strings as-is, anything else as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


Runner = Callable[..., Recording]


@pytest.fixture
def record() -> Runner:
    """`record(program, config={...}, secrets={...}, stack="test", preview=True)` runs a program
    offline, as `pulumi preview` (or, with `preview=False`, as `pulumi up`) would."""

    def run(
        program: Callable[[], None],
        config: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        stack: str = "test",
        preview: bool = True,
    ) -> Recording:
        values = {**(config or {}), **(secrets or {})}
        return run_program(
            program,
            project="homelab",
            stack=stack,
            config=encode_config(values),
            secret_keys=sorted(secrets or {}),
            preview=preview,
        )

    return run


@pytest.fixture(scope="session")
def previewed() -> Callable[[str], StackResult]:
    """`previewed("prod")`: the committed stack as `homelab preview prod` sees it, once per session."""
    return _previewed


@pytest.fixture(scope="session")
def dev_run_modules() -> tuple[int, frozenset[str]]:
    """(resources registered, modules loaded) of a fresh interpreter that ran `dev`: one background
    subprocess per session (tests/stacks/helpers.py), started as soon as collection selects a test
    that uses this fixture."""
    return modules_loaded_by_a_dev_run()


def pytest_collection_finish(session: pytest.Session) -> None:
    if any("dev_run_modules" in getattr(item, "fixturenames", ()) for item in session.items):
        start_dev_run()


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_dev_run()


@pytest.fixture
def isolated_project(tmp_path: Path) -> Path:
    """A copy of the project's stack files and policy config in a scratch directory, safe to break
    (pass it as `--project-dir` or `root=`)."""
    root = project_root()
    for name in ["Pulumi.yaml", *(p.name for p in root.glob("Pulumi.*.yaml"))]:
        shutil.copy(root / name, tmp_path / name)
    if (root / "policies" / "config").is_dir():
        shutil.copytree(root / "policies" / "config", tmp_path / "policies" / "config")
    return tmp_path
