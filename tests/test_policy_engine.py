"""The in-process evaluator applies the pack like the Pulumi analyzer does."""

import pulumi
import pulumi_proxmoxve as pve
import pytest
from pulumi_command import local

from homelab.engine import Recording, StackOutput
from homelab.policy_eval import PackConfigError, blocking, evaluate, parse_pack_config


class Holder(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:test:Holder", name, None, opts)
        local.Command(f"{name}-inside", create="true", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def tidy_program() -> None:
    pve.Provider("pve", endpoint="https://192.168.68.51:8006/", api_token=pulumi.Output.secret("a@pve!b=c"))
    Holder("tidy")


def messy_program() -> None:
    pve.Provider("pve", endpoint="https://192.168.68.51:8006/", insecure=True, api_token="a@pve!b=c")
    holder = Holder("tidy")
    local.Command("stray", create="true")
    pve.VmLegacy(
        "win",
        node_name="pve",
        initialization=pve.VmLegacyInitializationArgs(
            user_account=pve.VmLegacyInitializationUserAccountArgs(username="admin", password="hunter2")
        ),
        opts=pulumi.ResourceOptions(parent=holder),
    )


def test_tidy_program_has_no_findings(record) -> None:
    assert evaluate(record(tidy_program)) == []


def test_messy_program_violates_resource_stack_and_graph_rules(record) -> None:
    findings = evaluate(record(messy_program))
    by_rule = {f.rule_id: f for f in findings}
    assert set(by_rule) == {"SEC-02", "OPS-05", "SEC-20"}
    assert by_rule["SEC-02"].resource_name == "pve"
    assert by_rule["SEC-02"].message.startswith("[SEC-02] provider 'pve' skips TLS verification")
    assert "Fix: " in by_rule["SEC-02"].message
    assert by_rule["OPS-05"].resource_name == "stray"
    assert by_rule["SEC-20"].resource_name == "win"
    assert "sends `initialization.userAccount.password` in plain text" in by_rule["SEC-20"].message
    assert len(blocking(findings)) == 3


def test_pack_config_levels_and_exemptions(record) -> None:
    recording = record(messy_program)
    config = parse_pack_config(
        {
            "sec-02-provider-disallow-insecure-tls": "advisory",
            "ops-05-resource-enforce-component-parent": {
                "exemptions": [{"resource": "stray", "reason": "a one-off bootstrap command"}]
            },
        }
    )
    findings = evaluate(recording, config=config, graph_checks=())
    assert [(f.rule_id, f.level) for f in findings] == [("SEC-02", "advisory")]
    assert blocking(findings) == []
    disabled = evaluate(recording, config=parse_pack_config({"all": "disabled"}), graph_checks=())
    assert disabled == []


def test_pack_config_rejects_unknown_policy() -> None:
    with pytest.raises(PackConfigError, match="unknown policy 'no-such-rule'"):
        parse_pack_config({"no-such-rule": "mandatory"})


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        (
            StackOutput(value={"currency": "USD", "yearly_total": 1500.0, "lines": []}, secret=False, known=True),
            "violation",
        ),
        (StackOutput(value=None, secret=False, known=False), "cannot-run"),
        (StackOutput(value={"currency": "USD", "yearly_total": 400.0, "lines": []}, secret=False, known=True), None),
    ],
)
def test_stack_rules_receive_the_root_stack_with_its_exports(output: StackOutput, kind: str | None) -> None:
    """As `AnalyzeStack` does: BUD-08 judges the `cost_estimate` export; unknown, it is not evaluated."""
    recording = Recording(project="homelab", stack="prod", outputs={"cost_estimate": output})
    found = [f for f in evaluate(recording) if f.rule_id == "BUD-08"]
    assert [f.kind for f in found] == ([kind] if kind else [])
    if kind == "violation":
        assert "1,500.00 USD, over the NFR-012 cap of 1,000.00 USD" in found[0].message
        assert found[0].level == "advisory" and found[0].resource_name is None
