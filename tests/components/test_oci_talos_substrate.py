"""`OciTalosSubstrate`: the CLOUD cluster's nodes on A1.Flex behind `TalosCluster`."""

import base64
import dataclasses
import json
from collections.abc import Callable

import pulumi
import pulumi_command
import pulumi_oci
import pytest

from components.oci.talos_substrate import OciTalosSubstrate
from components.talos.cluster import TalosCluster, talos_provider
from components.talos.substrate import TalosNode
from homelab.backup_evidence import Holding
from homelab.engine import Recording, run_program

NODE = TalosNode("cloud-1", "controlplane", "10.20.1.20", 1, 8192, 100)
SUBSTRATE = OciTalosSubstrate(
    compartment_id="ocid1.compartment.oc1..aaaaaaaatest0000000000000000000",
    availability_domain="Offl:EU-PARIS-1-AD-1",
    subnet_id="ocid1.subnet.oc1..aaaaaaaatest000000000000000000",
    nsg_ids=("ocid1.networksecuritygroup.oc1..aaaaaaaatest",),
    object_storage_namespace="axofflinens1",
    bucket_name="homelab-talos-images",
    freeform_tags={"managed-by": "pulumi", "stack": "test", "role": "talos-node"},
    reserved_public_ip=frozenset({"cloud-1"}),
)


def run(program: Callable[[], None]) -> Recording:
    return run_program(program, project="homelab", stack="test")


def _program(substrate: OciTalosSubstrate = SUBSTRATE, nodes: tuple[TalosNode, ...] = (NODE,)) -> None:
    oci = pulumi_oci.Provider("oci", region="eu-paris-1")
    commands = pulumi_command.Provider("command")
    talos = TalosCluster(
        "cloud",
        {
            "cluster_name": "homelab-cloud",
            "endpoint_host": NODE.address,
            "talos_version": "v1.11.5",
            "kubernetes_version": "1.34.1",
            "nodes": {n.name: n for n in nodes},
            "substrate": substrate,
        },
        opts=pulumi.ResourceOptions(providers=[talos_provider("talos"), oci, commands]),
    )
    pulumi.export("node_public_ips", talos.node_public_ips)


@pytest.fixture(scope="module")
def cluster() -> Recording:
    return run(_program)


def test_image_bucket_is_private_versioned_and_kept(cluster: Recording) -> None:
    bucket = cluster.get("oci:ObjectStorage/bucket:Bucket", "cloud-talos-images")
    assert bucket.inputs["name"] == "homelab-talos-images"
    assert bucket.inputs["accessType"] == "NoPublicAccess"
    assert bucket.inputs["versioning"] == "Enabled"
    assert bucket.protect and bucket.retain_on_delete


def test_oracle_arm64_image_is_converted_uploaded_and_made_a1_compatible(cluster: Recording) -> None:
    upload = cluster.get("command:local:Command", "cloud-talos-image-upload")
    environment = upload.inputs["environment"]
    assert environment["IMAGE_URL"].endswith("/oracle-arm64.raw.xz")
    assert "qemu-img convert" in upload.inputs["create"]
    metadata = json.loads(environment["IMAGE_METADATA"])
    shapes = metadata["additionalMetadata"]["shapeCompatibilities"]
    assert shapes[0]["internalShapeName"] == "VM.Standard.A1.Flex"
    image = cluster.get("oci:Core/image:Image", "cloud-talos-image")
    assert image.inputs["imageSourceDetails"]["sourceType"] == "objectStorageTuple"
    assert image.inputs["imageSourceDetails"]["objectName"] == environment["OBJECT"]
    assert upload.urn in image.dependencies
    assert image.inputs["launchMode"] == "PARAVIRTUALIZED"
    shape = cluster.get("oci:Core/shapeManagement:ShapeManagement", "cloud-talos-image-a1")
    assert shape.inputs["shapeName"] == "VM.Standard.A1.Flex"


def test_image_upload_needs_no_local_file_after_the_first_deploy(cluster: Recording) -> None:
    """A fresh clone or CI runner previews without the archive: no resource takes a local path."""
    assert not cluster.by_type("oci:ObjectStorage/storageObject:StorageObject")
    upload = cluster.get("command:local:Command", "cloud-talos-image-upload")
    # Re-run only for a new object (version + schematic); a present object is left alone.
    assert upload.inputs["triggers"] == [upload.inputs["environment"]["OBJECT"]]
    assert "oci os object head" in upload.inputs["create"] and "exit 0" in upload.inputs["create"]
    assert "--no-overwrite" in upload.inputs["create"]
    assert "delete" not in upload.inputs
    assert upload.inputs["environment"]["OBJECT"].startswith("talos-v1.11.5-")


def test_node_boots_with_its_machine_configuration_as_secret_user_data(cluster: Recording) -> None:
    instance = cluster.get("oci:Core/instance:Instance", "cloud-cloud-1-instance")
    assert instance.is_secret("metadata.user_data")
    config = base64.b64decode(instance.inputs["metadata"]["user_data"]).decode()
    # The simulated configuration carries its patches verbatim: the OCI NTP patch reached the node.
    assert "169.254.169.254" in config
    assert "controlplane" in config
    assert instance.inputs["shapeConfig"] == {"ocpus": 1, "memoryInGbs": 8}
    assert instance.inputs["sourceDetails"]["bootVolumeSizeInGbs"] == "100"
    assert instance.inputs["instanceOptions"]["areLegacyImdsEndpointsDisabled"] is True
    assert {"sourceDetails", "metadata.user_data"} <= set(instance.ignore_changes)
    assert instance.protect


def test_machines_hang_under_the_cluster_and_wait_for_shape_compatibility(cluster: Recording) -> None:
    talos = cluster.get("homelab:talos:TalosCluster", "cloud")
    node = cluster.get("homelab:oci:AlwaysFreeNode", "cloud-cloud-1")
    assert node.parent == talos.urn
    instance = cluster.get("oci:Core/instance:Instance", "cloud-cloud-1-instance")
    shape = cluster.get("oci:Core/shapeManagement:ShapeManagement", "cloud-talos-image-a1")
    assert shape.urn in instance.dependencies
    assert instance.provider is not None and "::oci::" in instance.provider
    apply = cluster.get("talos:machine/configurationApply:ConfigurationApply", "cloud-cloud-1-config")
    assert instance.urn in apply.dependencies


def test_control_plane_instances_declare_what_they_hold_and_nothing_else_does() -> None:
    holding = Holding("critical", ("cloud-etcd",))
    worker = TalosNode("cloud-2", "worker", "10.20.1.21", 1, 8192, 50)
    substrate = dataclasses.replace(SUBSTRATE, control_plane_holding=holding)
    rec = run(lambda: _program(substrate, (NODE, worker)))
    base = dict(SUBSTRATE.freeform_tags)
    instance = rec.get("oci:Core/instance:Instance", "cloud-cloud-1-instance").inputs
    assert instance["freeformTags"] == {**base, "data-class": "critical", "holds": "cloud-etcd"}
    # The VNIC and the address hold no data; the worker holds no etcd.
    assert instance["createVnicDetails"]["freeformTags"] == base
    assert rec.get("oci:Core/publicIp:PublicIp", "cloud-cloud-1-public-ip").inputs["freeformTags"] == base
    assert rec.get("oci:Core/instance:Instance", "cloud-cloud-2-instance").inputs["freeformTags"] == base


def test_reserved_ip_for_comet_egress(cluster: Recording) -> None:
    address = cluster.get("oci:Core/publicIp:PublicIp", "cloud-cloud-1-public-ip")
    assert address.inputs["lifetime"] == "RESERVED" and address.protect


def test_substrate_declares_oracle_arm64_and_the_ntp_patch() -> None:
    assert (SUBSTRATE.platform, SUBSTRATE.architecture) == ("oracle", "arm64")
    assert SUBSTRATE.delivers_config_at_boot
    patch = json.loads(SUBSTRATE.config_patches(NODE)[0])
    assert patch == {"machine": {"time": {"servers": ["169.254.169.254"]}}}


def test_the_substrate_is_frozen_settings_without_providers() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SUBSTRATE.bucket_name = "other"  # type: ignore[misc]
    fields = {f.name for f in dataclasses.fields(OciTalosSubstrate)}
    assert not {f for f in fields if "provider" in f}
    assert not [name for name, value in vars(SUBSTRATE).items() if isinstance(value, dict | list)]


def test_every_child_uses_the_providers_the_cluster_was_given(cluster: Recording) -> None:
    for record in cluster.resources:
        if record.custom and record.type.split(":")[0] in ("oci", "command"):
            package = record.type.split(":")[0]
            assert record.provider is not None and f"::{package}::" in record.provider, record.name


def test_per_node_public_ips_come_back_through_the_cluster(cluster: Recording) -> None:
    ips = cluster.outputs["node_public_ips"]
    assert not ips.secret
    # The reserved address (FR-014), not an ephemeral one.
    address = cluster.get("oci:Core/publicIp:PublicIp", "cloud-cloud-1-public-ip")
    assert set(ips.value) == {"cloud-1"}
    assert address.inputs["lifetime"] == "RESERVED"


def test_memory_that_is_not_whole_gb_is_refused_not_rounded() -> None:
    odd = TalosNode("cloud-1", "controlplane", "10.20.1.20", 1, 8000, 100)

    def program() -> None:
        TalosCluster(
            "cloud",
            {
                "cluster_name": "homelab-cloud",
                "endpoint_host": odd.address,
                "talos_version": "v1.11.5",
                "kubernetes_version": "1.34.1",
                "nodes": {odd.name: odd},
                "substrate": SUBSTRATE,
            },
            opts=pulumi.ResourceOptions(
                providers=[talos_provider("talos"), pulumi_oci.Provider("oci"), pulumi_command.Provider("command")]
            ),
        )

    with pytest.raises(ValueError, match="8000 MB, not a whole number of GB"):
        run(program)
