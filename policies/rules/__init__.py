"""Every rule of the pack, grouped by topic. Importing this module never starts a policy server."""

from policies.rules import budget, data, hygiene, identity, network, platform, security, workloads
from policies.rules.base import PACK_NAME, Rule

RULES: tuple[Rule, ...] = (
    *network.RULES,
    *security.RULES,
    *identity.RULES,
    *workloads.RULES,
    *budget.RULES,
    *data.RULES,
    *hygiene.RULES,
    *platform.RULES,
)

__all__ = ["PACK_NAME", "RULES", "Rule"]
