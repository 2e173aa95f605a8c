"""Operational hygiene: a graph a reader can follow and a refactor cannot silently break (NFR-008)."""

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from policies.rules.base import Rule, stack_rule


@stack_rule(
    id="OPS-05",
    slug="resource-enforce-component-parent",
    nfr="NFR-008",
    topic="hygiene",
    description="Every cloud resource belongs to a component (NFR-008: changes stay traceable; a stray "
    "resource escapes its component's protect, provider and naming).",
    fix="create the resource inside a ComponentResource with `opts=ResourceOptions(parent=self)`.",
)
def resources_have_component_parent(
    args: StackValidationArgs, report: Callable[[str, str | None], None], config: Mapping[str, Any]
) -> None:
    for resource in args.resources:
        # Providers are built by the stack and handed to components; components may sit at the root.
        if resource.resource_type.startswith(("pulumi:providers:", "pulumi:pulumi:", "homelab:")):
            continue
        parent = resource.parent
        if parent is None or parent.resource_type == "pulumi:pulumi:Stack":
            report(f"{resource.resource_type} '{resource.name}' is not inside a component.", resource.urn)


RULES: tuple[Rule, ...] = (resources_have_component_parent,)
