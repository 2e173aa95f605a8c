"""The management VM's Docker Compose project, rendered from typed settings.

Pure rendering (no Pulumi resources): the same text is what `ManagementVm` copies to the VM and
what the tests validate against the Compose specification. The rendered files never contain a
secret value: every secret is a Compose `secrets:` entry backed by a root-only file that
`ManagementVm` writes over the OCI Bastion, and each container reads it from `/run/secrets/`
(Authentik through its `file://` config syntax, PostgreSQL through `POSTGRES_PASSWORD_FILE`,
cloudflared through `--token-file`, Omni through `--private-key-source=file://`).
Authentik's e-mail relay (`SmtpRelay`) is plain environment except its password, which is the
`smtp_password` secret file (empty when the relay takes mail without a login).

With telemetry (`VmTelemetry`) the project also runs Grafana Alloy: every container logs to the
journal (logging driver journald, tagged with its Compose service), and Alloy ships the journal,
the VM's node metrics, Authentik's metrics (:9300) and cloudflared's (`--metrics`) to PROD through
the PROD tunnel's machine routes, with the Access service token read from two more secret files.
"""

import hashlib
from dataclasses import dataclass

import yaml

from components.monitoring.alloy import vm_config

PROJECT_NAME = "homelab-management"
PROJECT_DIR = "/opt/homelab"
COMPOSE_PATH = f"{PROJECT_DIR}/compose.yaml"
SECRETS_DIR = f"{PROJECT_DIR}/secrets"
DATA_DIR = "/srv/homelab"
DATA_DEVICE = "/dev/oracleoci/oraclevdb"
AUTHENTIK_UID = 1000
SYSTEMD_UNIT = "homelab-compose.service"
OMNI_DATA = "/_out"
OMNI_PROFILE = "omni"
"""Compose profile of Omni, off until its SAML application exists (`omni_start_script`)."""
ENV_PATH = f"{PROJECT_DIR}/.env"

SECRET_NAMES: tuple[str, ...] = (
    "authentik_bootstrap_password",
    "authentik_bootstrap_token",
    "authentik_secret_key",
    "omni_etcd_key",
    "postgres_password",
    "smtp_password",
    "tunnel_token",
)
"""Every secret the project reads, as files under `SECRETS_DIR` (values never appear in YAML)."""
TELEMETRY_SECRET_NAMES: tuple[str, ...] = ("telemetry_access_client_id", "telemetry_access_client_secret")
"""The Cloudflare Access service token of the VM's collector (only with `ManagementServices.telemetry`)."""
CLOUDFLARED_METRICS_PORT = 2000
AUTHENTIK_METRICS_PORT = 9300
"""authentik-server serves its Prometheus metrics here, inside the Compose network only."""
ALLOY_CONFIG = "/etc/alloy/config.alloy"


@dataclass(frozen=True)
class ComposeImages:
    authentik: str
    postgres: str
    redis: str
    omni: str
    cloudflared: str


@dataclass(frozen=True)
class SmtpRelay:
    """Authentik's global e-mail settings: recovery links, e-mail notifications (`AUTHENTIK_EMAIL__*`)."""

    host: str
    port: int
    from_address: str
    use_tls: bool
    """STARTTLS after connecting (port 587)."""
    use_ssl: bool
    """Implicit TLS from the first byte (port 465); never together with `use_tls`."""
    username: str | None = None
    """With a login, the password is read from the `smtp_password` secret file."""
    timeout_seconds: int = 10

    def __post_init__(self) -> None:
        if self.use_tls and self.use_ssl:
            raise ValueError("SmtpRelay: use_tls (STARTTLS) and use_ssl (implicit TLS) exclude each other")


@dataclass(frozen=True)
class VmTelemetry:
    """The VM's collector: where it writes (PROD's machine routes) and how it names itself."""

    image: str
    metrics_url: str
    logs_url: str
    host: str
    """`instance` and `cluster` label of everything the VM ships (`oci-mgmt`)."""
    scrape_interval: str = "60s"


@dataclass(frozen=True)
class ManagementServices:
    """What runs on the management VM and under which public names."""

    images: ComposeImages
    authentik_hostname: str
    omni_hostname: str
    omni_account_id: str
    omni_name: str
    omni_initial_users: tuple[str, ...]
    authentik_omni_slug: str = "omni"
    """Slug of the Authentik SAML application Omni trusts (created by the Authentik configuration)."""
    omni_wireguard_port: int | None = None
    """Publish Omni's SideroLink WireGuard port (UDP) on the VM; None keeps it closed."""
    omni_wireguard_address: str | None = None
    """Public address machines dial for SideroLink; required when the port is published."""
    outpost_upstreams: tuple[tuple[str, str], ...] = ()
    """(hostname, address) pairs the embedded outpost in `authentik-server` resolves: a proxy-gated
    app's public hostname points at the CLOUD cluster's Gateway, which routes by that Host header."""
    smtp: SmtpRelay | None = None
    """Authentik's e-mail relay; None leaves Authentik without e-mail (the cloud stack warns)."""

    telemetry: VmTelemetry | None = None
    """Run Alloy beside the services and ship logs and metrics to PROD; None runs no collector."""

    @property
    def secret_names(self) -> tuple[str, ...]:
        """The secret files this project reads (`SECRET_NAMES`, plus the collector's token)."""
        return SECRET_NAMES + (TELEMETRY_SECRET_NAMES if self.telemetry is not None else ())

    @property
    def omni_saml_metadata_url(self) -> str:
        return f"https://{self.authentik_hostname}/application/saml/{self.authentik_omni_slug}/metadata/"


def _secret(name: str) -> str:
    return f"/run/secrets/{name}"


def _postgres_environment() -> dict[str, str]:
    return {
        "AUTHENTIK_POSTGRESQL__HOST": "postgresql",
        "AUTHENTIK_POSTGRESQL__NAME": "authentik",
        "AUTHENTIK_POSTGRESQL__USER": "authentik",
        # authentik resolves file:// values itself: the password stays in the secret file.
        "AUTHENTIK_POSTGRESQL__PASSWORD": f"file://{_secret('postgres_password')}",
        "AUTHENTIK_REDIS__HOST": "redis",
        "AUTHENTIK_SECRET_KEY": f"file://{_secret('authentik_secret_key')}",
        "AUTHENTIK_ERROR_REPORTING__ENABLED": "false",
        "AUTHENTIK_DISABLE_UPDATE_CHECK": "true",
    }


def _email_environment(smtp: SmtpRelay | None) -> dict[str, str]:
    """`AUTHENTIK_EMAIL__*` for both Authentik containers (the worker sends, the server enqueues)."""
    if smtp is None:
        return {}
    env = {
        "AUTHENTIK_EMAIL__HOST": smtp.host,
        "AUTHENTIK_EMAIL__PORT": str(smtp.port),
        "AUTHENTIK_EMAIL__USE_TLS": str(smtp.use_tls).lower(),
        "AUTHENTIK_EMAIL__USE_SSL": str(smtp.use_ssl).lower(),
        "AUTHENTIK_EMAIL__TIMEOUT": str(smtp.timeout_seconds),
        "AUTHENTIK_EMAIL__FROM": smtp.from_address,
    }
    if smtp.username is not None:
        env["AUTHENTIK_EMAIL__USERNAME"] = smtp.username
        env["AUTHENTIK_EMAIL__PASSWORD"] = f"file://{_secret('smtp_password')}"
    return env


def _authentik_secrets(s: ManagementServices, *extra: str) -> list[str]:
    names = ["postgres_password", "authentik_secret_key", *extra]
    if s.smtp is not None and s.smtp.username is not None:
        names.append("smtp_password")
    return names


def _healthy(*services: str) -> dict[str, dict[str, str]]:
    return {s: {"condition": "service_healthy"} for s in services}


def _omni_command(s: ManagementServices) -> list[str]:
    command = [
        f"--name={s.omni_name}",
        f"--account-id={s.omni_account_id}",
        f"--private-key-source=file://{_secret('omni_etcd_key')}",
        # TLS ends at Cloudflare; the tunnel connector reaches Omni inside the Compose network.
        "--bind-addr=0.0.0.0:8080",
        "--machine-api-bind-addr=0.0.0.0:8090",
        "--k8s-proxy-bind-addr=0.0.0.0:8100",
        "--event-sink-port=8091",
        f"--advertised-api-url=https://{s.omni_hostname}/",
        f"--initial-users={','.join(s.omni_initial_users)}",
        # Omni >= 1.4 refuses to start without its SQLite store (machine logs, audit log, discovery
        # state); the embedded etcd's path is pinned too, so both live on the data volume.
        f"--sqlite-storage-path={OMNI_DATA}/secondary-storage/sqlite.db",
        "--etcd-embedded=true",
        f"--etcd-embedded-db-path={OMNI_DATA}/etcd/",
        # Omni downloads this metadata at start-up and exits without it: it is started only after
        # the Authentik SAML application exists (`OMNI_START_SCRIPT`, run by the cloud stack).
        "--auth-saml-enabled=true",
        f"--auth-saml-url={s.omni_saml_metadata_url}",
    ]
    if s.omni_wireguard_port is not None:
        command.append(f"--siderolink-wireguard-advertised-addr={s.omni_wireguard_address}:{s.omni_wireguard_port}")
    return command


def compose_document(s: ManagementServices) -> dict[str, object]:
    """The Compose project as data (rendered with `render_compose`)."""
    if s.omni_wireguard_port is not None and not s.omni_wireguard_address:
        raise ValueError("omni_wireguard_address is required when the WireGuard port is published")
    # dockerd must never start a container on its own (at boot it would run before the data
    # volume is mounted): the systemd unit (`compose_unit`) owns starts and restarts.
    restart = "no"
    omni: dict[str, object] = {
        "image": s.images.omni,
        "restart": restart,
        "command": _omni_command(s),
        # SideroLink is a WireGuard interface inside the container, even when nothing is published.
        "cap_add": ["NET_ADMIN"],
        "devices": ["/dev/net/tun:/dev/net/tun"],
        "volumes": [f"{DATA_DIR}/omni:{OMNI_DATA}"],
        "secrets": ["omni_etcd_key"],
        # Off until the SAML application it downloads at start exists (`omni_start_script`).
        "profiles": [OMNI_PROFILE],
        "networks": ["edge"],
    }
    if s.omni_wireguard_port is not None:
        omni["ports"] = [f"{s.omni_wireguard_port}:{s.omni_wireguard_port}/udp"]
    worker_entrypoint = (
        # The bootstrap blueprint reads these two from the plain environment, not through file://.
        'export AUTHENTIK_BOOTSTRAP_PASSWORD="$$(cat /run/secrets/authentik_bootstrap_password)"; '
        'export AUTHENTIK_BOOTSTRAP_TOKEN="$$(cat /run/secrets/authentik_bootstrap_token)"; '
        "exec dumb-init -- ak worker"
    )
    authentik_volumes = [f"{DATA_DIR}/authentik/media:/media", f"{DATA_DIR}/authentik/templates:/templates"]
    document: dict[str, object] = {
        "name": PROJECT_NAME,
        "services": {
            "postgresql": {
                "image": s.images.postgres,
                "restart": restart,
                "environment": {
                    "POSTGRES_DB": "authentik",
                    "POSTGRES_USER": "authentik",
                    "POSTGRES_PASSWORD_FILE": _secret("postgres_password"),
                },
                "secrets": ["postgres_password"],
                "volumes": [f"{DATA_DIR}/postgresql:/var/lib/postgresql/data"],
                "healthcheck": {
                    "test": ["CMD-SHELL", "pg_isready -d authentik -U authentik"],
                    "interval": "30s",
                    "timeout": "5s",
                    "retries": 5,
                    "start_period": "20s",
                },
                "networks": ["backend"],
            },
            "redis": {
                "image": s.images.redis,
                "restart": restart,
                "command": ["--save", "60", "1", "--loglevel", "warning"],
                "volumes": [f"{DATA_DIR}/redis:/data"],
                "healthcheck": {
                    "test": ["CMD-SHELL", "redis-cli ping | grep PONG"],
                    "interval": "30s",
                    "timeout": "3s",
                    "retries": 5,
                    "start_period": "20s",
                },
                "networks": ["backend"],
            },
            "authentik-server": {
                "image": s.images.authentik,
                "restart": restart,
                "command": ["server"],
                "environment": {**_postgres_environment(), **_email_environment(s.smtp)},
                "secrets": _authentik_secrets(s),
                "volumes": authentik_volumes,
                "depends_on": _healthy("postgresql", "redis"),
                "networks": ["backend", "edge"],
                **({"extra_hosts": [f"{h}:{a}" for h, a in s.outpost_upstreams]} if s.outpost_upstreams else {}),
            },
            "authentik-worker": {
                "image": s.images.authentik,
                "restart": restart,
                "entrypoint": ["/bin/sh", "-c", worker_entrypoint],
                "environment": {**_postgres_environment(), **_email_environment(s.smtp)},
                "secrets": _authentik_secrets(s, "authentik_bootstrap_password", "authentik_bootstrap_token"),
                "volumes": authentik_volumes,
                "depends_on": _healthy("postgresql", "redis"),
                "networks": ["backend", "edge"],
            },
            "omni": omni,
            "cloudflared": {
                "image": s.images.cloudflared,
                "restart": restart,
                "command": [
                    "tunnel",
                    "--no-autoupdate",
                    # Inside the Compose network only (no published port): the VM's Alloy scrapes it.
                    "--metrics",
                    f"0.0.0.0:{CLOUDFLARED_METRICS_PORT}",
                    "run",
                    "--token-file",
                    _secret("tunnel_token"),
                ],
                "secrets": ["tunnel_token"],
                "read_only": True,
                "security_opt": ["no-new-privileges:true"],
                "cap_drop": ["ALL"],
                # Not on omni: it is in a profile that starts later (`omni_start_script`).
                "depends_on": ["authentik-server"],
                "networks": ["edge"],
            },
        },
        "networks": {
            # PostgreSQL and Redis have no route out of the VM and no published port.
            "backend": {"internal": True},
            "edge": {},
        },
        "secrets": {name: {"file": f"{SECRETS_DIR}/{name}"} for name in s.secret_names},
    }
    if s.telemetry is not None:
        _add_collector(document, s.telemetry)
    return document


def _add_collector(document: dict[str, object], t: VmTelemetry) -> None:
    """Alloy in the project, and every container's log in the journal it reads."""
    services = document["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        # journald instead of json-file: Alloy reads one source (host units and containers alike)
        # without the Docker socket; `docker logs` keeps working with this driver.
        service["logging"] = {"driver": "journald", "options": {"tag": name}}
    config = vm_config(
        host=t.host,
        metrics_url=t.metrics_url,
        logs_url=t.logs_url,
        authentik=f"authentik-server:{AUTHENTIK_METRICS_PORT}",
        cloudflared=f"cloudflared:{CLOUDFLARED_METRICS_PORT}",
        tunnel="cloud",
        scrape_interval=t.scrape_interval,
    )
    exports = "; ".join(
        f'export {env}="$$(cat {_secret(name)})"'
        for env, name in zip(("CF_ACCESS_CLIENT_ID", "CF_ACCESS_CLIENT_SECRET"), TELEMETRY_SECRET_NAMES, strict=True)
    )
    services["alloy"] = {
        "image": t.image,
        "restart": "no",
        # Alloy reads the token from its environment; the values stay in the secret files.
        "entrypoint": [
            "/bin/sh",
            "-c",
            f"{exports}; exec /bin/alloy run --server.http.listen-addr=127.0.0.1:12345 "
            f"--storage.path=/var/lib/alloy/data --disable-reporting {ALLOY_CONFIG}",
        ],
        "user": "0:0",  # reads the root-owned journal; no capability beyond file ownership
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "tmpfs": ["/tmp"],
        "configs": [{"source": "alloy", "target": ALLOY_CONFIG}],
        "secrets": list(TELEMETRY_SECRET_NAMES),
        "volumes": [
            "alloy-data:/var/lib/alloy/data",
            "/var/log/journal:/var/log/journal:ro",
            "/etc/machine-id:/etc/machine-id:ro",
            "/proc:/host/proc:ro",
            "/sys:/host/sys:ro",
            "/:/host/root:ro",
        ],
        "logging": {"driver": "journald", "options": {"tag": "alloy"}},
        "networks": ["edge"],
    }
    # Compose interpolates `$` everywhere, inline config content included.
    document["configs"] = {"alloy": {"content": config.replace("$", "$$")}}
    document["volumes"] = {"alloy-data": {}}


def render_compose(s: ManagementServices) -> str:
    header = "# Rendered by Pulumi from the cloud stack's typed config; edit the config, not this file.\n"
    return header + yaml.safe_dump(compose_document(s), sort_keys=False, default_flow_style=False, width=120)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


DATA_MARKER = f"{DATA_DIR}/.homelab-data"
"""Written on the data volume by `PREPARE_SCRIPT`: its presence proves the volume, not the empty
mount point on the boot volume, is what `DATA_DIR` shows."""

_NOT_MOUNTED = f"the data volume is not mounted at {DATA_DIR}: refusing to start containers"
DATA_GUARD = f'if ! mountpoint -q {DATA_DIR} || [ ! -f {DATA_MARKER} ]; then echo "{_NOT_MOUNTED}" >&2; exit 1; fi\n'
"""The shell guard every script runs before it starts or recreates a container."""


def compose_unit() -> str:
    """The systemd unit that alone starts the Compose project.

    Containers carry `restart: "no"`, so dockerd never starts one on its own at boot (before the data
    volume is mounted, PostgreSQL and Omni would initialise empty stores on the boot volume). The
    unit requires the mount (`RequiresMountsFor`), checks it again before starting, runs the project
    in the foreground and owns the restart policy: any container that exits stops the project
    (`--abort-on-container-exit`) and systemd starts it again, through the same guard.
    """
    compose = f"/usr/bin/docker compose -f {COMPOSE_PATH}"
    return "\n".join(
        [
            "[Unit]",
            "Description=Homelab management services (Docker Compose)",
            "Requires=docker.service",
            "Wants=network-online.target",
            "After=docker.service network-online.target",
            f"RequiresMountsFor={DATA_DIR} {PROJECT_DIR}",
            f"ConditionPathExists={COMPOSE_PATH}",
            "",
            "[Service]",
            "Type=simple",
            f"WorkingDirectory={PROJECT_DIR}",
            f"ExecStartPre=/usr/bin/mountpoint -q {DATA_DIR}",
            f"ExecStartPre=/usr/bin/test -f {DATA_MARKER}",
            f"ExecStart={compose} up --remove-orphans --abort-on-container-exit",
            f"ExecStop={compose} stop",
            "Restart=always",
            "RestartSec=15",
            "TimeoutStopSec=180",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def cloud_init() -> str:
    """First-boot setup: Docker and the project directories, nothing else.

    cloud-init runs once per instance and the instance ignores later user-data changes, so
    everything that can change (the unit, the project, its secrets, the data volume's mount) is
    applied over the OCI Bastion by `PREPARE_SCRIPT` and the commands after it.
    """
    document = {
        "package_update": True,
        "packages": ["docker.io", "docker-compose-v2"],
        "runcmd": [
            ["install", "-d", "-m", "0755", PROJECT_DIR],
            ["install", "-d", "-m", "0700", SECRETS_DIR],
            ["systemctl", "enable", "--now", "docker.service"],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=120)


PREPARE_SCRIPT = f"""set -eu
sudo cloud-init status --wait >/dev/null || true
dev={DATA_DEVICE}
for _ in $(seq 1 60); do [ -e "$dev" ] && break; sleep 5; done
[ -e "$dev" ] || {{ echo "data volume $dev is not attached" >&2; exit 1; }}
# Format only a blank volume: an existing filesystem is never touched.
sudo blkid "$dev" >/dev/null 2>&1 || sudo mkfs.ext4 -q -L homelab-data "$dev"
uuid=$(sudo blkid -s UUID -o value "$dev")
# nofail: a missing volume must not stop the VM from booting (SSH stays reachable); the unit
# below requires the mount, so no container starts without it.
fstab_line="UUID=$uuid {DATA_DIR} ext4 defaults,nofail 0 2"
grep -q "UUID=$uuid" /etc/fstab || echo "$fstab_line" | sudo tee -a /etc/fstab >/dev/null
sudo systemctl daemon-reload
sudo install -d -m 0755 {DATA_DIR}
mountpoint -q {DATA_DIR} || sudo mount {DATA_DIR}
mountpoint -q {DATA_DIR} || {{ echo "{DATA_DIR} did not mount" >&2; exit 1; }}
sudo touch {DATA_MARKER}
sudo install -d -m 0700 {DATA_DIR}/postgresql {DATA_DIR}/redis {DATA_DIR}/omni
sudo install -d -m 0750 -o {AUTHENTIK_UID} -g {AUTHENTIK_UID} {DATA_DIR}/authentik/media {DATA_DIR}/authentik/templates
unit=/etc/systemd/system/{SYSTEMD_UNIT}
sudo tee "$unit.new" >/dev/null <<'UNIT'
{compose_unit()}UNIT
if sudo cmp -s "$unit.new" "$unit"; then
  sudo rm -f "$unit.new"
else
  sudo mv "$unit.new" "$unit"
  sudo systemctl daemon-reload
fi
sudo systemctl enable {SYSTEMD_UNIT} >/dev/null 2>&1
"""
"""Idempotent: mount the data volume (formatting it only when blank), mark it, create the data
directories and install the unit that owns the containers."""

INSTALL_SECRETS_SCRIPT = f"""set -eu
umask 077
sudo install -d -m 0700 {SECRETS_DIR}
changed=0
while read -r name value; do
  [ -n "$name" ] || continue
  target="{SECRETS_DIR}/$name"
  printf '%s' "$value" | base64 -d | sudo tee "$target.new" >/dev/null
  if sudo cmp -s "$target.new" "$target"; then sudo rm -f "$target.new"; continue; fi
  # Readable inside the containers it is mounted into; the directory keeps everyone else out.
  sudo chmod 0444 "$target.new"
  sudo mv "$target.new" "$target"
  changed=1
done
# Containers hold the old file open: a rotated secret needs fresh containers, started by the unit.
if [ "$changed" = 1 ] && [ -f {COMPOSE_PATH} ]; then
  {DATA_GUARD}  sudo systemctl stop {SYSTEMD_UNIT}
  sudo docker compose -f {COMPOSE_PATH} rm --force --stop
  sudo systemctl start {SYSTEMD_UNIT}
fi
"""
"""Reads `<name> <base64 value>` lines from stdin, writes one file per secret, recreates the
containers when a value changed."""


def compose_up_script(staged_path: str) -> str:
    """Install the staged Compose file and (re)start the project through its unit, only when the
    file changed or the project is not running; then wait until every service runs.

    Images are pulled from the staged file first, so a failed pull leaves the running project and
    its installed file as they were (the next run retries).
    """
    compose = f"sudo docker compose -f {COMPOSE_PATH}"
    return (
        "set -eu\n"
        + DATA_GUARD
        + f"sudo docker compose -f {staged_path} pull --quiet\n"
        + "changed=0\n"
        + f"if ! sudo cmp -s {staged_path} {COMPOSE_PATH}; then\n"
        + f"  sudo install -D -m 0644 {staged_path} {COMPOSE_PATH}\n"
        + "  changed=1\n"
        + "fi\n"
        + f'if [ "$changed" = 1 ] || ! systemctl is-active --quiet {SYSTEMD_UNIT}; then\n'
        + f"  sudo systemctl restart {SYSTEMD_UNIT}\n"
        + "fi\n"
        + f"wanted=$({compose} config --services | wc -l)\n"
        + "for _ in $(seq 1 60); do\n"
        + f"  running=$({compose} ps --status running --services | wc -l)\n"
        + '  if [ "$running" -eq "$wanted" ]; then exit 0; fi\n'
        + "  sleep 5\n"
        + "done\n"
        + f'echo "not every service is running; see journalctl -u {SYSTEMD_UNIT}" >&2\n'
        + f"{compose} ps >&2\n"
        + "exit 1\n"
    )


AUTHENTIK_READY_SCRIPT = f"""set -eu
# Authentik migrates its database on first start: wait (10 minutes at most) until it answers.
for _ in $(seq 1 120); do
  if sudo docker compose -f {COMPOSE_PATH} exec -T authentik-server ak healthcheck >/dev/null 2>&1; then
    exit 0
  fi
  sleep 5
done
echo "authentik-server did not become healthy" >&2
exit 1
"""
"""Idempotent readiness gate: the Authentik configuration is applied only once the server answers."""


def omni_start_script(metadata_url: str) -> str:
    """Enable Omni's Compose profile once its SAML metadata is served, and wait until it runs.

    Omni downloads the metadata at start and exits without it; with `--abort-on-container-exit`
    that would stop the whole project (Authentik included) in a loop. So Omni sits in a profile the
    unit leaves off until this script, run after the SAML application exists, turns it on in the
    project's `.env` (read by every `docker compose` call, the unit's included). Idempotent: the
    unit is restarted only when the profile was off.
    """
    compose = f"sudo docker compose -f {COMPOSE_PATH}"
    return (
        "set -eu\n"
        + DATA_GUARD
        + "ok=0\n"
        + "for _ in $(seq 1 60); do\n"
        + f"  if curl -fsS -o /dev/null '{metadata_url}'; then ok=1; break; fi\n"
        + "  sleep 5\n"
        + "done\n"
        + 'if [ "$ok" != 1 ]; then echo "SAML metadata is not served; Omni would exit at start" >&2; exit 1; fi\n'
        + f"if ! sudo grep -qx 'COMPOSE_PROFILES={OMNI_PROFILE}' {ENV_PATH} 2>/dev/null; then\n"
        + f"  echo 'COMPOSE_PROFILES={OMNI_PROFILE}' | sudo tee {ENV_PATH} >/dev/null\n"
        + f"  sudo systemctl restart {SYSTEMD_UNIT}\n"
        + "fi\n"
        + "for _ in $(seq 1 60); do\n"
        + f"  if {compose} ps --status running --services | grep -qx omni; then exit 0; fi\n"
        + "  sleep 5\n"
        + "done\n"
        + f'echo "omni is not running; see journalctl -u {SYSTEMD_UNIT}" >&2\n'
        + "exit 1\n"
    )
