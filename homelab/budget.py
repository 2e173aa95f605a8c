"""Budget figures the stacks export, read once for every view (preview text, JSON, reports).

The `prod` stack exports `host_capacity` (the NFR-010 memory modes of the shared 64 GB host) and
the `cloud` stack `always_free_usage` (the NFR-011 quota). Both are plain outputs computed by the
program from the same ledgers the policies are configured from.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homelab.engine import Recording


@dataclass(frozen=True)
class ModeRow:
    mode: str
    total_mb: float
    target_mb: float | None
    within_host: bool
    within_target: bool
    guests: tuple[str, ...]


@dataclass(frozen=True)
class HostCapacity:
    host_memory_mb: float
    reservations: Mapping[str, float]
    modes: tuple[ModeRow, ...]


@dataclass(frozen=True)
class QuotaRow:
    item: str
    used: float
    quota: float


@dataclass(frozen=True)
class AlwaysFreeUsage:
    rows: tuple[QuotaRow, ...]
    within_quota: bool
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def stack_output(recording: Recording, name: str) -> tuple[Any, str | None]:
    """An output's value, or why it cannot be shown."""
    output = recording.outputs.get(name)
    if output is None:
        return None, "not exported by this stack"
    if output.secret:
        return None, "secret"
    if not output.known:
        return None, "not known until `pulumi up`"
    return output.value, None


def host_capacity(recording: Recording) -> HostCapacity | None:
    value, why = stack_output(recording, "host_capacity")
    if why is not None or not isinstance(value, Mapping):
        return None
    modes = value.get("modes") or {}
    rows = tuple(
        ModeRow(
            mode=str(mode),
            total_mb=float(figures.get("total_mb", 0)),
            target_mb=None if figures.get("target_mb") is None else float(figures["target_mb"]),
            within_host=bool(figures.get("within_host")),
            within_target=bool(figures.get("within_target")),
            guests=tuple(str(g) for g in figures.get("guests", [])),
        )
        for mode, figures in modes.items()
        if isinstance(figures, Mapping)
    )
    reservations = value.get("reservations") or {}
    return HostCapacity(
        host_memory_mb=float(value.get("host_memory_mb", 0)),
        reservations={str(k): float(v) for k, v in reservations.items()},
        modes=rows,
    )


def always_free_usage(recording: Recording) -> AlwaysFreeUsage | None:
    value, why = stack_output(recording, "always_free_usage")
    if why is not None or not isinstance(value, Mapping):
        return None
    rows = tuple(
        QuotaRow(item=str(item), used=float(figures["used"]), quota=float(figures["quota"]))
        for item, figures in value.items()
        if isinstance(figures, Mapping) and "used" in figures and "quota" in figures
    )
    problems = value.get("problems") or []
    warnings = value.get("warnings") or []
    return AlwaysFreeUsage(
        rows=rows,
        within_quota=bool(value.get("within_quota", True)),
        problems=tuple(str(p) for p in problems),
        warnings=tuple(str(w) for w in warnings),
    )


def gib(mb: float | None) -> str:
    return "?" if mb is None else f"{mb / 1024:.1f} GiB"


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def budget_lines(recording: Recording) -> list[str]:
    """The budget section of the text preview (empty when the stack exports no budget)."""
    lines: list[str] = []
    capacity = host_capacity(recording)
    if capacity is not None:
        reserved = ", ".join(f"{k} {gib(v)}" for k, v in capacity.reservations.items())
        lines.append(f"  Host memory (NFR-010): {gib(capacity.host_memory_mb)}; reserved in every mode: {reserved}")
        for row in capacity.modes:
            verdict = "ok" if row.within_host else "OVER THE HOST"
            if row.within_host and not row.within_target:
                verdict = "over target"
            lines.append(
                f"    {row.mode:<8} {gib(row.total_mb):>9} of {gib(capacity.host_memory_mb)}"
                f"  (target {gib(row.target_mb)})  {verdict}  [{', '.join(row.guests)}]"
            )
    usage = always_free_usage(recording)
    if usage is not None:
        lines.append(f"  Always Free (NFR-011): {'within quota' if usage.within_quota else 'OVER QUOTA'}")
        for row in usage.rows:
            lines.append(f"    {row.item:<24} {number(row.used):>5} / {number(row.quota)}")
        lines.extend(f"    problem: {p}" for p in usage.problems)
        lines.extend(f"    warning: {w}" for w in usage.warnings)
    cost, _ = stack_output(recording, "cost_estimate")
    if isinstance(cost, Mapping):
        currency = cost.get("currency", "")
        lines.append(f"  Cost (NFR-012): {cost.get('yearly_total')} {currency} a year")
        for item in cost.get("lines", []):
            if isinstance(item, Mapping):
                lines.append(
                    f"    {item.get('item')!s:<48} {item.get('monthly')!s:>8} / month {item.get('yearly')!s:>9} / year"
                )
    return lines
