"""The compliance report: every NFR, the rules that serve it, their status, and the budget figures.

`group_by_nfr` is shared by `homelab preview` (results grouped by NFR) and `homelab report STACK`
(`render_markdown`). A rule's status is one of:

- `violated`   a mandatory finding (blocks `pulumi up`);
- `advisory`   only advisory findings;
- `cannot-run` it read a value unknown at preview (it decides on `pulumi up`);
- `exempted`   no finding, and the pack config exempts resources of this stack from it;
- `disabled`   the pack config turns it off;
- `pass`       none of the above.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pulumi_policy import EnforcementLevel

from homelab.budget import always_free_usage, cost_estimate, gib, host_capacity, money, number, stack_output
from homelab.chart import cost_chart_svg
from homelab.engine import Recording
from homelab.exposure import exposures
from homelab.exposure import render_markdown as exposure_markdown
from homelab.findings import Finding, GraphCheck
from homelab.policy_eval import PackConfig, enforcement_level
from policies.rules import Rule
from policies.rules.base import NFR_TITLES

Status = Literal["violated", "advisory", "cannot-run", "exempted", "disabled", "pass"]


@dataclass(frozen=True)
class Exemption:
    resource: str
    reason: str


@dataclass(frozen=True)
class RuleStatus:
    id: str
    name: str
    level: str
    status: Status
    description: str
    findings: tuple[Finding, ...] = ()
    exemptions: tuple[Exemption, ...] = ()
    kind: Literal["policy", "graph check"] = "policy"


@dataclass(frozen=True)
class NfrGroup:
    nfr: str
    title: str
    rules: tuple[RuleStatus, ...] = field(default_factory=tuple)

    @property
    def status(self) -> Status:
        for status in ("violated", "advisory", "cannot-run", "exempted"):
            if any(r.status == status for r in self.rules):
                return status  # type: ignore[return-value]
        return "pass"


def _exemptions(rule: Rule, config: PackConfig | None, names: set[str]) -> tuple[Exemption, ...]:
    if config is None:
        return ()
    listed = config.properties.get(rule.name, {}).get("exemptions", []) or []
    return tuple(
        Exemption(str(e.get("resource")), str(e.get("reason", "")))
        for e in listed
        if isinstance(e, Mapping) and (not names or e.get("resource") in names)
    )


def _status(findings: Sequence[Finding], exemptions: Sequence[Exemption], disabled: bool) -> Status:
    if disabled:
        return "disabled"
    violations = [f for f in findings if f.kind == "violation"]
    if any(f.level == "mandatory" for f in violations):
        return "violated"
    if violations:
        return "advisory"
    if any(f.kind == "cannot-run" for f in findings):
        return "cannot-run"
    if exemptions:
        return "exempted"
    return "pass"


def group_by_nfr(
    findings: Iterable[Finding],
    rules: Iterable[Rule],
    graph_checks: Iterable[GraphCheck] = (),
    config: PackConfig | None = None,
    recording: Recording | None = None,
) -> list[NfrGroup]:
    """Every rule and graph check with its status, grouped by the NFR it serves (NFR order)."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    names = {r.name for r in recording.resources} if recording is not None else set()
    statuses: dict[str, list[RuleStatus]] = {}
    for rule in rules:
        level = enforcement_level(rule, config)
        own = tuple(by_rule.get(rule.id, ()))
        exempt = _exemptions(rule, config, names)
        statuses.setdefault(rule.nfr, []).append(
            RuleStatus(
                id=rule.id,
                name=rule.name,
                level=level.value,
                status=_status(own, exempt, level == EnforcementLevel.DISABLED),
                description=rule.policy.description or "",
                findings=own,
                exemptions=exempt,
            )
        )
    for check in graph_checks:
        own = tuple(by_rule.get(check.id, ()))
        statuses.setdefault(check.nfr, []).append(
            RuleStatus(
                id=check.id,
                name=check.name,
                level=check.level,
                status=_status(own, (), False),
                description=check.description,
                findings=own,
                kind="graph check",
            )
        )
    return [
        NfrGroup(nfr=nfr, title=NFR_TITLES.get(nfr, nfr), rules=tuple(sorted(items, key=lambda r: r.id)))
        for nfr, items in sorted(statuses.items())
    ]


# --- Markdown -----------------------------------------------------------------------------------

_BADGE: Mapping[str, str] = {
    "violated": "❌ violated",
    "advisory": "⚠️ advisory",
    "cannot-run": "❔ cannot run",
    "exempted": "➖ exempted",
    "disabled": "⏸ disabled",
    "pass": "✅ pass",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _host_capacity(recording: Recording) -> list[str]:
    lines = ["### Host capacity (NFR-010)", ""]
    capacity = host_capacity(recording)
    if capacity is None:
        guests, why = stack_output(recording, "host_guests")
        if isinstance(guests, list) and guests:
            lines += ["This stack's guests on the shared host (the `prod` stack reports the modes):", ""]
            lines += ["| guest | memory | modes |", "|---|---|---|"]
            for guest in guests:
                if isinstance(guest, Mapping):
                    modes = ", ".join(str(m) for m in guest.get("modes", []))
                    lines.append(f"| {guest.get('name')} | {gib(float(guest.get('memory_mb', 0)))} | {modes} |")
            return [*lines, ""]
        _, why = stack_output(recording, "host_capacity")
        return [*lines, f"_Host capacity: {why or 'unreadable output'}._", ""]
    if capacity.reservations:
        reserved = ", ".join(f"{k} {gib(v)}" for k, v in capacity.reservations.items())
        lines += [f"Host memory {gib(capacity.host_memory_mb)}; reserved in every mode: {reserved}.", ""]
    lines += ["| mode | total | target | within host | within target | guests |", "|---|---|---|---|---|---|"]
    for row in capacity.modes:
        lines.append(
            f"| {row.mode} | {gib(row.total_mb)} | {gib(row.target_mb)} "
            f"| {'yes' if row.within_host else 'NO'} | {'yes' if row.within_target else 'no'} "
            f"| {_cell(', '.join(row.guests))} |"
        )
    return [*lines, ""]


def _always_free(recording: Recording) -> list[str]:
    lines = ["### Always Free usage (NFR-011, NFR-012)", ""]
    usage = always_free_usage(recording)
    if usage is None:
        _, why = stack_output(recording, "always_free_usage")
        return [*lines, f"_Always Free usage: {why or 'unreadable output'}._", ""]
    lines += ["| item | used | quota |", "|---|---|---|"]
    lines += [f"| {row.item} | {number(row.used)} | {number(row.quota)} |" for row in usage.rows]
    lines += ["", f"Within the quota: {'yes' if usage.within_quota else 'NO'}."]
    if usage.problems:
        lines += ["", *[f"- {_cell(p)}" for p in usage.problems]]
    return [*lines, ""]


COST_CHART_ALT = "Yearly cost per line item against the NFR-012 cap"


def _cost(recording: Recording, chart: str | None) -> list[str]:
    """The yearly estimate (NFR-012), one row per line item, the total against the cap, and the bar
    chart: an image link to `chart` (the SVG file written beside the report), or the SVG inline."""
    cost = cost_estimate(recording)
    if cost is None:
        return []
    currency = cost.currency
    lines = ["### Cost (NFR-012)", "", f"| item | monthly ({currency}) | yearly ({currency}) |", "|---|--:|--:|"]
    lines += [f"| {_cell(li.item)} | {money(li.monthly)} | {money(li.yearly)} |" for li in cost.lines]
    lines += [f"| **total** | **{money(cost.monthly_total)}** | **{money(cost.yearly_total)}** |", ""]
    if cost.verdict is not None:
        lines += [cost.verdict.sentence(), ""]
    lines += [f"![{COST_CHART_ALT}]({chart})" if chart else cost_chart_svg(cost), ""]
    return lines


def _data_protection(recording: Recording) -> list[str]:
    """Per data holder: its class, where its copies live, and whether that is 3-2-1 (FR-024/025)."""
    rows, why = stack_output(recording, "backup_protection")
    if why is not None or not isinstance(rows, list):
        return []
    lines = [
        "## Data protection (FR-024, FR-025)",
        "",
        "Copies after every backup layer has run; snapshots and bucket versions are listed but do not count "
        "as a copy (they share the primary's storage).",
        "",
        "| holder | class | copies | 3-2-1 |",
        "|---|---|---|---|",
    ]
    for row in rows:
        if isinstance(row, Mapping):
            copies = ", ".join(str(c) for c in row.get("copies", []))
            lines.append(
                f"| {row.get('holder')} | {row.get('class')} | {_cell(copies)} | {_cell(str(row.get('verdict')))} |"
            )
    return [*lines, ""]


def _findings_table(groups: Sequence[NfrGroup]) -> list[str]:
    lines: list[str] = []
    for group in groups:
        for rule in group.rules:
            for finding in rule.findings:
                where = f"`{finding.resource_name}`" if finding.resource_name else "stack"
                lines.append(f"| {rule.id} | {finding.level} | {finding.kind} | {where} | {_cell(finding.message)} |")
    if not lines:
        return ["No findings.", ""]
    return ["| rule | level | kind | resource | message |", "|---|---|---|---|---|", *lines, ""]


def _first_preview(findings: Sequence[Finding]) -> list[str]:
    skipped = sorted({f.rule_id for f in findings if f.kind == "cannot-run"})
    lines = [
        "## First preview",
        "",
        "The tables below judge the update view (a preview against *simulated* provider state). In a first "
        "preview nothing exists yet: ids and computed outputs are unknown, and "
        + (
            f"{len(skipped)} rule(s) cannot be evaluated: {', '.join(skipped)} (they decide at `pulumi up`)."
            if skipped
            else "every rule can be evaluated."
        ),
    ]
    violations = [f for f in findings if f.kind == "violation"]
    if violations:
        lines += ["", *(f"- {f.level}: {_cell(f.message)}" for f in violations)]
    return lines


def render_markdown(
    stack: str,
    recording: Recording,
    findings: Sequence[Finding],
    rules: Iterable[Rule],
    graph_checks: Iterable[GraphCheck] = (),
    *,
    config: PackConfig | None = None,
    first_preview: Sequence[Finding] | None = None,
    cost_chart: str | None = None,
) -> str:
    """The Markdown compliance report of one stack's offline preview: the update view (against
    simulated provider state) in full, and what the first preview adds (`first_preview` findings).
    `cost_chart` is where the cost chart's SVG file is, relative to the report (None: inline SVG)."""
    groups = group_by_nfr(findings, rules, graph_checks, config, recording)
    blocking = [f for f in [*findings, *(first_preview or [])] if f.blocking]
    advisory = [f for f in findings if f.kind == "violation" and f.level == "advisory"]
    cannot = [f for f in findings if f.kind == "cannot-run"]
    verdict = "FAIL" if blocking else "PASS"
    lines = [
        f"# Compliance report: stack `{stack}`",
        "",
        f"**{verdict}**: {len(blocking)} mandatory violation(s), {len(advisory)} advisory, "
        f"{len(cannot)} policy run(s) deferred to `pulumi up`; {len(recording.resources)} resources checked "
        f"by {sum(len(g.rules) for g in groups)} rules.",
        "",
        "## Summary by requirement",
        "",
        "| NFR | requirement | status | rules |",
        "|---|---|---|---|",
    ]
    for group in groups:
        counts = f"{sum(r.status == 'pass' for r in group.rules)}/{len(group.rules)} pass"
        lines.append(f"| {group.nfr} | {_cell(group.title)} | {_BADGE[group.status]} | {counts} |")
    if first_preview is not None:
        lines += ["", *_first_preview(first_preview)]
    lines += ["", "## Budgets", "", *_host_capacity(recording), *_always_free(recording)]
    lines += _cost(recording, cost_chart)
    lines += _data_protection(recording)
    for group in groups:
        lines += [f"## {group.nfr}: {group.title}", "", "| rule | name | level | status |", "|---|---|---|---|"]
        for rule in group.rules:
            kind = " (graph check)" if rule.kind == "graph check" else ""
            lines.append(f"| {rule.id} | `{rule.name}`{kind} | {rule.level} | {_BADGE[rule.status]} |")
        lines.append("")
        for rule in group.rules:
            for exemption in rule.exemptions:
                lines.append(f"- {rule.id} exempts `{exemption.resource}`: {_cell(exemption.reason)}")
        if any(r.exemptions for r in group.rules):
            lines.append("")
    lines += exposure_markdown(exposures(recording, config))
    lines += ["## Findings", "", *_findings_table(groups)]
    return "\n".join(lines).rstrip() + "\n"
