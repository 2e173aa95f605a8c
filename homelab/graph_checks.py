"""Rules the Python policy SDK cannot express, evaluated on the recorded graph.

A CrossGuard policy receives inputs with secrets already unwrapped and never sees
`retainOnDelete` (pulumi-policy#241; `PolicyResourceOptions` has no such field). The offline engine
records both, so these checks run there and report like rules. Under the real CLI the same facts
are covered by these tests on the recorded graph (and by an audit of `pulumi stack export`).
"""

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any

from homelab.engine import RecordedResource, Recording
from homelab.findings import GraphCheck
from homelab.wire import UNKNOWN
from policies.rules.data import STATEFUL_TAGS, data_bearing, must_retain

# Inputs that carry credentials and must be secret on the wire, by resource type. Most SDKs wrap
# their top-level secret arguments themselves; nested fields (a VM's cloud-init password, an
# instance's user data) are the program's job, which is why they are listed here.
SENSITIVE_INPUTS: Mapping[str, tuple[str, ...]] = {
    "pulumi:providers:proxmoxve": ("apiToken", "password", "ssh.privateKey", "ssh.password"),
    "pulumi:providers:oci": ("privateKey", "privateKeyPassword"),
    "pulumi:providers:cloudflare": ("apiToken", "apiKey", "apiUserServiceKey"),
    "pulumi:providers:kubernetes": ("kubeconfig",),
    "pulumi:providers:authentik": ("token",),
    "command:remote:Command": ("connection",),
    "command:remote:CopyToRemote": ("connection",),
    "talos:machine/configurationApply:ConfigurationApply": ("machineConfigurationInput", "clientConfiguration"),
    "talos:machine/bootstrap:Bootstrap": ("clientConfiguration",),
    "talos:cluster/kubeconfig:Kubeconfig": ("clientConfiguration",),
    "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared": ("tunnelSecret",),
    "cloudflare:index/zeroTrustAccessIdentityProvider:ZeroTrustAccessIdentityProvider": ("config.clientSecret",),
    "kubernetes:core/v1:Secret": ("data", "stringData"),
    "pulumi:providers:twingate": ("apiToken",),
    "proxmoxve:storage/pbs:Pbs": ("password", "encryptionKey"),
    "authentik:index/user:User": ("password",),
    "authentik:index/providerOauth2:ProviderOauth2": ("clientSecret",),
    # Fields the SDKs do not wrap themselves: the program must.
    "proxmoxve:index/vmLegacy:VmLegacy": ("initialization.userAccount.password",),
    "proxmoxve:index/containerLegacy:ContainerLegacy": ("initialization.userAccount.password",),
    # Talos on OCI receives its whole machine configuration (cluster CA keys, tokens) as user data.
    "oci:Core/instance:Instance": ("metadata.user_data",),
}

# Key material recognisable in any input, whatever the field is called: PEM private keys, and the
# same headers base64-encoded (how Talos machine configs and kubeconfigs carry them).
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# base64 of "-----BEGIN" followed by more base64 (a PEM block inside a base64 field).
_BASE64_PEM = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{8,64}")


def _holds_private_key(text: str) -> bool:
    if _PEM_PRIVATE_KEY.search(text):
        return True
    for match in _BASE64_PEM.finditer(text):
        chunk = match.group(0)
        chunk = chunk[: len(chunk) - len(chunk) % 4]
        try:
            decoded = base64.b64decode(chunk).decode("ascii", errors="replace")
        except (binascii.Error, ValueError):
            continue
        if _PEM_PRIVATE_KEY.search(decoded + "-----") or "PRIVATE KEY" in decoded:
            return True
    return False


def _value(resource: RecordedResource, path: str) -> Any:
    value: object = resource.inputs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _present(resource: RecordedResource, path: str) -> bool:
    return _value(resource, path) not in (None, "", {}, [])


def _unknown(value: Any) -> bool:
    """True if the value holds no text yet (unknown during a first preview). The SDK sends an
    unknown value without its secret wrapper, so secretness cannot be judged until it is known; the
    update view, where it is known, decides."""
    leaves = [text for _, text in _strings(value, "")]
    return value == UNKNOWN or (bool(leaves) and all(text == UNKNOWN for text in leaves))


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _plaintext_sensitive_inputs(recording: Recording) -> Iterator[tuple[str, RecordedResource | None]]:
    for resource in recording.resources:
        flagged: set[str] = set()
        for path in SENSITIVE_INPUTS.get(resource.type, ()):
            value = _value(resource, path)
            if _present(resource, path) and not resource.is_secret(path) and not _unknown(value):
                flagged.add(path)
                yield f"{resource.type} '{resource.name}' sends `{path}` in plain text.", resource
        for path, text in _strings(dict(resource.inputs), ""):
            if path in flagged or resource.is_secret(path) or not _holds_private_key(text):
                continue
            yield f"{resource.type} '{resource.name}' sends private key material in `{path}` in plain text.", resource


SECRET_INPUTS = GraphCheck(
    id="SEC-20",
    name="sec-20-graph-sensitive-inputs-are-secret",
    nfr="NFR-006",
    topic="security",
    description="Credentials reach the engine as secrets, so state and logs only ever hold ciphertext "
    "(NFR-006; a CrossGuard policy cannot see secret-ness).",
    fix="read the value with `Config.require_secret` or wrap it in `pulumi.Output.secret(...)` before passing it.",
    check=_plaintext_sensitive_inputs,
)


def _unretained_data(recording: Recording) -> Iterator[tuple[str, RecordedResource | None]]:
    for resource in recording.resources:
        if must_retain(resource.type, resource.inputs) and not resource.retain_on_delete:
            lost = data_bearing(resource.type, resource.inputs, STATEFUL_TAGS) or "its data"
            text = f"'{resource.name}' is not retained on delete; removing it from the program destroys {lost}."
            yield text, resource


RETAIN_DATA = GraphCheck(
    id="DAT-02",
    name="dat-02-graph-data-retained-on-delete",
    nfr="NFR-005",
    topic="data",
    description="Resources whose cloud object holds data (ZFS pool, volumes, buckets, stateful guests) are "
    "`retainOnDelete`, so deleting them from the program leaves the data in place (NFR-005; a CrossGuard "
    "policy cannot see retainOnDelete).",
    fix="add `retain_on_delete=True` next to `protect=True` in the resource's options.",
    check=_unretained_data,
)

GRAPH_CHECKS: tuple[GraphCheck, ...] = (SECRET_INPUTS, RETAIN_DATA)
