"""What pulumi_command's commands would print, for the scripts the homelab components run.

What a command prints is a measurement of the host (is a reboot pending, is the pool healthy): it is
declared `measured`, so every offline preview reports it unknown ("known after up"). The text below
is only served to an offline `up` (tests of the code that parses it): a host that is already
prepared, with no reboot pending and the ZFS mirror imported and healthy.
"""

from typing import Any

from homelab.simulate import measured, resource_output

measured("command:remote:Command", "stdout", "stderr")
measured("command:local:Command", "stdout", "stderr")


@resource_output("command:remote:Command")
def _remote_command(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    script = str(inputs.get("create", ""))
    lines: list[str] = []
    if "reboot-required=" in script:
        lines.append("reboot-required=false")
    if "zpool list -H -o health" in script:
        lines.append("health=ONLINE")
    return {"stdout": "\n".join(lines), "stderr": ""}


@resource_output("command:local:Command")
def _local_command(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"stdout": "", "stderr": ""}
