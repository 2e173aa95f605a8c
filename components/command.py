"""The one explicit `pulumi_command` provider a stack's commands run on.

Default providers are disabled for the project (docs/decisions), so a `local.Command` or
`remote.Command` without an explicit provider fails at `pulumi up`. The provider holds no
credential: each remote command carries its own pinned SSH connection (the Proxmox host's, or the
management VM's through the OCI Bastion), and local commands run on the operator's machine.
"""

import pulumi_command

__all__ = ["command_provider"]


def command_provider(name: str) -> pulumi_command.Provider:
    """The stack's `pulumi_command` provider; pass it through `opts` to every command's component."""
    return pulumi_command.Provider(name)
