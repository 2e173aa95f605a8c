"""The backup jobs' textfile metrics: what `metric JOB 1|0` writes is what the alerts read, in a
format node-exporter accepts (`promtool check metrics`), and a failure keeps the last success."""

import re
import subprocess
from pathlib import Path

from components.monitoring.alloy import VM_TEXTFILE_DIR, vm_config
from components.monitoring.rules import BACKUP_STATUS_METRIC, BACKUP_SUCCESS_METRIC
from components.monitoring.textfile import metric_function
from tests.monitoring.alloy_wiring import assert_wired
from tests.monitoring.tools import require


def _metric(directory: Path, job: str, ok: int) -> str:
    script = f"set -euo pipefail\ntextfile_dir={directory}\n{metric_function()}metric {job} {ok}\n"
    subprocess.run(["bash", "-c", script], check=True, timeout=30)
    return (directory / f"homelab_backup_{job}.prom").read_text(encoding="utf-8")


def test_a_failure_keeps_the_last_success_and_the_file_is_valid(tmp_path: Path):
    good = _metric(tmp_path, "offsite-dump", 1)
    assert f'{BACKUP_STATUS_METRIC}{{job="offsite-dump"}} 1' in good
    success = re.search(rf'^{BACKUP_SUCCESS_METRIC}{{job="offsite-dump"}} (\d+)$', good, re.MULTILINE)
    assert success is not None
    bad = _metric(tmp_path, "offsite-dump", 0)
    assert f'{BACKUP_STATUS_METRIC}{{job="offsite-dump"}} 0' in bad
    assert f'{BACKUP_SUCCESS_METRIC}{{job="offsite-dump"}} {success.group(1)}' in bad
    # Written through a temporary file and renamed: the collector never reads half a file.
    assert [p.name for p in tmp_path.iterdir()] == ["homelab_backup_offsite-dump.prom"]
    for text in (good, bad):
        check = subprocess.run(
            [require("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_a_job_that_never_succeeded_reports_no_success_time(tmp_path: Path):
    text = _metric(tmp_path, "restore-drill", 0)
    assert BACKUP_SUCCESS_METRIC + "{" not in text and f'{BACKUP_STATUS_METRIC}{{job="restore-drill"}} 0' in text


def test_the_management_vms_collector_reads_the_jobs_directory():
    config = vm_config(
        host="oci-mgmt",
        metrics_url="https://telemetry.example.net/api/v1/write",
        logs_url="https://telemetry.example.net/loki/api/v1/push",
        authentik="authentik-server:9300",
        cloudflared="cloudflared:2000",
        tunnel="cloud",
        scrape_interval="60s",
    )
    unix = config.split('prometheus.exporter.unix "host" {')[1].split("\n}\n")[0]
    assert f'textfile {{\n    directory = "/host/root{VM_TEXTFILE_DIR}"\n  }}' in unix
    assert_wired(config)
