"""The compliance report: statuses per NFR, budget figures, graceful degradation."""

import pytest

from homelab.engine import Recording, StackOutput
from homelab.findings import Finding
from homelab.graph_checks import GRAPH_CHECKS
from homelab.policy_eval import evaluate, parse_pack_config
from homelab.report import group_by_nfr, render_markdown
from policies.rules import RULES
from policies.rules.base import NFR_TITLES
from tests.policies.previews import preview

BY_ID = {r.id: r for r in RULES}


def finding(rule_id: str, level: str = "mandatory", kind: str = "violation", resource: str | None = "vm") -> Finding:
    rule = BY_ID[rule_id]
    return Finding(
        rule_id=rule_id,
        policy=rule.name,
        nfr=rule.nfr,
        topic=rule.topic,
        level=level,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        message=f"[{rule_id}] something. Fix: {rule.fix}",
        resource_type="proxmoxve:index/vmLegacy:VmLegacy" if resource else None,
        resource_name=resource,
    )


def statuses(groups) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r.id: r.status for g in groups for r in g.rules}


def test_group_by_nfr_statuses() -> None:
    config = parse_pack_config(
        {
            BY_ID["NET-04"].name: {"exemptions": [{"resource": "vm", "reason": "LAN-only DNS for the family"}]},
            BY_ID["OPS-01"].name: "disabled",
        }
    )
    recording = Recording(project="homelab", stack="test")
    groups = group_by_nfr(
        [finding("DAT-01"), finding("NET-03", "advisory"), finding("BUD-03", "advisory", "cannot-run", None)],
        RULES,
        GRAPH_CHECKS,
        config,
        recording,
    )
    found = statuses(groups)
    assert found["DAT-01"] == "violated"
    assert found["NET-03"] == "advisory"
    assert found["BUD-03"] == "cannot-run"
    assert found["NET-04"] == "exempted"
    assert found["OPS-01"] == "disabled"
    assert found["SEC-20"] == "pass" and found["DAT-02"] == "pass"
    assert [g.nfr for g in groups] == sorted({r.nfr for r in RULES} | {c.nfr for c in GRAPH_CHECKS})
    assert {g.nfr: g.status for g in groups}["NFR-005"] == "violated"
    assert all(g.title == NFR_TITLES[g.nfr] for g in groups)


@pytest.mark.parametrize("stack", ["dev", "prod", "cloud"])
def test_report_renders_for_every_stack(stack: str) -> None:
    base = preview(stack)
    report = render_markdown(stack, base.recording, base.findings, RULES, GRAPH_CHECKS, config=base.config)
    assert report.startswith(f"# Compliance report: stack `{stack}`\n\n**PASS**: 0 mandatory violation(s)")
    for nfr in {r.nfr for r in RULES}:
        assert f"## {nfr}: {NFR_TITLES[nfr]}" in report
    for rule in RULES:
        assert f"| {rule.id} | `{rule.name}` |" in report
    assert "| SEC-20 | `sec-20-graph-sensitive-inputs-are-secret` (graph check) |" in report


def test_prod_report_shows_host_modes() -> None:
    base = preview("prod")
    report = render_markdown("prod", base.recording, base.findings, RULES, GRAPH_CHECKS, config=base.config)
    assert "| normal | 28.0 GiB | 28.0 GiB | yes | yes | prod-cp-1, prod-worker-1 |" in report
    assert "| gaming | 60.0 GiB | 48.0 GiB | yes | no | prod-cp-1, prod-worker-1, gaming |" in report
    assert "reserved in every mode: proxmox 4.0 GiB, zfs-arc 8.0 GiB" in report
    assert "| BUD-06 | advisory | violation | stack |" in report


def test_cloud_report_shows_always_free_usage() -> None:
    base = preview("cloud")
    report = render_markdown("cloud", base.recording, base.findings, RULES, GRAPH_CHECKS, config=base.config)
    assert "| a1_ocpus | 2 | 2 |" in report
    assert "| block_storage_gb | 200 | 200 |" in report
    assert "Within the quota: yes." in report


def test_dev_report_lists_its_guests() -> None:
    base = preview("dev")
    report = render_markdown("dev", base.recording, base.findings, RULES, GRAPH_CHECKS, config=base.config)
    assert "| dev-cp-1 | 4.0 GiB | testing |" in report


def test_report_degrades_without_outputs_and_fails_on_violations(record) -> None:  # type: ignore[no-untyped-def]
    import pulumi_proxmoxve as pve

    def program() -> None:
        pve.Provider("pve", endpoint="https://192.168.68.51:8006/", insecure=True)

    recording = record(program)
    recording.outputs["always_free_usage"] = StackOutput(value=None, secret=False, known=False)
    findings = evaluate(recording)
    report = render_markdown("scratch", recording, findings, RULES, GRAPH_CHECKS)
    assert report.startswith("# Compliance report: stack `scratch`\n\n**FAIL**: 1 mandatory violation(s)")
    assert "_Host capacity: not exported by this stack._" in report
    assert "_Always Free usage: not known until `pulumi up`._" in report
    assert "| SEC-02 | `sec-02-provider-disallow-insecure-tls` | mandatory | ❌ violated |" in report
    assert "| SEC-02 | mandatory | violation | `pve` | [SEC-02] provider 'pve' skips TLS verification" in report


def test_prod_report_shows_the_cost_table_and_the_total_against_the_cap() -> None:
    base = preview("prod")
    report = render_markdown("prod", base.recording, base.findings, RULES, GRAPH_CHECKS, config=base.config)
    estimate = base.recording.outputs["cost_estimate"].value
    assert "| item | monthly (EUR) | yearly (EUR) |" in report
    assert "| cloud: OCI Always Free (within the allowance) | 0.00 | 0.00 |" in report
    assert "| domain | 1.00 | 12.00 |" in report
    total = f"{estimate['yearly_total']:,.2f}"
    assert f"Yearly total: {total} EUR (" in report
    assert "USD at 1.16 USD/EUR) of the 1,000.00 USD cap (NFR-012): within it" in report
