"""The real stacks, previewed offline once per test session and shared by every test that reads them.

`previewed(stack)` is the cache of the committed stacks: the `StackResult` of `homelab preview
<stack>` (the same call the CLI makes: the program run, the pack config, the findings, the NFR
groups). Tests reach it
through the `previewed` fixture in tests/conftest.py or through `preview(stack)` below. The cached
objects are shared: never edit them in place (copy a `Recording` first, as test_mutations does).
`shared_run(stack, overrides)` does the same for a run with changed config that several tests make.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homelab.cli import preview_stack
from homelab.engine import Recording
from homelab.findings import Finding
from homelab.policy_eval import PackConfig
from homelab.render import StackResult
from homelab.stackrun import run_stack, stack_references


def run(stack: str, overrides: Mapping[str, Any] | None = None) -> Recording:
    """A fresh run of `stack` (with `overrides` replacing config sections); not cached."""
    return run_stack(stack, overrides=overrides)


_SHARED: dict[tuple[str, str], Recording] = {}


def shared_run(stack: str, overrides: Mapping[str, Any]) -> Recording:
    """`run(stack, overrides)`, made once per session for equal overrides and shared by every test
    that asks for the same config: for tests that only read the recording (never edit it in place).
    A run that raises is not cached: each caller sees the error."""
    key = (stack, json.dumps(overrides, sort_keys=True))
    if key not in _SHARED:
        _SHARED[key] = run(stack, overrides)
    return _SHARED[key]


_RESULTS: dict[str, StackResult] = {}


def previewed(stack: str) -> StackResult:
    """The unmodified stack as `homelab preview` sees it, previewed once per session."""
    if stack not in _RESULTS:
        # The stacks it reads first: their update-view run then serves its StackReference outputs
        # too (homelab.stackrun caches them), where previewing it first would run them once more.
        for referenced in stack_references(stack):
            previewed(referenced)
        result = preview_stack(stack)
        assert result.error is None, f"the committed {stack} stack does not preview: {result.error}"
        _RESULTS[stack] = result
    return _RESULTS[stack]


@dataclass(frozen=True)
class Preview:
    stack: str
    recording: Recording
    config: PackConfig
    findings: list[Finding]


def preview(stack: str) -> Preview:
    """The unmodified stack with its committed policy config (from the session cache)."""
    result = previewed(stack)
    assert result.recording is not None and result.config is not None
    return Preview(stack, result.recording, result.config, result.findings)
