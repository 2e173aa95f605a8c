"""What the estate costs a year (NFR-012: under the cap, Always Free only in the cloud).

`homelab:cost` in the prod stack holds the cost model as data; `estimate` turns the capacity
ledger's modes into a yearly figure: each mode's power draw (idle host plus disks, plus CPU load in
proportion to the cores its guests use, plus the GPU in a mode whose guests hold it) times the
hours it runs, at the electricity rate; then the cloud (0 within the Always Free allowance, the
list price of whatever the cloud stack's `always_free_usage` shows beyond it), the domain and any
paid storage. The total is set against the NFR-012 cap (`cap`), converted only through the stated
US-dollar rates (`usd_rates`). Pure functions; the arithmetic shared with the reports and the BUD-08
policy is the budget model's (`homelab.budget`).

What it does not model: heating/cooling, the router and other devices of the house, hardware
purchases and replacements, taxes and standing charges of the electricity contract, a CPU's real
draw curve (linear in the cores the mode's guests hold), and the GPU idling in modes without its
guest (counted in `idle_w` if it matters).
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from homelab.budget import (
    ANCHOR_CURRENCY,
    DEFAULT_USD_RATES,
    NFR_012_CAP,
    NFR_012_CAP_CURRENCY,
    OCI_LIST_PRICES,
    cap_verdict,
    cloud_excess,
    convert,
    quota_rows,
)
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


class CapConfig(ConfigModel):
    """`homelab:cost.cap`: the yearly cap the estimate is set against (NFR-012: under $1,000)."""

    yearly: float = Field(default=NFR_012_CAP, gt=0, le=1_000_000)
    currency: Currency = NFR_012_CAP_CURRENCY  # type: ignore[assignment]  # a member of the Literal


OciPrices = dict[
    Literal["a1_ocpus", "a1_memory_gb", "block_storage_gb", "object_storage_gb", "network_load_balancers"],
    Annotated[float, Field(ge=0, le=10_000)],
]


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
    cap: CapConfig = CapConfig()
    usd_rates: dict[Currency, Annotated[float, Field(gt=0, le=100_000)]] = Field(
        default_factory=lambda: dict(DEFAULT_USD_RATES)  # type: ignore[arg-type]  # keys are Currency members
    )
    """US dollars per unit of each other currency in use: the cap and Oracle's list prices are in USD,
    so `currency` and `cap.currency` need a rate unless they are USD. Set the day's rate."""
    oci_prices_usd: OciPrices = Field(default_factory=lambda: dict(asdict(OCI_LIST_PRICES)))  # type: ignore[arg-type]
    """Oracle's list price (USD a month) per unit beyond the Always Free allowance, by quota item."""

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
        for key, currency in (("currency", self.currency), ("cap.currency", self.cap.currency)):
            if currency != ANCHOR_CURRENCY and currency not in self.usd_rates:
                raise ValueError(
                    f"usd_rates.{currency} is required: {key} is {currency}, and the cap and Oracle's list "
                    "prices are converted through US dollars"
                )
        return self


def mode_watts(
    ledger: HostLedger, mode: HostMode, host_cores: int, gpu_modes: Iterable[HostMode], power: PowerConfig
) -> float:
    cores = sum(g.cores for g in ledger.guests_in(mode))
    share = min(1.0, cores / host_cores) if host_cores else 1.0
    gpu = power.gpu_w if mode in set(gpu_modes) else 0.0
    return power.idle_w + power.disks_w + power.cpu_w * share + gpu


def cloud_line(always_free: Mapping[str, Any], cost: CostConfig) -> dict[str, Any]:
    """The cloud's monthly cost: 0 within the Always Free allowance, the list price of the excess beyond it."""
    excess = cloud_excess(always_free, cost.oci_prices_usd)
    if not excess:
        return {"item": "cloud: OCI Always Free (within the allowance)", "monthly": 0.0}
    priced = sum(e.monthly_usd for e in excess if e.monthly_usd is not None)
    monthly = convert(priced, ANCHOR_CURRENCY, cost.currency, cost.usd_rates)
    assert monthly is not None  # CostConfig requires the rate of its currency
    over = ", ".join(f"{e.item} +{e.over:g}" + ("" if e.monthly_usd is not None else " not priced") for e in excess)
    return {"item": f"cloud: OCI over the Always Free allowance ({over})", "monthly": monthly}


def paid_storage_line(cost: CostConfig, offsite: Mapping[str, Any] | None) -> dict[str, Any]:
    """`paid_storage_per_month` plus the cloud stack's paid offsite target, in the cost currency."""
    monthly = cost.paid_storage_per_month
    if not isinstance(offsite, Mapping) or not offsite.get("monthly"):
        return {"item": "paid storage", "monthly": monthly}
    held = ", ".join(f"{r.item.removesuffix('_gb')} {r.used:g} GB, {r.quota:g} GB free" for r in quota_rows(offsite))
    currency = str(offsite.get("currency", ANCHOR_CURRENCY))
    converted = convert(float(offsite["monthly"]), currency, cost.currency, cost.usd_rates)
    if converted is None:
        return {"item": f"paid storage (offsite: {held}; not converted: no usd_rates.{currency})", "monthly": monthly}
    return {"item": f"paid storage (offsite: {held})", "monthly": monthly + converted}


def estimate(
    ledger: HostLedger,
    host_cores: int,
    gpu_modes: Iterable[HostMode],
    cost: CostConfig,
    always_free: Mapping[str, Any] | None = None,
    *,
    offsite: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `cost_estimate` output: one line per item, monthly and yearly, the total, and the cap.

    `always_free` is the cloud stack's `always_free_usage` summary (None: the cloud is not counted,
    and the line says so); `offsite` its `offsite_storage` summary (the paid OVH target)."""
    gpu = tuple(gpu_modes)
    lines: list[dict[str, Any]] = []
    for mode in HOST_MODES:
        watts = mode_watts(ledger, mode, host_cores, gpu, cost.power)
        hours = cost.hours_per_month[mode]
        monthly = watts / 1000 * hours * cost.electricity_per_kwh
        lines.append({"item": f"electricity: {mode} mode ({watts:.0f} W x {hours:g} h/month)", "monthly": monthly})
    if always_free is None:
        lines.append({"item": "cloud: not counted (the cloud stack exports no always_free_usage)", "monthly": 0.0})
    else:
        lines.append(cloud_line(always_free, cost))
    lines.append(paid_storage_line(cost, offsite))
    lines.append({"item": "domain", "monthly": cost.domain_per_year / 12})
    for line in lines:
        line["monthly"] = round(line["monthly"], 2)
        line["yearly"] = round(line["monthly"] * 12, 2)
    yearly_total = round(sum(line["yearly"] for line in lines), 2)
    verdict = cap_verdict(yearly_total, cost.currency, cost.cap.yearly, cost.cap.currency, cost.usd_rates)
    return {
        "currency": cost.currency,
        "lines": lines,
        "yearly_total": yearly_total,
        "cap": {
            "yearly": cost.cap.yearly,
            "currency": cost.cap.currency,
            "usd_rates": dict(cost.usd_rates),
            "yearly_total_in_cap_currency": verdict.total_in_cap_currency,
            "within": verdict.within,
        },
    }


def total(estimate_value: Mapping[str, Any]) -> float:
    return float(estimate_value.get("yearly_total", 0))
