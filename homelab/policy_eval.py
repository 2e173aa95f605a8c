"""Evaluate the policy pack in-process on a recorded graph, the way the Pulumi analyzer would.

The Pulumi CLI hands each registration to the pack's analyzer server (`pulumi_policy`'s
`_PolicyAnalyzerServicer`): props are deserialized from the wire, wrapped so that touching an
unknown value raises, enforcement levels come from the pack config or the policy or the pack, and
config-schema defaults are applied by the engine. This module does the same with the same SDK
functions, so a rule behaves identically offline and under `pulumi preview --policy-pack`.

Resource policies receive each registration's *inputs* (`AnalyzeResource` runs before the provider
is asked anything); stack policies receive each resource's *outputs* (`AnalyzeStack` gets the
resource's state: inputs after `Check` plus what the provider computed). In a first preview those
outputs are unknown wherever the provider has not answered, and a policy that touches one is
reported as not evaluated ("can't run policy ... during preview"), never as a pass.

Stack policies also receive the root `pulumi:pulumi:Stack` resource, whose outputs are the stack's
exports (the engine hands every resource of the new state to `AnalyzeStack`, the root stack with
the outputs its program registered); an export unknown in a view arrives as the unknown value.

Some facts a Python policy cannot see (`retainOnDelete`, whether a value was secret on the wire)
are checked by graph checks (`homelab.graph_checks`) and reported like rules.
"""

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from inspect import isawaitable
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from homelab.engine import STACK_TYPE, UNKNOWN, RecordedResource, Recording
from homelab.findings import Finding, GraphCheck, Level
from homelab.graph_checks import GRAPH_CHECKS
from policies.rules import RULES, Rule


class PackConfigError(Exception):
    """The policy-pack config file is malformed or names an unknown policy."""


# --- pack configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class PackConfig:
    """A `--policy-pack-config` document, normalised like the engine normalises it."""

    levels: Mapping[str, EnforcementLevel]
    properties: Mapping[str, Mapping[str, Any]]
    all_level: EnforcementLevel | None = None


_LEVELS = {level.value: level for level in EnforcementLevel}


def parse_pack_config(document: Mapping[str, Any], rules: Iterable[Rule] = RULES) -> PackConfig:
    known = {rule.name for rule in rules}
    levels: dict[str, EnforcementLevel] = {}
    properties: dict[str, dict[str, Any]] = {}
    all_level: EnforcementLevel | None = None
    for key, value in document.items():
        if key == "all":
            if value not in _LEVELS:
                raise PackConfigError(f"policy config 'all': unknown enforcement level {value!r}")
            all_level = _LEVELS[value]
            continue
        if key not in known:
            raise PackConfigError(f"policy config names unknown policy {key!r}")
        if isinstance(value, str):
            if value not in _LEVELS:
                raise PackConfigError(f"policy config {key!r}: unknown enforcement level {value!r}")
            levels[key] = _LEVELS[value]
            continue
        if not isinstance(value, Mapping):
            raise PackConfigError(f"policy config {key!r}: expected a level or an object")
        props = dict(value)
        level = props.pop("enforcementLevel", None)
        if level is not None:
            if level not in _LEVELS:
                raise PackConfigError(f"policy config {key!r}: unknown enforcement level {level!r}")
            levels[key] = _LEVELS[level]
        properties[key] = props
    return PackConfig(levels=levels, properties=properties, all_level=all_level)


def load_pack_config(path: Path | None, rules: Iterable[Rule] = RULES) -> PackConfig:
    if path is None or not path.is_file():
        return PackConfig(levels={}, properties={})
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PackConfigError(f"{path.name}: line {exc.lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(document, dict):
        raise PackConfigError(f"{path.name}: must be a JSON object keyed by policy name")
    return parse_pack_config(document, rules)


def enforcement_level(rule: Rule, config: PackConfig | None) -> EnforcementLevel:
    """The level the engine applies: pack config for this policy, then `all`, then the rule's own."""
    if config is None:
        return rule.level
    if rule.name in config.levels:
        return config.levels[rule.name]
    if config.all_level is not None:
        return config.all_level
    return rule.policy.enforcement_level or EnforcementLevel.MANDATORY


def _policy_config(rule: Rule, config: PackConfig) -> dict[str, Any]:
    # The engine validates against the schema and fills its defaults before Configure.
    return {**rule.defaults, **dict(config.properties.get(rule.name, {}))}


# --- building the analyzer's arguments from a recording ----------------------------------------


class _Props:
    """Each resource's props as the analyzer builds them, deserialized once per evaluation.

    The analyzer deserializes per policy; the rules are pure functions of their arguments, so one
    wrapped copy per resource gives the same results for a fraction of the time.
    """

    def __init__(self, outputs: bool = False) -> None:
        self._cache: dict[str, Any] = {}
        self._outputs = outputs

    def __call__(self, resource: RecordedResource) -> Any:
        if resource.urn not in self._cache:
            # Outputs of a custom resource are its state; a component's are its registration.
            wire = resource.outputs_wire if self._outputs and resource.custom else resource.wire
            self._cache[resource.urn] = unknown_checking_proxy(deserialize_properties(dict(wire)))
        return self._cache[resource.urn]


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=list(resource.ignore_changes),
        delete_before_replace=resource.delete_before_replace,
        aliases=list(resource.aliases),
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(resource.additional_secret_outputs),
        parent=resource.parent,
    )


def _provider(
    resource: RecordedResource, by_urn: Mapping[str, RecordedResource], props: _Props
) -> PolicyProviderResource | None:
    if not resource.provider:
        return None
    provider = by_urn.get(resource.provider.rsplit("::", 1)[0])
    if provider is None:
        return None
    return PolicyProviderResource(provider.type, props(provider), provider.urn, provider.name)


def _run(result: Any) -> None:
    if isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def _level_name(level: EnforcementLevel) -> Level:
    return "advisory" if level == EnforcementLevel.ADVISORY else "mandatory"


def _root_stack(recording: Recording) -> PolicyResource:
    """The root stack as `AnalyzeStack` receives it: its outputs are the stack's exports."""
    name = f"{recording.project}-{recording.stack}"
    wire = {key: out.value if out.known else UNKNOWN for key, out in recording.outputs.items()}
    return PolicyResource(
        STACK_TYPE,
        unknown_checking_proxy(deserialize_properties(wire)),
        f"urn:pulumi:{recording.stack}::{recording.project}::{STACK_TYPE}::{name}",
        name,
        PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None),
        None,
        None,
        [],
        {},
    )


def _stack_resources(recording: Recording, props: _Props) -> list[PolicyResource]:
    by_urn = recording.by_urn()
    root = _root_stack(recording)
    resources: dict[str, PolicyResource] = {root.urn: root}
    for r in recording.resources:
        resources[r.urn] = PolicyResource(
            r.type, props(r), r.urn, r.name, _options(r), _provider(r, by_urn, props), None, [], {}
        )
    for r in recording.resources:
        resource = resources[r.urn]
        if r.parent in resources:
            resource.parent = resources[r.parent]
        resource.dependencies = [resources[d] for d in r.dependencies if d in resources]
        resource.property_dependencies = {
            k: [resources[d] for d in v if d in resources] for k, v in r.property_dependencies.items()
        }
    return list(resources.values())


def evaluate(
    recording: Recording,
    rules: Iterable[Rule] = RULES,
    config: PackConfig | None = None,
    graph_checks: Iterable[GraphCheck] | None = None,
) -> list[Finding]:
    """Every finding of the pack (and the graph checks) on `recording`, in a stable order."""
    config = config or PackConfig(levels={}, properties={})
    by_urn = recording.by_urn()
    props = _Props()
    outputs = _Props(outputs=True)
    findings: list[Finding] = []
    stack_resources: list[PolicyResource] | None = None

    for rule in rules:
        level = enforcement_level(rule, config)
        if level == EnforcementLevel.DISABLED:
            continue
        level_name = _level_name(level)
        policy_config = _policy_config(rule, config)

        def add(
            message: str, resource: RecordedResource | None, rule: Rule = rule, level_name: Level = level_name
        ) -> None:
            findings.append(
                Finding(
                    rule_id=rule.id,
                    policy=rule.name,
                    nfr=rule.nfr,
                    topic=rule.topic,
                    level=level_name,
                    kind="violation",
                    message=message,
                    resource_type=resource.type if resource else None,
                    resource_name=resource.name if resource else None,
                    urn=resource.urn if resource else None,
                )
            )

        def cannot_run(error: UnknownValueError, rule: Rule = rule) -> None:
            findings.append(
                Finding(
                    rule_id=rule.id,
                    policy=rule.name,
                    nfr=rule.nfr,
                    topic=rule.topic,
                    level="advisory",
                    kind="cannot-run",
                    message=f"can't run policy '{rule.name}' during preview: {error.message}",
                )
            )

        policy = rule.policy
        if isinstance(policy, ResourceValidationPolicy):
            for resource in recording.resources:
                args = ResourceValidationArgs(
                    resource.type,
                    props(resource),
                    resource.urn,
                    resource.name,
                    _options(resource),
                    _provider(resource, by_urn, props),
                    policy_config,
                )

                def report(message: str, urn: str | None = None, resource: RecordedResource = resource) -> None:
                    add(message, by_urn.get(urn, resource) if urn else resource)

                try:
                    _run(policy.validate(args, report))
                except UnknownValueError as error:
                    cannot_run(error)
        elif isinstance(policy, StackValidationPolicy):
            if stack_resources is None:
                stack_resources = _stack_resources(recording, outputs)
            stack_args = StackValidationArgs(stack_resources, policy_config)

            def report_stack(message: str, urn: str | None = None) -> None:
                add(message, by_urn.get(urn) if urn else None)

            try:
                _run(policy.validate(stack_args, report_stack))
            except UnknownValueError as error:
                cannot_run(error)

    for check in graph_checks if graph_checks is not None else GRAPH_CHECKS:
        for message, resource in check.check(recording):
            findings.append(
                Finding(
                    rule_id=check.id,
                    policy=check.name,
                    nfr=check.nfr,
                    topic=check.topic,
                    level=check.level,
                    kind="violation",
                    message=f"[{check.id}] {message} Fix: {check.fix}",
                    resource_type=resource.type if resource else None,
                    resource_name=resource.name if resource else None,
                    urn=resource.urn if resource else None,
                )
            )
    return findings


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking]


__all__ = [
    "Finding",
    "GraphCheck",
    "PackConfig",
    "PackConfigError",
    "blocking",
    "enforcement_level",
    "evaluate",
    "load_pack_config",
    "parse_pack_config",
]
