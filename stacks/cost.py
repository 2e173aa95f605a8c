"""What the estate costs a year (NFR-012: under the cap, Always Free only in the cloud).

`homelab:cost` in the prod stack holds the cost model as data; `estimate` turns the capacity
ledger's modes into a yearly figure: each mode's power draw (idle host plus disks, plus CPU load in
proportion to the cores its guests use, plus the GPU in a mode whose guests hold it) times the
hours it runs, at the electricity rate; then the domain and any paid storage. The cloud side is
Always Free (0), which the quota ledger and the BUD rules enforce. Pure functions.
"""

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from stacks.capacity import HOST_MODES, HostLedger, HostMode
from stacks.config.base import ConfigModel

Currency = Literal["EUR", "USD", "GBP", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY"]
HOURS_PER_MONTH_MAX = 744


class PowerConfig(ConfigModel):
    """`homelab:cost.power`: the host's draw in watts."""

    idle_w: float = Field(default=40, ge=0, le=2000)
    """The host idling (board, CPU at rest, fans, PSU losses)."""
    cpu_w: float = Field(default=90, ge=0, le=2000)
    """Extra draw with every core busy (the CPU's TDP minus its idle draw); scaled by the cores in use."""
    gpu_w: float = Field(default=250, ge=0, le=2000)
    """The GPU under load, in a mode whose guest holds it."""
    disks_w: float = Field(default=14, ge=0, le=500)
    """Every disk spinning (2 x 20 TB at about 7 W each)."""


class CostConfig(ConfigModel):
    """`homelab:cost` (prod): the cost model. Every figure is overridable; defaults are documented."""

    currency: Currency = "EUR"
    electricity_per_kwh: float = Field(default=0.30, ge=0, le=5)
    power: PowerConfig = PowerConfig()
    hours_per_month: dict[HostMode, float] = Field(
        default_factory=lambda: {"normal": 640.0, "testing": 60.0, "gaming": 44.0}
    )
    """Hours each host mode runs in a month (at most 744 together)."""
    domain_per_year: float = Field(default=12, ge=0, le=1000)
    paid_storage_per_month: float = Field(default=0, ge=0, le=10_000)
    """Offsite storage beyond its free allowance (OVH; 0 while everything fits Always Free)."""

    @model_validator(mode="after")
    def _hours(self) -> "CostConfig":
        for mode, hours in self.hours_per_month.items():
            if not 0 <= hours <= HOURS_PER_MONTH_MAX:
                raise ValueError(f"hours_per_month.{mode} must be between 0 and {HOURS_PER_MONTH_MAX}, got {hours:g}")
        total = sum(self.hours_per_month.values())
        if total > HOURS_PER_MONTH_MAX:
            raise ValueError(
                f"hours_per_month add up to {total:g}, more than the {HOURS_PER_MONTH_MAX} hours of a month"
            )
        missing = [m for m in HOST_MODES if m not in self.hours_per_month]
        if missing:
            raise ValueError(f"hours_per_month has no hours for mode {missing[0]}")
        return self


def mode_watts(
    ledger: HostLedger, mode: HostMode, host_cores: int, gpu_modes: Iterable[HostMode], power: PowerConfig
) -> float:
    cores = sum(g.cores for g in ledger.guests_in(mode))
    share = min(1.0, cores / host_cores) if host_cores else 1.0
    gpu = power.gpu_w if mode in set(gpu_modes) else 0.0
    return power.idle_w + power.disks_w + power.cpu_w * share + gpu


def estimate(ledger: HostLedger, host_cores: int, gpu_modes: Iterable[HostMode], cost: CostConfig) -> dict[str, Any]:
    """The `cost_estimate` output: one line per item, monthly and yearly, and the total."""
    gpu = tuple(gpu_modes)
    lines: list[dict[str, Any]] = []
    for mode in HOST_MODES:
        watts = mode_watts(ledger, mode, host_cores, gpu, cost.power)
        hours = cost.hours_per_month[mode]
        monthly = watts / 1000 * hours * cost.electricity_per_kwh
        lines.append({"item": f"electricity: {mode} mode ({watts:.0f} W x {hours:g} h/month)", "monthly": monthly})
    lines.append({"item": "cloud: OCI Always Free", "monthly": 0.0})
    lines.append({"item": "paid storage", "monthly": cost.paid_storage_per_month})
    lines.append({"item": "domain", "monthly": cost.domain_per_year / 12})
    for line in lines:
        line["monthly"] = round(line["monthly"], 2)
        line["yearly"] = round(line["monthly"] * 12, 2)
    return {
        "currency": cost.currency,
        "lines": lines,
        "yearly_total": round(sum(line["yearly"] for line in lines), 2),
    }


def total(estimate_value: Mapping[str, Any]) -> float:
    return float(estimate_value.get("yearly_total", 0))
