"""Each stack's recorded graph, summarised in a reviewed snapshot so that any change to what a stack
registers (a resource, a parent, `protect`, `retainOnDelete`, `ignoreChanges`, secret outputs) shows
up as a diff in review.

After an intended change, regenerate with `make snapshots` and review the diff like code.
"""

import os
from pathlib import Path

import pytest

from homelab.engine import Recording
from tests.policies.previews import previewed

SNAPSHOTS = Path(__file__).parent / "snapshots"


def summary(recording: Recording) -> str:
    names = {r.urn: r.name for r in recording.resources}
    lines: list[str] = []
    for r in recording.resources:
        flags = [flag for flag, on in (("protect", r.protect), ("retain", r.retain_on_delete)) if on]
        if r.ignore_changes:
            flags.append("ignore=" + ",".join(sorted(r.ignore_changes)))
        if r.additional_secret_outputs:
            flags.append("secret-outputs=" + ",".join(sorted(r.additional_secret_outputs)))
        if r.secret_paths:
            flags.append("secret-inputs=" + ",".join(sorted(r.secret_paths)))
        parent = names.get(r.parent or "", "<stack>")
        lines.append(f"{r.type} {r.name} <- {parent}" + (f" [{' '.join(flags)}]" if flags else ""))
    outputs = [f"output {name}{' [secret]' if out.secret else ''}" for name, out in recording.outputs.items()]
    return "\n".join(sorted(lines) + sorted(outputs)) + "\n"


@pytest.mark.parametrize("stack", ["dev", "prod", "cloud"])
def test_recorded_graph_matches_the_reviewed_snapshot(stack: str) -> None:
    current = summary(previewed(stack).recording)
    path = SNAPSHOTS / f"{stack}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(current, encoding="utf-8")
    expected = path.read_text(encoding="utf-8") if path.is_file() else ""
    assert current == expected, f"the {stack} graph changed; review it and run `make snapshots`"
