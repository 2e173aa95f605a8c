"""Alertmanager routing as data: critical -> ntfy (high priority) + Telegram at once; warning -> ntfy digest.

Pure functions, no Pulumi. The config carries no secret: the ntfy publisher token and the Telegram
bot token and chat id are files mounted from Kubernetes Secrets (`alertmanagerSpec.secrets`, mounted
at `/etc/alertmanager/secrets/<secret>/<key>`). Alertmanager has no native digest: the warning route
approximates one with a long `group_wait` / `group_interval` / `repeat_interval` (platform-facts §3.5).
"""

from dataclasses import dataclass
from typing import Any

SECRETS_DIR = "/etc/alertmanager/secrets"
TELEGRAM_SECRET = "alertmanager-telegram"
NTFY_SECRET = "alertmanager-ntfy"
NTFY_TOKEN_KEY = "token"
TELEGRAM_TOKEN_KEY = "bot_token"
TELEGRAM_CHAT_KEY = "chat_id"

CRITICAL = "ntfy-critical"
TELEGRAM = "telegram"
DIGEST = "ntfy-digest"
NULL = "null"


INHIBITED_LEVELS: tuple[tuple[str, str, list[str]], ...] = (
    ("DiskUsageCritical", "DiskUsageWarning", ["instance", "mountpoint"]),
    ("CertificateExpiryCritical", "CertificateExpiringSoon", ["instance", "name"]),
)


@dataclass(frozen=True)
class Routing:
    """What the routing tree needs: where ntfy listens, its topics, and the digest timing."""

    ntfy_url: str
    """In-cluster base URL of ntfy, e.g. `http://ntfy.ntfy.svc.cluster.local:80`."""
    critical_topic: str
    digest_topic: str
    telegram: bool
    critical_repeat: str = "1h"
    digest_wait: str = "30m"
    digest_interval: str = "6h"
    digest_repeat: str = "24h"


def _ntfy(routing: Routing, topic: str, priority: str, send_resolved: bool) -> dict[str, Any]:
    # ntfy's built-in `alertmanager` template turns the webhook JSON into a title and a message;
    # the priority travels as a query parameter (the webhook receiver cannot set headers).
    return {
        "url": f"{routing.ntfy_url.rstrip('/')}/{topic}?template=alertmanager&priority={priority}",
        "send_resolved": send_resolved,
        "max_alerts": 20,
        "http_config": {
            "authorization": {"type": "Bearer", "credentials_file": f"{SECRETS_DIR}/{NTFY_SECRET}/{NTFY_TOKEN_KEY}"}
        },
    }


def alertmanager_config(routing: Routing) -> dict[str, Any]:
    """The complete Alertmanager configuration (the chart's `alertmanager.config`)."""
    critical_timing = {"group_wait": "10s", "group_interval": "1m", "repeat_interval": routing.critical_repeat}
    routes: list[dict[str, Any]] = [
        # The chart's always-firing Watchdog proves the pipeline works; it is not a notification.
        {"receiver": NULL, "matchers": ['alertname="Watchdog"']},
        {"receiver": NULL, "matchers": ['alertname="InfoInhibitor"']},
        {
            "receiver": CRITICAL,
            "matchers": ['severity="critical"'],
            **critical_timing,
            "continue": routing.telegram,
        },
    ]
    if routing.telegram:
        routes.append({"receiver": TELEGRAM, "matchers": ['severity="critical"'], **critical_timing})
    routes.append(
        {
            "receiver": DIGEST,
            "matchers": ['severity=~"warning|info"'],
            "group_by": ["severity"],
            "group_wait": routing.digest_wait,
            "group_interval": routing.digest_interval,
            "repeat_interval": routing.digest_repeat,
        }
    )
    receivers: list[dict[str, Any]] = [
        {"name": NULL},
        {"name": CRITICAL, "webhook_configs": [_ntfy(routing, routing.critical_topic, "high", True)]},
        {"name": DIGEST, "webhook_configs": [_ntfy(routing, routing.digest_topic, "default", False)]},
    ]
    if routing.telegram:
        receivers.append(
            {
                "name": TELEGRAM,
                "telegram_configs": [
                    {
                        "bot_token_file": f"{SECRETS_DIR}/{TELEGRAM_SECRET}/{TELEGRAM_TOKEN_KEY}",
                        "chat_id_file": f"{SECRETS_DIR}/{TELEGRAM_SECRET}/{TELEGRAM_CHAT_KEY}",
                        "parse_mode": "HTML",
                        "send_resolved": True,
                    }
                ],
            }
        )
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            # Anything unmatched (no severity label) lands in the digest rather than nowhere.
            "receiver": DIGEST,
            "group_by": ["alertname", "namespace", "service"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": routing.digest_repeat,
            "routes": routes,
        },
        "inhibit_rules": [
            # The critical level of a condition silences its warning level.
            *(
                {
                    "source_matchers": [f'alertname="{critical}"'],
                    "target_matchers": [f'alertname="{warning}"'],
                    "equal": equal,
                }
                for critical, warning, equal in INHIBITED_LEVELS
            ),
            # While the host is down, its disk/RAM/pool alerts are noise.
            {
                "source_matchers": ['alertname="HostDown"'],
                "target_matchers": ['job="proxmox-host"'],
            },
        ],
        "receivers": receivers,
    }
