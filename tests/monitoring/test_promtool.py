"""Every generated rule file passes `promtool check rules` and its unit tests (`promtool test rules`)."""

import shutil
from pathlib import Path

import yaml

from tests.monitoring.tools import run


def test_every_rule_file_passes_promtool_check(rule_dir: Path):
    files = sorted(p for p in rule_dir.glob("homelab-*.yml"))
    assert len(files) == 5
    result = run("promtool", "check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in files:
        assert f"Checking {path}" in result.stdout and "SUCCESS" in result.stdout


def test_every_rule_file_has_unit_tests_and_they_pass(rule_dir: Path):
    test_files = [rule_dir / "tests.yml", rule_dir / "tests-day-long.yml"]
    tests = {"tests": [t for f in test_files for t in yaml.safe_load(f.read_text(encoding="utf-8"))["tests"]]}
    covered = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    for path in rule_dir.glob("homelab-*.yml"):
        alerts = {r["alert"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]}
        assert alerts <= covered, f"{path.name}: no promtool test for {sorted(alerts - covered)}"
    # Each alert is tested both firing and silent.
    firing = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert firing == covered, sorted(covered - firing)
    assert quiet == covered, sorted(covered - quiet)
    result = run("promtool", "test", "rules", *test_files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(test_files)


def test_a_broken_rule_fails_both_checks(rule_dir: Path, tmp_path: Path):
    """The checks can fail: a rule with a syntax error, and a rule whose threshold changed."""
    for name in ("homelab-resources.yml", "tests.yml"):
        shutil.copy(rule_dir / name, tmp_path / name)
    groups = yaml.safe_load((tmp_path / "homelab-resources.yml").read_text())
    groups["groups"][0]["rules"][0]["expr"] += " >"  # not PromQL
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(groups))
    # A valid rule with the wrong number: the unit tests catch it.
    groups = yaml.safe_load((rule_dir / "homelab-resources.yml").read_text())
    critical = next(r for r in groups["groups"][0]["rules"] if r["alert"] == "DiskUsageCritical")
    critical["expr"] = critical["expr"].replace("> 90", "> 99")
    (tmp_path / "homelab-resources.yml").write_text(yaml.safe_dump(groups))
    tests = yaml.safe_load((tmp_path / "tests.yml").read_text())
    tests["tests"] = tests["tests"][:1]
    tests["rule_files"] = ["homelab-resources.yml"]
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))

    check = run("promtool", "check", "rules", tmp_path / "broken.yml")
    assert check.returncode != 0 and "FAILED" in check.stdout + check.stderr
    unit = run("promtool", "test", "rules", tmp_path / "tests.yml")
    assert unit.returncode != 0 and "DiskUsageCritical" in unit.stdout + unit.stderr
