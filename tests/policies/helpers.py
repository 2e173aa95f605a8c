"""Build the arguments the policy server builds, and run one rule on them.

Props are wrapped in `unknown_checking_proxy` exactly as the analyzer wraps them, so a rule that
touches an unknown value raises `UnknownValueError` here as it would under `pulumi preview`.
"""

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies.rules import Rule

UNKNOWN = UNKNOWN_STRING_VALUE
"""What the engine sends for a value that is not known at preview."""

COMPONENT = "homelab:test:Component"


def urn_of(resource_type: str, name: str) -> str:
    return f"urn:pulumi:test::homelab::{resource_type}::{name}"


def options(*, protect: bool = False, aso: Sequence[str] = (), parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(aso),
        parent=parent,
    )


def resource_args(
    resource_type: str,
    props: Mapping[str, Any],
    name: str = "subject",
    *,
    protect: bool = False,
    aso: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(copy.deepcopy(dict(props))),
        urn_of(resource_type, name),
        name,
        options(protect=protect, aso=aso),
        None,
        dict(config) if config is not None else None,
    )


@dataclass(frozen=True)
class Res:
    """One resource of a hand-built stack; `inputs_from` names the resources a property derives from."""

    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    aso: Sequence[str] = ()
    inputs_from: Mapping[str, Sequence[str]] = field(default_factory=dict)
    parented: bool = True


def stack_args(resources: Sequence[Res], config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    component = PolicyResource(
        COMPONENT, unknown_checking_proxy({}), urn_of(COMPONENT, "owner"), "owner", options(), None, None, [], {}
    )
    built: dict[str, PolicyResource] = {}
    for r in resources:
        built[r.name] = PolicyResource(
            r.type,
            unknown_checking_proxy(copy.deepcopy(dict(r.props))),
            urn_of(r.type, r.name),
            r.name,
            options(protect=r.protect, aso=r.aso, parent=component.urn if r.parented else None),
            None,
            component if r.parented else None,
            [],
            {},
        )
    for r in resources:
        resource = built[r.name]
        resource.property_dependencies = {k: [built[n] for n in v] for k, v in r.inputs_from.items()}
        resource.dependencies = [built[n] for names in r.inputs_from.values() for n in names]
    return StackValidationArgs([component, *built.values()], dict(config) if config is not None else None)


@dataclass(frozen=True)
class Outcome:
    violations: list[str]
    cannot_run: str | None
    """The analyzer's reason when the rule read an unknown value (it reports no violation then)."""


def run(rule: Rule, args: ResourceValidationArgs | StackValidationArgs) -> Outcome:
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    try:
        rule.policy.validate(args, report)  # type: ignore[arg-type]  # the policy's own args type
    except UnknownValueError as error:
        return Outcome(messages, error.message)
    return Outcome(messages, None)
