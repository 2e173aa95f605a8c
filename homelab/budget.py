"""The budget model: one room for every resource budget of the homelab (NFR-010, NFR-011, NFR-012).

Pure data and arithmetic (no Pulumi, no pydantic, no engine at import), so the stacks that compute
and export the figures, the offline preview and reports that read them back, and the policy pack
that recomputes them from the recorded resources all use the same definitions:

- **Always Free** (`cloud`, NFR-011): `AlwaysFreeLimits` (Oracle's allowance, the defaults of the
  `homelab:quota` config and of the BUD-03/BUD-04 policy config), `Machine` and `Layout` (what a
  layout meters), `usage`, `problems`, `warnings` and `always_free_summary` (the stack output
  `always_free_usage`). `stacks.quota.AlwaysFreeQuotaConfig` is the config model over these limits; the
  policies build a `Layout` from the recorded instances and volumes and call the same functions.
- **Host memory** (`dev`/`prod`, NFR-010): `mode_total_mb` is the per-mode arithmetic (guests in
  the mode + other stacks' guests + host reservations) shared by `stacks.capacity.HostLedger`
  (whose `summary()` is the `host_capacity` output) and the BUD-01/BUD-06 rules.
- **Cost** (NFR-012): `ALWAYS_FREE_CATALOGUE` (the OCI types BUD-02 lets in), `OciListPrices` and
  `cloud_excess` (the price of what exceeds the allowance), `convert` and `cap_verdict` (a total set
  against the cap, converted only through stated US-dollar rates), shared by `stacks.cost` (the
  `cost_estimate` output), the BUD-08 rule and the reports.
- **Reading back**: `host_capacity(recording)`, `always_free_usage(recording)` and
  `cost_estimate(recording)` parse the exported outputs; `budget_lines` prints them in the preview.

Extending it (the interface a new budget, e.g. buckets or a monthly cost, plugs into):

1. a frozen limits dataclass with the defaults, and a pure function from what the stack builds to
   a usage record (like `AlwaysFreeLimits` and `usage`);
2. a summary in the common output shape, exported by the stack that owns the resources: a mapping
   of item -> `{"used": number, "quota": number}`, plus `within_quota` (bool), `problems` and
   `warnings` (lists of one-line strings). `quota_rows` parses any mapping of that shape, so the
   preview, JSON and reports show the new rows without new code;
3. if a policy enforces it, the rule rebuilds the same usage from recorded resources and compares it
   with limits from its policy config, whose defaults come from the limits dataclass.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homelab.engine import Recording

# --- Always Free (NFR-011) -----------------------------------------------------------------------

A1_FLEX = "VM.Standard.A1.Flex"
E2_MICRO = "VM.Standard.E2.1.Micro"
FREE_SHAPES: tuple[str, ...] = (A1_FLEX, E2_MICRO)

ALWAYS_FREE_CATALOGUE: Mapping[str, str] = {
    # Metered by the allowance (`AlwaysFreeLimits`, BUD-02 shapes, BUD-03/BUD-04 totals).
    "oci:Core/instance:Instance": "A1.Flex / E2.1.Micro within the allowance",
    "oci:Core/volume:Volume": "block storage within the 200 GB",
    "oci:Core/bootVolume:BootVolume": "block storage within the 200 GB",
    "oci:Core/volumeBackup:VolumeBackup": "one of the five volume backups",
    "oci:Core/bootVolumeBackup:BootVolumeBackup": "one of the five volume backups",
    "oci:ObjectStorage/bucket:Bucket": "Object Storage within the 20 GB",
    "oci:NetworkLoadBalancer/networkLoadBalancer:NetworkLoadBalancer": "the one Always Free network load balancer",
    # Configuration of those, or services Oracle does not charge for.
    "oci:Core/image:Image": "the custom image the instances boot",
    "oci:Core/shapeManagement:ShapeManagement": "an image's compatible shapes (metadata)",
    "oci:Core/volumeAttachment:VolumeAttachment": "attaches a metered volume",
    "oci:Core/volumeBackupPolicy:VolumeBackupPolicy": "schedules the metered backups",
    "oci:Core/volumeBackupPolicyAssignment:VolumeBackupPolicyAssignment": "schedules the metered backups",
    "oci:Core/vcn:Vcn": "one of the two Always Free VCNs",
    "oci:Core/subnet:Subnet": "networking (no charge)",
    "oci:Core/internetGateway:InternetGateway": "networking (no charge)",
    "oci:Core/routeTable:RouteTable": "networking (no charge)",
    "oci:Core/defaultRouteTable:DefaultRouteTable": "networking (no charge)",
    "oci:Core/securityList:SecurityList": "networking (no charge)",
    "oci:Core/defaultSecurityList:DefaultSecurityList": "networking (no charge)",
    "oci:Core/networkSecurityGroup:NetworkSecurityGroup": "networking (no charge)",
    "oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule": "networking (no charge)",
    "oci:Core/publicIp:PublicIp": "a reserved public IPv4 address (no charge)",
    "oci:NetworkLoadBalancer/listener:Listener": "part of the network load balancer",
    "oci:NetworkLoadBalancer/networkLoadBalancersBackendSetsUnified:NetworkLoadBalancersBackendSetsUnified": (
        "part of the network load balancer"
    ),
    "oci:ObjectStorage/objectLifecyclePolicy:ObjectLifecyclePolicy": "a bucket's retention rules",
    "oci:Bastion/bastion:Bastion": "the Bastion service (no charge)",
    "oci:Bastion/session:Session": "the Bastion service (no charge)",
    "oci:Identity/customerSecretKey:CustomerSecretKey": "IAM (no charge)",
    "oci:Identity/compartment:Compartment": "IAM (no charge)",
    "oci:Identity/policy:Policy": "IAM (no charge)",
    "oci:Identity/dynamicGroup:DynamicGroup": "IAM (no charge)",
    "oci:ObjectStorage/preauthrequest:Preauthrequest": "access to a bucket's objects (no charge)",
    # Always Free up to an allowance of their own, which this project does not meter.
    "oci:Monitoring/alarm:Alarm": "Monitoring (Always Free ingestion and retrieval allowance)",
    "oci:Ons/notificationTopic:NotificationTopic": "Notifications (Always Free delivery allowance)",
    "oci:Ons/subscription:Subscription": "Notifications (Always Free delivery allowance)",
    "oci:Logging/logGroup:LogGroup": "Logging (Always Free storage allowance)",
    "oci:Logging/log:Log": "Logging (Always Free storage allowance)",
    "oci:Vault/secret:Secret": "Vault secrets (Always Free count)",
}
"""The OCI resource types a cloud stack may create without leaving the Always Free tier (NFR-012),
with why each costs nothing. BUD-02 refuses any other `oci:` type: a service outside this list is
billed from its first hour (a File Storage file system, a dedicated VM host, ...).
Check Oracle's Always Free list before adding one."""


@dataclass(frozen=True)
class AlwaysFreeLimits:
    """Oracle's Always Free allowance since mid-June 2026.

    1,500 OCPU-hours and 9,000 GB-hours of Ampere A1 per month (2 OCPU and 12 GB running all
    month), 200 GB of block storage including boot volumes (at least 50 GB each), five volume
    backups, two VM.Standard.E2.1.Micro instances, one network load balancer (it uses no OCPU,
    memory or block storage, so it is counted on its own).
    """

    a1_ocpus: float = 2
    a1_memory_gb: float = 12
    block_storage_gb: int = 200
    min_boot_volume_gb: int = 50
    volume_backups: int = 5
    e2_micro_instances: int = 2
    network_load_balancers: int = 1
    object_storage_gb: float = 20
    """Object Storage, Standard, Infrequent Access and Archive together."""


ALWAYS_FREE = AlwaysFreeLimits()


@dataclass(frozen=True)
class Machine:
    """One instance of a layout as it counts against the allowance."""

    name: str
    shape: str
    ocpus: float
    memory_gb: float
    boot_volume_gb: float
    keeps_boot_volume: bool = False
    """The boot volume outlives the instance (it holds data): a replaced instance leaves it behind,
    counted against the same block storage until it is reclaimed."""


@dataclass(frozen=True)
class Layout:
    """Everything of a cloud stack that the allowance meters."""

    machines: tuple[Machine, ...]
    block_volumes_gb: Mapping[str, float] = field(default_factory=dict)
    """Block volumes that are not boot volumes of `machines`, keyed by name."""
    network_load_balancers: int = 0
    volume_backups: int = 0
    object_storage_gb: Mapping[str, float] = field(default_factory=dict)
    """Buckets, keyed by name, at the most each is expected to hold."""


@dataclass(frozen=True)
class Usage:
    a1_ocpus: float
    a1_memory_gb: float
    block_storage_gb: float
    e2_micro_instances: int
    network_load_balancers: int
    volume_backups: int
    object_storage_gb: float
    block_storage_while_replacing_gb: float
    """Block storage right after the instance with the largest kept boot volume is replaced: its old
    boot volume is still there (and billed, or blocking the launch) until it is reclaimed."""


def usage(layout: Layout) -> Usage:
    a1 = [m for m in layout.machines if m.shape == A1_FLEX]
    block = sum(m.boot_volume_gb for m in layout.machines) + sum(layout.block_volumes_gb.values())
    kept = [m.boot_volume_gb for m in layout.machines if m.keeps_boot_volume]
    return Usage(
        a1_ocpus=sum(m.ocpus for m in a1),
        a1_memory_gb=sum(m.memory_gb for m in a1),
        block_storage_gb=block,
        e2_micro_instances=sum(1 for m in layout.machines if m.shape == E2_MICRO),
        network_load_balancers=layout.network_load_balancers,
        volume_backups=layout.volume_backups,
        object_storage_gb=sum(layout.object_storage_gb.values()),
        block_storage_while_replacing_gb=block + max(kept, default=0),
    )


def _n(value: float) -> str:
    return f"{value:g}"


def problems(layout: Layout, limits: AlwaysFreeLimits = ALWAYS_FREE) -> list[str]:
    """Every way `layout` exceeds `limits` (empty when it fits)."""
    used = usage(layout)
    found: list[str] = []
    if used.a1_ocpus > limits.a1_ocpus:
        found.append(f"A1 OCPUs: {_n(used.a1_ocpus)} used, {_n(limits.a1_ocpus)} free")
    if used.a1_memory_gb > limits.a1_memory_gb:
        found.append(f"A1 memory: {_n(used.a1_memory_gb)} GB used, {_n(limits.a1_memory_gb)} GB free")
    if used.block_storage_gb > limits.block_storage_gb:
        found.append(f"block storage: {_n(used.block_storage_gb)} GB used, {limits.block_storage_gb} GB free")
    if used.volume_backups > limits.volume_backups:
        found.append(f"volume backups: {used.volume_backups} used, {limits.volume_backups} free")
    if used.e2_micro_instances > limits.e2_micro_instances:
        found.append(f"E2.1.Micro: {used.e2_micro_instances} used, {limits.e2_micro_instances} free")
    if used.network_load_balancers > limits.network_load_balancers:
        found.append(
            f"network load balancers: {used.network_load_balancers} used, {limits.network_load_balancers} free"
        )
    if used.object_storage_gb > limits.object_storage_gb:
        found.append(f"object storage: {_n(used.object_storage_gb)} GB used, {_n(limits.object_storage_gb)} GB free")
    found.extend(
        f"{m.name}: boot volume {_n(m.boot_volume_gb)} GB is below the {limits.min_boot_volume_gb} GB minimum"
        for m in layout.machines
        if m.boot_volume_gb < limits.min_boot_volume_gb
    )
    return found


def warnings(layout: Layout, limits: AlwaysFreeLimits = ALWAYS_FREE) -> list[str]:
    """What a replacement would leave over the allowance: each instance whose boot volume is kept.

    Not a problem of the layout (nothing is replaced by an ordinary `up`), but the operator must
    reclaim the old boot volume before or right after replacing such an instance.
    """
    used = usage(layout).block_storage_gb
    return [
        f"replacing {m.name} keeps its {_n(m.boot_volume_gb)} GB boot volume: {_n(used + m.boot_volume_gb)} GB "
        f"of {limits.block_storage_gb} GB until it is reclaimed (cloud runbook: reclaiming a kept boot volume)"
        for m in layout.machines
        if m.keeps_boot_volume and used + m.boot_volume_gb > limits.block_storage_gb
    ]


def fits(layout: Layout, limits: AlwaysFreeLimits = ALWAYS_FREE) -> bool:
    return not problems(layout, limits)


def always_free_summary(layout: Layout, limits: AlwaysFreeLimits = ALWAYS_FREE) -> dict[str, Any]:
    """The `always_free_usage` stack output (the common budget output shape)."""
    used = usage(layout)
    return {
        "a1_ocpus": {"used": used.a1_ocpus, "quota": limits.a1_ocpus},
        "a1_memory_gb": {"used": used.a1_memory_gb, "quota": limits.a1_memory_gb},
        "block_storage_gb": {"used": used.block_storage_gb, "quota": limits.block_storage_gb},
        "e2_micro_instances": {"used": used.e2_micro_instances, "quota": limits.e2_micro_instances},
        "network_load_balancers": {"used": used.network_load_balancers, "quota": limits.network_load_balancers},
        "block_storage_while_replacing_gb": {
            "used": used.block_storage_while_replacing_gb,
            "quota": limits.block_storage_gb,
        },
        "object_storage_gb": {"used": used.object_storage_gb, "quota": limits.object_storage_gb},
        "within_quota": fits(layout, limits),
        "problems": problems(layout, limits),
        "warnings": warnings(layout, limits),
    }


EXPECTED_GB_TAG = "expected-gb"
"""Freeform tag of an OCI bucket: the most it is expected to hold (GB), what BUD-04 counts against
the Always Free object storage (a bucket has no size of its own to read)."""


def bucket_tags(expected_gb: float) -> dict[str, str]:
    return {EXPECTED_GB_TAG: _n(expected_gb)}


PRD_ORIGINAL_LAYOUT = Layout(
    machines=(
        Machine("oci-mgmt", A1_FLEX, ocpus=1, memory_gb=6, boot_volume_gb=50),
        Machine("cloud-1", A1_FLEX, ocpus=1.5, memory_gb=9, boot_volume_gb=50),
        Machine("cloud-2", A1_FLEX, ocpus=1.5, memory_gb=9, boot_volume_gb=50),
    ),
    block_volumes_gb={"oci-mgmt-data": 50},
)
"""The PRD v2 plan (NFR-011, FR-002): a management VM and a two-node CLOUD cluster, 4 OCPU / 24 GB."""


# --- Host memory (NFR-010) -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModeTotal:
    """One host mode's memory, in MiB: what the guests here, other stacks and the host take."""

    here_mb: float
    other_stacks_mb: float
    reserved_mb: float

    @property
    def total_mb(self) -> float:
        return self.here_mb + self.other_stacks_mb + self.reserved_mb


def mode_total_mb(guest_memory_mb: Iterable[float], other_stacks_mb: float, reserved_mb: float) -> ModeTotal:
    """A mode's memory: its guests, the guests other stacks run in it, and the host reservations."""
    return ModeTotal(sum(guest_memory_mb), other_stacks_mb, reserved_mb)


# --- Reading the exported budgets back -----------------------------------------------------------


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


def quota_rows(value: Mapping[str, Any]) -> tuple[QuotaRow, ...]:
    """The `{"used", "quota"}` items of any summary in the common budget output shape."""
    return tuple(
        QuotaRow(item=str(item), used=float(figures["used"]), quota=float(figures["quota"]))
        for item, figures in value.items()
        if isinstance(figures, Mapping) and "used" in figures and "quota" in figures
    )


def stack_output(recording: "Recording", name: str) -> tuple[Any, str | None]:
    """An output's value, or why it cannot be shown."""
    output = recording.outputs.get(name)
    if output is None:
        return None, "not exported by this stack"
    if output.secret:
        return None, "secret"
    if not output.known:
        return None, "not known until `pulumi up`"
    return output.value, None


def host_capacity(recording: "Recording") -> HostCapacity | None:
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


def always_free_usage(recording: "Recording") -> AlwaysFreeUsage | None:
    value, why = stack_output(recording, "always_free_usage")
    if why is not None or not isinstance(value, Mapping):
        return None
    rows = quota_rows(value)
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


def budget_lines(recording: "Recording") -> list[str]:
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
    cost = cost_estimate(recording)
    if cost is not None:
        lines.append(f"  Cost (NFR-012), in {cost.currency}:")
        lines.append(f"    {'item':<52} {'monthly':>9} {'yearly':>10}")
        for item in cost.lines:
            lines.append(f"    {item.item:<52} {money(item.monthly):>9} {money(item.yearly):>10}")
        lines.append(f"    {'total':<52} {money(cost.monthly_total):>9} {money(cost.yearly_total):>10}")
        if cost.verdict is not None:
            lines.append(f"    {cost.verdict.sentence()}")
    return lines


# --- Yearly cost (NFR-012) -----------------------------------------------------------------------

NFR_012_CAP = 1000.0
NFR_012_CAP_CURRENCY = "USD"
"""NFR-012: the estate runs for under $1,000 a year (PRD v2.0, 2.6)."""

ANCHOR_CURRENCY = "USD"
"""The currency conversions go through: the cap and Oracle's list prices are in US dollars."""

DEFAULT_USD_RATES: Mapping[str, float] = {"EUR": 1.16}
"""US dollars per unit of another currency (a late-2025 reference rate; set the day's rate in
`homelab:cost.usd_rates` or the BUD-08 policy config)."""

Rates = Mapping[Any, float]
"""Currency code -> US dollars per unit (keys are `str`, or a `Literal` of codes in the config model)."""

HOURS_PER_MONTH = 744
"""Oracle bills a month as 744 hours; the hour figures of the list prices are turned into months with it."""


@dataclass(frozen=True)
class OciListPrices:
    """Oracle's pay-as-you-go list prices (USD per unit and month) for what exceeds the Always Free
    allowance (oracle.com/cloud/price-list). Only what the allowance meters by size is priced:
    E2.1.Micro instances beyond two cannot be bought (the launch fails), and a volume backup costs
    by the GB it stores, not by count, so those two are reported over quota, not priced."""

    a1_ocpus: float = 0.01 * HOURS_PER_MONTH
    """Ampere A1: 0.01 per OCPU-hour."""
    a1_memory_gb: float = 0.0015 * HOURS_PER_MONTH
    """Ampere A1: 0.0015 per GB-hour."""
    block_storage_gb: float = 0.0255 + 10 * 0.0017
    """Block volume storage (0.0255 per GB-month) at the Balanced performance level (10 VPUs at
    0.0017 per VPU-GB-month)."""
    object_storage_gb: float = 0.0255
    """Object Storage, Standard tier, per GB-month."""
    network_load_balancers: float = 0.0
    """The flexible network load balancer has no charge."""


OCI_LIST_PRICES = OciListPrices()


@dataclass(frozen=True)
class Excess:
    item: str
    over: float
    """How much of `item` is used beyond the allowance."""
    monthly_usd: float | None
    """Its list price a month, None when it cannot be priced (see `OciListPrices`)."""


def cloud_excess(always_free: Mapping[str, Any], prices: Mapping[Any, float]) -> list[Excess]:
    """What a cloud stack's `always_free_usage` summary uses beyond the allowance, priced.

    Within the allowance the list is empty (the cloud costs nothing). The transient
    `block_storage_while_replacing_gb` row is a warning about a replacement, not a running cost.
    """
    found: list[Excess] = []
    for row in quota_rows(always_free):
        if row.item == "block_storage_while_replacing_gb" or row.used <= row.quota:
            continue
        over = row.used - row.quota
        price = prices.get(row.item)
        found.append(Excess(row.item, over, None if price is None else round(over * float(price), 4)))
    return found


def convert(amount: float, source: str, target: str, usd_rates: Rates) -> float | None:
    """`amount` in `source` expressed in `target` through the US dollar; None without a rate."""
    if source == target:
        return amount
    rates = {**{str(k): float(v) for k, v in usd_rates.items()}, ANCHOR_CURRENCY: 1.0}
    if source not in rates or target not in rates:
        return None
    return amount * rates[source] / rates[target]


def money(amount: float) -> str:
    return f"{amount:,.2f}"


@dataclass(frozen=True)
class CapVerdict:
    """A yearly total set against the NFR-012 cap, converted only through a stated rate."""

    total: float
    currency: str
    cap: float
    cap_currency: str
    total_in_cap_currency: float | None
    """None when the currencies differ and no rate converts one into the other: not compared."""
    rate: float | None = None
    """Units of the cap's currency per unit of the estimate's (1 when they are the same)."""

    @property
    def cap_in_currency(self) -> float | None:
        """The cap in the estimate's currency (None when not compared)."""
        return None if not self.rate else self.cap / self.rate

    @property
    def compared(self) -> bool:
        return self.total_in_cap_currency is not None

    @property
    def within(self) -> bool | None:
        return None if self.total_in_cap_currency is None else self.total_in_cap_currency <= self.cap

    def sentence(self) -> str:
        """The report's line, e.g. `Yearly total: 261.36 EUR (303.18 USD at 1.16 USD/EUR) of the
        1,000.00 USD cap (NFR-012): within it, 696.82 USD to spare.`"""
        total = f"Yearly total: {money(self.total)} {self.currency}"
        cap = f"the {money(self.cap)} {self.cap_currency} cap (NFR-012)"
        if self.total_in_cap_currency is None:
            return (
                f"{total}; {cap} is in another currency and no exchange rate between {self.currency} and "
                f"{self.cap_currency} is configured: not compared."
            )
        converted = ""
        if self.currency != self.cap_currency:
            converted = (
                f" ({money(self.total_in_cap_currency)} {self.cap_currency} at {self.rate or 0:.4g} "
                f"{self.cap_currency}/{self.currency})"
            )
        margin = self.cap - self.total_in_cap_currency
        verdict = (
            f"within it, {money(margin)} {self.cap_currency} to spare"
            if margin >= 0
            else f"OVER it by {money(-margin)} {self.cap_currency}"
        )
        return f"{total}{converted} of {cap}: {verdict}."


def cap_verdict(total: float, currency: str, cap: float, cap_currency: str, usd_rates: Rates) -> CapVerdict:
    rate = convert(1.0, currency, cap_currency, usd_rates)
    return CapVerdict(
        total=total,
        currency=currency,
        cap=cap,
        cap_currency=cap_currency,
        total_in_cap_currency=None if rate is None else round(total * rate, 2),
        rate=rate,
    )


@dataclass(frozen=True)
class CostLine:
    item: str
    monthly: float
    yearly: float


@dataclass(frozen=True)
class CostEstimate:
    """The `cost_estimate` output of the prod stack, read back."""

    currency: str
    lines: tuple[CostLine, ...]
    yearly_total: float
    monthly_total: float
    verdict: CapVerdict | None
    """None when the output carries no cap (an older state)."""

    def chart_json(self) -> dict[str, Any]:
        """The chart-friendly form (`homelab preview --json`, `cost` of a stack)."""
        verdict = self.verdict
        return {
            "currency": self.currency,
            "items": [{"item": li.item, "monthly": li.monthly, "yearly": li.yearly} for li in self.lines],
            "monthlyTotal": self.monthly_total,
            "yearlyTotal": self.yearly_total,
            "cap": None
            if verdict is None
            else {
                "yearly": verdict.cap,
                "currency": verdict.cap_currency,
                "yearlyTotalInCapCurrency": verdict.total_in_cap_currency,
                "compared": verdict.compared,
                "within": verdict.within,
                "summary": verdict.sentence(),
            },
        }


def cost_estimate(recording: "Recording") -> CostEstimate | None:
    value, why = stack_output(recording, "cost_estimate")
    if why is not None or not isinstance(value, Mapping):
        return None
    return parse_cost_estimate(value)


def parse_cost_estimate(value: Mapping[str, Any]) -> CostEstimate:
    lines = tuple(
        CostLine(str(li.get("item")), float(li.get("monthly", 0)), float(li.get("yearly", 0)))
        for li in value.get("lines", [])
        if isinstance(li, Mapping)
    )
    currency = str(value.get("currency", ""))
    total = float(value.get("yearly_total", 0))
    cap = value.get("cap")
    verdict = (
        cap_verdict(total, currency, float(cap["yearly"]), str(cap["currency"]), cap.get("usd_rates") or {})
        if isinstance(cap, Mapping)
        else None
    )
    return CostEstimate(
        currency=currency,
        lines=lines,
        yearly_total=total,
        monthly_total=round(sum(li.monthly for li in lines), 2),
        verdict=verdict,
    )
