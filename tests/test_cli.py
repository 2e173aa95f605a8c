"""The `homelab` command: exit codes, one-line errors, no tracebacks, documented JSON.

Everything runs in-process through `homelab.cli.main([...])` with captured output; two tests start
a real process, for the console-script entry point and `python -m homelab` and their exit codes.
"""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from homelab import cli
from homelab.cli import main, preview_stack
from homelab.engine import Recording
from homelab.render import StackResult
from homelab.stackrun import project_root, run_stack, stack_secrets
from homelab.standins import stand_in
from stacks.config import ConfigError
from tests.policies.previews import previewed
from tests.stacks.helpers import count_registrations

ROOT = project_root()
SCHEMA = json.loads((ROOT / "homelab" / "schema" / "preview.schema.json").read_text())


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def homelab(capsys: pytest.CaptureFixture[str]):
    """`homelab("preview", "dev")` runs the command in-process and returns its exit code and output."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def committed_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve the committed stacks from the session cache (the same `preview_stack` call, made once)."""

    def cached(stack: str, root: Path | None = None) -> StackResult:
        if root is None or root == ROOT:
            return previewed(stack)
        return preview_stack(stack, root)

    monkeypatch.setattr(cli, "preview_stack", cached)


def assert_one_line_error(result: Run, *fragments: str) -> str:
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err + result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# --- real processes: the entry points and their exit codes ----------------------------------------


def test_console_script_reports_a_usage_error_as_exit_2() -> None:
    script = Path(sys.executable).parent / "homelab"
    result = subprocess.run([str(script), "preview", "staging"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == "homelab: unknown stack 'staging': this project defines dev, prod, cloud"
    assert result.stdout == ""


def test_python_m_homelab_reports_invalid_config_as_exit_2(isolated_project: Path) -> None:
    (isolated_project / "Pulumi.prod.yaml").write_text("config:\n  homelab:clusters: {unclosed\n")
    result = subprocess.run(
        [sys.executable, "-m", "homelab", "--project-dir", str(isolated_project), "preview", "prod"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("homelab: prod: Pulumi.prod.yaml: line 3, column 1: malformed YAML")
    assert result.stdout.rstrip().endswith("Summary: prod=invalid config")


# --- in-process -----------------------------------------------------------------------------------


def test_unknown_stack_is_a_usage_error(homelab) -> None:
    line = assert_one_line_error(homelab("preview", "staging"), "unknown stack 'staging'")
    assert "dev, prod, cloud" in line


def test_stack_names_and_all_are_exclusive(homelab) -> None:
    assert_one_line_error(homelab("preview", "dev", "--all"), "give stack names or --all, not both")


def test_a_directory_without_pulumi_yaml_is_refused(homelab, tmp_path: Path) -> None:
    assert_one_line_error(homelab("--project-dir", str(tmp_path), "preview", "dev"), "not a Pulumi project")


def test_missing_stack_file(homelab, isolated_project: Path) -> None:
    (isolated_project / "Pulumi.dev.yaml").unlink()
    result = homelab("--project-dir", str(isolated_project), "preview", "dev")
    assert_one_line_error(result, "Pulumi.dev.yaml", "not found")


def test_malformed_yaml(homelab, isolated_project: Path) -> None:
    (isolated_project / "Pulumi.dev.yaml").write_text("config:\n  homelab:clusters: {unclosed\n")
    result = homelab("--project-dir", str(isolated_project), "preview", "dev")
    assert_one_line_error(result, "Pulumi.dev.yaml: line", "malformed YAML")


@pytest.mark.parametrize("stack", ["dev", "prod", "cloud"])
def test_unknown_key_names_the_key_and_registers_nothing(homelab, isolated_project: Path, stack: str) -> None:
    path = isolated_project / f"Pulumi.{stack}.yaml"
    path.write_text(path.read_text() + "  homelab:typoSection: {}\n")
    # Nothing is registered: neither by this stack nor by a stack it references (prod reads dev and
    # cloud, and its own invalid config is reported before they are previewed).
    with count_registrations() as registered:
        result = homelab("--project-dir", str(isolated_project), "preview", stack)
    assert_one_line_error(result, "homelab:typoSection: unknown key")
    assert registered == []
    partial = Recording(project="homelab", stack=stack)
    with pytest.raises(ConfigError, match="homelab:typoSection: unknown key"):
        run_stack(stack, isolated_project, into=partial)
    assert partial.resources == []


def test_preview_result_carries_the_error_line(isolated_project: Path) -> None:
    (isolated_project / "Pulumi.cloud.yaml").write_text("config: [1, 2]\n")
    result = preview_stack("cloud", isolated_project)
    assert result.exit_code == 2
    assert result.error == "Pulumi.cloud.yaml: `config:` must be a mapping of keys to values"


@pytest.mark.usefixtures("committed_previews")
def test_json_document_matches_schema_and_masks_secrets(homelab) -> None:
    result = homelab("preview", "--all", "--json")
    document = json.loads(result.out)
    jsonschema.validate(document, SCHEMA)
    assert result.code == document["exitCode"] == 0
    assert [s["stack"] for s in document["stacks"]] == ["dev", "prod", "cloud"]
    secret_outputs = [o for s in document["stacks"] for o in s["outputs"].values() if o["secret"]]
    assert secret_outputs, "the stacks export kubeconfigs and talosconfigs as secrets"
    assert all(o["value"] is None for o in secret_outputs)
    # No secret's stand-in value reaches the document (inputs and outputs are masked); only the keys
    # that were stood in are listed.
    for stack in document["stacks"]:
        specs = stack_secrets(stack["stack"])
        # Required secrets, and those the committed stack file makes required (the OVH target's).
        needed = [s for s in specs if s.required or s.required_with is not None]
        assert sorted(stack["placeholders"]) == sorted(f"homelab:{s.key}" for s in needed)
        for spec in specs:
            # PEM/SSH stand-ins span lines; their body is what must never appear.
            needle = max(stand_in(spec.key).splitlines(), key=len)
            assert needle not in result.out, (stack["stack"], spec.key)


@pytest.mark.usefixtures("committed_previews")
def test_text_preview_of_all_stacks(homelab) -> None:
    result = homelab("preview", "--all")
    assert result.code == 0, result.err
    for stack in ("dev", "prod", "cloud"):
        assert f"== stack {stack} ==" in result.out
    assert "Policy (by NFR)" in result.out
    assert result.out.rstrip().endswith("Summary: dev=ok, prod=ok, cloud=ok")
    assert result.err == ""


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
def test_invalid_value_is_one_line_naming_the_full_key(
    homelab, isolated_project: Path, old: str, new: str, expected: str
) -> None:
    path = isolated_project / "Pulumi.dev.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    line = assert_one_line_error(homelab("--project-dir", str(isolated_project), "preview", "dev"), expected)
    assert line.startswith(f"homelab: dev: {expected}")


def test_secret_in_plain_text_is_refused(homelab, isolated_project: Path) -> None:
    path = isolated_project / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  homelab:proxmoxApiToken: root@pam!iac=plain-text-token\n")
    assert_one_line_error(
        homelab("--project-dir", str(isolated_project), "preview", "dev"),
        "homelab:proxmoxApiToken: is stored in plain text; set it with `pulumi config set --secret proxmoxApiToken`",
    )


def test_a_mandatory_violation_exits_1_and_names_the_rule_and_fix(homelab, isolated_project: Path) -> None:
    path = isolated_project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("insecure: false", "insecure: true", 1))
    result = homelab("--project-dir", str(isolated_project), "preview", "dev")
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    line = next(line for line in result.out.splitlines() if "[SEC-02]" in line)
    assert "MANDATORY" in line
    assert "skips TLS verification" in line
    assert "Fix: remove `insecure: true`" in line
    assert result.out.rstrip().endswith("Summary: dev=blocked by policy")


@pytest.mark.usefixtures("committed_previews")
def test_json_carries_the_cost_estimate_in_chart_form(homelab) -> None:
    document = json.loads(homelab("preview", "dev", "prod", "--json").out)
    jsonschema.validate(document, SCHEMA)
    dev, prod = document["stacks"]
    assert dev["cost"] is None, "only prod exports an estimate"
    estimate = prod["outputs"]["cost_estimate"]["value"]
    cost = prod["cost"]
    assert cost["items"] == [
        {"item": li["item"], "monthly": li["monthly"], "yearly": li["yearly"]} for li in estimate["lines"]
    ]
    assert cost["yearlyTotal"] == estimate["yearly_total"] and cost["currency"] == "EUR"
    assert cost["monthlyTotal"] == pytest.approx(sum(li["monthly"] for li in estimate["lines"]), abs=0.005)
    cap = cost["cap"]
    assert (cap["yearly"], cap["currency"], cap["compared"], cap["within"]) == (1000, "USD", True, True)
    assert cap["yearlyTotalInCapCurrency"] == round(estimate["yearly_total"] * 1.16, 2)
    assert cap["summary"].startswith(f"Yearly total: {estimate['yearly_total']:,.2f} EUR (")
