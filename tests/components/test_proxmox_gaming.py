"""GamingVm: Windows 11 on q35/OVMF/TPM with the GPU mapping, off by default, protected."""

import pulumi
import pulumi_proxmoxve as pve

from components.proxmox.gaming import GamingVm


def program():
    GamingVm(
        "gaming",
        {
            "node_name": "pve",
            "vm_id": 400,
            "gpu_mapping": "gpu0",
            "datastore_id": "tank-vms",
            "cores": 8,
            "memory_mb": 32768,
            "disk_gb": 1024,
            "modes": ("gaming",),
        },
        opts=pulumi.ResourceOptions(providers=[pve.Provider("pve")]),
    )


def test_gaming_vm(record):
    rec = record(program)
    vm = rec.get("proxmoxve:index/vmLegacy:VmLegacy", "gaming-vm")
    i = vm.inputs
    assert vm.parent == rec.get("homelab:proxmox:GamingVm", "gaming").urn
    assert (i["machine"], i["bios"], i["operatingSystem"]["type"]) == ("q35", "ovmf", "win11")
    assert i["tpmState"] == {"datastoreId": "tank-vms", "version": "v2.0"}
    assert i["efiDisk"]["datastoreId"] == "tank-vms" and i["efiDisk"]["preEnrolledKeys"] is True
    assert i["cpu"]["cores"] == 8 and i["cpu"]["type"] == "host"
    assert i["memory"]["dedicated"] == 32768
    assert i["disks"][0]["size"] == 1024 and i["disks"][0]["datastoreId"] == "tank-vms"
    assert i["hostpcis"] == [{"device": "hostpci0", "mapping": "gpu0", "pcie": True, "rombar": True, "xvga": True}]
    assert "id" not in i["hostpcis"][0]  # raw bus addresses need root; the mapping does not
    assert i["cdrom"]["interface"] in ("ide0", "ide2")
    assert i["started"] is False and i["onBoot"] is False
    assert i["tags"] == ["gaming", "mode-gaming", "windows"]
    assert vm.protect
    assert {"started", "cdrom"} <= set(vm.ignore_changes)


def test_gaming_vm_has_no_speed_diff_and_is_never_rebooted_by_an_update(record):
    vm = record(program).get("proxmoxve:index/vmLegacy:VmLegacy", "gaming-vm")
    assert "disks[0].speed" in vm.ignore_changes and "speed" not in vm.inputs["disks"][0]
    assert vm.inputs["rebootAfterUpdate"] is False
