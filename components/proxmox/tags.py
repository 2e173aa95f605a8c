"""Proxmox VM tags: who a guest belongs to and in which host modes it runs.

Proxmox stores tags sorted; giving them sorted keeps every preview free of a spurious diff. The
`mode-*` tags let a policy recompute the host's memory per mode from the registered VMs alone.
"""

from collections.abc import Iterable
from typing import Literal

HostMode = Literal["normal", "testing", "gaming"]
HOST_MODES: tuple[HostMode, ...] = ("normal", "testing", "gaming")
MODE_TAG_PREFIX = "mode-"


def mode_tag(mode: HostMode) -> str:
    return f"{MODE_TAG_PREFIX}{mode}"


def vm_tags(labels: Iterable[str], modes: Iterable[HostMode]) -> list[str]:
    """Sorted, de-duplicated tags: the given labels plus one `mode-<mode>` tag per mode."""
    return sorted({*labels, *(mode_tag(m) for m in modes)})
