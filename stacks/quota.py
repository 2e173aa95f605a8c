"""The OCI Always Free allowance as data, and what a cloud layout uses of it (NFR-011).

Pure functions: the cloud stack exports the summary (`always_free_usage`), the offline preview
prints it, the tests check layouts against it. The budget policy applies the same limits to the
recorded resources, so a layout that slips past this summary is still stopped before `pulumi up`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from stacks.config.base import ConfigModel

A1_FLEX = "VM.Standard.A1.Flex"
E2_MICRO = "VM.Standard.E2.1.Micro"
Shape = Literal["VM.Standard.A1.Flex", "VM.Standard.E2.1.Micro"]


class AlwaysFreeQuota(ConfigModel):
    """`homelab:quota`: the Always Free limits the layout must fit.

    The defaults are Oracle's allowance since mid-June 2026: 1,500 OCPU-hours and 9,000 GB-hours of
    Ampere A1 per month (2 OCPU and 12 GB running all month), 200 GB of block storage including
    boot volumes (at least 50 GB each), two VM.Standard.E2.1.Micro instances, and one network
    load balancer (it uses no OCPU, memory or block storage, so it is counted on its own).
    """

    a1_ocpus: float = Field(default=2, gt=0, le=64)
    a1_memory_gb: float = Field(default=12, gt=0, le=1024)
    block_storage_gb: int = Field(default=200, gt=0, le=10_000)
    min_boot_volume_gb: int = Field(default=50, ge=50, le=32_768)
    e2_micro_instances: int = Field(default=2, ge=0, le=10)
    network_load_balancers: int = Field(default=1, ge=0, le=10)
    object_storage_gb: float = Field(default=20, ge=0, le=100_000)
    """Object Storage (Standard, Infrequent Access and Archive together)."""


@dataclass(frozen=True)
class Machine:
    """One instance of a layout as it counts against the allowance."""

    name: str
    shape: Shape
    ocpus: float
    memory_gb: float
    boot_volume_gb: int
    keeps_boot_volume: bool = False
    """The boot volume outlives the instance (it holds data): a replaced instance leaves it behind,
    counted against the same block storage until it is reclaimed."""


@dataclass(frozen=True)
class Layout:
    """Everything of a cloud stack that the allowance meters."""

    machines: tuple[Machine, ...]
    block_volumes_gb: Mapping[str, int] = field(default_factory=dict)
    """Extra block volumes (not boot volumes), keyed by name."""
    network_load_balancers: int = 0
    object_storage_gb: Mapping[str, float] = field(default_factory=dict)
    """Buckets, keyed by name, at the most each is expected to hold."""


@dataclass(frozen=True)
class Usage:
    a1_ocpus: float
    a1_memory_gb: float
    block_storage_gb: int
    e2_micro_instances: int
    network_load_balancers: int
    block_storage_while_replacing_gb: int
    """Block storage right after the instance with the largest kept boot volume is replaced: its old
    boot volume is still there (and billed, or blocking the launch) until it is reclaimed."""
    object_storage_gb: float = 0


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
        block_storage_while_replacing_gb=block + max(kept, default=0),
        object_storage_gb=sum(layout.object_storage_gb.values()),
    )


def problems(layout: Layout, quota: AlwaysFreeQuota) -> list[str]:
    """Every way `layout` exceeds `quota` (empty when it fits)."""
    used = usage(layout)
    found: list[str] = []
    if used.a1_ocpus > quota.a1_ocpus:
        found.append(f"A1 OCPUs: {used.a1_ocpus:g} used, {quota.a1_ocpus:g} free")
    if used.a1_memory_gb > quota.a1_memory_gb:
        found.append(f"A1 memory: {used.a1_memory_gb:g} GB used, {quota.a1_memory_gb:g} GB free")
    if used.block_storage_gb > quota.block_storage_gb:
        found.append(f"block storage: {used.block_storage_gb} GB used, {quota.block_storage_gb} GB free")
    if used.e2_micro_instances > quota.e2_micro_instances:
        found.append(f"E2.1.Micro: {used.e2_micro_instances} used, {quota.e2_micro_instances} free")
    if used.network_load_balancers > quota.network_load_balancers:
        found.append(f"network load balancers: {used.network_load_balancers} used, {quota.network_load_balancers} free")
    if used.object_storage_gb > quota.object_storage_gb:
        found.append(f"object storage: {used.object_storage_gb:g} GB used, {quota.object_storage_gb:g} GB free")
    found.extend(
        f"{m.name}: boot volume {m.boot_volume_gb} GB is below the {quota.min_boot_volume_gb} GB minimum"
        for m in layout.machines
        if m.boot_volume_gb < quota.min_boot_volume_gb
    )
    return found


def warnings(layout: Layout, quota: AlwaysFreeQuota) -> list[str]:
    """What a replacement would leave over the quota: each instance whose boot volume is kept.

    Not a problem of the layout (nothing is replaced by an ordinary `up`), but the operator must
    reclaim the old boot volume before or right after replacing such an instance.
    """
    used = usage(layout).block_storage_gb
    return [
        f"replacing {m.name} keeps its {m.boot_volume_gb} GB boot volume: {used + m.boot_volume_gb} GB of "
        f"{quota.block_storage_gb} GB until it is reclaimed (cloud runbook: reclaiming a kept boot volume)"
        for m in layout.machines
        if m.keeps_boot_volume and used + m.boot_volume_gb > quota.block_storage_gb
    ]


def fits(layout: Layout, quota: AlwaysFreeQuota) -> bool:
    return not problems(layout, quota)


def summary(layout: Layout, quota: AlwaysFreeQuota) -> dict[str, Any]:
    """The `always_free_usage` stack output: used vs free per metered item, and the verdict."""
    used = usage(layout)
    return {
        "a1_ocpus": {"used": used.a1_ocpus, "quota": quota.a1_ocpus},
        "a1_memory_gb": {"used": used.a1_memory_gb, "quota": quota.a1_memory_gb},
        "block_storage_gb": {"used": used.block_storage_gb, "quota": quota.block_storage_gb},
        "e2_micro_instances": {"used": used.e2_micro_instances, "quota": quota.e2_micro_instances},
        "network_load_balancers": {"used": used.network_load_balancers, "quota": quota.network_load_balancers},
        "block_storage_while_replacing_gb": {
            "used": used.block_storage_while_replacing_gb,
            "quota": quota.block_storage_gb,
        },
        "object_storage_gb": {"used": used.object_storage_gb, "quota": quota.object_storage_gb},
        "within_quota": fits(layout, quota),
        "problems": problems(layout, quota),
        "warnings": warnings(layout, quota),
    }


PRD_ORIGINAL_LAYOUT = Layout(
    machines=(
        Machine("oci-mgmt", A1_FLEX, ocpus=1, memory_gb=6, boot_volume_gb=50),
        Machine("cloud-1", A1_FLEX, ocpus=1.5, memory_gb=9, boot_volume_gb=50),
        Machine("cloud-2", A1_FLEX, ocpus=1.5, memory_gb=9, boot_volume_gb=50),
    ),
    block_volumes_gb={"oci-mgmt-data": 50},
)
"""The PRD v2 plan (NFR-011, FR-002): a management VM and a two-node CLOUD cluster, 4 OCPU / 24 GB."""
