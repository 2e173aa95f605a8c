"""The pinned SDK combination works: one resource from each SDK registers under the engine.

`pulumi_authentik` 2025.8.1 only works up to pulumi 3.257.0 (see pyproject.toml); this test fails
the moment a bump breaks that, instead of the first real `pulumi up` failing.
"""

from importlib.metadata import version

import pulumi


def test_pulumi_is_pinned_for_authentik() -> None:
    assert version("pulumi") == "3.257.0"
    assert version("pulumi-authentik") == "2025.8.1"


def test_every_sdk_registers_a_resource(record) -> None:
    def program() -> None:
        import pulumi_authentik as ak
        import pulumi_cloudflare as cf
        import pulumi_command as command
        import pulumi_kubernetes as k8s
        import pulumi_oci as oci
        import pulumi_proxmoxve as pve
        import pulumiverse_talos as talos

        ak.Group("g", name="admins")
        cf.Provider("cf")
        command.local.Command("c", create="true")
        k8s.core.v1.Namespace("ns", metadata={"name": "x"})
        oci.core.Vcn("vcn", compartment_id="ocid1.compartment.oc1..x", cidr_blocks=["10.0.0.0/16"])
        pve.network.linux.Bridge("br", node_name="pve", name="vmbr9")
        talos.machine.Secrets("s", talos_version="v1.10")
        pulumi.export("ok", True)

    recording = record(program)
    types = {r.type for r in recording.resources}
    assert "authentik:index/group:Group" in types
    assert "talos:machine/secrets:Secrets" in types
    assert "proxmoxve:network/linux/bridge:Bridge" in types
    assert recording.outputs["ok"].value is True
