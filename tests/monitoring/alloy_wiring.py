"""A structural check of generated Alloy pipelines (no Alloy binary is available to the tests).

It cannot prove an argument name right; it proves the wiring: braces and quotes balance, every
component is declared once, and every `forward_to`, `targets`, `logs` or `relabel_rules` reference
names a declared component (a reference to nothing makes Alloy refuse the whole file at start).
"""

import re

_BLOCK = re.compile(r'^([a-z_]+(?:\.[a-z_]+)+) "([a-z0-9_]+)" \{', re.MULTILINE)
_REFERENCE = re.compile(
    r"\b((?:loki|prometheus|discovery|otelcol)(?:\.[a-z_]+)+)\.([a-z0-9_]+)"
    r"\.(receiver|input|targets|output|rules)\b"
)


def _strip_strings(text: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def assert_wired(config: str) -> None:
    bare = _strip_strings(config)
    assert bare.count('"') % 2 == 0, "unbalanced quotes"
    depth = 0
    for char in bare:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "a closing brace without its block"
    assert depth == 0, "unclosed block"
    declared = _BLOCK.findall(config)
    assert len(declared) == len(set(declared)), f"a component is declared twice: {declared}"
    names = set(declared)
    for component, label, _ in _REFERENCE.findall(bare):
        assert (component, label) in names, f"{component}.{label} is referenced but not declared"
