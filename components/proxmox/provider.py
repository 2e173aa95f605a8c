"""Explicit Proxmox provider and SSH connection, built from typed connection settings.

Default providers are disabled for the whole project: every Proxmox resource gets this provider
from the stack, so no resource can silently talk to a different endpoint read from the environment.
"""

from dataclasses import dataclass

import pulumi
import pulumi_proxmoxve as pve
from pulumi_command import remote


@dataclass(frozen=True)
class ProxmoxConnection:
    """How Pulumi reaches one Proxmox VE node (API and SSH)."""

    endpoint: str
    """API URL, e.g. `https://192.168.68.51:8006/`."""
    node_name: str
    """The PVE node name (`pve`), as shown under Datacenter."""
    ssh_address: str
    """Address the SSH connection uses (disk import by the provider, host preparation commands)."""
    ssh_username: str = "root"
    ssh_port: int = 22
    insecure: bool = False
    """Skip TLS verification of the API. Off by default: trust the PVE CA or install an ACME cert."""
    min_tls: str = "1.3"
    ssh_host_key: str | None = None
    """The host's SSH public key (`ssh-ed25519 AAAA...`); when set, commands refuse any other host."""


def proxmox_provider(
    name: str,
    connection: ProxmoxConnection,
    api_token: pulumi.Input[str],
    ssh_private_key: pulumi.Input[str],
    opts: pulumi.ResourceOptions | None = None,
) -> pve.Provider:
    """The provider every Proxmox resource of a stack uses.

    The API token authenticates API calls; the `ssh` block is required because importing a
    downloaded disk image into a VM (`disks[].file_id`) runs `qm disk import` over SSH, and with an
    API token the provider does not fall back to a password. The provider has no host-key setting:
    it verifies the host against `~/.ssh/known_hosts` of the user running Pulumi and adds an unknown
    host on first contact. `homelab known-hosts <stack>` writes the pinned key there first (the
    deploy workflow runs it before `pulumi up`), which turns that first contact into a pin.
    """
    return pve.Provider(
        name,
        endpoint=connection.endpoint,
        api_token=pulumi.Output.secret(api_token),
        insecure=connection.insecure,
        min_tls=connection.min_tls,
        ssh=pve.ProviderSshArgs(
            username=connection.ssh_username,
            private_key=pulumi.Output.secret(ssh_private_key),
            nodes=[
                pve.ProviderSshNodeArgs(
                    name=connection.node_name, address=connection.ssh_address, port=connection.ssh_port
                )
            ],
        ),
        opts=opts,
    )


def ssh_connection(connection: ProxmoxConnection, ssh_private_key: pulumi.Input[str]) -> remote.ConnectionArgs:
    """The SSH connection host-preparation commands use (the SDK keeps it secret in state)."""
    return remote.ConnectionArgs(
        host=connection.ssh_address,
        port=connection.ssh_port,
        user=connection.ssh_username,
        private_key=pulumi.Output.secret(ssh_private_key),
        host_key=connection.ssh_host_key,
    )
