"""`OciTalosSubstrate`: Talos nodes as Ampere A1.Flex instances booting an imported Oracle image.

OCI cannot boot the Image Factory's `oracle-arm64.raw.xz` directly: the image is converted once on
the machine running Pulumi (curl, xz, qemu-img, tar) into an `.oci` archive that carries its launch
options and A1 shape compatibility, uploaded to a private, versioned bucket with the OCI CLI and
imported as a custom image.

The conversion and upload are one `command:local:Command` that runs only when the object's name
(Talos version + schematic) is new, and does nothing if the object is already in the bucket. No
local file is an input of any resource: a fresh clone or a CI runner previews, deploys and
drift-checks the stack without rebuilding or re-uploading the image. (An
`oci.objectstorage.StorageObject` would need the archive on every machine: the provider stats
`source` at every `Check`, and its path + modification time are part of its state, so a rebuilt
archive would replace — delete and re-create — the object.)

Each node receives its machine configuration as user data at creation; later configuration
changes and upgrades go through the Talos API (`TalosCluster`), so a new image or Talos version
never replaces an instance.
"""

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

import pulumi
import pulumi_oci.core as oci_core
import pulumi_oci.objectstorage as oci_objectstorage
from pulumi_command import local

from components.oci.node import A1_FLEX, AlwaysFreeNode
from components.talos.substrate import BootImage, TalosNode
from homelab.backup_evidence import Holding

# Oracle's time service; Talos on OCI cannot reach public NTP pools reliably without it.
OCI_NTP = "169.254.169.254"


def whole_gb(mb: int, what: str) -> int:
    """OCI sizes memory in whole GB: the cluster's MB figure must be one, never silently rounded."""
    if mb % 1024:
        raise ValueError(f"OciTalosSubstrate: {what} is {mb} MB, not a whole number of GB")
    return mb // 1024


def image_metadata(talos_version: str) -> str:
    """`image_metadata.json` of the `.oci` archive: UEFI, paravirtualized, A1.Flex compatible."""
    return json.dumps(
        {
            "version": 2,
            "externalLaunchOptions": {
                "firmware": "UEFI_64",
                "networkType": "PARAVIRTUALIZED",
                "bootVolumeType": "PARAVIRTUALIZED",
                "remoteDataVolumeType": "PARAVIRTUALIZED",
                "localDataVolumeType": "PARAVIRTUALIZED",
                "launchOptionsSource": "PARAVIRTUALIZED",
                "pvAttachmentVersion": 2,
                "pvEncryptionInTransitEnabled": True,
                "consistentVolumeNamingEnabled": True,
            },
            "imageCapabilityData": None,
            "imageCapsFormatVersion": None,
            "operatingSystem": "Talos",
            "operatingSystemVersion": talos_version,
            "additionalMetadata": {
                "shapeCompatibilities": [
                    {"internalShapeName": A1_FLEX, "ocpuConstraints": None, "memoryConstraints": None}
                ]
            },
        },
        indent=2,
    )


UPLOAD_IMAGE_SCRIPT = """set -eu
# Fail fast on missing credentials, before a 100+ MB download.
oci os ns get >/dev/null
if oci os object head --namespace-name "$NAMESPACE" --bucket-name "$BUCKET" --name "$OBJECT" >/dev/null 2>&1; then
  echo "object=$OBJECT present"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 --proto '=https' "$IMAGE_URL" -o "$work/oracle-arm64.raw.xz"
xz -d "$work/oracle-arm64.raw.xz"
qemu-img convert -f raw -O qcow2 "$work/oracle-arm64.raw" "$work/oracle-arm64.qcow2"
printf '%s' "$IMAGE_METADATA" > "$work/image_metadata.json"
tar -C "$work" -czf "$work/image.oci" oracle-arm64.qcow2 image_metadata.json
oci os object put --namespace-name "$NAMESPACE" --bucket-name "$BUCKET" --name "$OBJECT" \\
  --file "$work/image.oci" --content-type application/octet-stream --no-overwrite >/dev/null
echo "object=$OBJECT uploaded sha256=$(sha256sum "$work/image.oci" | cut -d' ' -f1)"
"""
"""Convert the Image Factory image into an OCI `.oci` import archive and upload it as `$OBJECT`,
unless the bucket already holds it. Idempotent: re-running it after a success changes nothing."""


@dataclass(frozen=True)
class OciTalosSubstrate:
    """Places the CLOUD cluster's Talos nodes as A1.Flex instances: the `TalosSubstrate` of OCI.

    Frozen settings, like `ProxmoxTalosSubstrate`: no providers (the OCI and command providers flow
    from `TalosCluster`'s `opts` to every resource parented to it), no state of its own. Each node's
    machine (its `AlwaysFreeNode`, which exposes `public_ip`) is what `create_machines` returns, so
    per-node outputs come back through `TalosCluster.node_public_ips`.
    """

    compartment_id: pulumi.Input[str]
    availability_domain: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    nsg_ids: Sequence[pulumi.Input[str]]
    object_storage_namespace: pulumi.Input[str]
    bucket_name: str
    freeform_tags: Mapping[str, str]
    bucket_tags: Mapping[str, str] = field(default_factory=dict)
    """Extra freeform tags of the image bucket (its expected size, which BUD-04 counts)."""
    reserved_public_ip: frozenset[str] = frozenset()
    """Node names that keep a reserved public IP (stable egress, FR-014); the others get an
    ephemeral one for egress."""
    control_plane_holding: Holding | None = None
    """What the control planes hold (etcd: the backup plan's `cloud-etcd`), tagged on their instances so
    the offsite policy knows they hold it (homelab/backup_evidence.py)."""
    region: pulumi.Input[str] | None = None
    """The OCI region of the bucket, for the OCI CLI that uploads the image (default: the CLI's own
    configuration). The CLI authenticates with its configuration file or `OCI_CLI_*` variables."""
    platform: str = field(default="oracle", init=False)
    architecture: str = field(default="arm64", init=False)
    delivers_config_at_boot: bool = field(default=True, init=False)

    KEEPS_BOOT_VOLUME: ClassVar[bool] = True
    """A node's boot volume holds etcd and local volumes: it is kept when the instance is terminated
    (and counted in the quota ledger until reclaimed)."""

    def __post_init__(self) -> None:
        # Settings, not state: copies the caller cannot change behind the substrate's back.
        object.__setattr__(self, "freeform_tags", MappingProxyType(dict(self.freeform_tags)))
        object.__setattr__(self, "bucket_tags", MappingProxyType(dict(self.bucket_tags)))
        object.__setattr__(self, "nsg_ids", tuple(self.nsg_ids))
        object.__setattr__(self, "reserved_public_ip", frozenset(self.reserved_public_ip))

    def config_patches(self, node: TalosNode) -> list[str]:  # noqa: ARG002 (the protocol passes the node)
        return [json.dumps({"machine": {"time": {"servers": [OCI_NTP]}}}, sort_keys=True)]

    def create_machines(
        self,
        cluster: pulumi.ComponentResource,
        image: BootImage,
        nodes: Mapping[str, TalosNode],
        machine_configurations: Mapping[str, pulumi.Output[str]],
    ) -> dict[str, pulumi.Resource]:

        name = cluster.pulumi_resource_name
        # Providers come from the cluster's `opts` (resolved by package for every child).
        oci = pulumi.ResourceOptions(parent=cluster)
        version = image.talos_version

        # Imported images are rebuilt from the Image Factory at will, but the bucket's name is global
        # to the namespace and its versions are the audit trail of what booted.
        bucket = oci_objectstorage.Bucket(
            f"{name}-talos-images",
            compartment_id=self.compartment_id,
            namespace=self.object_storage_namespace,
            name=self.bucket_name,
            access_type="NoPublicAccess",
            versioning="Enabled",
            storage_tier="Standard",
            freeform_tags={**self.freeform_tags, **self.bucket_tags},
            opts=pulumi.ResourceOptions.merge(oci, pulumi.ResourceOptions(protect=True, retain_on_delete=True)),
        )
        object_name = image.schematic_id.apply(lambda schematic: f"talos-{version}-{schematic[:12]}-oracle-arm64.oci")
        environment: dict[str, pulumi.Input[str]] = {
            "IMAGE_URL": image.disk_image_url,
            "NAMESPACE": self.object_storage_namespace,
            "BUCKET": bucket.name,
            "OBJECT": object_name,
            "IMAGE_METADATA": image_metadata(version),
        }
        if self.region is not None:
            environment["OCI_CLI_REGION"] = self.region
        # Runs once per object name; no `delete`: the versioned bucket keeps what booted.
        upload = local.Command(
            f"{name}-talos-image-upload",
            create=UPLOAD_IMAGE_SCRIPT,
            environment=environment,
            triggers=[object_name],
            opts=oci,
        )
        custom_image = oci_core.Image(
            f"{name}-talos-image",
            compartment_id=self.compartment_id,
            display_name=object_name.apply(lambda object_: object_.removesuffix(".oci")),
            launch_mode="PARAVIRTUALIZED",
            image_source_details={
                "source_type": "objectStorageTuple",
                "namespace_name": self.object_storage_namespace,
                "bucket_name": bucket.name,
                "object_name": object_name,
                "operating_system": "Talos",
                "operating_system_version": version,
            },
            freeform_tags=dict(self.freeform_tags),
            opts=pulumi.ResourceOptions.merge(oci, pulumi.ResourceOptions(depends_on=[upload])),
        )
        # Imported images are not A1-compatible until told so.
        compatibility = oci_core.ShapeManagement(
            f"{name}-talos-image-a1",
            compartment_id=self.compartment_id,
            image_id=custom_image.id,
            shape_name=A1_FLEX,
            opts=oci,
        )

        machines: dict[str, pulumi.Resource] = {}
        for key, node in sorted(nodes.items()):
            user_data = machine_configurations[key].apply(lambda text: base64.b64encode(text.encode()).decode())
            instance = AlwaysFreeNode(
                f"{name}-{key}",
                {
                    "compartment_id": self.compartment_id,
                    "availability_domain": self.availability_domain,
                    "subnet_id": self.subnet_id,
                    "image_id": custom_image.id,
                    "ocpus": node.cores,
                    "memory_gb": whole_gb(node.memory_mb, f"node {key} memory"),
                    "boot_volume_gb": node.disk_gb,
                    "private_ip": node.address,
                    "hostname_label": key,
                    "freeform_tags": dict(self.freeform_tags),
                    "instance_tags": self.control_plane_holding.oci_tags()
                    if node.role == "controlplane" and self.control_plane_holding is not None
                    else {},
                    "nsg_ids": list(self.nsg_ids),
                    "user_data": pulumi.Output.secret(user_data),
                    "public_ip": True,
                    "reserved_public_ip": key in self.reserved_public_ip,
                    # etcd and local volumes live on the boot disk.
                    "holds_data": self.KEEPS_BOOT_VOLUME,
                    "depends_on": [compatibility],
                },
                opts=oci,
            )
            machines[key] = instance
        return machines
