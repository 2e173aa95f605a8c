"""The dev stack, previewed offline from the real Pulumi.dev.yaml."""

import pytest

from homelab.stackrun import run_stack
from stacks.config import ConfigError
from tests.stacks.helpers import count_registrations, packages, section

VM = "proxmoxve:index/vmLegacy:VmLegacy"


@pytest.fixture(scope="module")
def dev(previewed):
    return previewed("dev").recording


def test_dev_previews_the_whole_cluster(dev):
    types = {r.type for r in dev.resources}
    assert {
        "homelab:talos:TalosCluster",
        VM,
        "proxmoxve:download/file:File",
        "talos:machine/bootstrap:Bootstrap",
        "kubernetes:helm.sh/v3:Release",
        "homelab:k8s:LocalPathStorage",
    } <= types
    assert [r.name for r in dev.by_type(VM)] == ["talos-dev-cp-1"]
    # The host is prod's: no storage, no host command (the local health gate runs where Pulumi runs).
    assert not any(t.startswith(("proxmoxve:storage", "command:remote:")) for t in types)
    vm = dev.get(VM, "talos-dev-cp-1").inputs
    assert (vm["cpu"]["cores"], vm["memory"]["dedicated"], vm["disks"][0]["size"]) == (2, 4096, 50)
    assert "mode-testing" in vm["tags"] and "mode-normal" not in vm["tags"]


def test_dev_exports_secret_access_and_its_guests(dev):
    assert dev.outputs["kubeconfig"].secret
    assert dev.outputs["talosconfig"].secret
    assert dev.outputs["node_addresses"].value == {"dev-cp-1": "192.168.68.61"}
    assert not dev.outputs["host_guests"].secret
    assert dev.outputs["host_guests"].value == [
        {"name": "dev-cp-1", "stack": "dev", "memory_mb": 4096, "cores": 2, "modes": ["testing"], "vm_id": 301}
    ]


def test_every_provider_is_explicit(dev):
    for resource in dev.resources:
        if resource.custom and not resource.is_provider:
            assert resource.provider, resource.name


def test_local_path_patch_reaches_the_talos_configuration(dev):
    apply = dev.get("talos:machine/configurationApply:ConfigurationApply", "talos-dev-cp-1-config")
    assert "/var/local-path-provisioner" in apply.inputs["machineConfigurationInput"]


def test_invalid_vm_size_is_one_error_naming_the_key_and_nothing_registers():
    cluster = section("dev", "cluster")
    cluster["nodes"]["dev-cp-1"]["memory_mb"] = 1024
    with count_registrations() as seen, pytest.raises(ConfigError) as error:
        run_stack("dev", overrides={"cluster": cluster})
    assert str(error.value).startswith("homelab:cluster.nodes.dev-cp-1.memory_mb: must be at least 2048")
    assert "\n" not in str(error.value)
    assert seen == []


def test_missing_image_checksum_for_the_version_is_an_error():
    cluster = section("dev", "cluster")
    cluster["talos_version"] = "v1.10.7"
    with count_registrations() as seen, pytest.raises(ConfigError, match=r"^homelab:cluster\.image_sha256: "):
        run_stack("dev", overrides={"cluster": cluster})
    assert seen == []


def test_node_outside_the_lan_is_an_error():
    cluster = section("dev", "cluster")
    cluster["nodes"]["dev-cp-1"]["address"] = "10.0.0.5"
    with pytest.raises(ConfigError, match=r"^homelab:cluster\.nodes\.dev-cp-1\.address: 10\.0\.0\.5 is outside"):
        run_stack("dev", overrides={"cluster": cluster})


def _replacement_relevant(recording):
    out = {}
    for vm in recording.by_type(VM):
        inputs = {k: v for k, v in vm.inputs.items() if k != "cdrom"}
        inputs["disks"] = [{k: v for k, v in d.items() if k != "fileId"} for d in inputs["disks"]]
        out[vm.name] = inputs
    return out


def test_talos_upgrade_in_config_never_replaces_the_vm(dev):
    cluster = section("dev", "cluster")
    cluster["talos_version"] = "v1.10.7"
    cluster["extensions"] = ["siderolabs/iscsi-tools"]
    cluster["image_sha256"]["v1.10.7"] = "0" * 63 + "1"
    upgraded = run_stack("dev", overrides={"cluster": cluster})
    assert _replacement_relevant(dev) == _replacement_relevant(upgraded)
    image = upgraded.get("proxmoxve:download/file:File", "talos-image-pve")
    assert "/v1.10.7/" in image.inputs["url"]
    for vm in upgraded.by_type(VM):
        assert "disks[0].fileId" in vm.ignore_changes


def test_dev_imports_neither_oci_nor_cloudflare(dev_run_modules: tuple[int, frozenset[str]]):
    # A fresh interpreter that ran dev (tests/stacks/helpers.py: one subprocess shared with the
    # Authentik import test), the cloud stack's outputs given as the backend serves them.
    resources, modules = dev_run_modules
    assert resources > 0
    loaded = packages(modules, "pulumi_oci", "pulumi_cloudflare")
    assert not loaded, loaded
    assert "pulumiverse_talos" in modules and "pulumi_proxmoxve" in modules


def test_endpoint_must_be_a_control_plane_address():
    # No VIP is configured on the nodes, so any other address leaves the API unreachable.
    cluster = section("dev", "cluster")
    cluster["endpoint"] = "192.168.68.60"
    with (
        count_registrations() as seen,
        pytest.raises(
            ConfigError, match=r"^homelab:cluster\.endpoint: 192\.168\.68\.60 is not a control-plane node address"
        ),
    ):
        run_stack("dev", overrides={"cluster": cluster})
    assert seen == []


def test_node_on_the_proxmox_hosts_address_is_an_error():
    cluster = section("dev", "cluster")
    cluster["nodes"]["dev-cp-1"]["address"] = "192.168.68.51"
    cluster["endpoint"] = "192.168.68.51"
    with pytest.raises(
        ConfigError, match=r"^homelab:cluster\.nodes\.dev-cp-1\.address: 192\.168\.68\.51 is the Proxmox host's"
    ):
        run_stack("dev", overrides={"cluster": cluster})


def test_config_contract_is_pinned_and_never_newer_than_the_os():
    cluster = section("dev", "cluster")
    assert cluster["config_contract"] == "v1.10"
    # Raising the OS version keeps the pinned contract in the generated configuration.
    cluster["talos_version"] = "v1.11.3"
    cluster["kubernetes_version"] = "1.34.1"
    cluster["image_sha256"]["v1.11.3"] = "0" * 63 + "1"
    upgraded = run_stack("dev", overrides={"cluster": cluster})
    applies = upgraded.by_type("talos:machine/configurationApply:ConfigurationApply")
    assert [a.name for a in applies] == ["talos-dev-cp-1-config"]
    secrets = upgraded.get("talos:machine/secrets:Secrets", "talos-secrets")
    assert secrets.inputs["talosVersion"] == "v1.10"
    cluster["config_contract"] = "v1.12"
    with pytest.raises(ConfigError, match=r"^homelab:cluster\.config_contract: v1\.12 is newer than talos_version"):
        run_stack("dev", overrides={"cluster": cluster})
    cluster["config_contract"] = "1.10"
    with pytest.raises(ConfigError, match=r"^homelab:cluster\.config_contract: '1\.10' must look like v1\.10"):
        run_stack("dev", overrides={"cluster": cluster})


def test_dev_cluster_may_be_powered_off_without_breaking_previews(dev):
    # DEV runs only in testing mode; its Kubernetes provider leaves objects alone while it is off.
    provider = dev.get("pulumi:providers:kubernetes", "dev-kubernetes")
    assert provider.inputs["skipUpdateUnreachable"] == "true"
