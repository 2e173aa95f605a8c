"""Bad input to a component: one clear error, and no half-built component left behind."""

from collections.abc import Callable, Mapping

import pytest

from homelab.engine import Recording, run_program

# What may exist when a component rejects its arguments: the stack, its provider, the component.
_BEFORE_CHILDREN = frozenset({"pulumi:pulumi:Stack", "pulumi:providers:kubernetes"})


def assert_fails_registering_no_child(
    program: Callable[[], None], error: str, component_type: str, secrets: Mapping[str, str]
) -> None:
    """`program` raises a ValueError matching `error` before the component of `component_type`
    registers any child."""
    recording = Recording(project="homelab", stack="test")
    with pytest.raises(ValueError, match=error):
        run_program(
            program, project="homelab", stack="test", config=secrets, secret_keys=sorted(secrets), into=recording
        )
    assert {r.type for r in recording.resources} <= _BEFORE_CHILDREN | {component_type}
