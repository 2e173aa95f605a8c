"""The shape every rule of the pack takes.

A rule is a plain function wrapped into a `pulumi_policy` policy with a stable id (`NET-01`), the
NFR it serves, an enforcement level, configurable limits with defaults, an exemption list, and a
fix the user can act on. The same `Rule` objects are served by `policies/__main__.py` to the Pulumi
CLI and evaluated in-process by the offline preview.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "homelab"

TOPICS = ("network", "security", "budget", "data", "hygiene")

NFR_TITLES: Mapping[str, str] = {
    "NFR-005": "Data integrity",
    "NFR-006": "Security posture",
    "NFR-007": "Access control (SSO, 2FA, zero open ports, tunnel-only exposure)",
    "NFR-008": "Operational efficiency",
    "NFR-010": "Homelab resource usage (64 GB host modes)",
    "NFR-011": "Oracle Cloud resource usage (Always Free quota)",
    "NFR-012": "Cost efficiency (under the yearly cap, Always Free only)",
}

_ID = re.compile(r"^[A-Z]{3}-\d{2}$")
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

EXEMPTIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Resources this rule does not apply to; each names the resource and says why.",
    "default": [],
    "items": {
        "type": "object",
        "properties": {
            "resource": {"type": "string", "minLength": 1},
            "reason": {"type": "string", "minLength": 10},
        },
        "required": ["resource", "reason"],
        "additionalProperties": False,
    },
}

ResourceCheck = Callable[[ResourceValidationArgs, Callable[[str], None], Mapping[str, Any]], None]
StackCheck = Callable[[StackValidationArgs, Callable[[str, str | None], None], Mapping[str, Any]], None]


@dataclass(frozen=True)
class Rule:
    """One rule of the pack and the facts the reports need about it."""

    id: str
    nfr: str
    topic: str
    fix: str
    policy: ResourceValidationPolicy | StackValidationPolicy
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def level(self) -> EnforcementLevel:
        return self.policy.enforcement_level or EnforcementLevel.MANDATORY


def _resource_name_from_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def effective_config(args_config: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Schema defaults overlaid with what the pack config sets (the engine does the same)."""
    return {**defaults, **dict(args_config or {})}


def _exempt(config: Mapping[str, Any], resource_name: str) -> bool:
    return any(e.get("resource") == resource_name for e in config.get("exemptions", []) or [])


def _schema(properties: Mapping[str, Mapping[str, Any]]) -> PolicyConfigSchema:
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in properties.items()}
    merged["exemptions"] = EXEMPTIONS_SCHEMA
    return PolicyConfigSchema(properties=merged)


def _defaults(properties: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    found = {k: v["default"] for k, v in properties.items() if "default" in v}
    return {**found, "exemptions": []}


def _check_identity(rule_id: str, slug: str, topic: str, nfr: str) -> None:
    if not _ID.match(rule_id) or not _SLUG.match(slug) or topic not in TOPICS or nfr not in NFR_TITLES:
        raise ValueError(f"malformed rule identity: {rule_id} {slug} {topic} {nfr}")


def _message(rule_id: str, text: str, fix: str) -> str:
    return f"[{rule_id}] {text} Fix: {fix}"


def resource_rule(
    *,
    id: str,
    slug: str,
    nfr: str,
    topic: str,
    description: str,
    fix: str,
    level: EnforcementLevel = EnforcementLevel.MANDATORY,
    severity: Severity = Severity.HIGH,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[ResourceCheck], Rule]:
    """Wrap `check(args, report, config)` into a resource rule; `report(text)` adds the id and fix."""
    _check_identity(id, slug, topic, nfr)
    properties = dict(config or {})
    defaults = _defaults(properties)

    def wrap(check: ResourceCheck) -> Rule:
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            cfg = effective_config(args.get_config(), defaults)
            if _exempt(cfg, args.name):
                return
            check(args, lambda text: report_violation(_message(id, text, fix), None), cfg)

        policy = ResourceValidationPolicy(
            name=f"{id.lower()}-{slug}",
            description=description,
            validate=validate,
            enforcement_level=level,
            config_schema=_schema(properties),
            severity=severity,
            tags=[f"nfr:{nfr}", f"topic:{topic}", f"id:{id}"],
            remediation_steps=fix,
        )
        return Rule(id=id, nfr=nfr, topic=topic, fix=fix, policy=policy, defaults=defaults)

    return wrap


def stack_rule(
    *,
    id: str,
    slug: str,
    nfr: str,
    topic: str,
    description: str,
    fix: str,
    level: EnforcementLevel = EnforcementLevel.MANDATORY,
    severity: Severity = Severity.HIGH,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[StackCheck], Rule]:
    """Wrap `check(args, report, config)` into a stack rule; `report(text, urn)` adds the id and fix."""
    _check_identity(id, slug, topic, nfr)
    properties = dict(config or {})
    defaults = _defaults(properties)

    def wrap(check: StackCheck) -> Rule:
        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            cfg = effective_config(args.get_config(), defaults)

            def report(text: str, urn: str | None = None) -> None:
                if urn is not None and _exempt(cfg, _resource_name_from_urn(urn)):
                    return
                report_violation(_message(id, text, fix), urn)

            check(args, report, cfg)

        policy = StackValidationPolicy(
            name=f"{id.lower()}-{slug}",
            description=description,
            validate=validate,
            enforcement_level=level,
            config_schema=_schema(properties),
            severity=severity,
            tags=[f"nfr:{nfr}", f"topic:{topic}", f"id:{id}"],
            remediation_steps=fix,
        )
        return Rule(id=id, nfr=nfr, topic=topic, fix=fix, policy=policy, defaults=defaults)

    return wrap
