"""`homelab:quota`: the Always Free limits of the cloud stack, as typed config (NFR-011).

The limits and the arithmetic live in the budget model (`homelab.budget`): this is only the config
section over `AlwaysFreeLimits`, whose defaults it shares.
"""

from pydantic import Field

from homelab.budget import ALWAYS_FREE, AlwaysFreeLimits
from stacks.config.base import ConfigModel


class AlwaysFreeQuotaConfig(ConfigModel):
    """`homelab:quota`: the Always Free limits the layout must fit (defaults: `AlwaysFreeLimits`)."""

    a1_ocpus: float = Field(default=ALWAYS_FREE.a1_ocpus, gt=0, le=64)
    a1_memory_gb: float = Field(default=ALWAYS_FREE.a1_memory_gb, gt=0, le=1024)
    block_storage_gb: int = Field(default=ALWAYS_FREE.block_storage_gb, gt=0, le=10_000)
    min_boot_volume_gb: int = Field(default=ALWAYS_FREE.min_boot_volume_gb, ge=50, le=32_768)
    e2_micro_instances: int = Field(default=ALWAYS_FREE.e2_micro_instances, ge=0, le=10)
    network_load_balancers: int = Field(default=ALWAYS_FREE.network_load_balancers, ge=0, le=10)
    object_storage_gb: float = Field(default=ALWAYS_FREE.object_storage_gb, ge=0, le=100_000)
    """Object Storage (Standard, Infrequent Access and Archive together)."""

    def limits(self) -> AlwaysFreeLimits:
        return AlwaysFreeLimits(
            a1_ocpus=self.a1_ocpus,
            a1_memory_gb=self.a1_memory_gb,
            block_storage_gb=self.block_storage_gb,
            min_boot_volume_gb=self.min_boot_volume_gb,
            e2_micro_instances=self.e2_micro_instances,
            network_load_balancers=self.network_load_balancers,
            object_storage_gb=self.object_storage_gb,
        )
