"""Labels and namespace metadata every platform object carries (one scheme for all components)."""

from typing import Literal

import pulumi_kubernetes as k8s

MANAGED_BY = "app.kubernetes.io/managed-by"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PodSecurityLevel = Literal["restricted", "baseline", "privileged"]


def managed_labels(name: str) -> dict[str, str]:
    """`app.kubernetes.io/name` plus `managed-by: pulumi`: the ownership marker the policy pack reads
    (objects under gitops/ are Argo CD's and never carry it)."""
    return {"app.kubernetes.io/name": name, MANAGED_BY: "pulumi"}


def namespace_metadata(name: str, level: PodSecurityLevel) -> k8s.meta.v1.ObjectMetaArgs:
    """A namespace that enforces (and warns and audits at) one Pod Security level."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        labels={
            **managed_labels(name),
            PSA_ENFORCE: level,
            "pod-security.kubernetes.io/warn": level,
            "pod-security.kubernetes.io/audit": level,
        },
    )
