"""Every rule on its pass, violate and unknown-value cases, with the exact messages pinned."""

import pytest
from pulumi_policy import ResourceValidationArgs

from policies.rules import RULES
from tests.policies.cases import CASES, Case
from tests.policies.helpers import run

BY_ID = {rule.id: rule for rule in RULES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_case(case: Case) -> None:
    rule = BY_ID[case.rule]
    outcome = run(rule, case.build())
    fixes = {m.split(" Fix: ", 1)[1] for m in outcome.violations if " Fix: " in m}
    assert fixes <= {rule.fix}, "every message ends with the rule's fix"
    assert [m.split(" Fix: ", 1)[0] for m in outcome.violations] == list(case.expected)
    if case.kind == "unknown":
        assert (outcome.cannot_run is not None) == case.cannot_run, outcome.cannot_run
    else:
        assert outcome.cannot_run is None, outcome.cannot_run
    if case.kind == "violate":
        assert case.expected, "a violate case pins at least one message"


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.kind == "violate" and isinstance(c.build(), ResourceValidationArgs)],
    ids=lambda c: c.id,
)
def test_exemption_silences_the_named_resource(case: Case) -> None:
    args = case.build()
    assert isinstance(args, ResourceValidationArgs)
    exempt = ResourceValidationArgs(
        args.resource_type,
        args.props,
        args.urn,
        args.name,
        args.opts,
        args.provider,
        {**(args.get_config() or {}), "exemptions": [{"resource": args.name, "reason": "accepted in review #12"}]},
    )
    assert run(BY_ID[case.rule], exempt).violations == []
