"""The real stacks, previewed offline once per test session and shared by the suites that need them."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homelab.engine import Recording
from homelab.findings import Finding
from homelab.policy_config import config_path
from homelab.policy_eval import PackConfig, evaluate, load_pack_config
from homelab.stackrun import run_stack


def run(stack: str, overrides: Mapping[str, Any] | None = None) -> Recording:
    return run_stack(stack, overrides=overrides)


@dataclass(frozen=True)
class Preview:
    stack: str
    recording: Recording
    config: PackConfig
    findings: list[Finding]


_PREVIEWS: dict[str, Preview] = {}


def preview(stack: str) -> Preview:
    """The unmodified stack with its committed policy config, previewed once per session."""
    if stack not in _PREVIEWS:
        recording = run(stack)
        config = load_pack_config(config_path(stack))
        _PREVIEWS[stack] = Preview(stack, recording, config, evaluate(recording, config=config))
    return _PREVIEWS[stack]
