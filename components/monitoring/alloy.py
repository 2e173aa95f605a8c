"""Grafana Alloy pipelines as text (Alloy configuration syntax), pure functions without Pulumi.

The same text is what the clusters' Alloy (`TelemetryAgent`) and the management VM's Alloy (its
Compose project) run, and what the tests read. No Alloy binary exists where the tests run, so the
tests check the pipeline's wiring (every `forward_to` names a component that is defined, braces
balance, every string is quoted); a typo in an argument name is only caught by Alloy itself at
start (docs/runbooks/alerts.md, "What the offline preview cannot show").

Pieces:
- `talos_logs`: Talos sends its service logs (`machine.logging.destinations`) and kernel log
  (`KmsgLogConfig`) as JSON lines over TCP to `127.0.0.1:TALOS_LOG_PORT` on its own node; a
  host-network Alloy receives them (`otelcol.receiver.tcplog`, an experimental component, hence
  `--stability.level=experimental` on agents that run it) and labels them `job="talos"`.
- `vm_config`: the management VM — its journal (host units and every container, whose Compose
  logging driver is journald), Authentik's metrics (:9300), the cloud tunnel's cloudflared metrics,
  the VM's own node metrics, and the failed-login counter derived from Authentik's event log.
- `remote_headers`: the Cloudflare Access service-token headers every remote writer sends.
"""

import json
from collections.abc import Mapping

TALOS_LOG_PORT = 6050
"""TCP port Talos ships JSON lines to on each node's loopback (`tcp://127.0.0.1:6050/`)."""
LOGIN_FAILED_PREFIX = "homelab_"
LOGIN_FAILED_NAME = "authentik_login_failed_total"
LOGIN_FAILED_METRIC = LOGIN_FAILED_PREFIX + LOGIN_FAILED_NAME
"""Counter of Authentik `login_failed` events, counted by the management VM's Alloy from Authentik's
log. Authentik exports no failed-login metric of its own on :9300 (its metrics are flows, policies,
tasks, outposts and workers), but every Event it saves is logged as `Created Event` with its
`action`, so the log is the one faithful source."""
SCHEDULE_LABEL = "schedule"
INTERMITTENT = "intermittent"
"""External label `schedule="intermittent"` on everything a collector ships from a cluster that is
powered off by design most of the time (DEV runs only in the host's `testing` mode): its silence is
the normal state, so `TelemetrySourceSilent` leaves it out."""
VM_TEXTFILE_DIR = "/var/lib/homelab/node-exporter"
"""The management VM's textfile directory: its backup jobs' results (components/monitoring/textfile.py),
read by its Alloy through the host's / mounted at /host/root."""
ACCESS_ENV = ("CF_ACCESS_CLIENT_ID", "CF_ACCESS_CLIENT_SECRET")
"""Environment variables holding the Access service token (from a Secret / secret files)."""


def quote(value: str) -> str:
    """An Alloy string literal (Alloy's escapes for `"` and `\\` are JSON's)."""
    return json.dumps(value)


def _map(values: Mapping[str, str]) -> str:
    return "{ " + ", ".join(f"{k} = {quote(v)}" for k, v in sorted(values.items())) + " }"


def remote_headers() -> str:
    """The `headers` attribute of a remote endpoint: Cloudflare Access reads these two headers."""
    return (
        "    headers = {\n"
        f'      "CF-Access-Client-Id"     = sys.env("{ACCESS_ENV[0]}"),\n'
        f'      "CF-Access-Client-Secret" = sys.env("{ACCESS_ENV[1]}"),\n'
        "    }\n"
    )


def talos_logs(forward_to: str, node: str) -> str:
    """Receive Talos's JSON lines on the node's loopback and forward them as `job="talos"` streams.

    `node` is an Alloy expression for the node's name (`sys.env("NODE_NAME")`). Service logs carry
    `talos-service`, `talos-level` and `talos-time`; kernel messages carry `facility` and `priority`.
    """
    return (
        'otelcol.receiver.tcplog "talos" {\n'
        f'  listen_address = "127.0.0.1:{TALOS_LOG_PORT}"\n'
        "  output {\n"
        "    logs = [otelcol.exporter.loki.talos.input]\n"
        "  }\n"
        "}\n"
        'otelcol.exporter.loki "talos" {\n'
        "  forward_to = [loki.process.talos.receiver]\n"
        "}\n"
        'loki.process "talos" {\n'
        f"  forward_to = [{forward_to}]\n"
        "  stage.json {\n"
        "    expressions = {\n"
        f"      service  = {quote(chr(34) + 'talos-service' + chr(34))},\n"
        f"      level    = {quote(chr(34) + 'talos-level' + chr(34))},\n"
        f"      time     = {quote(chr(34) + 'talos-time' + chr(34))},\n"
        '      facility = "facility",\n'
        "    }\n"
        "  }\n"
        "  stage.labels {\n"
        '    values = { talos_service = "service", level = "level", facility = "facility" }\n'
        "  }\n"
        "  stage.timestamp {\n"
        '    source            = "time"\n'
        '    format            = "RFC3339Nano"\n'
        '    action_on_failure = "skip"\n'
        "  }\n"
        "  stage.static_labels {\n"
        f'    values = {{ job = "talos", node = {node} }}\n'
        "  }\n"
        "}\n"
    )


def _scrape(key: str, targets: list[Mapping[str, str]], job: str, forward_to: str, interval: str) -> str:
    listed = ", ".join(_map(t) for t in targets)
    return (
        f'prometheus.scrape "{key}" {{\n'
        f"  targets         = [{listed}]\n"
        f'  job_name        = "{job}"\n'
        f'  scrape_interval = "{interval}"\n'
        f"  forward_to      = [{forward_to}]\n"
        "}\n"
    )


def vm_config(
    *,
    host: str,
    metrics_url: str,
    logs_url: str,
    authentik: str,
    cloudflared: str,
    tunnel: str,
    scrape_interval: str,
) -> str:
    """The management VM's pipeline: journal -> Loki, metrics -> Prometheus, both through the tunnel.

    `authentik` / `cloudflared` are `host:port` of their metrics endpoints on the Compose network.
    """
    write = "prometheus.remote_write.prod.receiver"
    selector = '{service="authentik-server"} |~ ' + quote('"action": ?"login_failed"')
    return "\n".join(
        [
            # The journal: the VM's units and every container (Compose logging driver journald, tag =
            # the Compose service name, read back as SYSLOG_IDENTIFIER).
            'loki.relabel "journal" {\n'
            "  forward_to = []\n"
            '  rule {\n    source_labels = ["__journal__systemd_unit"]\n    target_label  = "unit"\n  }\n'
            '  rule {\n    source_labels = ["__journal_syslog_identifier"]\n    target_label  = "service"\n  }\n'
            '  rule {\n    source_labels = ["__journal_priority_keyword"]\n    target_label  = "level"\n  }\n'
            "}\n",
            'loki.source.journal "host" {\n'
            '  path          = "/var/log/journal"\n'
            '  max_age       = "12h"\n'
            "  relabel_rules = loki.relabel.journal.rules\n"
            "  forward_to    = [loki.process.authentik.receiver]\n"
            f"  labels        = {_map({'job': 'journal', 'host': host})}\n"
            "}\n",
            # Authentik logs every saved Event as `Created Event` with its action: count the failed logins.
            'loki.process "authentik" {\n'
            "  forward_to = [loki.write.prod.receiver]\n"
            "  stage.match {\n"
            f"    selector = {quote(selector)}\n"
            "    stage.metrics {\n"
            "      metric.counter {\n"
            f'        name              = "{LOGIN_FAILED_NAME}"\n'
            f'        prefix            = "{LOGIN_FAILED_PREFIX}"\n'
            '        description       = "Authentik login_failed events (from its event log)"\n'
            "        match_all         = true\n"
            '        action            = "inc"\n'
            '        max_idle_duration = "168h"\n'
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            'loki.write "prod" {\n'
            "  endpoint {\n"
            f"    url = {quote(logs_url)}\n"
            f"{remote_headers()}"
            "  }\n"
            f"  external_labels = {_map({'cluster': host})}\n"
            "}\n",
            'prometheus.exporter.unix "host" {\n'
            '  procfs_path = "/host/proc"\n'
            '  sysfs_path  = "/host/sys"\n'
            '  rootfs_path = "/host/root"\n'
            # The VM's backup jobs write their results here (components/monitoring/textfile.py).
            f"  textfile {{\n    directory = {quote('/host/root' + VM_TEXTFILE_DIR)}\n  }}\n"
            "}\n",
            'discovery.relabel "host" {\n'
            "  targets = prometheus.exporter.unix.host.targets\n"
            f'  rule {{\n    target_label = "instance"\n    replacement  = {quote(host)}\n  }}\n'
            "}\n",
            'prometheus.scrape "host" {\n'
            "  targets         = discovery.relabel.host.output\n"
            '  job_name        = "node-exporter"\n'
            f'  scrape_interval = "{scrape_interval}"\n'
            f"  forward_to      = [{write}]\n"
            "}\n",
            # Alloy's own metrics carry the failed-login counter above.
            'prometheus.exporter.self "alloy" {}\n',
            'discovery.relabel "alloy" {\n'
            "  targets = prometheus.exporter.self.alloy.targets\n"
            f'  rule {{\n    target_label = "instance"\n    replacement  = {quote(host)}\n  }}\n'
            "}\n",
            'prometheus.scrape "alloy" {\n'
            "  targets         = discovery.relabel.alloy.output\n"
            '  job_name        = "alloy"\n'
            f'  scrape_interval = "{scrape_interval}"\n'
            f"  forward_to      = [{write}]\n"
            "}\n",
            _scrape(
                "authentik",
                [{"__address__": authentik, "instance": host, "service": "authentik"}],
                "authentik",
                write,
                scrape_interval,
            ),
            _scrape(
                "cloudflared",
                [{"__address__": cloudflared, "instance": host, "tunnel": tunnel}],
                "cloudflared",
                write,
                scrape_interval,
            ),
            'prometheus.remote_write "prod" {\n'
            "  endpoint {\n"
            f"    url = {quote(metrics_url)}\n"
            f"{remote_headers()}"
            "  }\n"
            f"  external_labels = {_map({'cluster': host})}\n"
            "}\n",
        ]
    )
