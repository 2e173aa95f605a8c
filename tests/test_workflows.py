"""The GitHub workflows the project ships: valid, pinned, least-privilege, and clean under zizmor and yamllint.

The linters run as the same executables `make setup` installs next to the interpreter running the tests.
"""

import json
import re
import subprocess
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml")) + sorted(WORKFLOW_DIR.glob("*.yaml"))
PROJECT_STACKS = {path.name.split(".")[1] for path in ROOT.glob("Pulumi.*.yaml")}

# Write access is granted per job, never at the top level, and only where a job needs it.
JOB_WRITE_SCOPES: dict[tuple[str, str], set[str]] = {
    ("preview.yml", "preview"): {"pull-requests"},  # the PR comment of pulumi/actions
    ("drift.yml", "drift"): {"issues"},  # the drift issue
}
READ_ONLY_LEVELS = {"read", "none"}
MAX_TIMEOUT_MINUTES = 90

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)(?P<rest>.*)$")
PINNED_ACTION = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$")


def tool(name: str) -> str:
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to the test interpreter; run `make setup`")
    return str(path)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)


def load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name}: not a mapping"
    return document


def triggers(document: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    value = document.get("on", document.get(True))
    return value if isinstance(value, dict) else {str(value): None}


def jobs(document: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    return document["jobs"]


def steps(document: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in jobs(document).items() for step in job.get("steps", [])]


def uses_in_yaml(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["uses"]] if isinstance(node.get("uses"), str) else []
        return found + [ref for value in node.values() for ref in uses_in_yaml(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in uses_in_yaml(item)]
    return []


def uses_lines(path: Path) -> list[tuple[int, str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        (number, match["ref"], match["rest"])
        for number, line in enumerate(lines, start=1)
        if (match := USES_LINE.match(line))
    ]


def workflow_id(path: Path) -> str:
    return path.name


@pytest.fixture(params=WORKFLOWS, ids=workflow_id)
def workflow(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_the_project_ships_its_four_workflows() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "preview.yml", "deploy.yml", "drift.yml"}
    assert {"dev", "prod", "cloud"} == PROJECT_STACKS


def test_workflows_validate_against_the_github_workflow_schema() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_reports_no_findings() -> None:
    result = run(tool("zizmor"), "--offline", "--no-progress", "--color", "never", str(WORKFLOW_DIR))
    assert result.returncode == 0, f"zizmor found problems:\n{result.stdout}\n{result.stderr}"
    assert "No findings to report" in result.stdout, result.stdout + result.stderr


def test_yamllint_passes_with_the_project_config() -> None:
    result = run(tool("yamllint"), "--strict", "-c", ".yamllint.yaml", "-f", "parsable", ".github", ".yamllint.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_and_names_its_version(workflow: Path) -> None:
    lines = uses_lines(workflow)
    # The line scan must see every `uses:` the parser sees, so no flow-style mapping can slip past it.
    assert sorted(ref for _, ref, _ in lines) == sorted(uses_in_yaml(load(workflow)))
    for number, ref, rest in lines:
        if ref.startswith("./"):
            continue
        where = f"{workflow.name}:{number}: {ref}"
        if ref.startswith("docker://"):
            assert re.search(r"@sha256:[0-9a-f]{64}$", ref), f"{where}: pin the image by digest"
            continue
        assert PINNED_ACTION.match(ref), f"{where}: pin the action to a full 40-hex commit SHA"
        assert VERSION_COMMENT.match(rest), f"{where}: add the release it is, as `# vX.Y.Z`"


def test_each_action_is_pinned_to_one_commit_across_workflows() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for _, ref, rest in uses_lines(path):
            if match := PINNED_ACTION.match(ref):
                pins.setdefault(match["action"], set()).add(f"{match['sha']}{rest.rstrip()}")
    assert pins, "no pinned actions found"
    assert {action: sorted(refs) for action, refs in pins.items() if len(refs) > 1} == {}


def test_top_level_permissions_are_read_only(workflow: Path) -> None:
    document = load(workflow)
    assert "permissions" in document, f"{workflow.name}: declare top-level `permissions`"
    permissions = document["permissions"]
    # `read-all` is read-only but grants every scope; name the scopes instead.
    assert isinstance(permissions, dict), f"{workflow.name}: list scopes, got {permissions!r}"
    assert set(permissions.values()) <= READ_ONLY_LEVELS, f"{workflow.name}: {permissions}"


def test_write_access_is_granted_only_to_the_jobs_that_need_it(workflow: Path) -> None:
    for name, job in jobs(load(workflow)).items():
        permissions = job.get("permissions", {})
        assert isinstance(permissions, dict), f"{workflow.name}:{name}: list scopes, got {permissions!r}"
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes == JOB_WRITE_SCOPES.get((workflow.name, name), set()), f"{workflow.name}:{name}"


def test_checkouts_do_not_persist_the_token(workflow: Path) -> None:
    checkouts = [step for _, step in steps(load(workflow)) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts, f"{workflow.name}: no checkout"
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{workflow.name}: {step}"


def test_every_job_has_a_timeout(workflow: Path) -> None:
    for name, job in jobs(load(workflow)).items():
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int), f"{workflow.name}:{name}: set timeout-minutes"
        assert 0 < timeout <= MAX_TIMEOUT_MINUTES, f"{workflow.name}:{name}: {timeout}"


def test_runs_are_grouped_and_a_deploy_is_never_cancelled(workflow: Path) -> None:
    document = load(workflow)
    concurrency = document.get("concurrency")
    assert isinstance(concurrency, dict) and concurrency.get("group"), f"{workflow.name}: set concurrency"
    if workflow.name == "deploy.yml":
        assert concurrency.get("cancel-in-progress") is False
        assert "${{ inputs.stack }}" in concurrency["group"]


def test_no_workflow_runs_untrusted_code_with_secrets() -> None:
    for path in WORKFLOWS:
        assert not set(triggers(load(path))) & {"pull_request_target", "workflow_run"}, path.name


def test_workflows_cover_exactly_the_project_stacks() -> None:
    deploy = load(WORKFLOW_DIR / "deploy.yml")
    assert set(triggers(deploy)["workflow_dispatch"]["inputs"]["stack"]["options"]) == PROJECT_STACKS
    for name in ("preview.yml", "drift.yml"):
        env = load(WORKFLOW_DIR / name)["env"]
        home, hosted = yaml.safe_load(env["HOME_STACKS"]), yaml.safe_load(env["HOSTED_STACKS"])
        assert set(home) | set(hosted) == PROJECT_STACKS, name
        assert not set(home) & set(hosted), name


def test_pulumi_cli_version_matches_the_sdk_pin() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    sdk = next(package["version"] for package in lock["package"] if package["name"] == "pulumi")
    for name in ("preview.yml", "deploy.yml", "drift.yml"):
        assert load(WORKFLOW_DIR / name)["env"]["PULUMI_VERSION"] == sdk, name


def test_every_real_pulumi_run_applies_the_stack_policy_pack() -> None:
    runs = 0
    for path in (WORKFLOW_DIR / name for name in ("preview.yml", "deploy.yml", "drift.yml")):
        for job, step in steps(load(path)):
            where = f"{path.name}:{job}: {step.get('name', step.get('uses'))}"
            if step.get("uses", "").startswith("pulumi/actions@") and "command" in step.get("with", {}):
                runs += 1
                assert step["with"]["policyPacks"] == "policies", where
                config = step["with"]["policyPackConfigs"]
                assert config == "policies/config/${{ matrix.stack }}.json", where
            elif re.search(r"\bpulumi (preview|up)\b", step.get("run", "")):
                runs += 1
                assert "--policy-pack policies" in step["run"], where
                assert '--policy-pack-config "policies/config/$STACK.json"' in step["run"], where
    assert runs == 3


SHORT_LIVED_TYPES = {"oci:Bastion/session:Session"}
"""Resources whose cloud object expires by design: their disappearance is not drift."""


def test_drift_leaves_short_lived_access_out_of_the_refresh(previewed: Any) -> None:
    (step,) = (s for _, s in steps(load(WORKFLOW_DIR / "drift.yml")) if "pulumi refresh" in s.get("run", ""))
    script = step["run"]
    # Every short-lived type the cloud stack registers is excluded by type, whatever its URN.
    registered = {r.type for r in previewed("cloud").recording.resources} & SHORT_LIVED_TYPES
    assert registered == SHORT_LIVED_TYPES
    excluded = set(json.loads(re.search(r"short_lived='(?P<types>[^']*)'", script)["types"]))  # type: ignore[index]
    assert excluded == SHORT_LIVED_TYPES
    assert '"${excludes[@]}"' in script
    refresh = script[script.index("pulumi refresh") : script.index("pulumi preview")]
    assert "--preview-only" in refresh and "--expect-no-changes" in refresh
    # The preview itself no longer refreshes: a refresh there would drop the expired session again.
    preview = script[script.index("pulumi preview") :]
    assert "--refresh" not in preview and "--expect-no-changes" in preview


# --- issue 10 point 17: two credential sets; PR previews never hold deploy credentials -----------

DEPLOY_ENVIRONMENTS = PROJECT_STACKS  # dev, prod, cloud: required reviewers, main only
READ_ONLY_ENVIRONMENTS = {"preview", "drift"}


def _jobs_using_secrets(document: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in jobs(document).items() if "secrets." in yaml.safe_dump(job)}


def test_secrets_are_only_read_inside_an_environment(workflow: Path) -> None:
    for name, job in _jobs_using_secrets(load(workflow)).items():
        assert job.get("environment"), f"{workflow.name}:{name} reads secrets outside an environment"


def test_pull_request_previews_and_drift_use_the_read_only_set() -> None:
    preview = jobs(load(WORKFLOW_DIR / "preview.yml"))
    drift = jobs(load(WORKFLOW_DIR / "drift.yml"))
    assert preview["preview"]["environment"] == "preview"
    assert drift["drift"]["environment"] == "drift"
    deploy = jobs(load(WORKFLOW_DIR / "deploy.yml"))["up"]
    assert deploy["environment"] == "${{ inputs.stack }}"
    for path in WORKFLOWS:
        for name, job in jobs(load(path)).items():
            env = job.get("environment")
            if env and path.name != "deploy.yml":
                assert env in READ_ONLY_ENVIRONMENTS, f"{path.name}:{name} uses {env}"


def test_no_job_decrypts_stack_outputs() -> None:
    # pulumi/actions running a command reads every stack output, secrets decrypted, into step outputs.
    for path in WORKFLOWS:
        for job, step in steps(load(path)):
            if step.get("uses", "").startswith("pulumi/actions@"):
                assert "command" not in step.get("with", {}), f"{path.name}:{job}: install the CLI only"
            run = step.get("run", "")
            assert "--show-secrets" not in run, f"{path.name}:{job}"
            if re.search(r"\bpulumi (preview|up)\b", run):
                assert ".ci/stack-secrets" in run, f"{path.name}:{job}: load the environment's credential set"


def test_committed_stack_files_hold_no_provider_credential() -> None:
    # Credentials come from the job's environment (.ci/stack-secrets), so the passphrase a preview
    # holds can never decrypt a deploy credential out of the repository.
    for path in ROOT.glob("Pulumi.*.yaml"):
        config = yaml.safe_load(path.read_text(encoding="utf-8")).get("config", {})
        secure = [key for key, value in config.items() if isinstance(value, dict) and "secure" in value]
        assert secure == [], f"{path.name}: {secure}"


def test_zizmor_auditor_persona_is_clean_or_justified() -> None:
    result = run(
        tool("zizmor"), "--offline", "--persona=auditor", "--no-progress", "--color", "never", str(WORKFLOW_DIR)
    )
    assert result.returncode == 0, f"zizmor (auditor) found problems:\n{result.stdout}\n{result.stderr}"
    assert "No findings to report" in result.stdout, result.stdout + result.stderr
    # Every suppression sits on a line that says why (the comment block above the ignore).
    for path in WORKFLOWS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if "zizmor: ignore" in line:
                assert lines[number - 1].strip().startswith("#"), f"{path.name}:{number + 1}: justify the ignore"
