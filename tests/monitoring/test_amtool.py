"""The Alertmanager config passes `amtool check-config`; `amtool config routes test` sends a critical
alert to ntfy (high priority) and Telegram, and a warning to the ntfy digest."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.monitoring.alertmanager import CRITICAL, DIGEST, TELEGRAM, Routing, alertmanager_config
from tests.monitoring.tools import for_amtool, run, version


@pytest.fixture(scope="module")
def am_file(alertmanager_yaml: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alertmanager") / "alertmanager.yml"
    path.write_text(yaml.safe_dump(for_amtool(alertmanager_yaml, version("amtool"))), encoding="utf-8")
    return path


def test_config_passes_amtool_check(am_file: Path):
    result = run("amtool", "check-config", am_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=ZfsPoolNotOnline", "severity=critical"], f"{CRITICAL},{TELEGRAM}"),
        (["alertname=DiskUsageWarning", "severity=warning"], DIGEST),
        (["alertname=Watchdog", "severity=none"], "null"),
    ],
)
def test_routes(am_file: Path, labels: list[str], receivers: str):
    result = run("amtool", "config", "routes", "test", f"--config.file={am_file}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_a_broken_config_fails_amtool(alertmanager_yaml: dict[str, Any], tmp_path: Path):
    broken = copy.deepcopy(for_amtool(alertmanager_yaml, version("amtool")))
    broken["route"]["routes"][2]["receiver"] = "pager"  # no such receiver
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run("amtool", "check-config", path)
    assert result.returncode != 0 and "pager" in result.stdout + result.stderr


def test_critical_goes_to_both_phone_channels_and_warning_is_a_digest(alertmanager_yaml: dict[str, Any]):
    routes = alertmanager_yaml["route"]["routes"]
    critical = [r for r in routes if r["matchers"] == ['severity="critical"']]
    assert [r["receiver"] for r in critical] == [CRITICAL, TELEGRAM]
    assert critical[0]["continue"] is True and critical[0]["group_wait"] == "10s"
    digest = next(r for r in routes if r["receiver"] == DIGEST)
    assert (digest["group_wait"], digest["group_interval"], digest["repeat_interval"]) == ("30m", "6h", "24h")
    receivers = {r["name"]: r for r in alertmanager_yaml["receivers"]}
    telegram = receivers[TELEGRAM]["telegram_configs"][0]
    assert telegram["bot_token_file"] == "/etc/alertmanager/secrets/alertmanager-telegram/bot_token"
    assert telegram["chat_id_file"] == "/etc/alertmanager/secrets/alertmanager-telegram/chat_id"
    assert "bot_token" not in telegram and "chat_id" not in telegram
    ntfy = receivers[CRITICAL]["webhook_configs"][0]
    assert ntfy["url"].endswith("/homelab-critical?template=alertmanager&priority=high")
    assert ntfy["http_config"]["authorization"]["credentials_file"].startswith("/etc/alertmanager/secrets/")


def test_without_telegram_critical_goes_to_ntfy_only():
    config = alertmanager_config(Routing("http://ntfy:80", "c", "d", telegram=False))
    assert TELEGRAM not in {r["name"] for r in config["receivers"]}
    critical = next(r for r in config["route"]["routes"] if r["receiver"] == CRITICAL)
    assert critical["continue"] is False
