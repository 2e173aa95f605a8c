"""The checks a CrossGuard policy cannot express (secret-ness on the wire, retainOnDelete)."""

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_proxmoxve as pve
import pytest

from homelab.engine import UNKNOWN, RecordedResource, Recording
from homelab.findings import GraphCheck
from homelab.graph_checks import GRAPH_CHECKS, RETAIN_DATA, SECRET_INPUTS
from homelab.policy_eval import evaluate


def recorded(
    type_: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    secret: Sequence[str] = (),
    protect: bool = False,
    retain: bool = False,
) -> RecordedResource:
    return RecordedResource(
        type=type_,
        name=name,
        urn=f"urn:pulumi:test::homelab::{type_}::{name}",
        id=f"{name}-id",
        custom=True,
        parent=None,
        provider=None,
        wire=dict(inputs),
        inputs=dict(inputs),
        secret_paths=tuple(secret),
        dependencies=(),
        property_dependencies={},
        protect=protect,
        retain_on_delete=retain,
        delete_before_replace=None,
        ignore_changes=(),
        replace_on_changes=(),
        additional_secret_outputs=(),
        aliases=(),
    )


def recording(*resources: RecordedResource) -> Recording:
    return Recording(project="homelab", stack="test", resources=list(resources))


@dataclass(frozen=True)
class GraphCase:
    check: GraphCheck
    kind: Literal["pass", "violate", "unknown"]
    label: str
    build: Callable[[], Recording]
    expected: Sequence[str] = ()


PEM = "-----BEGIN ED25519 PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI...\n-----END ED25519 PRIVATE KEY-----\n"
VM = "proxmoxve:index/vmLegacy:VmLegacy"
ZFS = "proxmoxve:node/disk/zfs:Zfs"
INSTANCE = "oci:Core/instance:Instance"

GRAPH_CASES = [
    GraphCase(
        SECRET_INPUTS,
        "pass",
        "secret-password-and-user-data",
        lambda: recording(
            recorded(VM, "node", {"initialization": {"userAccount": {"password": "x"}}}, secret=["initialization"]),
            recorded(
                INSTANCE,
                "cloud-1",
                {"metadata": {"user_data": "dmVyc2lvbjogdjFhbHBoYTE="}},
                secret=["metadata.user_data"],
            ),
        ),
    ),
    GraphCase(
        SECRET_INPUTS,
        "violate",
        "plaintext-user-data-and-stray-key",
        lambda: recording(
            recorded(INSTANCE, "cloud-1", {"metadata": {"user_data": "dmVyc2lvbg=="}}),
            recorded(
                "command:local:Command",
                "seed",
                {"environment": {"KEY": base64.b64encode(PEM.encode()).decode()}, "create": "true"},
            ),
        ),
        (
            "oci:Core/instance:Instance 'cloud-1' sends `metadata.user_data` in plain text.",
            "command:local:Command 'seed' sends private key material in `environment.KEY` in plain text.",
        ),
    ),
    GraphCase(
        SECRET_INPUTS,
        "unknown",
        "secret-unknown-value",
        # An unknown secret travels as a secret wrapper around the unknown sentinel.
        lambda: recording(recorded(INSTANCE, "cloud-1", {"metadata": {"user_data": UNKNOWN}}, secret=["metadata"])),
    ),
    GraphCase(
        RETAIN_DATA,
        "pass",
        "retained-pool-and-stateless-node",
        lambda: recording(
            recorded(ZFS, "tank", {"name": "tank"}, protect=True, retain=True),
            recorded(VM, "node", {"tags": ["kubernetes"]}),
        ),
    ),
    GraphCase(
        RETAIN_DATA,
        "violate",
        "pool-and-stateful-vm",
        lambda: recording(
            recorded(ZFS, "tank", {"name": "tank"}, protect=True),
            recorded(VM, "nas", {"tags": ["stateful", "mode-normal"]}, protect=True),
            recorded("command:remote:Command", "tank-pool", {"create": "zpool create tank mirror a b"}, protect=True),
            recorded(VM, "node", {"tags": ["kubernetes"]}, protect=True),
        ),
        (
            "'tank' is not retained on delete; removing it from the program destroys the ZFS pool and every "
            "dataset on it.",
            "'nas' is not retained on delete; removing it from the program destroys the guest's disks.",
            "'tank-pool' is not retained on delete; removing it from the program destroys the ZFS pool or "
            "datasets it created.",
        ),
    ),
    GraphCase(
        RETAIN_DATA,
        "unknown",
        "tags-unknown",
        lambda: recording(recorded(VM, "node", {"tags": UNKNOWN})),
    ),
]


@pytest.mark.parametrize("case", GRAPH_CASES, ids=[f"{c.check.id}-{c.kind}-{c.label}" for c in GRAPH_CASES])
def test_graph_case(case: GraphCase) -> None:
    findings = evaluate(case.build(), rules=(), graph_checks=(case.check,))
    assert [f.message for f in findings] == [f"[{case.check.id}] {e} Fix: {case.check.fix}" for e in case.expected]
    assert all(f.level == case.check.level and f.nfr == case.check.nfr for f in findings)


def test_every_graph_check_has_three_cases() -> None:
    for check in GRAPH_CHECKS:
        kinds = {c.kind for c in GRAPH_CASES if c.check is check}
        assert kinds == {"pass", "violate", "unknown"}, check.id


def test_recorded_program_secret_and_retain(record: Callable[..., Recording]) -> None:
    """The checks read what the real engine records: wire secret-ness and retainOnDelete."""

    def program() -> None:
        pve.node.disk.Zfs(
            "tank",
            node_name="pve",
            name="tank",
            raidlevel="mirror",
            devices=["/dev/disk/by-id/a", "/dev/disk/by-id/b"],
            opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True),
        )
        pve.VmLegacy(
            "nas",
            node_name="pve",
            tags=["mode-normal", "stateful"],
            initialization=pve.VmLegacyInitializationArgs(
                user_account=pve.VmLegacyInitializationUserAccountArgs(username="admin", password="hunter2")
            ),
            opts=pulumi.ResourceOptions(protect=True),
        )

    findings = evaluate(record(program), rules=())
    assert sorted((f.rule_id, f.resource_name) for f in findings) == [("DAT-02", "nas"), ("SEC-20", "nas")]
