"""The management VM's Docker Compose project, rendered from typed settings.

Pure rendering (no Pulumi resources): the same text is what `ManagementVm` copies to the VM and
what the tests validate against the Compose specification. The rendered files never contain a
secret value: every secret is a Compose `secrets:` entry backed by a root-only file that
`ManagementVm` writes over the OCI Bastion, and each container reads it from `/run/secrets/`
(Authentik through its `file://` config syntax, PostgreSQL through `POSTGRES_PASSWORD_FILE`,
cloudflared through `--token-file`, Omni through `--private-key-source=file://`).
"""

import hashlib
from dataclasses import dataclass

import yaml

PROJECT_NAME = "homelab-management"
PROJECT_DIR = "/opt/homelab"
COMPOSE_PATH = f"{PROJECT_DIR}/compose.yaml"
SECRETS_DIR = f"{PROJECT_DIR}/secrets"
DATA_DIR = "/srv/homelab"
DATA_DEVICE = "/dev/oracleoci/oraclevdb"
AUTHENTIK_UID = 1000
SYSTEMD_UNIT = "homelab-compose.service"

SECRET_NAMES: tuple[str, ...] = (
    "authentik_bootstrap_password",
    "authentik_bootstrap_token",
    "authentik_secret_key",
    "omni_etcd_key",
    "postgres_password",
    "tunnel_token",
)
"""Every secret the project reads, as files under `SECRETS_DIR` (values never appear in YAML)."""


@dataclass(frozen=True)
class ComposeImages:
    authentik: str
    postgres: str
    redis: str
    omni: str
    cloudflared: str


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
    restart = "unless-stopped"
    omni: dict[str, object] = {
        "image": s.images.omni,
        "restart": restart,
        "command": _omni_command(s),
        # SideroLink is a WireGuard interface inside the container, even when nothing is published.
        "cap_add": ["NET_ADMIN"],
        "devices": ["/dev/net/tun:/dev/net/tun"],
        "volumes": [f"{DATA_DIR}/omni:/_out"],
        "secrets": ["omni_etcd_key"],
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
    return {
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
                "environment": _postgres_environment(),
                "secrets": ["postgres_password", "authentik_secret_key"],
                "volumes": authentik_volumes,
                "depends_on": _healthy("postgresql", "redis"),
                "networks": ["backend", "edge"],
            },
            "authentik-worker": {
                "image": s.images.authentik,
                "restart": restart,
                "entrypoint": ["/bin/sh", "-c", worker_entrypoint],
                "environment": _postgres_environment(),
                "secrets": [
                    "postgres_password",
                    "authentik_secret_key",
                    "authentik_bootstrap_password",
                    "authentik_bootstrap_token",
                ],
                "volumes": authentik_volumes,
                "depends_on": _healthy("postgresql", "redis"),
                "networks": ["backend", "edge"],
            },
            "omni": omni,
            "cloudflared": {
                "image": s.images.cloudflared,
                "restart": restart,
                "command": ["tunnel", "--no-autoupdate", "run", "--token-file", _secret("tunnel_token")],
                "secrets": ["tunnel_token"],
                "read_only": True,
                "security_opt": ["no-new-privileges:true"],
                "cap_drop": ["ALL"],
                "depends_on": ["authentik-server", "omni"],
                "networks": ["edge"],
            },
        },
        "networks": {
            # PostgreSQL and Redis have no route out of the VM and no published port.
            "backend": {"internal": True},
            "edge": {},
        },
        "secrets": {name: {"file": f"{SECRETS_DIR}/{name}"} for name in SECRET_NAMES},
    }


def render_compose(s: ManagementServices) -> str:
    header = "# Rendered by Pulumi from the cloud stack's typed config; edit the config, not this file.\n"
    return header + yaml.safe_dump(compose_document(s), sort_keys=False, default_flow_style=False, width=120)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cloud_init() -> str:
    """First-boot setup: Docker, and a unit that (re)starts the Compose project at every boot.

    The project itself and its secrets arrive over the OCI Bastion after the data volume is
    mounted; cloud-init runs only once, so nothing that changes later may live here.
    """
    unit = "\n".join(
        [
            "[Unit]",
            "Description=Homelab management services (Docker Compose)",
            "Requires=docker.service",
            "After=docker.service network-online.target",
            f"RequiresMountsFor={DATA_DIR}",
            f"ConditionPathExists={COMPOSE_PATH}",
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            f"WorkingDirectory={PROJECT_DIR}",
            f"ExecStart=/usr/bin/docker compose -f {COMPOSE_PATH} up -d --remove-orphans",
            f"ExecStop=/usr/bin/docker compose -f {COMPOSE_PATH} stop",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
    document = {
        "package_update": True,
        "packages": ["docker.io", "docker-compose-v2"],
        "write_files": [{"path": f"/etc/systemd/system/{SYSTEMD_UNIT}", "permissions": "0644", "content": unit}],
        "runcmd": [
            ["install", "-d", "-m", "0755", PROJECT_DIR],
            ["install", "-d", "-m", "0700", SECRETS_DIR],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "docker.service"],
            ["systemctl", "enable", SYSTEMD_UNIT],
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
fstab_line="UUID=$uuid {DATA_DIR} ext4 defaults,nofail 0 2"
grep -q "UUID=$uuid" /etc/fstab || echo "$fstab_line" | sudo tee -a /etc/fstab >/dev/null
sudo install -d -m 0755 {DATA_DIR}
mountpoint -q {DATA_DIR} || sudo mount {DATA_DIR}
sudo install -d -m 0700 {DATA_DIR}/postgresql {DATA_DIR}/redis {DATA_DIR}/omni
sudo install -d -m 0750 -o {AUTHENTIK_UID} -g {AUTHENTIK_UID} {DATA_DIR}/authentik/media {DATA_DIR}/authentik/templates
"""
"""Idempotent: mount the data volume (formatting it only when blank) and create the data directories."""

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
# Containers hold the old file open: a rotated secret needs fresh containers.
if [ "$changed" = 1 ] && [ -f {COMPOSE_PATH} ]; then
  sudo docker compose -f {COMPOSE_PATH} up -d --force-recreate
fi
"""
"""Reads `<name> <base64 value>` lines from stdin, writes one file per secret, recreates the
containers when a value changed."""


def compose_up_script(staged_path: str) -> str:
    """Install the staged Compose file and converge the running containers (changed ones only)."""
    return (
        "set -eu\n"
        f"sudo install -D -m 0644 {staged_path} {COMPOSE_PATH}\n"
        f"sudo docker compose -f {COMPOSE_PATH} pull --quiet\n"
        f"sudo docker compose -f {COMPOSE_PATH} up -d --remove-orphans\n"
    )
