"""Property-based: any malformed value anywhere in a real stack file gives one clear error, never a crash.

Hypothesis picks a leaf of the real `Pulumi.<stack>.yaml` config and replaces it with a value of the
wrong shape. The offline preview must then end in exit 0, 1 or 2 without raising, and an invalid
config must be reported as one line naming a key inside the section that was broken.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homelab.cli import preview_stack
from homelab.stackrun import project_root

ROOT = project_root()
STACKS = ("dev", "prod", "cloud")

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), st.integers(), max_size=2),
)


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))
    else:
        yield path


def stack_document(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())


def replace(document: Any, path: tuple[Any, ...], value: Any) -> None:
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def project_leaves(stack: str) -> list[tuple[Any, ...]]:
    config = stack_document(stack)["config"]
    return [("config", *p) for p in leaves(config) if str(p[0]).startswith("homelab:")]


@st.composite
def broken_stack(draw: st.DrawFn) -> tuple[str, tuple[Any, ...], Any]:
    stack = draw(st.sampled_from(STACKS))
    path = draw(st.sampled_from(project_leaves(stack)))
    return stack, path, draw(junk)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_stack())
def test_malformed_value_is_reported_not_raised(case: tuple[str, tuple[Any, ...], Any]) -> None:
    stack, path, value = case
    document = stack_document(stack)
    replace(document, path, value)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
        for other in STACKS:
            (root / f"Pulumi.{other}.yaml").write_text((ROOT / f"Pulumi.{other}.yaml").read_text())
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
        result = preview_stack(stack, root)
    assert result.exit_code in (0, 1, 2)
    if result.exit_code == 2:
        assert result.error is not None
        assert "\n" not in result.error
        assert "Traceback" not in result.error
        section = str(path[1])
        assert result.error.startswith(section), (result.error, path)
