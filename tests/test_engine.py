"""The recording engine captures what a real preview would send to the engine."""

import contextvars
import gc
import logging

import pulumi
import pytest
from pulumi_command import local

from homelab.engine import UNKNOWN, OfflineMocks, Recording, View, _ContextExecutor, run_program


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


# --- one process, many runs: nothing of a run reaches the next ------------------------------------


def _dependent_program() -> None:
    """A custom resource whose input is built from another's id (unknown in a first preview)."""
    first = local.Command("first", create="true")
    local.Command("second", create=first.id.apply(lambda id_: f"echo {id_}"))


def _run(preview: bool, view: View = "update") -> Recording:
    return run_program(_dependent_program, project="homelab", stack="test", preview=preview, view=view)


def test_an_up_style_run_does_not_leak_into_a_later_first_preview() -> None:
    """An up-style run once made every later preview in the process deliver unknown inputs to the
    monitor as null: a first preview then recorded no URL for a download, and SEC-06 failed dev."""
    _run(preview=False)
    second = _run(preview=True, view="first-preview").get("command:local:Command", "second")
    assert second.inputs["create"] == UNKNOWN
    assert second.outputs_wire["create"] == UNKNOWN


def test_a_preview_does_not_leak_into_a_later_up_style_run() -> None:
    _run(preview=True, view="first-preview")
    rec = _run(preview=False)
    first, second = (rec.get("command:local:Command", n) for n in ("first", "second"))
    assert first.id
    assert second.inputs["create"] == second.outputs_wire["create"] == f"echo {first.id}"


def test_every_run_deserializes_registrations_with_its_own_dry_run_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the monitor reads a registration (an RPC worker thread), the runtime answers the run's own
    `is_dry_run()`, in any order of runs (the two tests above depend on which run came first)."""
    seen: list[bool] = []
    new_resource = OfflineMocks.new_resource

    def spy(self: OfflineMocks, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[object, object]]:
        seen.append(pulumi.runtime.is_dry_run())
        return new_resource(self, args)

    monkeypatch.setattr(OfflineMocks, "new_resource", spy)
    runs: tuple[tuple[bool, View], ...] = (
        (False, "update"),
        (True, "first-preview"),
        (False, "update"),
        (True, "update"),
    )
    for preview, view in runs:
        seen.clear()
        _run(preview, view)
        assert seen and set(seen) == {preview}, (preview, view)


def test_a_run_that_failed_inside_an_apply_does_not_hold_up_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failed run's outstanding RPCs and outputs are bound to its closed loop; the next run must
    not await them (each run has its own RPC manager and output set)."""

    def explode(_: str) -> str:
        raise RuntimeError("boom")

    def failing() -> None:
        first = local.Command("first", create="true")
        local.Command("second", create=first.id.apply(explode))

    # The failed run's futures still hold the error it raised; asyncio logs each when it is collected.
    monkeypatch.setattr(logging.getLogger("asyncio"), "disabled", True)
    with pytest.raises(RuntimeError, match="boom"):
        run_program(failing, project="homelab", stack="test", preview=False)
    rec = _run(preview=False)
    assert [r.name for r in rec.resources if r.custom and not r.is_provider] == ["first", "second"]
    # Collect the failed run's futures while asyncio's logger is still off. They are young (this
    # test made them): a young-generation collection reaches them, where a wider one would also walk
    # everything the session has promoted (the cached previews among it), over a second. Should one
    # have been promoted by a collection during the run, it is collected later: a logged line, no failure.
    gc.collect(0)


def test_the_rpc_threads_run_in_the_senders_context() -> None:
    """The SDK sends its RPCs through the loop's default executor; the engine's runs each call in the
    sender's context (the SDK's first-set-becomes-default settings would otherwise decide)."""
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    marker.set("sender")
    with _ContextExecutor(max_workers=1) as executor:
        assert executor.submit(marker.get).result() == "sender"
