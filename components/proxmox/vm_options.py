"""Settings every Proxmox VM of the project shares, so an unchanged VM previews with no diff.

pulumi-proxmoxve 8.x (the bpg provider bridged) reads back an all-zero `speed` block for every disk
and proposes to remove it on each preview (muhlba91/pulumi-proxmoxve#664). No disk here sets a speed
limit, so ignoring `disks[i].speed` hides nothing the program manages; set a limit and this must go.

`reboot_after_update` defaults to true: the provider then reboots a running VM after any update it
considers to need one, also for the phantom `speed` change. Off: a change that needs a restart stays
pending in Proxmox (shown in the VM's Hardware tab) until the operator reboots the guest.
"""

from collections.abc import Sequence

REBOOT_AFTER_UPDATE = False


def ignored_provider_noise(disk_count: int) -> list[str]:
    """`ignore_changes` paths for the fields the provider reports differently from what it was given."""
    return [f"disks[{i}].speed" for i in range(disk_count)]


def vm_ignore_changes(disk_count: int, managed_elsewhere: Sequence[str] = ()) -> list[str]:
    """The provider's noise plus the fields changed by hand or by another tool (boot media, power)."""
    return [*managed_elsewhere, *ignored_provider_noise(disk_count)]
