"""Shell building blocks shared by every command that runs on the Proxmox host over SSH.

Two things on a host are global and break when two commands touch them at once: dpkg's lock (a
second `apt-get install` fails on it) and the boot chain (`update-initramfs -u -k all`,
`proxmox-boot-tool refresh` rewrite the same files in /boot and the ESPs). Pulumi runs independent
resources in parallel, so every host command that does either is chained to the one before it by
`depends_on` (`ProxmoxHost.host_chain` is the head of that chain; `ZfsPool` continues it). The
markers below let a test find every command that belongs in the chain.

Every script starts with `STRICT` and is idempotent: a re-run with the same inputs changes nothing.
"""

import shlex

STRICT = "set -euo pipefail"

# Words that mark a script as touching dpkg or the boot chain (tests check these are serialized).
SERIALIZED_MARKERS: tuple[str, ...] = ("apt-get", "update-initramfs", "proxmox-boot-tool", "update-grub")

# Wait for a dpkg lock held by someone else (the daily `pveupdate`, an operator's shell) instead of failing.
APT_LOCK_WAIT_SECONDS = 600
APT_GET = f"DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout={APT_LOCK_WAIT_SECONDS}"

REFRESH_INITRAMFS = "update-initramfs -u -k all >/dev/null"


def ensure_packages(*packages: str) -> str:
    """Install the packages that are missing, refreshing the package index first; no-op otherwise."""
    if not packages:
        raise ValueError("ensure_packages needs at least one package name")
    names = " ".join(shlex.quote(p) for p in packages)
    return "\n".join(
        [
            f"packages=({names})",
            "missing=()",
            'for package in "${packages[@]}"; do',
            "  if ! dpkg-query -W -f='${Status}\\n' \"$package\" 2>/dev/null | grep -qx 'install ok installed'; then",
            '    missing+=("$package")',
            "  fi",
            "done",
            'if [ "${#missing[@]}" -gt 0 ]; then',
            f"  {APT_GET} update",
            f'  {APT_GET} install -y --no-install-recommends "${{missing[@]}}"',
            "fi",
        ]
    )
