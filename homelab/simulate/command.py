"""What pulumi_command's remote commands would print, for the scripts the homelab components run.

The simulated host is one that is already prepared: passthrough files in place and the running
kernel booted with them (no reboot pending), and the ZFS mirror imported and healthy.
"""

from typing import Any

from homelab.simulate import resource_output


@resource_output("command:remote:Command")
def _remote_command(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    script = str(inputs.get("create", ""))
    lines: list[str] = []
    if "reboot-required=" in script:
        lines.append("reboot-required=false")
    if "zpool list -H -o health" in script:
        lines.append("health=ONLINE")
    return {"stdout": "\n".join(lines), "stderr": ""}
