"""The two views of the offline preview: a first preview with unknowns, and an update against simulated state."""

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_oci as oci
import pulumi_proxmoxve as proxmoxve
import pulumiverse_talos as talos
import pytest
from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from homelab.engine import Recording, StackOutputs, View, run_program
from homelab.findings import Finding
from homelab.policy_eval import evaluate
from homelab.render import StackResult, json_document, text_report, view_mismatch
from homelab.report import render_markdown
from homelab.stackrun import outputs_from, run_stack
from policies.rules import RULES
from policies.rules.base import Rule, resource_rule, stack_rule
from stacks.config.base import ConfigError

FACTORY = "https://factory.talos.dev/image/"


def _run(program: Callable[[], None], view: View) -> Recording:
    return run_program(program, project="homelab", stack="test", view=view)


def _image_program() -> None:
    """A download whose URL is built from a resource's id (the Image Factory schematic)."""
    schematic = talos.imagefactory.Schematic("schematic", schematic="customization: {}\n")
    proxmoxve.download.File(
        "image",
        content_type="iso",
        datastore_id="local",
        node_name="pve",
        file_name="talos.img",
        url=schematic.id.apply(lambda sid: f"{FACTORY}{sid}/v1.10.6/nocloud-amd64.raw.xz"),
    )
    vcn = oci.core.Vcn("vcn", compartment_id="ocid1.compartment.oc1..test", cidr_blocks=["10.20.0.0/16"])
    pulumi.export("security_list", vcn.default_security_list_id)


def _url_rule() -> Rule:
    @resource_rule(
        id="OPS-98",
        slug="test-download-from-image-factory",
        nfr="NFR-008",
        topic="hygiene",
        description="test rule: downloads come from the Image Factory",
        fix="use the factory URL",
    )
    def check(args: ResourceValidationArgs, report: Callable[[str], None], config: dict[str, Any]) -> None:
        if args.resource_type == "proxmoxve:download/file:File" and not str(args.props["url"]).startswith(FACTORY):
            report("not from the factory")

    return check


def _outputs_rule(seen: list[str]) -> Rule:
    @stack_rule(
        id="OPS-97",
        slug="test-stack-sees-outputs",
        nfr="NFR-008",
        topic="hygiene",
        description="test rule: records the VCN's computed default security list",
        fix="none",
    )
    def check(args: StackValidationArgs, report: Callable[..., None], config: dict[str, Any]) -> None:
        for resource in args.resources:
            if resource.resource_type == "oci:Core/vcn:Vcn":
                seen.append(str(resource.props["defaultSecurityListId"]))

    return check


@pytest.fixture(scope="module")
def views() -> dict[View, Recording]:
    return {view: _run(_image_program, view) for view in ("first-preview", "update")}


def test_first_preview_ids_and_computed_outputs_are_unknown(views: dict[View, Recording]) -> None:
    first, update = views["first-preview"], views["update"]
    assert first.get("talos:imageFactory/schematic:Schematic", "schematic").id == ""
    assert not first.outputs["security_list"].known
    assert update.outputs["security_list"].known and update.outputs["security_list"].value.startswith("ocid1.")


def test_a_rule_reading_an_unknown_input_is_not_evaluated_never_passed(views: dict[View, Recording]) -> None:
    """The old engine had only the update view: this rule 'passed' where the CLI cannot run it."""
    rule = _url_rule()
    assert evaluate(views["update"], [rule], graph_checks=[]) == []
    findings = evaluate(views["first-preview"], [rule], graph_checks=[])
    assert [(f.rule_id, f.kind) for f in findings] == [("OPS-98", "cannot-run")]
    assert "can't be known during preview" in findings[0].message


def test_stack_rules_see_outputs_resource_rules_see_inputs(views: dict[View, Recording]) -> None:
    seen: list[str] = []
    assert evaluate(views["update"], [_outputs_rule(seen)], graph_checks=[]) == []
    vcn = views["update"].get("oci:Core/vcn:Vcn", "vcn")
    assert seen == [vcn.outputs_wire["defaultSecurityListId"]] and seen[0].startswith("ocid1.securitylist")
    assert "defaultSecurityListId" not in vcn.inputs
    findings = evaluate(views["first-preview"], [_outputs_rule([])], graph_checks=[])
    assert [(f.rule_id, f.kind) for f in findings] == [("OPS-97", "cannot-run")]


def _apply_program() -> None:
    schematic = talos.imagefactory.Schematic("schematic", schematic="customization: {}\n")

    def later(schematic_id: str) -> str:
        # Registered inside an apply: a real first preview never runs this.
        talos.imagefactory.Schematic(f"created-in-apply-{schematic_id[:4]}", schematic="customization: {}\n")
        return schematic_id

    pulumi.export("id", schematic.id.apply(later))


def test_a_resource_created_inside_apply_is_a_view_mismatch() -> None:
    first, update = _run(_apply_program, "first-preview"), _run(_apply_program, "update")
    mismatch = view_mismatch(first, update)
    assert len(mismatch) == 1
    assert mismatch[0].startswith("talos:imageFactory/schematic:Schematic 'created-in-apply-")
    assert mismatch[0].endswith("is registered only in the update view")
    result = StackResult(stack="test", recording=update, mismatch=mismatch)
    assert result.exit_code == 2
    assert "VIEW MISMATCH" in text_report(result)
    assert json_document([result])["stacks"][0]["viewMismatch"] == mismatch


@pytest.mark.parametrize("stack", ["dev", "prod", "cloud"])
def test_every_stack_passes_both_views_with_no_mandatory_violation(
    previewed: Callable[[str], StackResult], stack: str
) -> None:
    result = previewed(stack)
    assert result.first_preview is not None and result.recording is not None
    assert result.mismatch == []
    assert [f.message for f in result.all_findings if f.blocking] == []
    assert len(result.first_preview.recording.resources) == len(result.recording.resources)
    assert result.exit_code == 0


def test_the_first_preview_reports_the_rules_it_cannot_evaluate(previewed: Callable[[str], StackResult]) -> None:
    cloud = previewed("cloud")
    assert cloud.first_preview is not None
    assert {"NET-02", "NET-07", "NET-09", "NET-12", "SEC-02"} <= set(cloud.first_preview.not_evaluated())
    document = json_document([cloud])["stacks"][0]["views"]
    assert document["firstPreview"]["notEvaluated"] == sorted(cloud.first_preview.not_evaluated())
    assert "kubeconfig" in document["firstPreview"]["unknownOutputs"]
    assert "rule(s) not evaluated during preview" in text_report(cloud)


# --- stack references ------------------------------------------------------------------------


def _reference_program() -> None:
    other = pulumi.StackReference("dev")
    pulumi.export("secret", other.get_output("token"))
    pulumi.export("plain", other.get_output("name"))
    pulumi.export("missing", other.get_output("absent"))


def test_a_reference_keeps_secret_outputs_secret_and_a_missing_output_is_none() -> None:
    referenced = StackOutputs(values={"token": "s3cr3t", "name": "dev"}, secret_names=frozenset({"token"}))
    recording = run_program(_reference_program, project="homelab", stack="test", stack_outputs=lambda name: referenced)
    assert recording.outputs["secret"].secret and recording.outputs["secret"].value == "s3cr3t"
    assert not recording.outputs["plain"].secret
    assert recording.outputs["missing"].value is None and recording.outputs["missing"].known


def test_references_come_from_the_referenced_stacks_own_run(previewed: Callable[[str], StackResult]) -> None:
    cloud = previewed("cloud").recording
    assert cloud is not None
    served = outputs_from(cloud)
    assert "tunnel_token_prod" in served.secret_names
    prod = previewed("prod").recording
    assert prod is not None
    connector = prod.get("kubernetes:core/v1:Secret", "home-tunnel-token")
    assert connector.is_secret("stringData")


def test_prod_fails_loudly_when_dev_does_not_export_its_guests(previewed: Callable[[str], StackResult]) -> None:
    dev, cloud = previewed("dev").recording, previewed("cloud").recording
    assert dev is not None and cloud is not None
    served = outputs_from(dev)
    without = StackOutputs({k: v for k, v in served.values.items() if k != "host_guests"}, served.secret_names)
    with pytest.raises(ConfigError, match=r"homelab:capacity\.dev_stack: stack 'dev' exports no `host_guests`"):
        run_stack("prod", references={"dev": without, "cloud": outputs_from(cloud)})


def test_the_compliance_report_fails_on_a_first_preview_violation(previewed: Callable[[str], StackResult]) -> None:
    dev = previewed("dev")
    assert dev.recording is not None and dev.first_preview is not None
    clean = render_markdown(
        "dev", dev.recording, dev.findings, RULES, first_preview=dev.first_preview.findings, config=dev.config
    )
    assert "**PASS**" in clean and "3 rule(s) cannot be evaluated: SEC-02, SEC-06, SEC-16" in clean
    blocking = Finding("SEC-99", "sec-99-test", "NFR-006", "security", "mandatory", "violation", "[SEC-99] bad")
    failed = render_markdown("dev", dev.recording, dev.findings, RULES, first_preview=[blocking], config=dev.config)
    assert "**FAIL**: 1 mandatory violation(s)" in failed and "- mandatory: [SEC-99] bad" in failed
