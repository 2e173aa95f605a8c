"""The prod stack, previewed offline from the real Pulumi.prod.yaml (with the dev stack referenced)."""

import re

import pytest

from homelab.stackrun import run_stack
from stacks.capacity import CapacityError
from stacks.config import ConfigError
from tests.stacks.helpers import count_registrations, section

VM = "proxmoxve:index/vmLegacy:VmLegacy"
DESTROY = re.compile(r"\b(zpool\s+destroy|zfs\s+destroy)\b")


@pytest.fixture(scope="module")
def prod(previewed):
    return previewed("prod").recording


def test_prod_owns_host_pool_cluster_and_gaming_vm(prod):
    assert prod.get("homelab:proxmox:ProxmoxHost", "host")
    assert prod.get("homelab:proxmox:ZfsPool", "tank")
    assert prod.get("homelab:proxmox:GamingVm", "gaming")
    assert sorted(r.name for r in prod.by_type(VM)) == ["gaming-vm", "talos-prod-cp-1", "talos-prod-worker-1"]
    cp = prod.get(VM, "talos-prod-cp-1").inputs
    worker = prod.get(VM, "talos-prod-worker-1").inputs
    assert (cp["cpu"]["cores"], cp["memory"]["dedicated"], cp["disks"][0]["size"]) == (2, 4096, 50)
    assert (worker["cpu"]["cores"], worker["memory"]["dedicated"], worker["disks"][0]["size"]) == (6, 12288, 200)
    gaming = prod.get(VM, "gaming-vm").inputs
    assert (gaming["cpu"]["cores"], gaming["memory"]["dedicated"]) == (8, 32768)
    assert gaming["hostpcis"][0]["mapping"] == "gpu0"
    assert gaming["disks"][0]["datastoreId"] == "tank-vms"


def test_every_vm_is_protected_and_tagged_with_its_modes(prod):
    for vm in prod.by_type(VM):
        assert vm.protect, vm.name
        modes = {t for t in vm.inputs["tags"] if t.startswith("mode-")}
        assert modes, vm.name
        assert vm.inputs["tags"] == sorted(vm.inputs["tags"])


def test_pool_uses_disks_by_id_and_nothing_destroys_data(prod):
    pool = prod.get("command:remote:Command", "tank-pool")
    assert pool.protect and pool.retain_on_delete
    assert "/dev/disk/by-id/ata-WDC_WD201KFGX-68BKJN0_2CKJ8VZN" in pool.inputs["create"]
    for command in prod.by_type("command:remote:Command"):
        assert not DESTROY.search(command.inputs.get("delete") or ""), command.name


def test_nfs_media_class_uses_the_zfs_export(prod):
    sc = prod.get("kubernetes:storage.k8s.io/v1:StorageClass", "media-storage-class")
    assert sc.inputs["parameters"] == {"server": "192.168.68.51", "share": "/tank/media"}
    assert sc.inputs["reclaimPolicy"] == "Retain"
    assert prod.outputs["nfs_exports"].value == ["/tank/media"]


def test_prod_outputs(prod):
    assert prod.outputs["kubeconfig"].secret
    assert prod.outputs["talosconfig"].secret
    assert prod.outputs["proxmox_api_tokens"].secret
    assert prod.outputs["node_addresses"].value == {"prod-cp-1": "192.168.68.71", "prod-worker-1": "192.168.68.72"}
    # Measurements of the host: no offline run may invent them (known after up).
    assert not prod.outputs["host_reboot_required"].known
    assert not prod.outputs["zfs_pool_health"].known


def test_host_capacity_counts_dev_guests_and_is_not_secret(prod):
    capacity = prod.outputs["host_capacity"]
    assert not capacity.secret
    modes = capacity.value["modes"]
    assert modes["normal"]["total_mb"] == 28 * 1024
    assert modes["testing"]["total_mb"] == 32 * 1024
    assert "dev-cp-1" in modes["testing"]["guests"] and "dev-cp-1" not in modes["normal"]["guests"]
    assert modes["gaming"]["total_mb"] == 60 * 1024  # the PRD's ≈48 GB does not add up (decision doc)
    assert all(m["within_host"] for m in modes.values())
    assert capacity.value["host_memory_mb"] == 65536


def test_missing_disk_id_is_one_error_naming_the_key_and_nothing_registers():
    zfs = section("prod", "zfs")
    zfs["disk_ids"] = zfs["disk_ids"][:1]
    with count_registrations() as seen, pytest.raises(ConfigError) as error:
        run_stack("prod", overrides={"zfs": zfs})
    assert str(error.value) == (
        "homelab:zfs.disk_ids: a mirror needs exactly 2 disk ids, found 1, got ['ata-WDC_WD201KFGX-68BKJN0_2CKJ8VZN']"
    )
    assert seen == []


def test_disk_given_as_dev_path_is_rejected():
    zfs = section("prod", "zfs")
    zfs["disk_ids"][1] = "/dev/sdb"
    with pytest.raises(ConfigError, match=r"^homelab:zfs\.disk_ids\.1: must be a name under /dev/disk/by-id"):
        run_stack("prod", overrides={"zfs": zfs})


def test_oversized_gaming_vm_is_rejected_before_anything_registers():
    gaming = section("prod", "gaming")
    gaming["memory_mb"] = 49152  # 16 GB PROD + 48 GB gaming + 12 GB reserved > 64 GB
    with (
        count_registrations() as seen,
        pytest.raises(ConfigError, match=r"^homelab:host\.memory_mb: host mode 'gaming' needs 77824 MB"),
    ):
        run_stack("prod", overrides={"gaming": gaming})
    assert seen == []


def test_nfs_export_to_the_world_is_rejected():
    zfs = section("prod", "zfs")
    zfs["nfs_clients"] = ["0.0.0.0/0"]
    with pytest.raises(ConfigError, match=r"^homelab:zfs\.nfs_clients: 0\.0\.0\.0/0 is wider than a /16"):
        run_stack("prod", overrides={"zfs": zfs})


def test_home_tunnel_connector_runs_in_prod_with_the_cloud_token(prod):
    connector = prod.get("homelab:cloudflare:CloudflaredConnector", "home-tunnel")
    secret = prod.get("kubernetes:core/v1:Secret", "home-tunnel-token")
    deployment = prod.get("kubernetes:apps/v1:Deployment", "home-tunnel-deployment")
    assert secret.parent == connector.urn
    assert deployment.parent == connector.urn
    # The token comes from the cloud stack's output and stays secret on the wire.
    assert secret.is_secret("stringData")
    assert secret.inputs["stringData"]["token"]
    # Depending on the Cilium component waits for its children: no pod starts before the CNI.
    cilium_release = prod.get("kubernetes:helm.sh/v3:Release", "cilium-release")
    assert cilium_release.urn in connector.dependencies
    assert deployment.inputs["spec"]["replicas"] == 2
    env = deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    assert all("value" not in e for e in env if e["name"] == "TUNNEL_TOKEN")


def test_home_tunnel_can_be_left_off_until_the_cloud_stack_exists():
    recording = run_stack("prod", overrides={"tunnel": {"enabled": False}})
    assert recording.by_type("homelab:cloudflare:CloudflaredConnector") == []


def test_home_tunnel_image_must_be_pinned():
    with pytest.raises(ConfigError, match=r"^homelab:tunnel\.image: "):
        run_stack("prod", overrides={"tunnel": {"image": "docker.io/cloudflare/cloudflared:latest"}})


def test_a_vm_id_the_dev_stack_already_uses_is_rejected():
    # VM ids are per host: reusing dev's would make one stack's `up` fail on, or adopt, the other's VM.
    cluster = section("prod", "cluster")
    cluster["nodes"]["prod-cp-1"]["vm_id"] = 301
    with pytest.raises(CapacityError, match=r"VM id 301 is used by prod-cp-1 \(prod\) and dev-cp-1 \(dev\)"):
        run_stack("prod", overrides={"cluster": cluster})


def test_prod_cluster_is_always_on_so_unreachable_is_an_error(prod):
    provider = prod.get("pulumi:providers:kubernetes", "prod-kubernetes")
    assert "skipUpdateUnreachable" not in provider.inputs


SERIALIZED = re.compile(r"\b(apt-get|update-initramfs|proxmox-boot-tool|update-grub)\b")


def test_host_commands_that_install_packages_or_touch_the_boot_chain_never_overlap(prod):
    # dpkg's lock and /boot are host-wide: any two such commands, in any component, are ordered.
    serialized = [
        c
        for c in prod.by_type("command:remote:Command")
        if SERIALIZED.search((c.inputs.get("create") or "") + (c.inputs.get("delete") or ""))
    ]
    assert {c.name for c in serialized} >= {"host-apt", "host-passthrough", "tank-snapshots", "tank-nfs", "tank-arc"}
    for i, a in enumerate(serialized):
        for b in serialized[i + 1 :]:
            assert prod.waits_for(a, b) or prod.waits_for(b, a), f"{a.name} and {b.name} may run together"
    apt = prod.get("command:remote:Command", "host-apt")
    assert all(prod.waits_for(c, apt) for c in serialized if c is not apt), "the index is fixed first"


def test_no_unused_proxmox_api_credential_is_created(prod):
    # No Proxmox CSI driver is deployed: a token with Datastore.Allocate/VM.Config.Disk from `/`
    # would be a broad credential nothing uses.
    for type_ in ("proxmoxve:user/token:Token", "proxmoxve:index/roleLegacy:RoleLegacy"):
        assert prod.by_type(type_) == [], type_


def test_a_write_privilege_on_the_whole_host_is_rejected():
    host = section("prod", "host")
    host["api_consumers"] = {
        "csi": {"user_id": "kubernetes-csi@pve", "privileges": ["Datastore.Allocate", "VM.Audit"], "path": "/"}
    }
    with pytest.raises(ConfigError, match=r"^homelab:host\.api_consumers\.csi\.path: .*Datastore\.Allocate"):
        run_stack("prod", overrides={"host": host})


def test_every_ssh_connection_pins_the_host_key(prod):
    pinned = section("prod", "proxmox")["ssh_host_key"]
    commands = prod.by_type("command:remote:Command")
    assert commands
    for command in commands:
        assert command.inputs["connection"]["hostKey"] == pinned, command.name


def test_the_host_key_is_required():
    proxmox = section("prod", "proxmox")
    del proxmox["ssh_host_key"]
    with pytest.raises(ConfigError, match=r"^homelab:proxmox\.ssh_host_key: "):
        run_stack("prod", overrides={"proxmox": proxmox})


def test_home_stack_resources_name_their_provider(prod, previewed):
    # Default providers are disabled in every stack: a resource without an explicit provider
    # (e.g. a remote command) would fail at `pulumi up`.
    for recording in (prod, previewed("dev").recording):
        for r in recording.resources:
            if r.custom and not r.type.startswith("pulumi:providers:") and r.type != "pulumi:pulumi:StackReference":
                assert r.provider, f"{r.type} {r.name}"
