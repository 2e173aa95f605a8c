"""Rules the Python policy SDK cannot express, evaluated on the recorded graph.

A CrossGuard policy receives inputs with secrets already unwrapped and never sees
`retainOnDelete` (pulumi-policy#241; `PolicyResourceOptions` has no such field). The offline engine
records both, so these checks run there and report like rules. Under the real CLI the same facts
are covered by these tests on the recorded graph (and by an audit of `pulumi stack export`).
"""

from collections.abc import Iterator

from homelab.engine import RecordedResource, Recording
from homelab.findings import GraphCheck

# Inputs that carry credentials and must be secret on the wire, by resource type.
SENSITIVE_INPUTS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:proxmoxve": ("apiToken", "password", "ssh.privateKey", "ssh.password"),
    "pulumi:providers:oci": ("privateKey", "privateKeyPassword"),
    "pulumi:providers:cloudflare": ("apiToken", "apiKey"),
    "pulumi:providers:kubernetes": ("kubeconfig",),
    "pulumi:providers:authentik": ("token",),
    "command:remote:Command": ("connection",),
    "command:remote:CopyToRemote": ("connection",),
    "talos:machine/configurationApply:ConfigurationApply": ("machineConfigurationInput", "clientConfiguration"),
    "talos:machine/bootstrap:Bootstrap": ("clientConfiguration",),
    "talos:cluster/kubeconfig:Kubeconfig": ("clientConfiguration",),
    "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared": ("tunnelSecret",),
    "kubernetes:core/v1:Secret": ("data", "stringData"),
    # Fields the SDKs do not wrap themselves: the program must.
    "proxmoxve:index/vmLegacy:VmLegacy": ("initialization.userAccount.password",),
    "oci:core/instance:Instance": ("metadata.user_data",),
}


def _present(resource: RecordedResource, path: str) -> bool:
    value: object = resource.inputs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return value not in (None, "", {}, [])


def _plaintext_sensitive_inputs(recording: Recording) -> Iterator[tuple[str, RecordedResource | None]]:
    for resource in recording.resources:
        for path in SENSITIVE_INPUTS.get(resource.type, ()):
            if _present(resource, path) and not resource.is_secret(path):
                yield f"{resource.type} '{resource.name}' sends `{path}` in plain text.", resource


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

GRAPH_CHECKS: tuple[GraphCheck, ...] = (SECRET_INPUTS,)
