"""`homelab known-hosts`: the Proxmox provider's own SSH connections verify the pinned host key.

The provider (bpg) checks the host against `~/.ssh/known_hosts` of the user running Pulumi and adds an
unknown host on first contact (trust on first use). Writing the pinned `homelab:proxmox.ssh_host_key`
there first turns that into a pin: a different key is refused by the provider.
"""

import base64
import hashlib
import hmac

import pytest

from homelab import known_hosts
from homelab.cli import main

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhvbWVsYWItc3RhbmQtaW4tbm90LWEtcmVhbC1rZXkh"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGFub3RoZXItaG9zdC1rZXktdGhhdC1pcy13cm9uZyE="


def hashed(host: str, key: str) -> str:
    salt = b"0123456789abcdef0123"
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()} {key}"


def test_pins_the_key_once_and_is_idempotent(tmp_path):
    path = tmp_path / "ssh" / "known_hosts"
    assert known_hosts.pin(path, "192.168.68.51", 22, KEY) == "added"
    assert path.read_text() == f"192.168.68.51 {KEY}\n"
    assert known_hosts.pin(path, "192.168.68.51", 22, KEY) == "already pinned"
    assert path.read_text().count("\n") == 1
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_a_non_standard_port_uses_the_bracket_form(tmp_path):
    path = tmp_path / "known_hosts"
    known_hosts.pin(path, "192.168.68.51", 2222, KEY)
    assert path.read_text() == f"[192.168.68.51]:2222 {KEY}\n"


def test_hashed_entries_are_recognised(tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(hashed("192.168.68.51", KEY) + "\n")
    assert known_hosts.pin(path, "192.168.68.51", 22, KEY) == "already pinned"


@pytest.mark.parametrize(
    "entry", [f"192.168.68.51 {OTHER}", hashed("192.168.68.51", OTHER), f"pve,192.168.68.51 {OTHER}"]
)
def test_a_different_key_for_the_host_is_a_conflict_not_an_overwrite(tmp_path, entry):
    path = tmp_path / "known_hosts"
    path.write_text(entry + "\n")
    with pytest.raises(known_hosts.HostKeyConflictError, match=r"192\.168\.68\.51"):
        known_hosts.pin(path, "192.168.68.51", 22, KEY)
    assert path.read_text() == entry + "\n"


def test_other_hosts_and_key_types_are_left_alone(tmp_path):
    path = tmp_path / "known_hosts"
    rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ=="
    path.write_text(f"192.168.68.52 {OTHER}\n192.168.68.51 {rsa}\n")
    assert known_hosts.pin(path, "192.168.68.51", 22, KEY) == "added"
    assert path.read_text().splitlines()[:2] == [f"192.168.68.52 {OTHER}", f"192.168.68.51 {rsa}"]


def test_cli_pins_the_stack_host_key(tmp_path, capsys):
    path = tmp_path / "known_hosts"
    assert main(["known-hosts", "prod", "--file", str(path)]) == 0
    assert path.read_text().startswith("192.168.68.51 ssh-ed25519 ")
    path.write_text(f"192.168.68.51 {OTHER}\n")
    assert main(["known-hosts", "prod", "--file", str(path)]) == 1
    assert "ssh_host_key" in capsys.readouterr().err
    assert main(["known-hosts", "cloud", "--file", str(path)]) == 0  # no Proxmox host: nothing to pin
