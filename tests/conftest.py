"""Shared test helpers: run a program under the offline engine and inspect what it registered."""

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from homelab.engine import Recording, run_program


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
