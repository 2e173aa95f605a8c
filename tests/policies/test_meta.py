"""The pack's own bar: every rule is identified, documented, configurable and tested three ways."""

import re
from collections import Counter

from pulumi_policy import EnforcementLevel

from homelab.graph_checks import GRAPH_CHECKS
from policies.rules import RULES
from policies.rules.base import NFR_TITLES, TOPICS
from tests.policies.cases import CASES
from tests.policies.test_graph_checks import GRAPH_CASES

VERBS = ("missing", "disallow", "enable", "disable", "configure", "enforce")


def test_at_least_25_rules() -> None:
    assert len(RULES) >= 25


def test_every_rule_has_pass_violate_and_unknown_cases() -> None:
    kinds: dict[str, set[str]] = {}
    for case in CASES:
        kinds.setdefault(case.rule, set()).add(case.kind)
    missing = {r.id: sorted({"pass", "violate", "unknown"} - kinds.get(r.id, set())) for r in RULES}
    assert {k: v for k, v in missing.items() if v} == {}
    assert set(kinds) <= {r.id for r in RULES}, "cases for rules that no longer exist"


def test_every_graph_check_has_pass_violate_and_unknown_cases() -> None:
    for check in GRAPH_CHECKS:
        assert {c.kind for c in GRAPH_CASES if c.check is check} == {"pass", "violate", "unknown"}, check.id


def test_ids_and_names_are_unique_and_well_formed() -> None:
    ids = [r.id for r in RULES] + [c.id for c in GRAPH_CHECKS]
    names = [r.name for r in RULES] + [c.name for c in GRAPH_CHECKS]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert [i for i, n in Counter(names).items() if n > 1] == []
    for rule in RULES:
        assert any(f"-{verb}-" in rule.name for verb in VERBS), f"{rule.name}: no verb of {VERBS}"


def test_rules_state_their_nfr_and_fix() -> None:
    # `resource_rule` / `stack_rule` refuse an unknown NFR or topic at import; graph checks are
    # plain records, so they are checked here.
    for check in GRAPH_CHECKS:
        assert check.nfr in NFR_TITLES, check.id
        assert check.topic in TOPICS, check.id
    for rule in [*RULES, *GRAPH_CHECKS]:
        description = rule.policy.description if hasattr(rule, "policy") else rule.description  # type: ignore[union-attr]
        assert rule.nfr in description, f"{rule.id}: description must name {rule.nfr}"
        assert description.endswith(")") or description.endswith("."), rule.id
        assert len(rule.fix) > 20 and rule.fix.endswith("."), f"{rule.id}: the fix says how, as a sentence"


def test_enforcement_levels_and_config_keys() -> None:
    # What the decorators build from these (tags, remediation, the exemptions schema, defaults) is
    # not re-checked here; what a rule's author writes is.
    for rule in RULES:
        assert rule.policy.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY), rule.id
        schema = rule.policy.config_schema
        assert schema is not None
        for key, prop in schema.properties.items():
            assert "default" in prop, f"{rule.id}.{key}: every limit has a default"
            assert prop.get("description"), f"{rule.id}.{key}: every limit says what it is"
            assert re.fullmatch(r"[a-z][A-Za-z0-9]*", key), f"{rule.id}.{key}: camelCase config keys"
