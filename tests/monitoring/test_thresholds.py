"""The threshold table rejects bad input with one line naming the key (the stack exits 2 on it)."""

import pytest
from pydantic import ValidationError

from components.monitoring.rules import RuleContext, rule_groups
from stacks.config.base import format_validation_error
from stacks.config.monitoring import MonitoringConfig, duration_seconds, threshold_problems


def _error(data: dict) -> str:
    with pytest.raises(ValidationError) as exc:
        MonitoringConfig.model_validate(data)
    return format_validation_error(exc.value, MonitoringConfig)


@pytest.mark.parametrize("percent", [0, 100, 101, -5])
def test_a_percentage_outside_0_100_names_its_key(percent):
    message = _error({"thresholds": {"disk_critical": {"percent": percent, "after": "5m"}}})
    assert message.startswith("homelab:thresholds.disk_critical.percent: must be a percentage between 0 and 100")


@pytest.mark.parametrize("duration", ["5 minutes", "", "5", "1.5h", "m5"])
def test_a_duration_that_does_not_parse_names_its_key(duration):
    message = _error({"thresholds": {"node_down": {"after": duration}}})
    assert message.startswith("homelab:thresholds.node_down.after: ")
    assert "is not a duration" in message


def test_unknown_keys_are_rejected():
    assert _error({"thresholds": {"disk_full": {}}}).startswith("homelab:thresholds.disk_full: unknown key")


def test_boundaries_just_inside_are_accepted():
    config = MonitoringConfig.model_validate(
        {
            "thresholds": {
                "disk_warning": {"percent": 0.5, "after": "0s"},
                "disk_critical": {"percent": 99.5, "after": "1w"},
            }
        }
    )
    assert config.thresholds.disk_critical.percent == 99.5


@pytest.mark.parametrize(
    ("value", "seconds"), [("180s", 180), ("3m", 180), ("1h30m", 5400), ("14d", 1_209_600), ("1w", 604_800)]
)
def test_durations(value, seconds):
    assert duration_seconds(value) == seconds


def test_cross_key_rules_name_the_key_to_change():
    config = MonitoringConfig.model_validate(
        {
            "thresholds": {
                "disk_warning": {"percent": 92, "after": "15m"},
                "cert_critical": {"age": "30d"},
            },
            "alerting": {"digest_interval": "12h", "digest_repeat": "6h"},
        }
    )
    keys = [key for key, _ in threshold_problems(config)]
    assert keys == [
        "monitoring.thresholds.disk_warning.percent",
        "monitoring.thresholds.cert_critical.age",
        "monitoring.alerting.digest_repeat",
    ]
    assert not list(threshold_problems(MonitoringConfig()))


def test_the_table_drives_the_generated_rules():
    config = MonitoringConfig.model_validate(
        {"thresholds": {"disk_critical": {"percent": 95, "after": "2m"}, "node_down": {"after": "240s"}}}
    )
    files = rule_groups(config.thresholds, RuleContext(pool="tank"))
    rules = {r["alert"]: r for groups in files.values() for g in groups for r in g["rules"]}
    assert rules["DiskUsageCritical"]["expr"].endswith("> 95") and rules["DiskUsageCritical"]["for"] == "2m"
    assert rules["NodeNotReady"]["for"] == "4m" and rules["HostDown"]["for"] == "4m"
    assert "homelab-services" not in files  # no catalog services, no service rules
