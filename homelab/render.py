"""Turn offline-preview results into the text a person reads and the JSON document tools read.

Secrets never leave this module: inputs that were secret on the wire and secret stack outputs are
replaced by a mask before anything is printed or serialised.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from homelab.budget import budget_lines, cost_estimate
from homelab.engine import RecordedResource, Recording
from homelab.findings import Finding
from homelab.policy_eval import PackConfig
from homelab.report import NfrGroup

MASK = "[secret]"
JSON_VERSION = 1

# The few inputs that identify a resource at a glance, by type (wire names, dotted paths).
KEY_INPUTS: Mapping[str, tuple[str, ...]] = {
    "proxmoxve:index/vmLegacy:VmLegacy": ("name", "vmId", "cpu.cores", "memory.dedicated", "started"),
    "proxmoxve:download/file:File": ("fileName", "datastoreId"),
    "proxmoxve:node/disk/zfs:Zfs": ("name", "raidlevel"),
    "oci:core/instance:Instance": ("displayName", "shape", "shapeConfig.ocpus", "shapeConfig.memoryInGbs"),
    "kubernetes:helm.sh/v3:Release": ("chart", "version", "namespace"),
    "cloudflare:index/dnsRecord:DnsRecord": ("name", "type"),
}
FALLBACK_INPUTS = ("name", "displayName", "hostname", "fileName", "endpoint")


@dataclass
class ViewResult:
    """One more view of a stack: the program run as in a first preview, and the pack on it."""

    recording: Recording
    findings: list[Finding] = field(default_factory=list)

    def not_evaluated(self) -> dict[str, list[Finding]]:
        """Rule id -> its "can't run during preview" findings (rules that met an unknown value)."""
        out: dict[str, list[Finding]] = {}
        for finding in self.findings:
            if finding.kind == "cannot-run":
                out.setdefault(finding.rule_id, []).append(finding)
        return out


def view_mismatch(first: Recording, update: Recording) -> list[str]:
    """Resources (type + name) registered in one view only: the program creates them inside an
    `apply` (or a conditional) on a value unknown in a first preview, so a real preview cannot show
    them and the policy gate never judges them before `pulumi up` creates them."""
    in_first = {(r.type, r.name) for r in first.resources}
    in_update = {(r.type, r.name) for r in update.resources}
    return [
        *(f"{t} '{n}' is registered only in the update view" for t, n in sorted(in_update - in_first)),
        *(f"{t} '{n}' is registered only in the first preview" for t, n in sorted(in_first - in_update)),
    ]


@dataclass
class StackResult:
    """The outcome of previewing one stack: the update view (against simulated provider state) in
    `recording`/`findings`/`groups`, and the first preview in `first_preview`."""

    stack: str
    recording: Recording | None = None
    findings: list[Finding] = field(default_factory=list)
    groups: list[NfrGroup] = field(default_factory=list)
    """Every rule with its status, grouped by the NFR it serves."""
    config: PackConfig | None = None
    """The policy-pack config the findings were evaluated with."""
    error: str | None = None
    seconds: float = 0.0
    first_preview: ViewResult | None = None
    mismatch: list[str] = field(default_factory=list)
    """Resources registered in one view only (an error: see `view_mismatch`)."""

    @property
    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(self.first_preview.findings if self.first_preview else [])]

    @property
    def exit_code(self) -> int:
        if self.error is not None or self.mismatch:
            return 2
        return 1 if any(f.blocking for f in self.all_findings) else 0


def _get(inputs: Mapping[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def masked_inputs(resource: RecordedResource) -> Any:
    """The resource's inputs with every secret value replaced by the mask."""

    def walk(value: Any, path: str) -> Any:
        if path and resource.is_secret(path):
            return MASK
        if isinstance(value, Mapping):
            return {k: walk(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return walk(dict(resource.inputs), "")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 48 else text[:45] + "..."


def key_inputs(resource: RecordedResource) -> list[str]:
    paths = KEY_INPUTS.get(resource.type, FALLBACK_INPUTS)
    shown: list[str] = []
    for path in paths:
        value = _get(resource.inputs, path)
        if value is None or resource.is_secret(path):
            continue
        shown.append(f"{path.rsplit('.', 1)[-1]}={_scalar(value)}")
        if resource.type not in KEY_INPUTS:
            break
    return shown


def resource_tree(recording: Recording) -> list[str]:
    children: dict[str | None, list[RecordedResource]] = {}
    known = {r.urn for r in recording.resources}
    for r in recording.resources:
        parent = r.parent if r.parent in known else None
        children.setdefault(parent, []).append(r)
    lines: list[str] = []

    def visit(parent: str | None, prefix: str) -> None:
        items = children.get(parent, [])
        for index, r in enumerate(items):
            last = index == len(items) - 1
            flags = [f for f, on in (("protected", r.protect), ("retained", r.retain_on_delete)) if on]
            if r.ignore_changes:
                flags.append("ignores " + ",".join(r.ignore_changes))
            if r.origin is not None and r.origin.startswith("lock index"):
                flags.append("identity from the lock index: file not vendored here")
            details = " ".join([*key_inputs(r), *(f"[{f}]" for f in flags)])
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{r.type}  {r.name}" + (f"  {details}" if details else ""))
            visit(r.urn, prefix + ("   " if last else "│  "))

    visit(None, "  ")
    return lines


def output_lines(recording: Recording) -> list[str]:
    lines: list[str] = []
    for name in sorted(recording.outputs):
        out = recording.outputs[name]
        if out.secret:
            shown = MASK
        elif not out.known:
            shown = "(known after up)"
        else:
            shown = _scalar(out.value) if not isinstance(out.value, dict | list) else json.dumps(out.value)
            if len(shown) > 160:
                shown = shown[:157] + "..."
        lines.append(f"  {name}: {shown}")
    return lines


def finding_line(finding: Finding) -> str:
    where = f" ({finding.resource_type}: {finding.resource_name})" if finding.resource_name else ""
    tag = "MANDATORY" if finding.level == "mandatory" else "advisory"
    if finding.kind == "cannot-run":
        tag = "not evaluated"
    return f"    {tag:<10} {finding.message}{where}"


def policy_lines(groups: Sequence[NfrGroup]) -> list[str]:
    lines: list[str] = []
    for group in groups:
        counts: dict[str, int] = {}
        for rule in group.rules:
            counts[rule.status] = counts.get(rule.status, 0) + 1
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        lines.append(f"  {group.nfr} {group.title}: {group.status} ({detail})")
        for rule in group.rules:
            lines.extend(finding_line(f) for f in rule.findings)
            lines.extend(f"    exempted   [{rule.id}] {e.resource}: {e.reason}" for e in rule.exemptions)
    return lines


def text_report(result: StackResult) -> str:
    header = f"== stack {result.stack} =="
    if result.error is not None:
        return f"{header}\nerror: {result.error}\n"
    recording = result.recording
    assert recording is not None
    custom = sum(1 for r in recording.resources if r.custom)
    lines = [f"{header}  {len(recording.resources)} resources ({custom} custom) in {result.seconds:.1f} s"]
    if recording.placeholders:
        lines.append("  offline stand-ins for secrets: " + ", ".join(sorted(recording.placeholders)))
    notes = [*recording.notes, *(result.first_preview.recording.notes if result.first_preview else [])]
    lines.extend(f"  not imitated offline: {note}" for note in dict.fromkeys(notes))
    lines.append("Resources")
    lines.append(f"  pulumi:pulumi:Stack  {recording.project}-{recording.stack}")
    lines.extend("  " + line for line in resource_tree(recording))
    lines.append("Outputs")
    lines.extend(output_lines(recording) or ["  (none)"])
    budget = budget_lines(recording)
    if budget:
        lines.append("Budget")
        lines.extend(budget)
    lines.append("Policy (by NFR)")
    lines.extend(policy_lines(result.groups))
    lines.extend(view_lines(result))
    mandatory = sum(1 for f in result.all_findings if f.blocking)
    advisory = sum(1 for f in result.all_findings if f.kind == "violation" and not f.blocking)
    lines.append(f"Result: {mandatory} mandatory violation(s), {advisory} advisory finding(s) across both views")
    return "\n".join(lines) + "\n"


def _counts(findings: Sequence[Finding]) -> str:
    mandatory = sum(1 for f in findings if f.blocking)
    advisory = sum(1 for f in findings if f.kind == "violation" and not f.blocking)
    return f"{mandatory} mandatory, {advisory} advisory"


def view_lines(result: StackResult) -> list[str]:
    """The two views side by side: what each one ran on, and what it found."""
    recording = result.recording
    assert recording is not None
    lines = ["Views (what each proves: docs/decisions/0001-offline-preview.md)"]
    first = result.first_preview
    if first is not None:
        skipped = first.not_evaluated()
        lines.append(
            f"  first preview (nothing exists yet; ids and computed outputs unknown): "
            f"{len(first.recording.resources)} resources, {_counts(first.findings)}, "
            f"{len(skipped)} rule(s) not evaluated during preview"
        )
        for finding in first.findings:
            if finding.kind == "violation":
                lines.append(finding_line(finding))
        for rule_id, findings in sorted(skipped.items()):
            times = f" ({len(findings)} resources)" if len(findings) > 1 else ""
            reason = findings[0].message.split(": ", 1)[-1]
            lines.append(f"    not evaluated [{rule_id}] {reason}{times}")
    lines.append(
        f"  update (against simulated provider state, not real state): "
        f"{len(recording.resources)} resources, {_counts(result.findings)} (listed under Policy)"
    )
    lines.extend(f"    VIEW MISMATCH {m}" for m in result.mismatch)
    return lines


def resource_json(resource: RecordedResource) -> dict[str, Any]:
    return {
        "type": resource.type,
        "name": resource.name,
        "urn": resource.urn,
        "parent": resource.parent,
        "custom": resource.custom,
        "provider": resource.provider,
        "protect": resource.protect,
        "retainOnDelete": resource.retain_on_delete,
        "ignoreChanges": list(resource.ignore_changes),
        "additionalSecretOutputs": list(resource.additional_secret_outputs),
        "secretInputs": list(resource.secret_paths),
        "dependencies": list(resource.dependencies),
        "inputs": masked_inputs(resource),
        "origin": resource.origin,
    }


def stack_json(result: StackResult) -> dict[str, Any]:
    document: dict[str, Any] = {
        "stack": result.stack,
        "exitCode": result.exit_code,
        "error": result.error,
        "seconds": round(result.seconds, 3),
    }
    recording = result.recording
    if recording is None:
        document.update(resources=[], outputs={}, placeholders=[], findings=[], views={}, viewMismatch=[], cost=None)
        return document
    document["resources"] = [resource_json(r) for r in recording.resources]
    document["outputs"] = {
        name: {"secret": out.secret, "known": out.known, "value": None if out.secret else out.value}
        for name, out in sorted(recording.outputs.items())
    }
    document["placeholders"] = sorted(recording.placeholders)
    document["findings"] = [f.to_json() for f in result.findings]
    document["views"] = views_json(result)
    document["viewMismatch"] = list(result.mismatch)
    cost = cost_estimate(recording)
    document["cost"] = None if cost is None else cost.chart_json()
    return document


def views_json(result: StackResult) -> dict[str, Any]:
    """Both views: `update` is the one `resources`/`findings` above describe."""
    recording = result.recording
    assert recording is not None
    views: dict[str, Any] = {
        "update": {
            "description": "preview against simulated provider state: computed outputs are simulations",
            "resources": len(recording.resources),
            "findings": [f.to_json() for f in result.findings],
            "notEvaluated": sorted({f.rule_id for f in result.findings if f.kind == "cannot-run"}),
            "notes": list(recording.notes),
        }
    }
    first = result.first_preview
    if first is not None:
        views["firstPreview"] = {
            "description": "first preview: every custom resource is a create, its id and computed outputs unknown",
            "resources": len(first.recording.resources),
            "findings": [f.to_json() for f in first.findings],
            "notEvaluated": sorted(first.not_evaluated()),
            "unknownOutputs": sorted(k for k, v in first.recording.outputs.items() if not v.known),
            "notes": list(first.recording.notes),
        }
    return views


def json_document(results: Sequence[StackResult]) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "exitCode": max((r.exit_code for r in results), default=0),
        "stacks": [stack_json(r) for r in results],
    }
