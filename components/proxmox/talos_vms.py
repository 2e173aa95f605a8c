"""`ProxmoxTalosSubstrate`: Talos nodes as Proxmox VMs booting the Image Factory nocloud image.

The nocloud image reads the Proxmox cloud-init drive's network settings, so every node has its
static address from the first boot (in maintenance mode) and `TalosCluster` can reach it to apply
the machine configuration; the configuration is not delivered at boot.
"""

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_proxmoxve as pve

from components.proxmox.tags import HostMode, vm_tags
from components.proxmox.vm_options import REBOOT_AFTER_UPDATE, vm_ignore_changes
from components.talos.substrate import BootImage, StaticNetwork, TalosNode
from homelab.backup_evidence import Holding

CpuType = Literal["host", "x86-64-v2-AES"]

QEMU_GUEST_AGENT = "siderolabs/qemu-guest-agent"

# Everything on a VM that follows the boot image: these change with a Talos version or schematic
# and must never replace a VM (the installed OS is upgraded through the Talos API instead).
BOOT_MEDIA_FIELDS: tuple[str, ...] = ("disks[0].fileId", "cdrom")


@dataclass(frozen=True)
class ProxmoxTalosSubstrate:
    """Places Talos nodes as VMs on one Proxmox node.

    A plain object (not a resource): `TalosCluster` calls `create_machines` and parents every
    resource to itself.
    """

    environment: str
    """`dev` or `prod`: the first VM tag and part of the image file name."""
    node_name: str
    """The Proxmox node the VMs run on."""
    network: StaticNetwork
    vm_ids: Mapping[str, int]
    """Stable Proxmox VM id per node name."""
    image_sha256: str
    """SHA-256 of the `nocloud-amd64.raw.zst` the Image Factory serves for this version and
    schematic; Proxmox refuses a download that does not match."""
    modes: Sequence[HostMode]
    """Host modes the cluster runs in (tags `mode-<mode>` for the capacity policy)."""
    vm_datastore_id: str = "local-zfs"
    image_datastore_id: str = "local"
    bridge: str = "vmbr0"
    cpu_type: CpuType = "x86-64-v2-AES"
    protect: bool = True
    """Protect the VMs (they hold etcd and local volumes)."""
    vlan_id: int | None = None
    control_plane_holding: Holding | None = None
    """What the control planes hold (etcd: the backup plan's `<environment>-etcd`), tagged on their VMs
    so the offsite policy knows they hold it (homelab/backup_evidence.py)."""
    platform: str = field(default="nocloud", init=False)
    architecture: str = field(default="amd64", init=False)
    delivers_config_at_boot: bool = field(default=False, init=False)
    required_extensions: tuple[str, ...] = field(default=(QEMU_GUEST_AGENT,), init=False)

    @property
    def runs_in_normal_mode(self) -> bool:
        """Whether the VMs belong to the mode the host boots into (`normal`)."""
        return "normal" in self.modes

    def config_patches(self, node: TalosNode) -> list[str]:
        """Pin kubelet and etcd to the LAN subnet so neither advertises a Cilium-created address."""
        subnet = str(ipaddress.ip_interface(f"{node.address}/{self.network.prefix_length}").network)
        patch: dict[str, object] = {"machine": {"kubelet": {"nodeIP": {"validSubnets": [subnet]}}}}
        if node.role == "controlplane":
            patch["cluster"] = {"etcd": {"advertisedSubnets": [subnet]}}
        return [json.dumps(patch, sort_keys=True)]

    def disk_image_url(self, image: BootImage) -> pulumi.Output[str]:
        """The zstd variant of the nocloud disk image: Proxmox's download cannot decompress xz."""
        return image.disk_image_url.apply(
            lambda url: url.removesuffix(".raw.xz") + ".raw.zst" if url.endswith(".raw.xz") else url
        )

    def create_machines(
        self,
        cluster: pulumi.ComponentResource,
        image: BootImage,
        nodes: dict[str, TalosNode],
        machine_configurations: dict[str, pulumi.Output[str]],
    ) -> dict[str, pulumi.CustomResource]:
        del machine_configurations  # delivered over the Talos API by TalosCluster, not at boot
        prefix = cluster.pulumi_resource_name
        missing = sorted(set(nodes) - set(self.vm_ids))
        if missing:
            raise ValueError(f"no Proxmox VM id configured for node(s) {', '.join(missing)}")
        child = pulumi.ResourceOptions(parent=cluster)

        # One download per Proxmox node: every VM of the cluster imports its disk from it. The
        # logical name stays the same across versions; a new version replaces only this file.
        disk_image = pve.download.File(
            f"{prefix}-image-{self.node_name}",
            node_name=self.node_name,
            datastore_id=self.image_datastore_id,
            content_type="iso",
            url=self.disk_image_url(image),
            file_name=image.schematic_id.apply(
                lambda schematic: f"talos-{self.environment}-{image.talos_version}-{schematic[:12]}-nocloud-amd64.img"
            ),
            decompression_algorithm="zst",
            checksum=self.image_sha256,
            checksum_algorithm="sha256",
            overwrite=False,
            upload_timeout=1800,
            verify=True,
            opts=child,
        )

        ip_configs_dns = pve.VmLegacyInitializationDnsArgs(servers=list(self.network.nameservers))
        machines: dict[str, pulumi.CustomResource] = {}
        for key, node in sorted(nodes.items()):
            labels = [self.environment, "kubernetes", "talos"]
            if node.role == "controlplane" and self.control_plane_holding is not None:
                labels += self.control_plane_holding.vm_tags()
            machines[key] = pve.VmLegacy(
                f"{prefix}-{key}",
                node_name=self.node_name,
                vm_id=self.vm_ids[key],
                name=node.name,
                description=f"Talos {node.role} of the {self.environment} cluster (managed by Pulumi)",
                tags=vm_tags(labels, self.modes),
                machine="q35",
                bios="seabios",
                cpu=pve.VmLegacyCpuArgs(cores=node.cores, sockets=1, type=self.cpu_type),
                # No ballooning: Kubernetes schedules against the memory it sees at boot.
                memory=pve.VmLegacyMemoryArgs(dedicated=node.memory_mb, floating=0),
                # Talos starts the guest agent only once configured (not in maintenance mode), so
                # waiting for it to report an IP would stall every create and refresh for the agent
                # timeout; the address is static and known, so skip the lookup.
                agent=pve.VmLegacyAgentArgs(
                    enabled=True,
                    trim=True,
                    type="virtio",
                    wait_for_ip=pve.VmLegacyAgentWaitForIpArgs(disabled=True),
                ),
                operating_system=pve.VmLegacyOperatingSystemArgs(type="l26"),
                scsi_hardware="virtio-scsi-single",
                disks=[
                    pve.VmLegacyDiskArgs(
                        interface="scsi0",
                        datastore_id=self.vm_datastore_id,
                        file_id=disk_image.id,
                        file_format="raw",
                        size=node.disk_gb,
                        iothread=True,
                        discard="on",
                        ssd=True,
                    )
                ],
                network_devices=[
                    pve.VmLegacyNetworkDeviceArgs(bridge=self.bridge, model="virtio", vlan_id=self.vlan_id)
                ],
                initialization=pve.VmLegacyInitializationArgs(
                    datastore_id=self.vm_datastore_id,
                    # q35 has IDE buses 0 and 2 only; the cloud-init drive takes ide2.
                    interface="ide2",
                    ip_configs=[
                        pve.VmLegacyInitializationIpConfigArgs(
                            ipv4=pve.VmLegacyInitializationIpConfigIpv4Args(
                                address=f"{node.address}/{self.network.prefix_length}",
                                gateway=self.network.gateway,
                            )
                        )
                    ],
                    dns=ip_configs_dns,
                ),
                serial_devices=[pve.VmLegacySerialDeviceArgs(device="socket")],
                # Only guests of the mode the host boots into start with it: after a reboot DEV
                # (testing mode) must not start beside PROD and the gaming VM (BUD-07).
                on_boot=self.runs_in_normal_mode,
                # Created running: Talos must answer to be configured and bootstrapped.
                started=True,
                protection=self.protect,
                reboot_after_update=REBOOT_AFTER_UPDATE,
                # Talos has no ACPI daemon before its config is applied; do not hang a destroy on it.
                stop_on_destroy=True,
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        protect=self.protect,
                        # A guest outside normal mode is started and stopped by hand (mode
                        # switches): `pulumi up --refresh` must not start a stopped DEV again.
                        ignore_changes=vm_ignore_changes(
                            1, [*BOOT_MEDIA_FIELDS, *(() if self.runs_in_normal_mode else ("started",))]
                        ),
                        depends_on=[disk_image],
                    ),
                ),
            )
        return machines
