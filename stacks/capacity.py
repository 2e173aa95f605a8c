"""The host capacity ledger (NFR-010): every guest of the 64 GB Proxmox host, per host mode.

Pure data, no Pulumi resources: the prod stack (which owns the host) builds the ledger from its own
guests plus the dev stack's exported `host_guests`, checks it, and exports the totals; the budget
policy is configured from the same numbers (`policy_config_for`). The per-mode arithmetic is the
budget model's (`homelab.budget.mode_total_mb`), the same the BUD-01/BUD-06 rules use.

Modes (PRD NFR-010): normal = PROD on, DEV off, gaming off; testing = DEV + PROD; gaming = gaming VM
+ PROD. Host reservations (Proxmox itself, the ZFS ARC cap) count in every mode.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from homelab.budget import mode_total_mb
from stacks.config.base import ConfigError

if TYPE_CHECKING:
    from stacks.config.homelab import ClusterConfig, ProdConfig

# Secret keys of the homelab stacks; never part of a config model.

HostMode = Literal["normal", "testing", "gaming"]
HOST_MODES: tuple[HostMode, ...] = get_args(HostMode)

HOST_MEMORY_MB = 65536
# PRD targets (≈ 28 / 32 / 48 GB). Informational: the hard limit is the host's memory.
PRD_MODE_TARGETS_MB: Mapping[HostMode, int] = {"normal": 28 * 1024, "testing": 32 * 1024, "gaming": 48 * 1024}


class CapacityError(ValueError):
    """A host mode needs more memory than the host has."""


@dataclass(frozen=True)
class Guest:
    """A VM on the host, as the ledger counts it."""

    name: str
    stack: str
    memory_mb: int
    cores: int
    modes: tuple[HostMode, ...]
    vm_id: int | None = None
    """The Proxmox VM id: ids are per host, so two stacks must never pick the same one."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "stack": self.stack,
            "memory_mb": self.memory_mb,
            "cores": self.cores,
            "modes": list(self.modes),
        }
        if self.vm_id is not None:
            out["vm_id"] = self.vm_id
        return out

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "Guest":
        modes = tuple(str(m) for m in value.get("modes", ()))
        unknown = [m for m in modes if m not in HOST_MODES]
        if unknown:
            raise ValueError(f"guest {value.get('name')!r} has unknown host mode(s) {unknown}")
        return cls(
            name=str(value["name"]),
            stack=str(value["stack"]),
            memory_mb=int(value["memory_mb"]),
            cores=int(value["cores"]),
            modes=tuple(m for m in HOST_MODES if m in modes),
            vm_id=int(value["vm_id"]) if value.get("vm_id") is not None else None,
        )


@dataclass(frozen=True)
class Reservation:
    """Memory the host keeps for itself in every mode."""

    name: str
    memory_mb: int


@dataclass(frozen=True)
class HostLedger:
    guests: tuple[Guest, ...]
    reservations: tuple[Reservation, ...]
    host_memory_mb: int = HOST_MEMORY_MB
    targets_mb: Mapping[HostMode, int] = field(default_factory=lambda: dict(PRD_MODE_TARGETS_MB))

    def guests_in(self, mode: HostMode) -> list[Guest]:
        return [g for g in self.guests if mode in g.modes]

    def reserved_mb(self) -> int:
        return sum(r.memory_mb for r in self.reservations)

    def total_mb(self, mode: HostMode) -> int:
        # The ledger holds every stack's guests, so none are "other stacks" here; the arithmetic is
        # the budget model's, the same the BUD-01/BUD-06 rules use.
        total = mode_total_mb((g.memory_mb for g in self.guests_in(mode)), 0, self.reserved_mb())
        return int(total.total_mb)

    def mode_totals_mb(self) -> dict[HostMode, int]:
        return {mode: self.total_mb(mode) for mode in HOST_MODES}

    def over_host(self) -> dict[HostMode, int]:
        """Modes that need more than the host has, with their totals."""
        return {m: t for m, t in self.mode_totals_mb().items() if t > self.host_memory_mb}

    def vm_id_conflicts(self) -> dict[int, list[Guest]]:
        """VM ids claimed by more than one guest (e.g. a dev node reusing a prod id)."""
        by_id: dict[int, list[Guest]] = {}
        for guest in self.guests:
            if guest.vm_id is not None:
                by_id.setdefault(guest.vm_id, []).append(guest)
        return {vm_id: guests for vm_id, guests in sorted(by_id.items()) if len(guests) > 1}

    def check(self) -> None:
        conflicts = self.vm_id_conflicts()
        if conflicts:
            vm_id, guests = next(iter(conflicts.items()))
            names = " and ".join(f"{g.name} ({g.stack})" for g in guests)
            raise CapacityError(
                f"VM id {vm_id} is used by {names}; Proxmox VM ids are per host, give each guest its own"
            )
        over = self.over_host()
        if over:
            mode, total = next(iter(over.items()))
            names = ", ".join(f"{g.name} {g.memory_mb} MB" for g in self.guests_in(mode))
            raise CapacityError(
                f"host mode {mode!r} needs {total} MB but the host has {self.host_memory_mb} MB "
                f"(reserved {self.reserved_mb()} MB; guests: {names}); shrink a guest or take it out of that mode"
            )

    def summary(self) -> dict[str, Any]:
        """Plain, non-secret data for the `host_capacity` stack output and the preview."""
        return {
            "host_memory_mb": self.host_memory_mb,
            "reservations": {r.name: r.memory_mb for r in self.reservations},
            "modes": {
                mode: {
                    "total_mb": self.total_mb(mode),
                    "target_mb": self.targets_mb.get(mode),
                    "within_host": self.total_mb(mode) <= self.host_memory_mb,
                    "within_target": self.total_mb(mode) <= self.targets_mb.get(mode, self.host_memory_mb),
                    "guests": [g.name for g in self.guests_in(mode)],
                }
                for mode in HOST_MODES
            },
            "guests": [g.as_dict() for g in sorted(self.guests, key=lambda g: (g.stack, g.name))],
        }


def guests_from_output(value: Any, source: str = "dev") -> tuple[Guest, ...]:
    """Parse another stack's exported `host_guests` (a list of plain dicts).

    A referenced stack that does not export it reads as `None` (exactly like a real
    `StackReference`): that is an error, never "no guests", or the ledger would silently ignore
    every VM of that stack.
    """
    if value is None:
        raise ConfigError(
            f"homelab:capacity.dev_stack: stack {source!r} exports no `host_guests`; the host's memory "
            "ledger needs its guests (run `pulumi up` on it first, or name the right stack)"
        )
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError(f"host_guests must be a list of guests, got {type(value).__name__}")
    return tuple(Guest.from_dict(item) for item in value)


def guests_as_output(guests: Iterable[Guest]) -> list[dict[str, Any]]:
    return [g.as_dict() for g in guests]


def cluster_guests(stack: str, cluster: "ClusterConfig") -> tuple[Guest, ...]:
    """The ledger entries of a stack's Talos cluster (one per node)."""
    return tuple(
        Guest(
            name=name,
            stack=stack,
            memory_mb=node.memory_mb,
            cores=node.cores,
            modes=tuple(m for m in HOST_MODES if m in cluster.modes),
            vm_id=node.vm_id,
        )
        for name, node in sorted(cluster.nodes.items())
    )


def prod_guests(config: "ProdConfig", stack: str = "prod") -> tuple[Guest, ...]:
    gaming = config.gaming
    return (
        *cluster_guests(stack, config.cluster),
        Guest(
            name=gaming.name,
            stack=stack,
            memory_mb=gaming.memory_mb,
            cores=gaming.cores,
            modes=tuple(m for m in HOST_MODES if m in gaming.modes),
            vm_id=gaming.vm_id,
        ),
    )


def host_reservations(config: "ProdConfig") -> tuple[Reservation, ...]:
    return (
        Reservation("proxmox", config.host.reserved_memory_mb),
        Reservation("zfs-arc", config.zfs.arc_max_gb * 1024),
    )


def ledger_for(prod: "ProdConfig", other_guests: Iterable[Guest], stack: str = "prod") -> HostLedger:
    return HostLedger(
        guests=(*prod_guests(prod, stack), *other_guests),
        reservations=host_reservations(prod),
        host_memory_mb=prod.host.memory_mb,
    )


def ledger_from_stack_files(root: Path | None = None) -> HostLedger:
    """The ledger as the committed `Pulumi.dev.yaml` and `Pulumi.prod.yaml` describe it (no Pulumi run)."""
    from homelab.stackrun import load_stack_input  # noqa: PLC0415 (the CLI's loader; only needed here)
    from stacks.config.homelab import DevConfig, ProdConfig  # noqa: PLC0415

    def sections(stack: str) -> dict[str, Any]:
        prefix = "homelab:"
        out: dict[str, Any] = {}
        stack_input = load_stack_input(stack, root)
        for key, value in stack_input.config.items():
            # Secrets (whatever the stack declares) are never part of a config model.
            if key.startswith(prefix) and key not in stack_input.secret_keys:
                out[key[len(prefix) :]] = json.loads(value) if value[:1] in "{[" else value
        return out

    dev = DevConfig.model_validate(sections("dev"))
    prod = ProdConfig.model_validate(sections("prod"))
    return ledger_for(prod, cluster_guests("dev", dev.cluster))


def policy_config_for(stack: str, ledger: HostLedger | None = None) -> dict[str, Any]:
    """Budget-rule config for one stack's policy run.

    A policy only sees the VMs its own stack registers; this adds, per mode, the memory of the
    guests that live in other stacks and the host reservations, so the rule can recompute each
    mode's total from the registered VMs' `mode-*` tags.
    """
    ledger = ledger if ledger is not None else ledger_from_stack_files()
    return {
        "hostMemoryMb": ledger.host_memory_mb,
        "reservedMb": ledger.reserved_mb(),
        "modeTargetsMb": dict(ledger.targets_mb),
        "otherStacksMb": {
            mode: sum(g.memory_mb for g in ledger.guests_in(mode) if g.stack != stack) for mode in HOST_MODES
        },
    }
