"""`homelab kubeconfig` / `homelab talosconfig`: the stacks' admin credentials merged into the
user's client configuration, mode 600, never printed, never overwriting an entry it did not create.

In-process through `homelab.cli.main` with a scratch HOME. The Pulumi CLI path runs a fake `pulumi`
(a shell script on PATH printing JSON, and logging its arguments); the offline path reads the
session-cached previews instead of previewing again.
"""

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from homelab import clientconfig
from homelab.cli import main
from tests.policies.previews import previewed

FAKE_PULUMI = """#!/bin/sh
# A stand-in for `pulumi stack output --json --show-secrets --stack S --cwd DIR NAME`.
echo "$@" >> "$(dirname "$0")/calls.log"
stack=""; name=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stack|--cwd) [ "$1" = --stack ] && stack=$2; shift 2 ;;
    --*) shift ;;
    *) name=$1; shift ;;
  esac
done
file="$(dirname "$0")/$stack-$name.json"
if [ ! -f "$file" ]; then echo "error: no stack named '$stack' found" >&2; exit 255; fi
cat "$file"
"""

SECRET_KEY = "UkVBTC1DTElFTlQtS0VZLWRvLW5vdC1wcmludA=="  # what must never reach the terminal


def kubeconfig_output(stack: str, key: str = SECRET_KEY) -> str:
    """A kubeconfig as the Talos provider writes it (cluster, `admin@` user and context)."""
    name = f"homelab-{stack}"
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": name, "cluster": {"server": "https://10.0.0.1:6443", "certificate-authority-data": "Q0E="}}
            ],
            "users": [
                {"name": f"admin@{name}", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": key}}
            ],
            "contexts": [
                {"name": f"admin@{name}", "context": {"cluster": name, "user": f"admin@{name}", "namespace": "default"}}
            ],
            "current-context": f"admin@{name}",
        }
    )


def talosconfig_output(stack: str, ca: str = "Q0E=") -> str:
    name = f"homelab-{stack}"
    return yaml.safe_dump(
        {
            "context": name,
            "contexts": {name: {"endpoints": ["10.0.0.1"], "ca": ca, "crt": "Q0VSVA==", "key": SECRET_KEY}},
        }
    )


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch HOME with no client configuration, no $KUBECONFIG/$TALOSCONFIG and no pulumi."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("TALOSCONFIG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    return tmp_path / "home"


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """A `pulumi` on PATH serving `bin/<stack>-<output>.json`; returns that directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI)
    script.chmod(0o755)
    for stack in ("dev", "prod", "cloud"):
        (bin_dir / f"{stack}-kubeconfig.json").write_text(json.dumps(kubeconfig_output(stack)))
        (bin_dir / f"{stack}-talosconfig.json").write_text(json.dumps(talosconfig_output(stack)))
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


@pytest.fixture
def homelab(capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        assert SECRET_KEY not in captured.out + captured.err, "a secret reached the terminal"
        assert "LS0tLS1CRUdJTi" not in captured.out + captured.err, "a PEM reached the terminal"
        assert "Traceback" not in captured.err
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def cached_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline path reads the session-cached update views instead of previewing again."""
    monkeypatch.setattr(clientconfig, "run_stack", lambda stack, root: previewed(stack).recording)


def kubeconfig(home: Path) -> dict:
    return yaml.safe_load((home / ".kube" / "config").read_text())


def names(document: dict, section: str) -> list[str]:
    return [entry["name"] for entry in document[section]]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- through the Pulumi CLI -------------------------------------------------------------------------


def test_kubeconfig_merges_one_marked_context_per_stack(homelab, home: Path, fake_pulumi: Path) -> None:
    result = homelab("kubeconfig")
    assert result.code == 0, result.err
    path = home / ".kube" / "config"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    document = kubeconfig(home)
    expected = ["homelab-dev", "homelab-prod", "homelab-cloud"]
    for section in ("clusters", "users", "contexts"):
        assert names(document, section) == expected
    dev = document["contexts"][0]["context"]
    assert dev["cluster"] == dev["user"] == "homelab-dev"
    assert dev["namespace"] == "default"
    assert document["users"][0]["user"]["client-key-data"] == SECRET_KEY
    for section, field in clientconfig.KUBE_SECTIONS:
        for entry in document[section]:
            [marker] = entry[field]["extensions"]
            assert marker["name"] == "homelab"
            assert marker["extension"]["source"] == "pulumi-stack-output"
    assert document["current-context"] == "homelab-dev"
    assert result.err == ""
    assert result.out.count("written to") == 3
    calls = (fake_pulumi / "calls.log").read_text().splitlines()
    assert calls[0].startswith("stack output --json --show-secrets --stack dev --cwd ")
    assert calls[0].endswith(" kubeconfig")


def test_rerun_is_idempotent_and_keeps_the_users_other_entries(homelab, home: Path, fake_pulumi: Path) -> None:
    path = home / ".kube" / "config"
    path.parent.mkdir(parents=True)
    mine = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "work", "cluster": {"server": "https://work:6443"}}],
        "users": [{"name": "work", "user": {"token": "t"}}],
        "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}],
        "current-context": "work",
    }
    path.write_text(yaml.safe_dump(mine))
    path.chmod(0o644)
    assert homelab("kubeconfig", "prod").code == 0
    first = path.read_bytes()
    assert mode(path) == 0o600
    assert homelab("kubeconfig", "prod").code == 0
    assert path.read_bytes() == first
    document = kubeconfig(home)
    assert names(document, "contexts") == ["work", "homelab-prod"]
    assert document["current-context"] == "work"  # never switched under the user's feet
    assert document["users"][0] == mine["users"][0]


def test_a_changed_output_replaces_the_owned_entry(homelab, home: Path, fake_pulumi: Path) -> None:
    assert homelab("kubeconfig", "dev").code == 0
    (fake_pulumi / "dev-kubeconfig.json").write_text(json.dumps(kubeconfig_output("dev", key="TkVXLUtFWQ==")))
    assert homelab("kubeconfig", "dev").code == 0
    document = kubeconfig(home)
    assert names(document, "users") == ["homelab-dev"]
    assert document["users"][0]["user"]["client-key-data"] == "TkVXLUtFWQ=="


@pytest.mark.parametrize("section", ["clusters", "users", "contexts"])
def test_refuses_an_entry_it_did_not_create(homelab, home: Path, fake_pulumi: Path, section: str) -> None:
    path = home / ".kube" / "config"
    path.parent.mkdir(parents=True)
    field = section.removesuffix("s")
    path.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Config", section: [{"name": "homelab-dev", field: {}}]})
    )
    before = path.read_bytes()
    result = homelab("kubeconfig", "prod", "dev")
    assert result.code == 2
    [line] = result.err.splitlines()
    assert f"{field} 'homelab-dev' exists and was not written by homelab" in line
    assert "--output" in line
    assert path.read_bytes() == before  # nothing written, not even prod's entries
    assert result.out == ""


def test_kubeconfig_env_chain_writes_the_first_existing_file(
    homelab, home: Path, fake_pulumi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing, existing = tmp_path / "missing.yaml", tmp_path / "existing.yaml"
    existing.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", f"{missing}:{existing}")
    assert homelab("kubeconfig", "cloud").code == 0
    assert not missing.exists()
    assert names(yaml.safe_load(existing.read_text()), "contexts") == ["homelab-cloud"]


def test_output_option_and_pulumi_failure(homelab, home: Path, fake_pulumi: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "kubeconfig.yaml"
    assert homelab("kubeconfig", "dev", "--output", str(target)).code == 0
    assert mode(target) == 0o600
    assert not (home / ".kube" / "config").exists()
    (fake_pulumi / "prod-kubeconfig.json").unlink()
    result = homelab("kubeconfig", "prod", "--output", str(target))
    assert result.code == 2
    assert result.err.strip() == (
        "homelab: prod: `pulumi stack output kubeconfig` failed: error: no stack named 'prod' found"
    )


def test_malformed_existing_file_is_reported_without_its_content(homelab, home: Path, fake_pulumi: Path) -> None:
    path = home / ".kube" / "config"
    path.parent.mkdir(parents=True)
    path.write_text(f"users:\n- name: x\n  user: {{client-key-data: {SECRET_KEY}\n")
    result = homelab("kubeconfig", "dev")
    assert result.code == 2
    [line] = result.err.splitlines()
    assert "not valid YAML" in line
    assert "line 4" in line


def test_talosconfig_merges_with_a_sidecar_marker(homelab, home: Path, fake_pulumi: Path) -> None:
    path = home / ".talos" / "config"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"context": "lab", "contexts": {"lab": {"endpoints": ["1.2.3.4"]}}}))
    assert homelab("talosconfig", "dev", "prod").code == 0
    first = path.read_bytes()
    assert homelab("talosconfig", "dev", "prod").code == 0
    assert path.read_bytes() == first
    document = yaml.safe_load(first)
    assert list(document["contexts"]) == ["lab", "homelab-dev", "homelab-prod"]
    assert document["context"] == "lab"
    assert document["contexts"]["homelab-dev"]["key"] == SECRET_KEY
    marker = clientconfig.sidecar(path)
    assert mode(path) == mode(marker) == 0o600
    record = json.loads(marker.read_text())
    assert set(record["contexts"]) == {"homelab-dev", "homelab-prod"}
    assert SECRET_KEY not in marker.read_text()


def test_talosconfig_refuses_a_context_it_did_not_write(homelab, home: Path, fake_pulumi: Path) -> None:
    path = home / ".talos" / "config"
    assert homelab("talosconfig", "dev").code == 0
    # Someone replaces our context with their own (another CA): it is no longer ours.
    document = yaml.safe_load(path.read_text())
    document["contexts"]["homelab-dev"]["ca"] = "T1RIRVI="
    path.write_text(yaml.safe_dump(document))
    before = path.read_bytes()
    result = homelab("talosconfig", "dev")
    assert result.code == 2
    [line] = result.err.splitlines()
    assert "context 'homelab-dev' exists and was not written by homelab" in line
    assert path.read_bytes() == before
    # A context of that name in a file the command never wrote is refused too.
    other = home / "other-talosconfig"
    other.write_text(yaml.safe_dump({"context": "homelab-prod", "contexts": {"homelab-prod": {"endpoints": []}}}))
    assert homelab("talosconfig", "prod", "--output", str(other)).code == 2


# --- offline: stand-ins -----------------------------------------------------------------------------


@pytest.mark.usefixtures("cached_previews")
def test_offline_refuses_the_real_config_without_an_explicit_flag(homelab, home: Path) -> None:
    result = homelab("kubeconfig", "dev")
    assert result.code == 2
    [line] = result.err.splitlines()
    assert "pulumi CLI is not on PATH" in line
    assert "--stand-ins" in line
    assert not (home / ".kube").exists()


@pytest.mark.usefixtures("cached_previews")
def test_offline_stand_ins_are_named_marked_and_announced(homelab, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "stand-in.yaml"
    result = homelab("kubeconfig", "dev", "cloud", "--output", str(target))
    assert result.code == 0, result.err
    warnings = result.err.splitlines()
    assert len(warnings) == 2
    assert all("STAND-IN" in w and "not a real cluster" in w for w in warnings)
    document = yaml.safe_load(target.read_text())
    assert names(document, "contexts") == ["homelab-dev-offline-stand-in", "homelab-cloud-offline-stand-in"]
    assert document["clusters"][0]["cluster"]["extensions"][0]["extension"]["source"] == "offline-stand-in"
    assert mode(target) == 0o600
    # Into the real file only when asked for; never under a real context's name.
    assert homelab("talosconfig", "prod", "--stand-ins").code == 0
    talos = yaml.safe_load((home / ".talos" / "config").read_text())
    assert list(talos["contexts"]) == ["homelab-prod-offline-stand-in"]


@pytest.mark.usefixtures("cached_previews")
def test_offline_flag_wins_over_an_installed_cli(homelab, fake_pulumi: Path, tmp_path: Path) -> None:
    target = tmp_path / "k.yaml"
    assert homelab("kubeconfig", "dev", "--offline", "--output", str(target)).code == 0
    assert not (fake_pulumi / "calls.log").exists()
    assert names(yaml.safe_load(target.read_text()), "contexts") == ["homelab-dev-offline-stand-in"]


def test_unknown_stack_is_one_line_exit_2(homelab, home: Path, fake_pulumi: Path) -> None:
    result = homelab("kubeconfig", "staging")
    assert result.code == 2
    assert result.err.strip() == "homelab: unknown stack 'staging': this project defines dev, prod, cloud"
