"""`ManagementVm`: the A1 VM running Authentik, PostgreSQL, Redis, Omni and cloudflared.

Lifecycle: cloud-init installs Docker once; everything that changes later (the systemd unit, the
Compose project, its secrets, the data volume's mount) is applied in place over an OCI Bastion
session, so an update never replaces the instance. Data lives on a separate block volume that is
protected and retained when the stack forgets it; the instance and its boot volume are disposable.
A replaced instance (a new SSH login key, or a manual `--replace`) converges in the same `up`: every
remote step is triggered by the instance id, so each runs again on the new VM. Containers start
only through the unit, only with the data volume mounted (`compose.compose_unit`). Secret values
travel only as Pulumi secrets: in the command's stdin (never its arguments, never logged) and, on
the VM, in root-only files the containers mount.
"""

import base64
import dataclasses
from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_oci.bastion as oci_bastion
import pulumi_oci.core as oci_core
from pulumi_command import remote

from components.oci.compose import (
    AUTHENTIK_READY_SCRIPT,
    DATA_DEVICE,
    INSTALL_SECRETS_SCRIPT,
    PREPARE_SCRIPT,
    ManagementServices,
    cloud_init,
    compose_up_script,
    content_hash,
    render_compose,
)
from components.oci.node import AlwaysFreeNode

SSH_USER = "ubuntu"
STAGED_COMPOSE = f"/home/{SSH_USER}/homelab-compose.yaml"
SESSION_TTL_SECONDS = 10800


class ManagementVmArgs(TypedDict):
    compartment_id: pulumi.Input[str]
    availability_domain: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    nsg_ids: Sequence[pulumi.Input[str]]
    image_id: pulumi.Input[str]
    """An Ubuntu aarch64 platform image (read once at creation)."""
    region: str
    ocpus: int
    memory_gb: int
    boot_volume_gb: int
    data_volume_gb: int
    private_ip: str
    ssh_public_key: str
    ssh_private_key: pulumi.Input[str]
    """Private half of `ssh_public_key` (secret): Pulumi's login over the Bastion."""
    bastion_id: pulumi.Input[str]
    services: ManagementServices
    secrets: Mapping[str, pulumi.Input[str]]
    """One value per name of `services.secret_names` (`compose.SECRET_NAMES`, plus the collector's
    service token with telemetry)."""
    freeform_tags: dict[str, str]
    command_provider: pulumi.ProviderResource
    reserved_public_ip: NotRequired[bool]
    data_volume_tags: NotRequired[Mapping[str, str]]
    """Extra freeform tags of the data volume: the data class and holders it carries (DAT-08's evidence)."""


def _secret_lines(names: Sequence[str], values: Sequence[str]) -> str:
    lines = [f"{name} {base64.b64encode(value.encode()).decode()}" for name, value in zip(names, values, strict=True)]
    return "\n".join(lines) + "\n"


class ManagementVm(pulumi.ComponentResource):
    """The management VM, its data volume and the in-place deployment of its Compose project."""

    KEEPS_BOOT_VOLUME = False
    """Its boot volume holds nothing that is not rebuilt: it is deleted with the instance."""

    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    data_volume_id: pulumi.Output[str]
    compose_sha256: pulumi.Output[str]

    def __init__(self, name: str, args: ManagementVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:oci:ManagementVm", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        names = args["services"].secret_names
        missing = sorted(set(names) - set(args["secrets"]))
        unknown = sorted(set(args["secrets"]) - set(names))
        if missing or unknown:
            raise ValueError(f"ManagementVm {name!r}: secrets missing {missing}, unknown {unknown}")
        tags = args["freeform_tags"]

        node = AlwaysFreeNode(
            f"{name}-node",
            {
                "compartment_id": args["compartment_id"],
                "availability_domain": args["availability_domain"],
                "subnet_id": args["subnet_id"],
                "image_id": args["image_id"],
                "ocpus": args["ocpus"],
                "memory_gb": args["memory_gb"],
                "boot_volume_gb": args["boot_volume_gb"],
                "private_ip": args["private_ip"],
                "hostname_label": name,
                "freeform_tags": tags,
                "nsg_ids": args["nsg_ids"],
                "user_data": base64.b64encode(cloud_init().encode()).decode(),
                "ssh_authorized_keys": args["ssh_public_key"],
                # Egress (image pulls, the tunnel connector) without a paid NAT gateway; no ingress rule
                # admits the world.
                "public_ip": True,
                "reserved_public_ip": args.get("reserved_public_ip", False),
                # Everything on the boot volume is rebuilt by cloud-init and the commands below; the
                # data lives on the retained volume. So the VM may be replaced (a new login key does
                # that) and its boot volume goes with it instead of staying behind as a billed orphan.
                "holds_data": self.KEEPS_BOOT_VOLUME,
            },
            opts=child,
        )

        # Authentik's database and Omni's etcd: losing this volume loses every account and cluster.
        volume = oci_core.Volume(
            f"{name}-data",
            compartment_id=args["compartment_id"],
            availability_domain=args["availability_domain"],
            display_name=f"{name}-data",
            size_in_gbs=str(args["data_volume_gb"]),
            freeform_tags={**tags, **args.get("data_volume_tags", {})},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True, retain_on_delete=True)),
        )
        attachment = oci_core.VolumeAttachment(
            f"{name}-data-attachment",
            attachment_type="paravirtualized",
            instance_id=node.instance_id,
            volume_id=volume.id,
            device=DATA_DEVICE,
            display_name=f"{name}-data",
            is_pv_encryption_in_transit_enabled=True,
            # A volume attaches to one instance at a time: detach from the old VM before the new one.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(delete_before_replace=True)),
        )

        services = args["services"]
        if services.omni_wireguard_port is not None:
            # Machines dial SideroLink at the VM's public address, known once the VM exists.
            compose_yaml = node.public_ip.apply(
                lambda address: render_compose(dataclasses.replace(services, omni_wireguard_address=address))
            )
        else:
            compose_yaml = pulumi.Output.from_input(render_compose(services))
        compose_sha = compose_yaml.apply(content_hash)
        secret_values = pulumi.Output.all(*(args["secrets"][n] for n in names))
        secret_lines = pulumi.Output.secret(secret_values.apply(lambda values: _secret_lines(names, values)))
        secrets_digest = pulumi.Output.secret(secret_lines.apply(content_hash))

        # Sessions expire (3 h at most, and OCI then deletes them): a new one is opened whenever a
        # remote step has something to run, i.e. whenever the content of any step changes; a new
        # instance or key replaces it through its target and key. The drift job leaves sessions out
        # of its refresh, so an expired one is not drift.
        steps_digest = content_hash(PREPARE_SCRIPT + INSTALL_SECRETS_SCRIPT + compose_up_script(STAGED_COMPOSE))
        session = oci_bastion.Session(
            f"{name}-session",
            bastion_id=args["bastion_id"],
            display_name=pulumi.Output.all(compose_sha, secrets_digest).apply(
                lambda hashes: f"{name}-{content_hash(hashes[0] + hashes[1] + steps_digest)[:16]}"
            ),
            key_type="PUB",
            key_details={"public_key_content": args["ssh_public_key"]},
            target_resource_details={
                "session_type": "PORT_FORWARDING",
                "target_resource_id": node.instance_id,
                "target_resource_private_ip_address": args["private_ip"],
                "target_resource_port": 22,
            },
            session_ttl_in_seconds=SESSION_TTL_SECONDS,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(replace_on_changes=["displayName"])),
        )
        private_key = pulumi.Output.secret(args["ssh_private_key"])
        connection: remote.ConnectionArgsDict = {
            "host": args["private_ip"],
            "user": SSH_USER,
            "private_key": private_key,
            "proxy": {
                "host": f"host.bastion.{args['region']}.oci.oraclecloud.com",
                "user": session.id,
                "private_key": private_key,
            },
        }
        commands = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(provider=args["command_provider"]))

        # A replaced VM (new instance id, same private address) starts empty: every step runs again
        # on it in the same `up`. Connection changes alone do not make CopyToRemote copy again.
        host = node.instance_id
        prepare = remote.Command(
            f"{name}-prepare",
            connection=connection,
            create=PREPARE_SCRIPT,
            triggers=[attachment.id, host],
            opts=pulumi.ResourceOptions.merge(commands, pulumi.ResourceOptions(depends_on=[attachment])),
        )
        install_secrets = remote.Command(
            f"{name}-secrets",
            connection=connection,
            create=INSTALL_SECRETS_SCRIPT,
            stdin=secret_lines,
            triggers=[host],
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions.merge(
                commands,
                pulumi.ResourceOptions(depends_on=[prepare], additional_secret_outputs=["stdout", "stderr", "stdin"]),
            ),
        )
        staged = remote.CopyToRemote(
            f"{name}-compose-file",
            connection=connection,
            source=compose_yaml.apply(pulumi.StringAsset),
            remote_path=STAGED_COMPOSE,
            triggers=[compose_sha, host],
            opts=pulumi.ResourceOptions.merge(commands, pulumi.ResourceOptions(depends_on=[prepare])),
        )
        # No delete command on purpose: a replacement (new triggers) must never take the services down.
        compose_up = remote.Command(
            f"{name}-compose-up",
            connection=connection,
            create=compose_up_script(STAGED_COMPOSE),
            triggers=[compose_sha, secrets_digest, host],
            opts=pulumi.ResourceOptions.merge(
                commands,
                pulumi.ResourceOptions(
                    depends_on=[staged, install_secrets], additional_secret_outputs=["stdout", "stderr"]
                ),
            ),
        )

        # What the Authentik configuration waits for (its provider and lookups depend on this).
        self.authentik_ready = remote.Command(
            f"{name}-authentik-ready",
            connection=connection,
            create=AUTHENTIK_READY_SCRIPT,
            triggers=[compose_sha, secrets_digest, host],
            opts=pulumi.ResourceOptions.merge(commands, pulumi.ResourceOptions(depends_on=[compose_up])),
        )
        self._connection = connection
        self._commands = commands
        self._triggers: list[pulumi.Input[str]] = [compose_sha, host]
        self._compose_up = compose_up

        # For host jobs beside the Compose project (the nightly offsite dump): same Bastion login,
        # run once the data volume is mounted and Docker is installed.
        self.connection = connection
        self.prepared = prepare
        self.instance_id = node.instance_id
        self.private_ip = node.private_ip
        self.public_ip = node.public_ip
        self.data_volume_id = volume.id
        self.compose_sha256 = compose_sha
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "private_ip": self.private_ip,
                "public_ip": self.public_ip,
                "data_volume_id": self.data_volume_id,
                "compose_sha256": self.compose_sha256,
            }
        )

    def start_deferred(self, service: str, script: str, after: Sequence[pulumi.Resource]) -> remote.Command:
        """Run `script` (which starts a profile-gated service, e.g. `compose.omni_start_script`) once
        `after` exists; re-run whenever the Compose file changes or the VM is replaced."""
        return remote.Command(
            f"{self._name}-start-{service}",
            connection=self._connection,
            create=script,
            triggers=self._triggers,
            opts=pulumi.ResourceOptions.merge(
                self._commands, pulumi.ResourceOptions(depends_on=[self._compose_up, *after])
            ),
        )
