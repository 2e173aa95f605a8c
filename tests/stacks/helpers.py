"""Helpers for the homelab stack tests: config sections from the real stack files, counting registrations."""

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from homelab import engine
from homelab.stackrun import project_root


def section(stack: str, name: str) -> dict[str, Any]:
    document = yaml.safe_load((project_root() / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return copy.deepcopy(document["config"][f"homelab:{name}"])


@contextmanager
def count_registrations() -> Iterator[list[str]]:
    """Names of every resource the engine is asked to register while the block runs."""
    seen: list[str] = []
    original = engine.RecordingMonitor.RegisterResource

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        if request.type != engine.STACK_TYPE:
            seen.append(f"{request.type}::{request.name}")
        return original(self, request)

    engine.RecordingMonitor.RegisterResource = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        engine.RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]
