"""Every rule of the pack, grouped by topic. Importing this module never starts a policy server."""

from policies.rules import hygiene, security
from policies.rules.base import PACK_NAME, Rule

RULES: tuple[Rule, ...] = (
    *security.RULES,
    *hygiene.RULES,
)

__all__ = ["PACK_NAME", "RULES", "Rule"]
