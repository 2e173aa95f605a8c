"""ProxmoxHost and the provider factory: bridge, passthrough preparation, PCI mapping, API consumer."""

import pulumi
import pytest

from components.proxmox.host import (
    ApiConsumer,
    BridgeSpec,
    CpuVendor,
    GpuPassthrough,
    ProxmoxHost,
    ProxmoxHostArgs,
    apt_sources_script,
    passthrough_script,
    passthrough_undo_script,
)
from components.proxmox.provider import ProxmoxConnection, proxmox_provider, ssh_connection

CONNECTION = ProxmoxConnection(endpoint="https://192.168.68.51:8006/", node_name="pve", ssh_address="192.168.68.51")
GPU = GpuPassthrough(
    mapping_name="gpu0",
    pci_path="0000:01:00",
    device_id="10de:2704",
    subsystem_id="1043:88a2",
    iommu_group=14,
    vfio_ids=("10de:2704", "10de:22bb"),
)


def host_program(cpu_vendor: CpuVendor = "amd", gpu: GpuPassthrough | None = GPU):
    def program():
        config = pulumi.Config("homelab")
        key = config.require_secret("proxmoxSshPrivateKey")
        provider = proxmox_provider("proxmox", CONNECTION, config.require_secret("proxmoxApiToken"), key)
        args: ProxmoxHostArgs = {
            "node_name": "pve",
            "connection": ssh_connection(CONNECTION, key),
            "bridge": BridgeSpec("vmbr0", "192.168.68.51/24", "192.168.68.1", ("enp5s0",)),
            "cpu_vendor": cpu_vendor,
            "api_consumers": {
                "csi": ApiConsumer(user_id="kubernetes-csi@pve", privileges=("VM.Audit", "Datastore.Audit"))
            },
        }
        if gpu is not None:
            args["gpu"] = gpu
        host = ProxmoxHost("host", args, opts=pulumi.ResourceOptions(providers=[provider]))
        pulumi.export("reboot_required", host.reboot_required)
        pulumi.export("api_tokens", host.api_tokens)
        pulumi.export("gpu_mapping", host.gpu_mapping_name)

    return program


SECRETS = {
    "homelab:proxmoxApiToken": "terraform@pve!iac=00000000-0000-0000-0000-000000000000",
    "homelab:proxmoxSshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n",
}


def test_provider_verifies_tls_and_carries_the_ssh_block_for_disk_import(record):
    rec = record(host_program(), secrets=SECRETS)
    provider = rec.get("pulumi:providers:proxmoxve", "proxmox")
    assert provider.inputs["endpoint"] == "https://192.168.68.51:8006/"
    assert provider.inputs["insecure"] in (False, "false")
    assert provider.is_secret("apiToken")
    ssh = provider.inputs["ssh"]
    ssh = ssh if isinstance(ssh, dict) else __import__("json").loads(ssh)
    assert ssh["username"] == "root"
    assert ssh["nodes"] == [{"name": "pve", "address": "192.168.68.51", "port": 22}]
    assert "privateKey" in ssh


def test_bridge_is_adopted_and_protected(record):
    rec = record(host_program(), secrets=SECRETS)
    bridge = rec.get("proxmoxve:network/linux/bridge:Bridge", "host-vmbr0")
    assert bridge.parent == rec.get("homelab:proxmox:ProxmoxHost", "host").urn
    assert bridge.protect
    # Removing the component must not delete the management bridge: the host would drop off the LAN.
    assert bridge.retain_on_delete
    assert bridge.id == "pve:vmbr0"  # imported: the installer always creates vmbr0
    assert bridge.inputs["name"] == "vmbr0"
    assert bridge.inputs["address"] == "192.168.68.51/24"
    assert bridge.inputs["ports"] == ["enp5s0"]
    # An import fails unless the inputs match the live bridge exactly; the installer's vmbr0 has
    # address, gateway, ports and autostart, and no comment.
    assert set(bridge.inputs) <= {"nodeName", "name", "address", "gateway", "ports", "autostart"}


@pytest.mark.parametrize(
    ("vendor", "expected", "absent"), [("amd", "iommu=pt", "intel_iommu"), ("intel", "intel_iommu=on", "amd_iommu")]
)
def test_passthrough_script_uses_the_vendor_kernel_option(vendor, expected, absent):
    script = passthrough_script(vendor, GPU)
    assert expected in script
    assert absent not in script
    assert "vfio_pci" in script
    assert "blacklist nouveau" in script
    assert "ids=10de:2704,10de:22bb" in script
    assert "reboot" not in script.replace("reboot-required=", "")  # reports, never reboots
    assert "proxmox-boot-tool refresh" in script and "update-grub" in script


def test_passthrough_undo_removes_only_its_own_files():
    undo = passthrough_undo_script(GPU)
    assert "/etc/modprobe.d/vfio.conf" in undo
    assert "/etc/kernel/cmdline" not in undo and "grub" not in undo


def test_reboot_pending_is_an_output_and_the_command_runs_over_ssh(record):
    rec = record(host_program(), secrets=SECRETS)
    command = rec.get("command:remote:Command", "host-passthrough")
    assert command.inputs["connection"]["host"] == "192.168.68.51"
    assert command.is_secret("connection")
    # A preview never invents the measurement; an (offline) up parses what the host printed.
    assert not rec.outputs["reboot_required"].known
    assert record(host_program(), secrets=SECRETS, preview=False).outputs["reboot_required"].value is False


def test_gpu_mapping_references_the_device_not_a_raw_address_in_vms(record):
    rec = record(host_program(), secrets=SECRETS)
    mapping = rec.get("proxmoxve:hardware/mapping/pci:Pci", "host-gpu0")
    assert mapping.inputs["name"] == "gpu0"
    assert mapping.inputs["maps"] == [
        {"id": "10de:2704", "node": "pve", "path": "0000:01:00", "iommuGroup": 14, "subsystemId": "1043:88a2"}
    ]
    assert rec.get("command:remote:Command", "host-passthrough").urn in mapping.dependencies
    assert rec.outputs["gpu_mapping"].value == "gpu0"


def test_no_gpu_means_no_mapping(record):
    rec = record(host_program(gpu=None), secrets=SECRETS)
    assert not rec.by_type("proxmoxve:hardware/mapping/pci:Pci")
    assert "vfio.conf" not in rec.get("command:remote:Command", "host-passthrough").inputs["create"].replace(
        "modules-load.d/vfio.conf", ""
    )


def test_api_consumer_gets_a_least_privilege_role_user_and_secret_token(record):
    rec = record(host_program(), secrets=SECRETS)
    role = rec.get("proxmoxve:index/roleLegacy:RoleLegacy", "host-csi-role")
    assert role.inputs["privileges"] == ["Datastore.Audit", "VM.Audit"]
    user = rec.get("proxmoxve:index/userLegacy:UserLegacy", "host-csi-user")
    assert user.inputs["userId"] == "kubernetes-csi@pve"
    assert user.inputs["acls"][0]["roleId"] == role.inputs["roleId"]
    token = rec.get("proxmoxve:user/token:Token", "host-csi-token")
    assert "value" in token.additional_secret_outputs
    assert rec.outputs["api_tokens"].secret
    assert rec.outputs["api_tokens"].value["csi"].startswith("kubernetes-csi@pve!pulumi=")


def test_passthrough_command_undoes_before_a_replacement_recreates_it(record):
    rec = record(host_program(), secrets=SECRETS)
    assert rec.get("command:remote:Command", "host-passthrough").delete_before_replace is True


# --- issue 10: a stock subscription-free host, and host commands that never race -----------------


def test_a_stock_host_switches_to_the_no_subscription_repository_before_any_install(record):
    rec = record(host_program(), secrets=SECRETS)
    apt = rec.get("command:remote:Command", "host-apt")
    script = apt.inputs["create"]
    assert script.startswith("set -euo pipefail\n")
    # The enterprise repositories answer 401 without a subscription: comment them out, add pve-no-subscription.
    assert "enterprise.proxmox.com" in script and "# \\1" in script
    assert "http://download.proxmox.com/debian/pve $VERSION_CODENAME pve-no-subscription" in script
    assert "apt-get -q -o DPkg::Lock::Timeout=600 update" in script
    passthrough = rec.get("command:remote:Command", "host-passthrough")
    assert apt.urn in passthrough.dependencies
    host = rec.get("homelab:proxmox:ProxmoxHost", "host")
    assert rec.component_outputs[host.urn]["host_chain"]  # later host commands chain onto it


def test_an_enterprise_host_keeps_its_repositories():
    script = apt_sources_script("enterprise")
    assert "pve-no-subscription" not in script
    assert "sed -i" not in script
    assert "apt-get -q -o DPkg::Lock::Timeout=600 update" in script


def test_passthrough_runs_strict_and_rebuilds_the_initramfs_without_hiding_errors():
    script = passthrough_script("amd", GPU)
    assert script.startswith("set -euo pipefail\n")
    rebuild = script.split("update-initramfs", 1)[1].split("\n", 1)[0]
    assert rebuild.startswith(" -u -k all")
    assert "2>&1" not in rebuild  # its errors reach the Pulumi log
