"""The `homelab` command: exit codes, one-line errors, no tracebacks, documented JSON."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from homelab.cli import main, preview_stack
from homelab.engine import Recording
from homelab.stackrun import project_root, run_stack, stack_secrets
from stacks.config import ConfigError

ROOT = project_root()
SCHEMA = json.loads((ROOT / "homelab" / "schema" / "preview.schema.json").read_text())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's stack files and policy config, safe to break."""
    for name in ["Pulumi.yaml", *(p.name for p in ROOT.glob("Pulumi.*.yaml"))]:
        shutil.copy(ROOT / name, tmp_path / name)
    if (ROOT / "policies" / "config").is_dir():
        shutil.copytree(ROOT / "policies" / "config", tmp_path / "policies" / "config")
    return tmp_path


def homelab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homelab", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_unknown_stack_is_a_usage_error() -> None:
    line = assert_one_line_error(homelab("preview", "staging"), "unknown stack 'staging'")
    assert "dev, prod, cloud" in line


def test_missing_stack_file(project: Path) -> None:
    (project / "Pulumi.dev.yaml").unlink()
    assert_one_line_error(homelab("--project-dir", str(project), "preview", "dev"), "Pulumi.dev.yaml", "not found")


def test_malformed_yaml(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  homelab:clusters: {unclosed\n")
    assert_one_line_error(
        homelab("--project-dir", str(project), "preview", "dev"), "Pulumi.dev.yaml: line", "malformed YAML"
    )


@pytest.mark.parametrize("stack", ["dev", "prod", "cloud"])
def test_unknown_key_names_the_key_and_registers_nothing(project: Path, stack: str) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    path.write_text(path.read_text() + "  homelab:typoSection: {}\n")
    assert_one_line_error(homelab("--project-dir", str(project), "preview", stack), "homelab:typoSection: unknown key")
    partial = Recording(project="homelab", stack=stack)
    with pytest.raises(ConfigError, match="homelab:typoSection: unknown key"):
        run_stack(stack, project, into=partial)
    assert partial.resources == []


def test_preview_result_carries_the_error_line(project: Path) -> None:
    (project / "Pulumi.cloud.yaml").write_text("config: [1, 2]\n")
    result = preview_stack("cloud", project)
    assert result.exit_code == 2
    assert result.error == "Pulumi.cloud.yaml: `config:` must be a mapping of keys to values"


def test_json_document_matches_schema_and_masks_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preview", "--all", "--json"])
    text = capsys.readouterr().out
    document = json.loads(text)
    jsonschema.validate(document, SCHEMA)
    assert code == document["exitCode"] == 0
    assert [s["stack"] for s in document["stacks"]] == ["dev", "prod", "cloud"]
    for stack in document["stacks"]:
        for output in stack["outputs"].values():
            if output["secret"]:
                assert output["value"] is None
    # No secret's stand-in value reaches the document (inputs and outputs are masked); only the keys
    # that were stood in are listed.
    for stack in document["stacks"]:
        assert stack["placeholders"]
        for spec in stack_secrets(stack["stack"]):
            # PEM/SSH stand-ins span lines; their body is what must never appear.
            needle = max(spec.offline_value.splitlines(), key=len)
            assert needle not in text, (stack["stack"], spec.key)


def test_text_preview_of_all_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview", "--all"]) == 0
    out = capsys.readouterr().out
    for stack in ("dev", "prod", "cloud"):
        assert f"== stack {stack} ==" in out
    assert "Policy (by NFR)" in out
    assert out.rstrip().endswith("Summary: dev=ok, prod=ok, cloud=ok")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Out of range: Talos needs at least 2 GiB.
        (
            "memory_mb: 4096",
            "memory_mb: 1024",
            "homelab:cluster.nodes.dev-cp-1.memory_mb: must be at least 2048, got 1024",
        ),
        # Wrong type.
        ("cores: 2", "cores: two", "homelab:cluster.nodes.dev-cp-1.cores: "),
        # Not an address.
        ("gateway: 192.168.68.1", "gateway: the-router", "homelab:network.gateway: "),
    ],
)
def test_invalid_value_is_one_line_naming_the_full_key(project: Path, old: str, new: str, expected: str) -> None:
    path = project / "Pulumi.dev.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    line = assert_one_line_error(homelab("--project-dir", str(project), "preview", "dev"), expected)
    assert line.startswith(f"homelab: dev: {expected}")


def test_secret_in_plain_text_is_refused(project: Path) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  homelab:proxmoxApiToken: root@pam!iac=plain-text-token\n")
    assert_one_line_error(
        homelab("--project-dir", str(project), "preview", "dev"),
        "homelab:proxmoxApiToken: is stored in plain text; set it with `pulumi config set --secret proxmoxApiToken`",
    )


def test_a_mandatory_violation_exits_1_and_names_the_rule_and_fix(project: Path) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("insecure: false", "insecure: true", 1))
    result = homelab("--project-dir", str(project), "preview", "dev")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stdout.splitlines() if "[SEC-02]" in line)
    assert "MANDATORY" in line
    assert "skips TLS verification" in line
    assert "Fix: remove `insecure: true`" in line
    assert "Summary: dev=blocked by policy" in result.stdout
