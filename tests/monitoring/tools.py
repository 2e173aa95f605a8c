"""The real Prometheus tools (promtool, amtool) for the monitoring tests.

They come from Debian's `prometheus` and `prometheus-alertmanager` packages, installed by `.ci/run`
in CI and by `make tools` on a developer machine. In CI (`CI=true`) a missing tool fails the test;
elsewhere it is skipped with the command that installs it.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

INSTALL = "make tools  (apt-get install prometheus prometheus-alertmanager)"


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed; run `{INSTALL}`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI must run the real check)")
        pytest.skip(message)
    return path


def run(tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require(tool), *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def version(tool: str) -> tuple[int, int]:
    out = run(tool, "--version")
    match = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    assert match, f"cannot read the {tool} version from {out.stdout!r}"
    return int(match.group(1)), int(match.group(2))


def for_amtool(config: dict[str, Any], amtool: tuple[int, int]) -> dict[str, Any]:
    """The deployed config, down-levelled only where the installed amtool predates a field.

    The chart runs Alertmanager v0.34, which reads `bot_token_file` (since v0.26) and `chat_id_file`
    (since v0.31). Debian bookworm ships amtool v0.25, which knows neither: for that validator only,
    those two file references become inline stand-ins of the same type; every other field (routes,
    matchers, receivers, webhook auth) is checked exactly as deployed. A newer amtool checks it all.
    """
    if amtool >= (0, 31):
        return config
    receivers = []
    for receiver in config["receivers"]:
        telegram = []
        for original in receiver.get("telegram_configs", []):
            tg = dict(original)
            assert tg.pop("chat_id_file").startswith("/etc/alertmanager/secrets/")
            tg["chat_id"] = 1
            if amtool < (0, 26):
                assert tg.pop("bot_token_file").startswith("/etc/alertmanager/secrets/")
                tg["bot_token"] = "stand-in-for-an-older-amtool"
            telegram.append(tg)
        receivers.append({**receiver, "telegram_configs": telegram} if telegram else receiver)
    return {**config, "receivers": receivers}
