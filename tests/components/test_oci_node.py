"""`AlwaysFreeNode` and `ManagementVm`: hardened A1 instances that are never replaced by updates."""

from collections.abc import Callable

import pulumi
import pulumi_oci
import pytest

from components.oci.node import AlwaysFreeNode
from homelab.engine import Recording, run_program

INSTANCE = "oci:Core/instance:Instance"


def run(program: Callable[[], None]) -> Recording:
    return run_program(program, project="homelab", stack="test")


def _node(name: str, **extra: object) -> None:
    provider = pulumi_oci.Provider(f"{name}-oci", region="eu-paris-1")
    AlwaysFreeNode(
        name,
        {
            "compartment_id": "ocid1.compartment.oc1..aaaaaaaatest0000000000000000000",
            "availability_domain": "Offl:EU-PARIS-1-AD-1",
            "subnet_id": "ocid1.subnet.oc1..aaaaaaaatest000000000000000000",
            "image_id": "ocid1.image.oc1..aaaaaaaatest000000000000000000000",
            "ocpus": 1,
            "memory_gb": 8,
            "boot_volume_gb": 100,
            "private_ip": "10.20.1.20",
            "hostname_label": name,
            "freeform_tags": {"managed-by": "pulumi", "stack": "test", "role": "talos-node"},
            "nsg_ids": ["ocid1.networksecuritygroup.oc1..aaaaaaaatest"],
            "user_data": "I2Nsb3VkLWNvbmZpZwo=",
            **extra,  # type: ignore[typeddict-item]
        },
        opts=pulumi.ResourceOptions(providers=[provider]),
    )


@pytest.fixture(scope="module")
def nodes() -> Recording:
    def program() -> None:
        _node("plain")
        _node("stable", reserved_public_ip=True, holds_data=True)

    return run(program)


def test_instance_is_a1_flex_sized_from_args(nodes: Recording) -> None:
    instance = nodes.get(INSTANCE, "plain-instance").inputs
    assert instance["shape"] == "VM.Standard.A1.Flex"
    assert instance["shapeConfig"] == {"ocpus": 1, "memoryInGbs": 8}
    assert instance["sourceDetails"]["bootVolumeSizeInGbs"] == "100"
    assert instance["createVnicDetails"]["privateIp"] == "10.20.1.20"


def test_instance_is_hardened_and_tagged(nodes: Recording) -> None:
    instance = nodes.get(INSTANCE, "plain-instance").inputs
    assert instance["instanceOptions"] == {"areLegacyImdsEndpointsDisabled": True}
    assert instance["freeformTags"] == {"managed-by": "pulumi", "stack": "test", "role": "talos-node"}


def test_in_transit_encryption_is_set_where_the_sdk_says_to_set_it_at_create(nodes: Recording) -> None:
    # pulumi_oci 5.5.0 core/instance.py: the top-level field at create; launch_options' is update-only.
    instance = nodes.get(INSTANCE, "plain-instance").inputs
    assert instance["isPvEncryptionInTransitEnabled"] is True
    assert "isPvEncryptionInTransitEnabled" not in instance["launchOptions"]


def test_boot_volume_is_kept_only_when_it_holds_data(nodes: Recording) -> None:
    assert nodes.get(INSTANCE, "plain-instance").inputs["preserveBootVolume"] is False
    assert nodes.get(INSTANCE, "stable-instance").inputs["preserveBootVolume"] is True


def test_a_replacement_releases_the_pinned_address_first(nodes: Recording) -> None:
    assert nodes.get(INSTANCE, "plain-instance").delete_before_replace


def test_a_new_login_key_replaces_instead_of_being_ignored(nodes: Recording) -> None:
    record = nodes.get(INSTANCE, "plain-instance")
    # An ignored key would be carried from the state into a replacement: the new VM would refuse it.
    assert "metadata" not in record.ignore_changes
    assert "metadata.ssh_authorized_keys" not in record.ignore_changes
    assert record.replace_on_changes == ("metadata.ssh_authorized_keys",)


def test_boot_media_and_user_data_never_replace_the_instance(nodes: Recording) -> None:
    record = nodes.get(INSTANCE, "plain-instance")
    assert {"sourceDetails", "metadata.user_data"} <= set(record.ignore_changes)
    assert record.is_secret("metadata.user_data")
    assert "metadata" in record.additional_secret_outputs


def test_protection_follows_holds_data(nodes: Recording) -> None:
    assert not nodes.get(INSTANCE, "plain-instance").protect
    assert nodes.get(INSTANCE, "stable-instance").protect


def test_reserved_public_ip_is_protected_and_replaces_the_ephemeral_one(nodes: Recording) -> None:
    stable = nodes.get(INSTANCE, "stable-instance")
    assert stable.inputs["createVnicDetails"]["assignPublicIp"] == "false"
    address = nodes.get("oci:Core/publicIp:PublicIp", "stable-public-ip")
    assert address.inputs["lifetime"] == "RESERVED"
    assert address.inputs["privateIpId"].startswith("ocid1.privateip.")
    assert address.protect
    assert address.parent == nodes.get("homelab:oci:AlwaysFreeNode", "stable").urn
    assert not nodes.by_type("oci:Core/publicIp:PublicIp")[1:]


def test_boot_volume_below_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 50 GB"):
        run(lambda: _node("tiny", boot_volume_gb=40))
