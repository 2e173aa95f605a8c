"""Results of the policy gate, shared by the evaluator, the graph checks and the reports."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from homelab.engine import RecordedResource, Recording

Level = Literal["mandatory", "advisory"]
Kind = Literal["violation", "cannot-run"]


@dataclass(frozen=True)
class Finding:
    """One result of evaluating the pack: a violation, or a policy that could not run."""

    rule_id: str
    policy: str
    nfr: str
    topic: str
    level: Level
    kind: Kind
    message: str
    resource_type: str | None = None
    resource_name: str | None = None
    urn: str | None = None

    @property
    def blocking(self) -> bool:
        return self.kind == "violation" and self.level == "mandatory"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "policy": self.policy,
            "nfr": self.nfr,
            "topic": self.topic,
            "level": self.level,
            "kind": self.kind,
            "message": self.message,
            "resource": None
            if self.resource_name is None
            else {"type": self.resource_type, "name": self.resource_name, "urn": self.urn},
        }


@dataclass(frozen=True)
class GraphCheck:
    """A rule the Python policy SDK cannot express, evaluated on the recorded graph."""

    id: str
    name: str
    nfr: str
    topic: str
    description: str
    fix: str
    check: Callable[[Recording], Iterable[tuple[str, RecordedResource | None]]]
    level: Level = "mandatory"
