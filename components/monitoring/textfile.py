"""A backup job's result as node-exporter textfile metrics: the contract the backup alerts read.

Every job that runs outside Kubernetes (the Proxmox host's archive check and restore drill, the
management VM's nightly dump) writes `homelab_backup_last_status{job}` (1 after a good run, 0 after
a failed one) and `homelab_backup_last_success_timestamp_seconds{job}` (kept across failures) into
one file per job in a textfile directory, which the host's node exporter (or the VM's Alloy unix
exporter) serves; components/monitoring/rules.py alerts on them. One shell function writes them,
so every job keeps the same contract.
"""

from components.monitoring.alloy import VM_TEXTFILE_DIR
from components.monitoring.rules import BACKUP_STATUS_METRIC, BACKUP_SUCCESS_METRIC

__all__ = ["VM_TEXTFILE_DIR", "metric_function"]


def metric_function() -> str:
    """The bash function `metric JOB 1|0`: rewrite the job's file atomically in `$textfile_dir`."""
    return f"""metric() {{  # job status(1|0): rewrite this job's file atomically for the textfile collector
  local job=$1 ok=$2 now file
  now=$(date +%s)
  file="$textfile_dir/homelab_backup_$job.prom"
  mkdir -p "$textfile_dir"
  {{
    echo "# HELP {BACKUP_STATUS_METRIC} 1 if the last run of the backup job succeeded, 0 if it failed."
    echo "# TYPE {BACKUP_STATUS_METRIC} gauge"
    echo "{BACKUP_STATUS_METRIC}{{job=\\"$job\\"}} $ok"
    echo "# HELP {BACKUP_SUCCESS_METRIC} When the backup job last succeeded."
    echo "# TYPE {BACKUP_SUCCESS_METRIC} gauge"
    if [ "$ok" = 1 ]; then
      echo "{BACKUP_SUCCESS_METRIC}{{job=\\"$job\\"}} $now"
    elif [ -f "$file" ]; then
      grep '^{BACKUP_SUCCESS_METRIC}' "$file" || true
    fi
  }} > "$file.tmp"
  mv "$file.tmp" "$file"
}}
"""
