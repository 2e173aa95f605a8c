"""`homelab known-hosts STACK`: pin the Proxmox host's SSH key for the provider's own connections.

The Proxmox provider (bpg) has no host-key setting: it checks the host against `~/.ssh/known_hosts`
of the user running Pulumi, adds a host it does not know on first contact (trust on first use), and
refuses a key that differs from a recorded one. Writing `homelab:proxmox.ssh_host_key` there before
`pulumi up` turns the first contact into a pin. A recorded key that differs is never overwritten:
it is either a rebuilt host (remove the old line after checking) or someone in the middle.

Exit codes: 0 pinned (or nothing to pin), 1 a different key is recorded, 2 invalid stack config.
"""

import argparse
import base64
import hashlib
import hmac
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from homelab.stackrun import project_root
from stacks.config.homelab import ProxmoxConfig

DEFAULT_FILE = Path.home() / ".ssh" / "known_hosts"


class HostKeyConflictError(Exception):
    """known_hosts records another key of the same type for the host."""


def host_pattern(address: str, port: int) -> str:
    """How OpenSSH (and the provider's knownhosts library) names a host: `[addr]:port` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def _matches(field: str, host: str) -> bool:
    if field.startswith("|1|"):
        try:
            _, _, salt, digest = field.split("|", 3)
            expected = hmac.new(base64.b64decode(salt), host.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(expected, base64.b64decode(digest))
        except (ValueError, TypeError):
            return False
    return host in field.split(",")


def pin(path: Path, address: str, port: int, host_key: str) -> str:
    """Record `host_key` for the host in `path`; `added` or `already pinned`. Raises `HostKeyConflictError`."""
    key_type, key = host_key.split()[:2]
    host = host_pattern(address, port)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or line.startswith("#") or fields[0].startswith("@"):
            continue
        if _matches(fields[0], host) and fields[1] == key_type:
            if fields[2] == key:
                return "already pinned"
            raise HostKeyConflictError(
                f"{path} records another {key_type} key for {host} than homelab:proxmox.ssh_host_key; "
                f"if the host was reinstalled, check the new key on its console and remove the old line "
                f"(ssh-keygen -R {host} -f {path})"
            )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{host} {key_type} {key}\n")
    path.chmod(0o600)
    return "added"


def _proxmox_section(stack: str) -> Any:
    path = project_root() / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if not isinstance(document, dict):
        raise ValueError(f"{path.name}: stack file not found or not a mapping")
    return (document.get("config") or {}).get("homelab:proxmox")


def run(args: argparse.Namespace) -> int:
    try:
        section = _proxmox_section(args.stack)
        if section is None:
            print(f"homelab: stack {args.stack} has no Proxmox host; nothing to pin")
            return 0
        proxmox = ProxmoxConfig.model_validate(section)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        print(f"homelab: homelab:proxmox.{where}: {first['msg']}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"homelab: {exc}", file=sys.stderr)
        return 2
    try:
        status = pin(Path(args.file), proxmox.ssh_address, proxmox.ssh_port, proxmox.ssh_host_key)
    except HostKeyConflictError as exc:
        print(f"homelab: {exc}", file=sys.stderr)
        return 1
    print(f"homelab: {host_pattern(proxmox.ssh_address, proxmox.ssh_port)} {status} in {args.file}")
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "known-hosts", help="pin the stack's Proxmox SSH host key in known_hosts (the provider's own SSH)"
    )
    parser.add_argument("stack", metavar="STACK", help="dev or prod (a stack without a Proxmox host is a no-op)")
    parser.add_argument("--file", default=str(DEFAULT_FILE), help="known_hosts file (default: ~/.ssh/known_hosts)")
    parser.set_defaults(func=run)
