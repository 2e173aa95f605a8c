"""Generate the monitoring files once per session: rule files, their promtool unit tests, the
Alertmanager config. Every test of this package reads these files, so the tools run once per set."""

from pathlib import Path

import pytest
import yaml

from components.monitoring.alertmanager import Routing, alertmanager_config
from components.monitoring.rules import BackupCronJob, ProbedService, RuleContext, rule_groups
from stacks.config.monitoring import ThresholdsConfig
from tests.monitoring.promtool_cases import day_long_tests, unit_tests

CONTEXT = RuleContext(
    pool="tank",
    services=(ProbedService("grafana", "warning"), ProbedService("nextcloud", "critical")),
    backup_jobs=("zfs-offsite",),
    backup_cron_jobs=(BackupCronJob("etcd-backup", "etcd-backup", "1h"),),
    home_cluster="homelab-prod",
    tunnels=("prod", "cloud"),
)
ROUTING = Routing(
    ntfy_url="http://ntfy.ntfy.svc.cluster.local:80",
    critical_topic="homelab-critical",
    digest_topic="homelab-digest",
    telegram=True,
)


@pytest.fixture(scope="session")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rules")
    files = rule_groups(ThresholdsConfig(), CONTEXT)
    for name, groups in files.items():
        (out / f"{name}.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    tests = unit_tests(files)
    (out / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    long = day_long_tests(files)
    (out / "tests-day-long.yml").write_text(yaml.safe_dump(long, sort_keys=False), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def alertmanager_yaml() -> dict:
    return alertmanager_config(ROUTING)
