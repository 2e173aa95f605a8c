"""Config validation, fuzzed against the stacks' own config loaders (`load()`, milliseconds a value).

Every leaf of the real `Pulumi.<stack>.yaml` files is replaced, one at a time, by values of the
wrong shape (a mapping or a list where a scalar goes, text where a number goes, a scalar where a
mapping or list goes). The oracle is strict: the loader must reject each with one line naming
exactly that key, which the CLI reports as exit 2; a malformed value that is accepted fails the
test. Hypothesis then throws arbitrary values at arbitrary leaves: whatever the loader accepts the
program must build, and whatever it rejects must be one line naming a key of the stack. A few full
previews show the CLI's exit code and line for a malformed value in each stack.
"""

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homelab.cli import preview_stack
from homelab.stackrun import StackInput, check_stack_config, load_stack_input, project_root
from stacks.config import ConfigError
from tests.policies.previews import shared_run

ROOT = project_root()
STACKS = ("dev", "prod", "cloud")
Path_ = tuple[Any, ...]


def leaves(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))
    else:
        yield path


@cache
def stack_document(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())


@cache
def stack_input(stack: str) -> StackInput:
    return load_stack_input(stack)


def project_leaves(stack: str) -> list[Path_]:
    """Paths (section key first, e.g. `("homelab:cluster", "nodes", "dev-cp-1", "cores")`) of every
    leaf of the stack's project config."""
    config = stack_document(stack)["config"]
    return [p for p in leaves(config) if str(p[0]).startswith("homelab:") and not _secret(config[p[0]])]


def _secret(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def key_of(path: Path_) -> str:
    """The key the one-line error must name: `homelab:cluster.nodes.dev-cp-1.cores`."""
    return ".".join(str(part) for part in path)


def broken_config(stack: str, path: Path_, value: Any) -> dict[str, str]:
    """The stack's config as the language host delivers it, with the leaf at `path` set to `value`."""
    section = copy.deepcopy(stack_document(stack)["config"][path[0]])
    if len(path) == 1:
        section = value
    else:
        target = section
        for part in path[1:-1]:
            target = target[part]
        target[path[-1]] = value
    config = dict(stack_input(stack).config)
    config[path[0]] = section if isinstance(section, str) else json.dumps(section)
    return config


def wrong_shapes(value: Any) -> list[Any]:
    """Values of a shape the leaf can never take."""
    if isinstance(value, bool):
        return ["maybe", {"on": True}, [True]]
    if isinstance(value, int | float):
        return ["not-a-number", {"value": value}, [value]]
    if isinstance(value, str):
        return [{"value": value}, [[value]]]
    if isinstance(value, dict | list):  # an empty mapping or list
        return ["text", 7]
    return [{"value": 1}]


def validate(stack: str, config: dict[str, str]) -> str | None:
    """The one-line error of the stack's config loader, or None when it accepts the config."""
    try:
        check_stack_config(stack, config, stack_input(stack).secret_keys)
    except ConfigError as exc:
        return str(exc)
    return None


def _leaf_value(stack: str, path: Path_) -> Any:
    value: Any = stack_document(stack)["config"]
    for part in path:
        value = value[part]
    return value


LEAVES = [(stack, path) for stack in STACKS for path in project_leaves(stack)]


def test_every_stack_has_leaves_to_break() -> None:
    assert {stack for stack, _ in LEAVES} == set(STACKS)
    assert all(validate(stack, dict(stack_input(stack).config)) is None for stack in STACKS)


@pytest.mark.parametrize(("stack", "path"), LEAVES, ids=[f"{s}:{key_of(p)}" for s, p in LEAVES])
def test_a_value_of_the_wrong_shape_is_one_line_naming_the_key(stack: str, path: Path_) -> None:
    for value in wrong_shapes(_leaf_value(stack, path)):
        error = validate(stack, broken_config(stack, path, value))
        assert error is not None, f"{key_of(path)} = {value!r} was accepted"
        assert "\n" not in error
        assert error.split(": ", 1)[0] == key_of(path), (value, error)


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), st.integers(), max_size=2),
)


@st.composite
def broken_stack(draw: st.DrawFn) -> tuple[str, Path_, Any]:
    stack = draw(st.sampled_from(STACKS))
    path = draw(st.sampled_from(project_leaves(stack)))
    return stack, path, draw(junk)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_stack())
def test_any_value_is_accepted_or_one_line_naming_a_key(case: tuple[str, Path_, Any]) -> None:
    stack, path, value = case
    error = validate(stack, broken_config(stack, path, value))
    if error is not None:
        assert "\n" not in error
        # A value can be well-formed but clash with another key (host.cores below gaming.cores):
        # the line then names the key that no longer fits, which is a key of this stack's config.
        named = error.split(": ", 1)[0]
        assert named.startswith("homelab:"), error
        section = named.split(":", 1)[1].split(".", 1)[0]
        assert f"homelab:{section}" in stack_document(stack)["config"] or named == key_of(path), error


# A handful of values the loaders accept, through the whole program: it must build them (or refuse
# them with the one-line error) and never crash.
ACCEPTED = [
    ("dev", ("homelab:cluster", "nodes", "dev-cp-1", "cores"), 64),
    ("prod", ("homelab:gaming", "memory_mb"), 8192),
    ("prod", ("homelab:zfs", "datasets", "media", "snapshots"), None),
    ("cloud", ("homelab:management", "ocpus"), 2),
    ("cloud", ("homelab:catalog", "domain"), "home.example.org"),
]


@pytest.mark.parametrize(("stack", "path", "value"), ACCEPTED, ids=[f"{s}:{key_of(p)}" for s, p, _ in ACCEPTED])
def test_an_accepted_value_previews(stack: str, path: Path_, value: Any) -> None:
    config = broken_config(stack, path, value)
    assert validate(stack, config) is None, f"{key_of(path)} = {value!r} should be valid"
    section = path[0].split(":", 1)[1]
    # Shared with a stack test that previews the same config (tests/policies/previews.py).
    recording = shared_run(stack, {section: json.loads(config[path[0]])})
    assert recording.resources


# The full CLI path for a malformed value in each stack: exit 2 and the one line naming the key.
MALFORMED = [
    ("dev", ("homelab:storage", "local_path_version"), ["v0.0.31"]),
    ("prod", ("homelab:zfs", "arc_max_gb"), "lots"),
    ("cloud", ("homelab:network", "admin_cidrs"), "203.0.113.10/32"),
]


@pytest.mark.parametrize(("stack", "path", "value"), MALFORMED, ids=[f"{s}:{key_of(p)}" for s, p, _ in MALFORMED])
def test_a_malformed_value_is_exit_2_naming_the_key(tmp_path: Path, stack: str, path: Path_, value: Any) -> None:
    document = copy.deepcopy(stack_document(stack))
    target = document["config"]
    for part in path[:-1]:
        target = target[part]
    assert path[-1] in target, f"{key_of(path)} is not in Pulumi.{stack}.yaml"
    target[path[-1]] = value
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    result = preview_stack(stack, tmp_path)
    assert result.exit_code == 2, result.error
    assert result.error is not None and "\n" not in result.error
    assert result.error.startswith(f"{key_of(path)}: "), result.error
    assert result.recording is None
