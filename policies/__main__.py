"""Serve the pack to the Pulumi CLI (`pulumi preview --policy-pack policies`).

Only this module builds a `PolicyPack`: its constructor starts the analyzer's gRPC server and never
returns, so nothing else may import this file.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.rules import PACK_NAME, RULES

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[rule.policy for rule in RULES],
)
