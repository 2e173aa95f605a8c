"""Resource budgets: the 64 GB Proxmox host's modes and the OCI Always Free quota (NFR-010, NFR-011, NFR-012).

The limits are data: every figure is policy config with the current defaults (the Always Free Arm
allowance shrank to 2 OCPU / 12 GB in June 2026), so a stack's `--policy-pack-config` document
carries the ledger of the other stacks and the host reservations. The defaults and the arithmetic
are the budget model's (`homelab.budget`): these rules only turn recorded resources into its
`Layout` / per-mode figures, so the policy and the stacks' exported summaries cannot disagree.
"""

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from homelab.budget import (
    ALWAYS_FREE,
    ALWAYS_FREE_CATALOGUE,
    DEFAULT_USD_RATES,
    E2_MICRO,
    EXPECTED_GB_TAG,
    FREE_SHAPES,
    NFR_012_CAP,
    NFR_012_CAP_CURRENCY,
    Layout,
    Machine,
    cap_verdict,
    mode_total_mb,
    money,
    usage,
)
from policies.rules import registry as reg
from policies.rules.base import Rule, resource_rule, stack_rule
from policies.rules.walk import containers, get, items, mapping, number, of_type, pod_spec

Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]
Config = Mapping[str, Any]

# bpg's default when `memory.dedicated` is unset.
PVE_DEFAULT_MEMORY_MB = 512
# OCI's defaults when sizes are unset.
OCI_DEFAULT_BOOT_VOLUME_GB = 50
OCI_DEFAULT_VOLUME_GB = 1024
# A Flex shape without shape_config is sized by the console defaults.
A1_DEFAULT_OCPUS = 1
A1_DEFAULT_MEMORY_GB = 6

MODE_TAG_PREFIX = "mode-"
# Resource types of the OCI provider (`pulumi:providers:oci` itself is not a billed resource).
OCI_PACKAGE = "oci:"
STACK_TYPE = "pulumi:pulumi:Stack"


def _gib(mb: float) -> str:
    return f"{mb / 1024:.1f} GiB"


def _guest_modes(guest: PolicyResource, modes: list[str]) -> list[str]:
    """The modes a guest runs in, from its `mode-<name>` tags; an untagged guest runs in every mode."""
    tags = [str(t) for t in items(get(guest.props, "tags"))]
    tagged = [t.removeprefix(MODE_TAG_PREFIX) for t in tags if t.startswith(MODE_TAG_PREFIX)]
    return [m for m in modes if m in tagged] if tagged else list(modes)


def guest_memory_mb(guest: PolicyResource) -> float:
    return number(get(guest.props, "memory.dedicated"), PVE_DEFAULT_MEMORY_MB)


# What every mode adds besides this stack's guests (BUD-01 and BUD-06 total a mode the same way).
LEDGER_CONFIG: Mapping[str, Mapping[str, Any]] = {
    "reservedMb": {
        "type": "number",
        "default": 12288,
        "description": "Memory the host keeps for itself in every mode: Proxmox and the ZFS ARC cap (MiB).",
    },
    "otherStacksMb": {
        "type": "object",
        "additionalProperties": {"type": "number"},
        "default": {},
        "description": "Per mode, memory of the guests other stacks run on the same host (MiB).",
    },
}


def _mode_totals(
    guests: list[PolicyResource], modes: list[str], config: Config
) -> dict[str, tuple[float, float, float, float]]:
    """Per mode this stack's guests run in: (total, guests here, other stacks, reservations) in MiB."""
    reserved = number(config["reservedMb"])
    totals: dict[str, tuple[float, float, float, float]] = {}
    for mode in modes:
        running = [g for g in guests if mode in _guest_modes(g, modes)]
        if not running:
            # This stack adds nothing to the mode; the stacks that do answer for it.
            continue
        total = mode_total_mb(
            (guest_memory_mb(g) for g in running), number(config["otherStacksMb"].get(mode, 0)), reserved
        )
        totals[mode] = (total.total_mb, total.here_mb, total.other_stacks_mb, total.reserved_mb)
    return totals


def _parts(here: float, elsewhere: float, reserved: float) -> str:
    return f"{_gib(here)} guests here + {_gib(elsewhere)} other stacks + {_gib(reserved)} host reservations"


def _guests(args: StackValidationArgs) -> list[PolicyResource]:
    return of_type(args.resources, reg.PVE_VM_TYPES | reg.PVE_CONTAINER_TYPES)


@stack_rule(
    id="BUD-01",
    slug="proxmox-stack-enforce-host-memory",
    nfr="NFR-010",
    topic="budget",
    description="In every host mode (normal, testing, gaming) the guests that run in it, the other stacks' guests "
    "and the host reservations (Proxmox, ZFS ARC) fit the 64 GB host, and no guest balloons above its "
    "dedicated memory (NFR-010: maximum 64 GB).",
    fix="lower `memory_mb` of a guest in that mode or take the guest out of the mode (`modes` in the stack "
    "config, which sets its `mode-*` tags); then regenerate the policy config (`make policy-config`).",
    config={
        "hostMemoryMb": {"type": "number", "default": 65536, "description": "Physical memory of the host (MiB)."},
        **LEDGER_CONFIG,
        "modes": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["normal", "testing", "gaming"],
            "description": "Host modes; a guest runs in those its `mode-<name>` tags name (all when untagged).",
        },
    },
)
def host_memory_cap(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    guests = _guests(args)
    if not guests:
        return
    for guest in guests:
        floating, dedicated = number(get(guest.props, "memory.floating")), guest_memory_mb(guest)
        if floating > dedicated:
            report(f"guest '{guest.name}' balloons to {floating:g} MiB, above its {dedicated:g} MiB.", guest.urn)
    cap = number(config["hostMemoryMb"])
    for mode, (total, here, elsewhere, reserved) in _mode_totals(guests, list(config["modes"]), config).items():
        if total > cap:
            needs = f"mode {mode} needs {_gib(total)} ({_parts(here, elsewhere, reserved)})"
            report(f"{needs}, over the host's {_gib(cap)}.", None)


@stack_rule(
    id="BUD-06",
    slug="proxmox-stack-configure-mode-targets",
    nfr="NFR-010",
    topic="budget",
    description="Each host mode stays near the PRD's target (normal ≈ 28 GB, testing ≈ 32 GB, gaming ≈ 48 GB, "
    "host reservations included) (NFR-010). Advisory: the PRD's figures are estimates, the hard limit is BUD-01.",
    fix="shrink a guest of that mode, or record the new plan by changing the target in the capacity ledger "
    "(stacks/capacity.py) and regenerating the policy config.",
    level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
    config={
        **LEDGER_CONFIG,
        "modeTargetsMb": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "default": {"normal": 28672, "testing": 32768, "gaming": 49152},
            "description": "Target memory of each mode, host reservations included (MiB).",
        },
    },
)
def host_mode_targets(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    guests = _guests(args)
    if not guests:
        return
    targets: Mapping[str, Any] = config["modeTargetsMb"]
    for mode, (total, here, elsewhere, reserved) in _mode_totals(guests, list(targets), config).items():
        target = number(targets[mode])
        if total > target:
            needs = f"mode {mode} needs {_gib(total)} ({_parts(here, elsewhere, reserved)})"
            report(f"{needs}, over its {_gib(target)} target.", None)


# Provider property that starts a guest when the host boots, per guest type (both default to true).
_BOOT_START_PROPERTY: Mapping[str, str] = {
    **dict.fromkeys(reg.PVE_VM_TYPES, "onBoot"),
    **dict.fromkeys(reg.PVE_CONTAINER_TYPES, "startOnBoot"),
}


@resource_rule(
    id="BUD-07",
    slug="proxmox-guest-disable-boot-start-outside-normal-mode",
    nfr="NFR-010",
    topic="budget",
    description="A guest that does not run in the mode the host boots into (normal: DEV runs in testing mode, "
    "the gaming VM in gaming mode) does not start when the host boots; otherwise a reboot starts every mode's "
    "guests at once and the host runs out of memory (NFR-010).",
    fix="set `on_boot=False` (containers: `start_on_boot=False`); the Talos substrate and the gaming VM derive "
    "it from the guest's `modes`. Start the guest by hand when switching the host into its mode.",
    config={
        "bootModes": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["normal"],
            "description": "Host modes whose guests may start when the host boots (the mode it boots into).",
        }
    },
)
def boot_start_only_in_boot_modes(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    prop = _BOOT_START_PROPERTY.get(args.resource_type)
    if prop is None:
        return
    tags = [str(t) for t in items(get(args.props, "tags"))]
    modes = sorted({t.removeprefix(MODE_TAG_PREFIX) for t in tags if t.startswith(MODE_TAG_PREFIX)})
    boot_modes = [str(m) for m in config["bootModes"]]
    # An untagged guest runs in every mode (as BUD-01 counts it), the boot mode included.
    if not modes or set(modes) & set(boot_modes):
        return
    starts = get(args.props, prop)
    if starts in (False, "false"):
        return
    default = " (unset: the provider's default)" if starts is None else ""
    report(
        f"guest '{args.name}' runs only in mode(s) {', '.join(modes)}, not in the boot mode(s) "
        f"{', '.join(boot_modes)}, but starts on boot{default}."
    )


@resource_rule(
    id="BUD-02",
    slug="oci-resource-enforce-always-free-catalogue",
    nfr="NFR-012",
    topic="budget",
    description="OCI resources are of a type the Always Free catalogue knows (homelab.budget), and instances "
    "use only Always Free shapes (VM.Standard.A1.Flex, VM.Standard.E2.1.Micro) (NFR-012: Oracle Cloud on the "
    "Always Free tier only).",
    fix="set `shape` to VM.Standard.A1.Flex (sized within the quota) or VM.Standard.E2.1.Micro; for another "
    "OCI resource type, drop it, or add it to `allowedTypes` after checking Oracle's Always Free list.",
    config={
        "allowedShapes": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(FREE_SHAPES),
            "description": "Shapes that cost nothing within the quota.",
        },
        "allowedTypes": {
            "type": "array",
            "items": {"type": "string"},
            "default": sorted(ALWAYS_FREE_CATALOGUE),
            "description": "OCI resource types that cost nothing within the Always Free allowance.",
        },
    },
)
def always_free_shapes(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if not args.resource_type.startswith(OCI_PACKAGE):
        return
    if args.resource_type not in config["allowedTypes"]:
        report(f"'{args.name}' is a {args.resource_type}, which is not in the Always Free catalogue.")
        return
    if args.resource_type == reg.OCI_INSTANCE:
        shape = get(args.props, "shape", "")
        if shape not in config["allowedShapes"]:
            report(f"instance '{args.name}' uses shape {shape or '(unset)'}, which is not Always Free.")


def _machine(instance: PolicyResource) -> Machine:
    """A recorded instance as the budget model counts it."""
    return Machine(
        name=instance.name,
        shape=str(get(instance.props, "shape", "")),
        ocpus=number(get(instance.props, "shapeConfig.ocpus"), A1_DEFAULT_OCPUS),
        memory_gb=number(get(instance.props, "shapeConfig.memoryInGbs"), A1_DEFAULT_MEMORY_GB),
        boot_volume_gb=boot_volume_gb(instance),
    )


@stack_rule(
    id="BUD-03",
    slug="oci-stack-enforce-always-free-compute",
    nfr="NFR-011",
    topic="budget",
    description="Ampere A1 instances together stay within the Always Free OCPU and memory allowance (default "
    "2 OCPU / 12 GB since June 2026) and at most two E2.1.Micro exist (NFR-011).",
    fix="shrink `shape_config` (ocpus, memory_in_gbs) of the A1 instances or drop one; raise `a1Ocpus` / "
    "`a1MemoryGb` in the policy config only after confirming the tenancy's allowance.",
    config={
        "a1Ocpus": {"type": "number", "default": ALWAYS_FREE.a1_ocpus, "description": "Always Free A1 OCPUs."},
        "a1MemoryGb": {
            "type": "number",
            "default": ALWAYS_FREE.a1_memory_gb,
            "description": "Always Free A1 memory (GB).",
        },
        "microInstances": {
            "type": "integer",
            "default": ALWAYS_FREE.e2_micro_instances,
            "description": "Always Free E2.1.Micro instances.",
        },
    },
)
def always_free_compute(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    machines = tuple(_machine(i) for i in of_type(args.resources, {reg.OCI_INSTANCE}))
    used = usage(Layout(machines=machines))
    listing = ", ".join(
        f"{m.name}: {m.ocpus:g} OCPU/{m.memory_gb:g} GB" for m in machines if m.shape == "VM.Standard.A1.Flex"
    )
    ocpu_limit, memory_limit = number(config["a1Ocpus"]), number(config["a1MemoryGb"])
    if used.a1_ocpus > ocpu_limit:
        report(f"A1 instances use {used.a1_ocpus:g} OCPUs ({listing}), over the Always Free {ocpu_limit:g}.", None)
    if used.a1_memory_gb > memory_limit:
        report(
            f"A1 instances use {used.a1_memory_gb:g} GB ({listing}), over the Always Free {memory_limit:g} GB.", None
        )
    micro = [m.name for m in machines if m.shape == E2_MICRO]
    micro_limit = int(config["microInstances"])
    if used.e2_micro_instances > micro_limit:
        report(f"{len(micro)} E2.1.Micro instances ({', '.join(micro)}), over the Always Free {micro_limit}.", None)


def boot_volume_gb(instance: PolicyResource) -> float:
    """The boot volume an instance creates (none when it boots an existing BootVolume resource)."""
    if str(get(instance.props, "sourceDetails.sourceType", "image")) != "image":
        return 0.0
    return number(get(instance.props, "sourceDetails.bootVolumeSizeInGbs"), OCI_DEFAULT_BOOT_VOLUME_GB)


@stack_rule(
    id="BUD-04",
    slug="oci-stack-enforce-always-free-storage",
    nfr="NFR-011",
    topic="budget",
    description="Boot volumes (50 GB each when unset) and block volumes together stay within the Always Free "
    "200 GB, with at most five volume backups, and the buckets (backups included) within the 20 GB of object "
    "storage, each counted at the size its `expected-gb` freeform tag declares (NFR-011).",
    fix="shrink `boot_volume_size_in_gbs` / `size_in_gbs` (50 GB is the smallest boot volume) or drop a "
    "volume or backup; tag every bucket with `expected-gb` and keep their sum within `objectStorageGb` (lower "
    "`homelab:backups.oci_bucket.expected_gb`, shorten the offsite retention, or move backups to OVH).",
    config={
        "blockStorageGb": {
            "type": "number",
            "default": ALWAYS_FREE.block_storage_gb,
            "description": "Always Free block storage (GB).",
        },
        "volumeBackups": {
            "type": "integer",
            "default": ALWAYS_FREE.volume_backups,
            "description": "Always Free volume backups.",
        },
        "objectStorageGb": {
            "type": "number",
            "default": ALWAYS_FREE.object_storage_gb,
            "description": "Always Free object storage, every bucket together (GB).",
        },
    },
)
def always_free_storage(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    machines = tuple(_machine(i) for i in of_type(args.resources, {reg.OCI_INSTANCE}))
    volumes: dict[str, float] = {}
    for volume in of_type(args.resources, {reg.OCI_VOLUME}):
        volumes[volume.name] = number(get(volume.props, "sizeInGbs"), OCI_DEFAULT_VOLUME_GB)
    for volume in of_type(args.resources, {reg.OCI_BOOT_VOLUME}):
        volumes[volume.name] = number(get(volume.props, "sizeInGbs"), OCI_DEFAULT_BOOT_VOLUME_GB)
    backups = of_type(args.resources, reg.OCI_BACKUP_TYPES)
    used = usage(Layout(machines=machines, block_volumes_gb=volumes, volume_backups=len(backups)))
    limit = number(config["blockStorageGb"])
    if used.block_storage_gb > limit:
        sizes = {f"{m.name} boot": m.boot_volume_gb for m in machines} | volumes
        listing = ", ".join(f"{name} {size:g}" for name, size in sizes.items() if size)
        report(
            f"block storage totals {used.block_storage_gb:g} GB ({listing}), over the Always Free {limit:g} GB.", None
        )
    if used.volume_backups > int(config["volumeBackups"]):
        report(f"{len(backups)} volume backups, over the Always Free {config['volumeBackups']}.", None)
    buckets: dict[str, float] = {}
    for bucket in of_type(args.resources, {reg.OCI_BUCKET}):
        declared = mapping(get(bucket.props, "freeformTags")).get(EXPECTED_GB_TAG)
        if declared is None or number(declared, -1) < 0:
            report(f"bucket '{bucket.name}' declares no size (freeform tag {EXPECTED_GB_TAG}).", bucket.urn)
            continue
        buckets[bucket.name] = number(declared)
    stored = usage(Layout(machines=(), object_storage_gb=buckets)).object_storage_gb
    object_limit = number(config["objectStorageGb"])
    if stored > object_limit:
        listing = ", ".join(f"{name} {size:g}" for name, size in buckets.items())
        report(f"buckets hold up to {stored:g} GB ({listing}), over the Always Free {object_limit:g} GB.", None)


@resource_rule(
    id="BUD-05",
    slug="kubernetes-container-enforce-resources",
    nfr="NFR-010",
    topic="budget",
    description="Every container requests CPU and memory and caps its memory, so the scheduler can keep the "
    "workloads inside the node VMs' budget (NFR-010).",
    fix="set `resources: {requests: {cpu, memory}, limits: {memory}}` on every container.",
)
def containers_sized(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    pod = pod_spec(args.resource_type, args.props)
    if pod is None:
        return
    for container in containers(pod):
        missing = [
            path
            for path in ("requests.cpu", "requests.memory", "limits.memory")
            if get(container, f"resources.{path}") in (None, "")
        ]
        if missing:
            report(f"'{args.name}' container '{get(container, 'name', '?')}' has no {', '.join(missing)}.")


@stack_rule(
    id="BUD-08",
    slug="stack-enforce-yearly-cost-cap",
    nfr="NFR-012",
    topic="budget",
    description="The stack's yearly cost estimate (its `cost_estimate` output: electricity per host mode, "
    "the cloud beyond Always Free, storage, the domain) stays within the NFR-012 cap (under $1,000 a year). "
    "Advisory: the estimate is a model, not a bill.",
    fix="lower the hours of the costly modes or the power figures in `homelab:cost`, or record a new cap in "
    "`homelab:cost.cap` (then `make policy-config`); an estimate in another currency needs its rate in "
    "`homelab:cost.usd_rates`.",
    level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
    config={
        "yearlyCap": {
            "type": "number",
            "default": NFR_012_CAP,
            "description": "The most the estate may cost a year, in `currency` (NFR-012).",
        },
        "currency": {
            "type": "string",
            "default": NFR_012_CAP_CURRENCY,
            "description": "ISO 4217 code of the cap.",
        },
        "usdRates": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "default": dict(DEFAULT_USD_RATES),
            "description": "US dollars per unit of each other currency: an estimate in another currency than "
            "the cap is converted through them, and not compared (reported) without a rate.",
        },
    },
)
def yearly_cost_cap(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    roots = [r for r in args.resources if r.resource_type == STACK_TYPE]
    if not roots or "cost_estimate" not in roots[0].props:
        return  # this stack exports no estimate (only prod does)
    estimate = roots[0].props["cost_estimate"]
    total, currency = number(get(estimate, "yearly_total")), str(get(estimate, "currency"))
    verdict = cap_verdict(total, currency, number(config["yearlyCap"]), str(config["currency"]), config["usdRates"])
    if verdict.total_in_cap_currency is None:
        report(
            f"the yearly estimate is {money(total)} {currency} and the cap {money(verdict.cap)} "
            f"{verdict.cap_currency}, with no rate between them: not compared.",
            None,
        )
    elif not verdict.within:
        converted = (
            ""
            if currency == verdict.cap_currency
            else f" ({money(verdict.total_in_cap_currency)} {verdict.cap_currency})"
        )
        report(
            f"the yearly estimate is {money(total)} {currency}{converted}, over the NFR-012 cap of "
            f"{money(verdict.cap)} {verdict.cap_currency}.",
            None,
        )


RULES: tuple[Rule, ...] = (
    host_memory_cap,
    host_mode_targets,
    boot_start_only_in_boot_modes,
    always_free_shapes,
    always_free_compute,
    always_free_storage,
    containers_sized,
    yearly_cost_cap,
)
