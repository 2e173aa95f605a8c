"""Talos and Kubernetes versions every cluster may run, checked the same way for all three stacks.

The pinned `pulumiverse_talos` 0.8.1 bundles Talos machinery 1.13, so it can only generate machine
configuration for Talos up to v1.13; each Talos minor supports a window of Kubernetes minors
(Talos support matrix). See docs/decisions/homelab-talos-versions.md.
"""

import re
from typing import Annotated

from pydantic import AfterValidator

# Kubernetes minors each Talos minor supports.
TALOS_KUBERNETES_SUPPORT: dict[int, tuple[int, int]] = {
    9: (27, 32),
    10: (28, 33),
    11: (29, 34),
    12: (30, 35),
    13: (31, 36),
}

_TALOS = re.compile(r"^v1\.(\d+)\.(\d+)$")
_KUBERNETES = re.compile(r"^1\.(\d+)\.(\d+)$")


def _talos_version(value: str) -> str:
    match = _TALOS.match(value)
    if not match:
        raise ValueError("must look like v1.10.6")
    if int(match.group(1)) not in TALOS_KUBERNETES_SUPPORT:
        supported = ", ".join(f"v1.{m}" for m in TALOS_KUBERNETES_SUPPORT)
        raise ValueError(f"the pinned Talos provider supports {supported}")
    return value


def _kubernetes_version(value: str) -> str:
    if not _KUBERNETES.match(value):
        raise ValueError("must look like 1.33.3 (no leading v)")
    return value


TalosVersion = Annotated[str, AfterValidator(_talos_version)]
KubernetesVersion = Annotated[str, AfterValidator(_kubernetes_version)]


def version_pair_problem(talos_version: str, kubernetes_version: str) -> str | None:
    """Why this Talos release cannot run this Kubernetes release, or None if it can."""
    talos_minor = int(talos_version.split(".")[1])
    kubernetes_minor = int(kubernetes_version.split(".")[1])
    low, high = TALOS_KUBERNETES_SUPPORT[talos_minor]
    if low <= kubernetes_minor <= high:
        return None
    return f"Kubernetes {kubernetes_version} is not supported by Talos {talos_version} (supported: 1.{low} to 1.{high})"
