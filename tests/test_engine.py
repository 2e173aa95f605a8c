"""The recording engine captures what a real preview would send to the engine."""

import pulumi
import pytest
from pulumi_command import local

from homelab.engine import Recording


class Fixture(pulumi.ComponentResource):
    """A small component exercising every option the engine must record."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:test:Fixture", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.keeper = local.Command(
            f"{name}-keeper",
            create="true",
            environment={"TOKEN": pulumi.Output.secret("s3cr3t"), "PLAIN": "visible"},
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(protect=True, retain_on_delete=True, ignore_changes=["create"]),
            ),
        )
        self.follower = local.Command(
            f"{name}-follower",
            create=self.keeper.stdout.apply(lambda out: f"echo {out}"),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.keeper])),
        )
        self.stdout = self.keeper.stdout
        self.register_outputs({"stdout": self.stdout})


def program() -> None:
    fixture = Fixture("fx")
    pulumi.export("plain", "hello")
    pulumi.export("hidden", pulumi.Output.secret("classified"))
    pulumi.export("stdout", fixture.stdout)


@pytest.fixture
def recording(record) -> Recording:
    return record(program)


def test_records_parents_and_types(recording: Recording) -> None:
    component = recording.get("homelab:test:Fixture", "fx")
    keeper = recording.get("command:local:Command", "fx-keeper")
    follower = recording.get("command:local:Command", "fx-follower")
    assert not component.custom
    assert keeper.custom
    assert keeper.parent == component.urn
    assert follower.parent == component.urn
    assert component.parent is not None and component.parent.endswith("::homelab-test")


def test_records_options(recording: Recording) -> None:
    keeper = recording.get("command:local:Command", "fx-keeper")
    follower = recording.get("command:local:Command", "fx-follower")
    assert keeper.protect and keeper.retain_on_delete
    assert keeper.ignore_changes == ("create",)
    assert not follower.protect and not follower.retain_on_delete
    assert keeper.urn in follower.dependencies


def test_records_secretness_per_field(recording: Recording) -> None:
    keeper = recording.get("command:local:Command", "fx-keeper")
    assert keeper.is_secret("environment.TOKEN")
    assert not keeper.is_secret("environment.PLAIN")
    assert keeper.inputs["environment"] == {"TOKEN": "s3cr3t", "PLAIN": "visible"}
    # The SDK itself marks these outputs secret; the engine must keep that request intact.
    assert "stdout" not in keeper.additional_secret_outputs


def test_records_outputs_with_secretness(recording: Recording) -> None:
    assert recording.outputs["plain"].value == "hello"
    assert not recording.outputs["plain"].secret
    assert recording.outputs["hidden"].secret
    assert recording.outputs["hidden"].value == "classified"


def test_component_outputs_are_registered(recording: Recording) -> None:
    component = recording.get("homelab:test:Fixture", "fx")
    assert "stdout" in recording.component_outputs[component.urn]


def test_runs_are_isolated(record) -> None:
    first = record(program)
    second = record(program)
    assert [r.name for r in first.resources] == [r.name for r in second.resources]
    assert len(second.resources) == 3


def test_waits_for_follows_dependencies_transitively_and_only_forwards(record) -> None:
    def program() -> None:
        first = local.Command("first", create="true")
        middle = local.Command("middle", create="true", opts=pulumi.ResourceOptions(depends_on=[first]))
        local.Command("last", create="true", opts=pulumi.ResourceOptions(depends_on=[middle]))
        local.Command("alone", create="true")

    rec = record(program)
    first, last, alone = (rec.get("command:local:Command", n) for n in ("first", "last", "alone"))
    assert rec.waits_for(last, first)
    assert not rec.waits_for(first, last)
    assert not rec.waits_for(alone, first)
    assert not rec.waits_for(last, alone)
