"""Helpers for the homelab stack tests: config sections from the real stack files, counting
registrations, and the modules a fresh process loads to run `dev`."""

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import yaml

from homelab import engine
from homelab.stackrun import project_root


def section(stack: str, name: str) -> dict[str, Any]:
    document = yaml.safe_load((project_root() / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return copy.deepcopy(document["config"][f"homelab:{name}"])


@contextmanager
def count_registrations() -> Iterator[list[str]]:
    """Names of every resource the engine is asked to register while the block runs."""
    seen: list[str] = []
    original = engine.RecordingMonitor.RegisterResource

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        if request.type != engine.STACK_TYPE:
            seen.append(f"{request.type}::{request.name}")
        return original(self, request)

    engine.RecordingMonitor.RegisterResource = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        engine.RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]


_DEV_RUN = """
import json, sys
from homelab.engine import StackOutputs
from homelab.stackrun import run_stack
# The cloud stack's outputs as the backend serves them (running that stack offline would load its SDKs).
url = "https://telemetry.example.net"
ingest = {"metrics_url": url + "/api/v1/write", "logs_url": url + "/loki/api/v1/push"}
access = {"client_id": "id", "client_secret": "secret"}
outputs = {"telemetry_ingest": ingest, "telemetry_access": access}
recording = run_stack("dev", references={"cloud": StackOutputs(outputs, frozenset({"telemetry_access"}))})
print(json.dumps({"resources": len(recording.resources), "modules": sorted(sys.modules)}))
"""

_DEV_RUNS: list[subprocess.Popen[str]] = []  # the one background interpreter, once started


def start_dev_run() -> None:
    """Start the fresh interpreter of `modules_loaded_by_a_dev_run` in the background (idempotent).
    tests/conftest.py calls it once collection is done when a selected test uses the
    `dev_run_modules` fixture, so its second or two run on the other core while the suite goes on."""
    if not _DEV_RUNS:
        _DEV_RUNS.append(
            subprocess.Popen(
                [sys.executable, "-c", _DEV_RUN],
                cwd=project_root(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )


def stop_dev_run() -> None:
    """End the background interpreter if no test waited for it (a session stopped early)."""
    for process in _DEV_RUNS:
        if process.poll() is None:
            process.kill()
            process.communicate()


@cache
def modules_loaded_by_a_dev_run() -> tuple[int, frozenset[str]]:
    """(resources registered, every module in `sys.modules`) of a fresh interpreter that imported
    and ran the `dev` stack, so a test can assert which SDKs `dev` loads. One subprocess for the
    session (an interpreter start and a dev run cost over a second), shared by every caller."""
    start_dev_run()
    [process] = _DEV_RUNS
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    return report["resources"], frozenset(report["modules"])


def packages(modules: frozenset[str], *names: str) -> list[str]:
    """The modules of `modules` that belong to one of the top-level packages `names`."""
    return sorted(m for m in modules if m.split(".")[0] in names)
