"""`ManagementVm`: protected data volume, in-place updates over the Bastion, nothing replaced."""

import pytest

from homelab.engine import Recording
from tests.test_compose import management as _management_fixture

management = _management_fixture


def test_resources_are_parented_to_the_component(management: Recording) -> None:
    component = management.get("homelab:oci:ManagementVm", "mgmt")
    direct = {r.name for r in management.children_of(component)}
    assert direct >= {
        "mgmt-node",
        "mgmt-data",
        "mgmt-data-attachment",
        "mgmt-session",
        "mgmt-prepare",
        "mgmt-secrets",
        "mgmt-compose-file",
        "mgmt-compose-up",
    }


def test_data_volume_is_protected_and_retained(management: Recording) -> None:
    volume = management.get("oci:Core/volume:Volume", "mgmt-data")
    assert volume.protect and volume.retain_on_delete
    assert volume.inputs["sizeInGbs"] == "50"
    attachment = management.get("oci:Core/volumeAttachment:VolumeAttachment", "mgmt-data-attachment")
    assert attachment.inputs["isPvEncryptionInTransitEnabled"] is True
    assert attachment.inputs["device"] == "/dev/oracleoci/oraclevdb"


def test_instance_is_disposable_and_ignores_cloud_init_changes(management: Recording) -> None:
    instance = management.get("oci:Core/instance:Instance", "mgmt-node-instance")
    # Data lives on the retained volume: the VM may be replaced and takes its boot volume with it.
    assert not instance.protect
    assert instance.inputs["preserveBootVolume"] is False
    assert "metadata.user_data" in instance.ignore_changes
    assert instance.inputs["metadata"]["ssh_authorized_keys"].startswith("ssh-ed25519 ")


def test_the_data_volume_detaches_before_it_is_attached_to_a_replacement(management: Recording) -> None:
    attachment = management.get("oci:Core/volumeAttachment:VolumeAttachment", "mgmt-data-attachment")
    assert attachment.delete_before_replace


@pytest.mark.parametrize("name", ["mgmt-prepare", "mgmt-secrets", "mgmt-compose-file", "mgmt-compose-up"])
def test_a_replaced_vm_gets_every_step_again(management: Recording, name: str) -> None:
    # The private address (the connection's host) stays the same across a replacement: only the
    # instance id tells the remote steps they face a new, empty VM.
    instance_id = management.get("oci:Core/instance:Instance", "mgmt-node-instance").id
    assert instance_id in management.named(name).inputs["triggers"]


def test_commands_go_through_a_bastion_port_forwarding_session(management: Recording) -> None:
    session = management.get("oci:Bastion/session:Session", "mgmt-session")
    assert session.inputs["targetResourceDetails"]["sessionType"] == "PORT_FORWARDING"
    assert session.inputs["targetResourceDetails"]["targetResourcePort"] == 22
    assert "displayName" in session.replace_on_changes
    up = management.get("command:remote:Command", "mgmt-compose-up")
    connection = up.inputs["connection"]
    assert connection["host"] == "10.20.1.10"
    assert connection["proxy"]["host"] == "host.bastion.eu-paris-1.oci.oraclecloud.com"
    assert connection["proxy"]["user"] == "mgmt-session-id"
    assert up.is_secret("connection")


def test_compose_up_is_triggered_by_content_and_never_takes_services_down(management: Recording) -> None:
    up = management.get("command:remote:Command", "mgmt-compose-up")
    assert "delete" not in up.inputs
    assert len(up.inputs["triggers"]) == 3
    assert up.is_secret("triggers[1]")  # the digest of the secrets
    copy = management.get("command:remote:CopyToRemote", "mgmt-compose-file")
    assert copy.inputs["triggers"] == [up.inputs["triggers"][0], up.inputs["triggers"][2]]


@pytest.mark.parametrize("name", ["mgmt-prepare", "mgmt-secrets", "mgmt-compose-file", "mgmt-compose-up"])
def test_commands_use_the_given_command_provider(management: Recording, name: str) -> None:
    record = management.named(name)
    assert record.provider is not None and "::command::" in record.provider


def test_a_changed_remote_step_opens_a_fresh_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from homelab.engine import run_program
    from tests.test_compose import _management_program

    def session_name() -> str:
        recording = run_program(_management_program, project="homelab", stack="test")
        return recording.get("oci:Bastion/session:Session", "mgmt-session").inputs["displayName"]

    before = session_name()
    monkeypatch.setattr("components.oci.management_vm.PREPARE_SCRIPT", "set -eu\ntrue\n")
    assert session_name() != before
