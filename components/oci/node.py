"""`AlwaysFreeNode`: one Ampere A1.Flex instance, hardened, sized from typed args.

Every node: legacy (v1) instance metadata endpoints off, in-transit encryption of the paravirtualized
volumes on (set at create, where the SDK wants it), ownership tags. Boot volumes are decided per
node: a node whose disk holds data (`holds_data`: a Talos node's etcd) is protected and its boot
volume is kept when the instance is terminated (it then counts against the Always Free 200 GB until
reclaimed, see the cloud runbook); any other node's boot volume is deleted with it. Boot media and
user data are read once at creation: changing the image or the user data later must never replace
the instance (Talos upgrades go through its API, the management VM is updated over the Bastion), so
both are in `ignore_changes`. The SSH login key is not: OCI accepts it at launch only, and an
ignored value would be carried into a replacement, so a new key replaces the instance. Private IPs
are pinned, so a replacement deletes the old instance first.

A reserved public IP gives a node an address that survives instance replacement: Comet's egress
must keep one IP for Real-Debrid (FR-014). A private IP can carry one public IP only, so such a
node launches without an ephemeral one and the reserved IP is attached to its primary private IP.
"""

from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_oci.core as oci_core

A1_FLEX = "VM.Standard.A1.Flex"


class AlwaysFreeNodeArgs(TypedDict):
    compartment_id: pulumi.Input[str]
    availability_domain: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    image_id: pulumi.Input[str]
    ocpus: int
    memory_gb: int
    boot_volume_gb: int
    private_ip: str
    hostname_label: str
    freeform_tags: dict[str, str]
    instance_tags: NotRequired[Mapping[str, str]]
    """Extra freeform tags of the instance only: the data it holds (DAT-08's evidence), which its VNIC
    and public IP do not."""
    nsg_ids: NotRequired[Sequence[pulumi.Input[str]]]
    user_data: NotRequired[pulumi.Input[str]]
    """Base64 user data (cloud-init, or a Talos machine configuration); secret."""
    ssh_authorized_keys: NotRequired[str]
    public_ip: NotRequired[bool]
    """An ephemeral public IP for egress (ignored when `reserved_public_ip`)."""
    reserved_public_ip: NotRequired[bool]
    holds_data: NotRequired[bool]
    """The boot volume holds data (a Talos node's etcd and local volumes): protect the instance and
    keep the boot volume when the instance is terminated. Without it the boot volume holds nothing
    a new instance cannot rebuild, and it is deleted with its instance (no billable orphan)."""
    bastion_plugin: NotRequired[bool]
    """Enable the Oracle Cloud Agent's Bastion plugin (managed SSH sessions)."""
    depends_on: NotRequired[Sequence[pulumi.Resource]]


class AlwaysFreeNode(pulumi.ComponentResource):
    """An A1.Flex instance and, optionally, its reserved public IP."""

    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    boot_volume_id: pulumi.Output[str]
    instance: oci_core.Instance

    def __init__(self, name: str, args: AlwaysFreeNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:AlwaysFreeNode", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args["boot_volume_gb"] < 50:
            raise ValueError(f"AlwaysFreeNode {name!r}: OCI boot volumes are at least 50 GB")
        reserved = args.get("reserved_public_ip", False)
        holds_data = args.get("holds_data", False)
        metadata: dict[str, pulumi.Input[str]] = {}
        if "ssh_authorized_keys" in args:
            metadata["ssh_authorized_keys"] = args["ssh_authorized_keys"]
        if "user_data" in args:
            metadata["user_data"] = pulumi.Output.secret(args["user_data"])
        plugins: list[oci_core.InstanceAgentConfigPluginsConfigArgsDict] = []
        if args.get("bastion_plugin", False):
            plugins.append({"name": "Bastion", "desired_state": "ENABLED"})

        self.instance = oci_core.Instance(
            f"{name}-instance",
            compartment_id=args["compartment_id"],
            availability_domain=args["availability_domain"],
            display_name=name,
            shape=A1_FLEX,
            shape_config={"ocpus": args["ocpus"], "memory_in_gbs": args["memory_gb"]},
            source_details={
                "source_type": "image",
                "source_id": args["image_id"],
                "boot_volume_size_in_gbs": str(args["boot_volume_gb"]),
            },
            create_vnic_details={
                "subnet_id": args["subnet_id"],
                "private_ip": args["private_ip"],
                "hostname_label": args["hostname_label"],
                "assign_public_ip": "true" if args.get("public_ip", False) and not reserved else "false",
                "nsg_ids": list(args.get("nsg_ids", [])),
                "freeform_tags": args["freeform_tags"],
            },
            instance_options={"are_legacy_imds_endpoints_disabled": True},
            # The SDK: set in-transit encryption here at create; `launch_options`' field is for updates.
            is_pv_encryption_in_transit_enabled=True,
            launch_options={
                "network_type": "PARAVIRTUALIZED",
                "boot_volume_type": "PARAVIRTUALIZED",
                "is_consistent_volume_naming_enabled": True,
            },
            agent_config={"plugins_configs": plugins} if plugins else None,
            metadata=metadata or None,
            preserve_boot_volume=holds_data,
            freeform_tags={**args["freeform_tags"], **args.get("instance_tags", {})},
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    protect=holds_data,
                    # A new image, Talos version or cloud-init must not replace a running node.
                    ignore_changes=["sourceDetails", "metadata.user_data", "createVnicDetails.assignPublicIp"],
                    # OCI sets the login key at launch only, and an ignored value would be carried into
                    # a replacement: a new key replaces the instance, which then boots with it.
                    replace_on_changes=["metadata.ssh_authorized_keys"],
                    # The private IP is pinned: the old instance must release it first.
                    delete_before_replace=True,
                    additional_secret_outputs=["metadata"],
                    depends_on=list(args.get("depends_on", [])),
                ),
            ),
        )
        self.instance_id = self.instance.id
        self.private_ip = self.instance.private_ip
        self.boot_volume_id = self.instance.boot_volume_id

        if reserved:
            vnic_id = oci_core.get_vnic_attachments_output(
                compartment_id=args["compartment_id"],
                instance_id=self.instance.id,
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).vnic_attachments.apply(lambda attachments: attachments[0].vnic_id)
            private_ip_id = oci_core.get_private_ips_output(
                vnic_id=vnic_id,
                ip_address=args["private_ip"],
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).private_ips.apply(lambda ips: ips[0].id)
            # The address Real-Debrid knows: it must outlive any instance replacement.
            address = oci_core.PublicIp(
                f"{name}-public-ip",
                compartment_id=args["compartment_id"],
                lifetime="RESERVED",
                private_ip_id=private_ip_id,
                display_name=f"{name}-reserved",
                freeform_tags=args["freeform_tags"],
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True)),
            )
            self.public_ip = address.ip_address
        else:
            self.public_ip = self.instance.public_ip

        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "private_ip": self.private_ip,
                "public_ip": self.public_ip,
                "boot_volume_id": self.boot_volume_id,
            }
        )
