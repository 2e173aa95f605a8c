"""`GamingVm`: the on-demand Windows 11 guest with the passed-through GPU (FR-026)."""

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_proxmoxve as pve

from components.proxmox.tags import HostMode, vm_tags
from components.proxmox.vm_options import REBOOT_AFTER_UPDATE, vm_ignore_changes


class GamingVmArgs(TypedDict):
    """Inputs of `GamingVm`."""

    node_name: str
    vm_id: int
    gpu_mapping: pulumi.Input[str]
    """Name of the PCI resource mapping of the GPU (never a raw bus address: that needs root)."""
    datastore_id: pulumi.Input[str]
    """Storage for the system disk, EFI vars and TPM state (the ZFS pool's VM storage)."""
    cores: int
    memory_mb: int
    disk_gb: int
    modes: Sequence[HostMode]
    bridge: NotRequired[str]
    install_iso: NotRequired[str]
    """Windows installer ISO volume (`local:iso/Win11_24H2_English_x64.iso`); empty drive if unset."""
    name: NotRequired[str]


class GamingVm(pulumi.ComponentResource):
    """Windows 11 on q35/OVMF with TPM 2.0, created stopped and never started at host boot."""

    vm_id: pulumi.Output[int]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: GamingVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("homelab:proxmox:GamingVm", name, None, opts)
        datastore = args["datastore_id"]
        vm = pve.VmLegacy(
            f"{name}-vm",
            node_name=args["node_name"],
            vm_id=args["vm_id"],
            name=args.get("name", name),
            description="Windows 11 gaming VM with GPU passthrough; started on demand (managed by Pulumi)",
            tags=vm_tags(["gaming", "windows"], args["modes"]),
            machine="q35",
            bios="ovmf",
            efi_disk=pve.VmLegacyEfiDiskArgs(datastore_id=datastore, type="4m", pre_enrolled_keys=True),
            tpm_state=pve.VmLegacyTpmStateArgs(datastore_id=datastore, version="v2.0"),
            cpu=pve.VmLegacyCpuArgs(cores=args["cores"], sockets=1, type="host"),
            # Passthrough pins all guest memory anyway; ballooning only confuses the GPU driver.
            memory=pve.VmLegacyMemoryArgs(dedicated=args["memory_mb"], floating=0),
            operating_system=pve.VmLegacyOperatingSystemArgs(type="win11"),
            scsi_hardware="virtio-scsi-single",
            disks=[
                pve.VmLegacyDiskArgs(
                    interface="scsi0",
                    datastore_id=datastore,
                    size=args["disk_gb"],
                    file_format="raw",
                    iothread=True,
                    discard="on",
                    ssd=True,
                )
            ],
            # q35 has IDE buses 0 and 2 only.
            cdrom=pve.VmLegacyCdromArgs(file_id=args.get("install_iso", "none"), interface="ide2"),
            hostpcis=[
                pve.VmLegacyHostpciArgs(
                    device="hostpci0", mapping=args["gpu_mapping"], pcie=True, rombar=True, xvga=True
                )
            ],
            network_devices=[pve.VmLegacyNetworkDeviceArgs(bridge=args.get("bridge", "vmbr0"), model="virtio")],
            # The guest agent comes with the virtio-win tools installed after Windows setup.
            agent=pve.VmLegacyAgentArgs(enabled=False),
            started=False,
            on_boot=False,
            protection=True,
            reboot_after_update=REBOOT_AFTER_UPDATE,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=True,
                # Started and stopped by hand (or a mode switch), and the installer ISO is ejected
                # after setup: `pulumi up` must not undo either.
                ignore_changes=vm_ignore_changes(1, ["started", "cdrom"]),
            ),
        )
        self.vm_id = vm.vm_id
        self.name = vm.name
        self.register_outputs({"vm_id": self.vm_id, "name": self.name})
