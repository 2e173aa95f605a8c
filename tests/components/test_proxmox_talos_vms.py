"""ProxmoxTalosSubstrate: one image download per host, one protected VM per node, boot media ignored."""

import pytest

from components.proxmox.talos_vms import BOOT_MEDIA_FIELDS
from homelab.backup_evidence import Holding, vm_holdings
from tests.components.talos_fixtures import PROD_NODES, cluster_program, proxmox_substrate

VM = "proxmoxve:index/vmLegacy:VmLegacy"
FILE = "proxmoxve:download/file:File"


def test_image_is_downloaded_once_per_host_with_checksum_and_zst(record):
    rec = record(cluster_program())
    files = rec.by_type(FILE)
    assert [f.name for f in files] == ["talos-image-pve"]
    image = files[0]
    assert image.parent == rec.get("homelab:talos:TalosCluster", "talos").urn
    assert image.inputs["url"].endswith("/v1.10.6/nocloud-amd64.raw.zst")
    assert image.inputs["url"].startswith("https://factory.talos.dev/image/")
    assert image.inputs["decompressionAlgorithm"] == "zst"
    assert image.inputs["checksum"] == "ab" * 32
    assert image.inputs["checksumAlgorithm"] == "sha256"
    assert image.inputs["fileName"].endswith("-nocloud-amd64.img")
    assert image.inputs["contentType"] == "iso"
    assert image.inputs["datastoreId"] == "local"


@pytest.mark.parametrize("key", sorted(PROD_NODES))
def test_each_node_is_a_talos_ready_vm(record, key):
    rec = record(cluster_program())
    node = PROD_NODES[key]
    vm = rec.get(VM, f"talos-{key}")
    inputs = vm.inputs
    assert vm.parent == rec.get("homelab:talos:TalosCluster", "talos").urn
    assert inputs["name"] == key
    assert inputs["nodeName"] == "pve"
    assert inputs["cpu"]["type"] in ("host", "x86-64-v2-AES")
    assert inputs["cpu"]["cores"] == node.cores
    assert inputs["memory"] == {"dedicated": node.memory_mb, "floating": 0}
    disk = inputs["disks"][0]
    assert disk["interface"] == "scsi0"
    assert disk["datastoreId"] == "local-zfs"
    assert disk["size"] == node.disk_gb
    assert disk["fileId"] == rec.get(FILE, "talos-image-pve").id
    assert inputs["networkDevices"] == [{"bridge": "vmbr0", "model": "virtio"}]
    ipv4 = inputs["initialization"]["ipConfigs"][0]["ipv4"]
    assert ipv4 == {"address": f"{node.address}/24", "gateway": "192.168.68.1"}
    assert inputs["initialization"]["datastoreId"] == "local-zfs"
    assert inputs["initialization"]["interface"] in ("ide0", "ide2")
    assert inputs["agent"]["enabled"] is True
    assert inputs["onBoot"] is True
    assert inputs["tags"] == sorted(inputs["tags"])
    assert {"prod", "kubernetes", "talos", "mode-normal", "mode-testing"} == set(inputs["tags"])
    assert vm.protect
    assert set(BOOT_MEDIA_FIELDS) <= set(vm.ignore_changes)


def test_control_planes_declare_what_they_hold_workers_do_not(record):
    holding = Holding("critical", ("prod-etcd",))
    rec = record(cluster_program(substrate=proxmox_substrate(PROD_NODES, control_plane_holding=holding)))
    control_plane = rec.get(VM, "talos-prod-cp-1").inputs["tags"]
    assert {"data-class-critical", "holds-prod-etcd"} <= set(control_plane)
    assert control_plane == sorted(control_plane)
    assert vm_holdings(control_plane) == [holding]
    assert vm_holdings(rec.get(VM, "talos-prod-worker-1").inputs["tags"]) == []


def test_vm_ids_are_keyed_by_node_name(record):
    rec = record(cluster_program())
    assert rec.get(VM, "talos-prod-cp-1").inputs["vmId"] == 200
    assert rec.get(VM, "talos-prod-worker-1").inputs["vmId"] == 201


def test_missing_vm_id_is_a_clear_error(record):
    substrate = proxmox_substrate(PROD_NODES, vm_ids={"prod-cp-1": 201})
    with pytest.raises(ValueError, match="prod-worker-1"):
        record(cluster_program(substrate=substrate))


def _vm_inputs_without_ignored(rec):
    out = {}
    for vm in rec.by_type(VM):
        inputs = {k: v for k, v in vm.inputs.items() if k != "cdrom"}
        inputs["disks"] = [{k: v for k, v in d.items() if k != "fileId"} for d in inputs["disks"]]
        out[vm.name] = inputs
    return out


def test_new_talos_version_or_schematic_never_touches_what_replaces_a_vm(record):
    before = record(cluster_program())
    after = record(cluster_program(talos_version="v1.10.7", extensions=("siderolabs/iscsi-tools",)))
    # The boot media did change...
    before_image = before.get(FILE, "talos-image-pve").inputs
    after_image = after.get(FILE, "talos-image-pve").inputs
    assert before_image["url"] != after_image["url"]
    assert before_image["fileName"] != after_image["fileName"]
    # ...every VM input other than the ignored boot-media fields is identical...
    assert _vm_inputs_without_ignored(before) == _vm_inputs_without_ignored(after)
    # ...and the field that follows the image is ignored on every VM.
    for vm in after.by_type(VM):
        assert "disks[0].fileId" in vm.ignore_changes
        assert vm.protect


def test_vm_never_waits_for_a_guest_agent_talos_only_starts_once_configured(record):
    # Talos runs the qemu-guest-agent extension only after its config is applied, not in
    # maintenance mode; waiting for the agent's IP report would stall creation for its timeout.
    rec = record(cluster_program())
    for vm in rec.by_type(VM):
        assert vm.inputs["agent"]["enabled"] is True
        assert vm.inputs["agent"]["waitForIp"] == {"disabled": True}


# --- issue 10: guests outside normal mode stay off at host boot, and stay off when stopped --------


@pytest.mark.parametrize(
    ("modes", "on_boot", "started_is_ignored"),
    [
        (("normal", "testing"), True, False),  # PROD: runs in normal mode, kept running
        (("testing",), False, True),  # DEV: started by hand for testing mode only
        (("gaming",), False, True),
    ],
)
def test_on_boot_and_started_follow_the_normal_mode(record, modes, on_boot, started_is_ignored):
    substrate = proxmox_substrate(PROD_NODES, modes=modes)
    rec = record(cluster_program(substrate=substrate))
    for vm in rec.by_type(VM):
        assert vm.inputs["onBoot"] is on_boot, vm.name
        # Created running (Talos must answer to be configured), but a DEV the operator stopped is
        # never started again by `pulumi up --refresh`.
        assert vm.inputs["started"] is True
        assert ("started" in vm.ignore_changes) is started_is_ignored, vm.name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_homelab_stacks_pass_the_boot_start_rule(previewed, stack):
    result = previewed(stack)
    assert [f.message for f in result.findings if f.rule_id == "BUD-07"] == []
    if stack == "dev":
        for vm in result.recording.by_type(VM):
            assert vm.inputs["onBoot"] is False, vm.name
            assert "started" in vm.ignore_changes


def test_an_unchanged_vm_has_no_diff_and_an_update_never_reboots_it(record):
    # pulumi-proxmoxve 8.x re-adds an all-zero `speed` block to every disk on each preview
    # (muhlba91/pulumi-proxmoxve#664); no disk here sets a speed limit, so ignoring it hides nothing.
    rec = record(cluster_program())
    for vm in rec.by_type(VM):
        assert all("speed" not in disk for disk in vm.inputs["disks"]), vm.name
        assert {f"disks[{i}].speed" for i in range(len(vm.inputs["disks"]))} <= set(vm.ignore_changes)
        assert vm.inputs["rebootAfterUpdate"] is False, vm.name
