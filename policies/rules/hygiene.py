"""Operational hygiene: a graph a reader can follow and a refactor cannot silently break (NFR-008)."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, Severity, StackValidationArgs

from policies.rules import registry as reg
from policies.rules.base import Rule, resource_rule, stack_rule
from policies.rules.walk import POD_SPEC_PATHS, get, mapping

Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]
Config = Mapping[str, Any]

# OCI resources that take freeform tags.
OCI_TAGGABLE = frozenset(
    {
        reg.OCI_VCN,
        "oci:Core/subnet:Subnet",
        reg.OCI_SECURITY_LIST,
        reg.OCI_DEFAULT_SECURITY_LIST,
        "oci:Core/networkSecurityGroup:NetworkSecurityGroup",
        "oci:Core/internetGateway:InternetGateway",
        "oci:Core/routeTable:RouteTable",
        reg.OCI_INSTANCE,
        "oci:Core/image:Image",
        reg.OCI_VOLUME,
        reg.OCI_BOOT_VOLUME,
        reg.OCI_PUBLIC_IP,
        reg.OCI_BUCKET,
    }
)
K8S_LABELLED = frozenset({*POD_SPEC_PATHS, reg.K8S_SERVICE})


@resource_rule(
    id="OPS-01",
    slug="resource-enforce-ownership-labels",
    nfr="NFR-008",
    topic="hygiene",
    description="Cloud resources and Kubernetes workloads say who manages them and where they belong (OCI "
    "freeform tags, `app.kubernetes.io/*` labels) (NFR-008: anything found in a console traces back to code).",
    fix="add the missing freeform tags / labels (components set them from the stack name).",
    level=EnforcementLevel.ADVISORY,
    severity=Severity.LOW,
    config={
        "ociTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["managed-by", "stack"],
            "description": "Freeform tag keys every taggable OCI resource carries.",
        },
        "kubernetesLabels": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["app.kubernetes.io/name"],
            "description": "Labels every workload and Service carries.",
        },
    },
)
def ownership_labels(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type in OCI_TAGGABLE:
        tags = mapping(get(args.props, "freeformTags"))
        missing = [key for key in config["ociTags"] if key not in tags]
        if missing:
            report(f"'{args.name}' lacks freeform tag(s) {', '.join(missing)}.")
    elif args.resource_type in K8S_LABELLED:
        labels = mapping(get(args.props, "metadata.labels"))
        missing = [key for key in config["kubernetesLabels"] if key not in labels]
        if missing:
            report(f"'{args.name}' lacks label(s) {', '.join(missing)}.")


_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$")


@resource_rule(
    id="OPS-02",
    slug="kubernetes-helm-enforce-pinned-chart",
    nfr="NFR-008",
    topic="hygiene",
    description="Helm charts are pinned to an exact version from an https or OCI repository (NFR-008: "
    "infrastructure changes are trackable in Git; a chart never changes under a preview).",
    fix='set `version` to an exact chart version (e.g. "1.18.1", no range) and the repository to an '
    "https:// or oci:// URL.",
)
def helm_charts_pinned(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type not in reg.K8S_HELM_TYPES:
        return
    chart = str(get(args.props, "chart", ""))
    version = str(get(args.props, "version", ""))
    if not _EXACT_VERSION.match(version):
        report(f"Helm chart {chart} is not pinned to an exact version (version {version or 'unset'}).")
    repo = str(get(args.props, "repositoryOpts.repo", ""))
    source = chart if chart.startswith(("oci://", "http://", "https://")) else repo
    if not source.startswith(("https://", "oci://")):
        report(f"Helm chart {chart} comes from {source or 'no repository'}, not an https/oci repository.")


@resource_rule(
    id="OPS-04",
    slug="stack-disallow-unknown-resource-types",
    nfr="NFR-008",
    topic="hygiene",
    description="Every resource type is one the pack knows (its registry names each type the stacks register), "
    "so a new provider or a renamed token cannot slip past the rules written for the old one (NFR-008).",
    fix="add the type to `KNOWN_TYPES` in policies/rules/registry.py together with the rules that cover it "
    "(and their tests) in the same change.",
    severity=Severity.HIGH,
)
def known_types_only(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if not reg.is_known_type(args.resource_type):
        report(f"'{args.name}' has type {args.resource_type}, which the policy pack does not know.")


@stack_rule(
    id="OPS-05",
    slug="resource-enforce-component-parent",
    nfr="NFR-008",
    topic="hygiene",
    description="Every cloud resource belongs to a component (NFR-008: changes stay traceable; a stray "
    "resource escapes its component's protect, provider and naming).",
    fix="create the resource inside a ComponentResource with `opts=ResourceOptions(parent=self)`.",
)
def resources_have_component_parent(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    for resource in args.resources:
        # Providers are built by the stack and handed to components; components may sit at the root.
        if resource.resource_type.startswith(("pulumi:providers:", "pulumi:pulumi:", "homelab:")):
            continue
        parent = resource.parent
        if parent is None or parent.resource_type == "pulumi:pulumi:Stack":
            report(f"{resource.resource_type} '{resource.name}' is not inside a component.", resource.urn)


RULES: tuple[Rule, ...] = (ownership_labels, helm_charts_pinned, known_types_only, resources_have_component_parent)
