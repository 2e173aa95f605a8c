"""Kubernetes: what the API server fills in that the program reads.

A `kubernetes.io/service-account-token` Secret gets `data.token` and `data["ca.crt"]` from the
token controller right after it is created; the provider returns the live object, so the program
(Argo CD's cluster registration) reads them. The values here are marked stand-ins.
"""

import base64
from typing import Any

from homelab.simulate import fake_hex, resource_output


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@resource_output("kubernetes:core/v1:Secret")
def _secret(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if inputs.get("type") != "kubernetes.io/service-account-token":
        return {}
    token = f"offline-placeholder-service-account-token-{fake_hex(name, 16)}"
    return {"data": {"token": _b64(token), "ca.crt": _b64("offline-placeholder-ca"), "namespace": _b64("kube-system")}}
