"""The management VM's Compose project: valid per the Compose specification, free of secrets."""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.oci.compose import (
    CLOUDFLARED_METRICS_PORT,
    DATA_GUARD,
    DATA_MARKER,
    INSTALL_SECRETS_SCRIPT,
    PREPARE_SCRIPT,
    SECRET_NAMES,
    SYSTEMD_UNIT,
    TELEMETRY_SECRET_NAMES,
    ComposeImages,
    ManagementServices,
    SmtpRelay,
    VmTelemetry,
    cloud_init,
    compose_document,
    compose_unit,
    compose_up_script,
    render_compose,
)
from components.oci.management_vm import ManagementVm
from homelab.engine import Recording
from tests.monitoring.alloy_wiring import assert_wired

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")

SERVICES = ManagementServices(
    images=ComposeImages(
        authentik="ghcr.io/goauthentik/server:2025.8.1",
        postgres="docker.io/library/postgres:16.9-alpine",
        redis="docker.io/library/redis:7.4.5-alpine",
        omni="ghcr.io/siderolabs/omni:v1.4.7",
        cloudflared="docker.io/cloudflare/cloudflared:2025.8.1",
    ),
    authentik_hostname="auth.example.net",
    omni_hostname="omni.example.net",
    omni_account_id="00000000-0000-4000-8000-000000000001",
    omni_name="homelab",
    omni_initial_users=("admin@example.net",),
)
WITH_WIREGUARD = ManagementServices(
    **{**SERVICES.__dict__, "omni_wireguard_port": 50180, "omni_wireguard_address": "203.0.113.7"}
)
WITH_SMTP = ManagementServices(
    **{
        **SERVICES.__dict__,
        "smtp": SmtpRelay("smtp.example.net", 587, "auth@example.net", use_tls=True, use_ssl=False, username="auth"),
    }
)
WITH_TELEMETRY = ManagementServices(
    **{
        **SERVICES.__dict__,
        "telemetry": VmTelemetry(
            image="docker.io/grafana/alloy:v1.18.1",
            metrics_url="https://telemetry.example.net/api/v1/write",
            logs_url="https://telemetry.example.net/loki/api/v1/push",
            host="oci-mgmt",
        ),
    }
)
SECRET_VALUES = {name: f"SECRET-VALUE-{name}-9f8e7d6c5b4a" for name in SECRET_NAMES}


CASES = {"default": SERVICES, "wireguard": WITH_WIREGUARD, "smtp": WITH_SMTP, "telemetry": WITH_TELEMETRY}


def _broken_compose() -> str:
    document: dict[str, Any] = compose_document(SERVICES)
    document["services"]["omni"]["restart"] = ["always"]  # must be a string
    return yaml.safe_dump(document)


@pytest.fixture(scope="module")
def compose_spec_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The compose-spec validator's errors for each rendered case and for a broken file, by name.
    One check-jsonschema run for all of them (each start of the validator costs a quarter of a
    second); its JSON report names the file of every error, so each case is judged on its own."""
    directory = tmp_path_factory.mktemp("compose")
    files = {name: directory / f"{name}.yaml" for name in (*CASES, "broken")}
    for name, services in CASES.items():
        files[name].write_text(render_compose(services), encoding="utf-8")
    files["broken"].write_text(_broken_compose(), encoding="utf-8")
    result = subprocess.run(
        [
            str(CHECK_JSONSCHEMA),
            "--builtin-schema",
            "vendor.compose-spec",
            "--output-format",
            "json",
            *map(str, files.values()),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"check-jsonschema did not report: {result.stdout[-1000:]}{result.stderr[-1000:]}")
    by_path = {str(path): name for name, path in files.items()}
    errors: dict[str, list[str]] = {name: [] for name in files}
    for entry in [*report.get("errors", []), *report.get("parse_errors", [])]:
        errors[by_path[entry["filename"]]].append(f"{entry.get('path', '')}: {entry['message']}")
    # The exit status agrees with the report: no error the JSON failed to attribute.
    assert (result.returncode != 0) == any(errors.values()), (result.returncode, report)
    return errors


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_compose_validates_against_the_compose_spec(
    compose_spec_errors: dict[str, list[str]], case: str
) -> None:
    assert compose_spec_errors[case] == [], compose_spec_errors[case]


def test_the_collector_reads_the_journal_and_its_token_from_files_and_publishes_nothing() -> None:
    document: dict[str, Any] = compose_document(WITH_TELEMETRY)
    alloy = document["services"]["alloy"]
    assert "ports" not in alloy and alloy["networks"] == ["edge"]
    assert alloy["read_only"] is True and alloy["cap_drop"] == ["ALL"]
    assert "/var/log/journal:/var/log/journal:ro" in alloy["volumes"]
    # The token comes from the secret files at start; the command carries only their paths.
    assert alloy["secrets"] == list(TELEMETRY_SECRET_NAMES)
    assert '"$$(cat /run/secrets/telemetry_access_client_secret)"' in alloy["entrypoint"][2]
    assert "--server.http.listen-addr=127.0.0.1:12345" in alloy["entrypoint"][2]
    assert set(document["secrets"]) == set(SECRET_NAMES) | set(TELEMETRY_SECRET_NAMES)
    # Every container logs to the journal Alloy reads, tagged with its Compose service.
    for name, service in document["services"].items():
        assert service["logging"] == {"driver": "journald", "options": {"tag": name}}
    # cloudflared serves its metrics inside the Compose network only.
    command = document["services"]["cloudflared"]["command"]
    assert command[command.index("--metrics") + 1] == f"0.0.0.0:{CLOUDFLARED_METRICS_PORT}"
    assert "ports" not in document["services"]["cloudflared"]
    assert_wired(document["configs"]["alloy"]["content"])


def test_without_telemetry_no_collector_and_no_token_file() -> None:
    document: dict[str, Any] = compose_document(SERVICES)
    assert "alloy" not in document["services"] and "configs" not in document
    assert set(document["secrets"]) == set(SECRET_NAMES)
    assert all("logging" not in s for s in document["services"].values())


def test_the_validator_rejects_a_broken_compose_file(compose_spec_errors: dict[str, list[str]]) -> None:
    assert compose_spec_errors["broken"], "a restart policy given as a list was accepted"
    assert any(error.startswith("$.services.omni.restart: ") for error in compose_spec_errors["broken"])


def test_every_secret_is_a_file_reference() -> None:
    document: dict[str, Any] = compose_document(SERVICES)
    assert set(document["secrets"]) == set(SECRET_NAMES)
    assert all(spec == {"file": f"/opt/homelab/secrets/{n}"} for n, spec in document["secrets"].items())
    server_env = document["services"]["authentik-server"]["environment"]
    assert server_env["AUTHENTIK_SECRET_KEY"] == "file:///run/secrets/authentik_secret_key"
    assert server_env["AUTHENTIK_POSTGRESQL__PASSWORD"] == "file:///run/secrets/postgres_password"
    assert (
        document["services"]["postgresql"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    )
    assert "--token-file" in document["services"]["cloudflared"]["command"]


def test_authentik_sends_mail_through_the_relay_with_the_password_from_a_file() -> None:
    document: dict[str, Any] = compose_document(WITH_SMTP)
    for name in ("authentik-server", "authentik-worker"):  # the worker sends, the server enqueues
        service = document["services"][name]
        env = service["environment"]
        assert {k: v for k, v in env.items() if k.startswith("AUTHENTIK_EMAIL__")} == {
            "AUTHENTIK_EMAIL__HOST": "smtp.example.net",
            "AUTHENTIK_EMAIL__PORT": "587",
            "AUTHENTIK_EMAIL__USE_TLS": "true",
            "AUTHENTIK_EMAIL__USE_SSL": "false",
            "AUTHENTIK_EMAIL__TIMEOUT": "10",
            "AUTHENTIK_EMAIL__FROM": "auth@example.net",
            "AUTHENTIK_EMAIL__USERNAME": "auth",
            "AUTHENTIK_EMAIL__PASSWORD": "file:///run/secrets/smtp_password",
        }
        assert "smtp_password" in service["secrets"]
    assert document["secrets"]["smtp_password"] == {"file": "/opt/homelab/secrets/smtp_password"}


def test_without_a_relay_or_login_authentik_gets_no_mail_settings_or_password() -> None:
    plain: dict[str, Any] = compose_document(SERVICES)
    relay_without_login = ManagementServices(
        **{**SERVICES.__dict__, "smtp": SmtpRelay("relay.lan.example.net", 25, "a@example.net", False, False)}
    )
    anonymous: dict[str, Any] = compose_document(relay_without_login)
    for name in ("authentik-server", "authentik-worker"):
        assert not [k for k in plain["services"][name]["environment"] if k.startswith("AUTHENTIK_EMAIL__")]
        assert "smtp_password" not in plain["services"][name]["secrets"]
        env = anonymous["services"][name]["environment"]
        assert env["AUTHENTIK_EMAIL__HOST"] == "relay.lan.example.net"
        assert "AUTHENTIK_EMAIL__PASSWORD" not in env and "AUTHENTIK_EMAIL__USERNAME" not in env
        assert "smtp_password" not in anonymous["services"][name]["secrets"]
    with pytest.raises(ValueError, match="exclude each other"):
        SmtpRelay("smtp.example.net", 465, "a@example.net", use_tls=True, use_ssl=True)


def test_nothing_is_published_unless_wireguard_is_enabled() -> None:
    default: dict[str, Any] = compose_document(SERVICES)
    assert all("ports" not in s for s in default["services"].values())
    assert default["networks"]["backend"] == {"internal": True}
    opened: dict[str, Any] = compose_document(WITH_WIREGUARD)
    published = {name: s["ports"] for name, s in opened["services"].items() if "ports" in s}
    assert published == {"omni": ["50180:50180/udp"]}


def test_omni_is_prepared_for_authentik_saml() -> None:
    command = compose_document(SERVICES)["services"]["omni"]["command"]  # type: ignore[index]
    assert "--auth-saml-enabled=true" in command
    assert "--auth-saml-url=https://auth.example.net/application/saml/omni/metadata/" in command


def test_cloud_init_installs_docker_and_never_starts_the_project() -> None:
    text = cloud_init()
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    assert {"docker.io", "docker-compose-v2"} <= set(document["packages"])
    # cloud-init runs once and later user data is ignored: the unit arrives with PREPARE_SCRIPT.
    assert "write_files" not in document
    assert not any(SYSTEMD_UNIT in " ".join(step) for step in document["runcmd"])


def test_dockerd_never_starts_a_container_on_its_own() -> None:
    services = compose_document(WITH_WIREGUARD)["services"]
    assert {name: s["restart"] for name, s in services.items()} == dict.fromkeys(services, "no")  # type: ignore[union-attr]


def _unit() -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in compose_unit().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            entries.setdefault(key, []).append(value)
    return entries


def test_the_unit_requires_the_data_mount_and_owns_restarts() -> None:
    unit = _unit()
    assert "/srv/homelab" in unit["RequiresMountsFor"][0].split()
    assert "docker.service" in unit["Requires"]
    assert unit["ExecStartPre"] == ["/usr/bin/mountpoint -q /srv/homelab", f"/usr/bin/test -f {DATA_MARKER}"]
    # In the foreground: a container that exits ends the project, systemd restarts it via the guard.
    assert unit["ExecStart"][0].endswith(" up --remove-orphans --abort-on-container-exit")
    assert unit["Restart"] == ["always"]
    assert unit["WantedBy"] == ["multi-user.target"]


def test_prepare_marks_the_volume_after_mounting_it_and_installs_the_unit() -> None:
    lines = PREPARE_SCRIPT.splitlines()
    mounted = lines.index("mountpoint -q /srv/homelab || sudo mount /srv/homelab")
    assert lines.index(f"sudo touch {DATA_MARKER}") > mounted + 1
    assert compose_unit() in PREPARE_SCRIPT
    assert f"sudo systemctl enable {SYSTEMD_UNIT} >/dev/null 2>&1" in lines


_STARTS = re.compile(r"systemctl (re)?start|compose\b.*\b(up|start|restart)\b")


@pytest.mark.parametrize(
    "script",
    [INSTALL_SECRETS_SCRIPT, compose_up_script("/home/ubuntu/staged.yaml")],
    ids=["secrets", "compose-up"],
)
def test_every_container_start_is_guarded_and_goes_through_the_unit(script: str) -> None:
    lines = [line.strip() for line in script.splitlines()]
    starts = [i for i, line in enumerate(lines) if _STARTS.search(line)]
    assert starts, "the script starts nothing?"
    guard = lines.index(DATA_GUARD.strip())
    assert guard < min(starts)
    # Only the unit starts containers (`docker compose up` would bypass its mount requirement).
    assert all(lines[i].startswith("sudo systemctl ") for i in starts), [lines[i] for i in starts]


def test_compose_up_restarts_only_on_change_and_pulls_before_installing() -> None:
    lines = compose_up_script("/home/ubuntu/staged.yaml").splitlines()
    pull = lines.index("sudo docker compose -f /home/ubuntu/staged.yaml pull --quiet")
    assert pull < next(i for i, line in enumerate(lines) if line.strip().startswith("sudo install"))
    restart = next(i for i, line in enumerate(lines) if "systemctl restart" in line)
    assert 'if [ "$changed" = 1 ] || ! systemctl is-active' in lines[restart - 1]


def _management_program() -> None:
    provider = pulumi.ProviderResource("command", "command")
    ManagementVm(
        "mgmt",
        {
            "compartment_id": "ocid1.compartment.oc1..aaaaaaaatest000000000000000000",
            "availability_domain": "Offl:EU-PARIS-1-AD-1",
            "subnet_id": "ocid1.subnet.oc1..aaaaaaaatest000000000000000000",
            "nsg_ids": ["ocid1.networksecuritygroup.oc1..aaaaaaaatest00000000000"],
            "image_id": "ocid1.image.oc1..aaaaaaaatest000000000000000000000",
            "region": "eu-paris-1",
            "ocpus": 1,
            "memory_gb": 4,
            "boot_volume_gb": 50,
            "data_volume_gb": 50,
            "private_ip": "10.20.1.10",
            "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest test",
            "ssh_private_key": pulumi.Output.secret("PRIVATE-KEY-VALUE-0a1b2c"),
            "bastion_id": "ocid1.bastion.oc1..aaaaaaaatest00000000000000000",
            "services": WITH_SMTP,
            "secrets": {k: pulumi.Output.secret(v) for k, v in SECRET_VALUES.items()},
            "freeform_tags": {"managed-by": "pulumi"},
            "command_provider": provider,
        },
    )


@pytest.fixture(scope="module")
def management() -> Recording:
    from homelab.engine import run_program

    return run_program(_management_program, project="homelab", stack="test")


def _plain_text(recording: Recording) -> str:
    """Everything that is NOT marked secret on the wire, as text (user data decoded)."""
    chunks: list[str] = []
    for record in recording.resources:
        for key, value in record.inputs.items():
            if record.is_secret(key):
                continue
            chunks.append(json.dumps(value))
        metadata = record.inputs.get("metadata") or {}
        if "user_data" in metadata:
            chunks.append(base64.b64decode(metadata["user_data"]).decode())
    return "\n".join(chunks)


def test_no_secret_value_appears_in_rendered_files_or_plain_inputs(management: Recording) -> None:
    copy = management.get("command:remote:CopyToRemote", "mgmt-compose-file")
    rendered = json.dumps(copy.inputs["source"])
    assert "authentik-server" in rendered  # the compose text itself is there
    plain = _plain_text(management)
    for value in [*SECRET_VALUES.values(), "PRIVATE-KEY-VALUE-0a1b2c"]:
        assert value not in rendered
        assert value not in plain
        encoded = base64.b64encode(value.encode()).decode()
        assert encoded not in plain


def test_secrets_travel_only_as_secret_stdin(management: Recording) -> None:
    install = management.get("command:remote:Command", "mgmt-secrets")
    assert install.is_secret("stdin")
    assert install.inputs["logging"] == "none"
    assert {"stdout", "stderr"} <= set(install.additional_secret_outputs)
    lines = dict(line.split(" ", 1) for line in install.inputs["stdin"].strip().splitlines())
    assert set(lines) == set(SECRET_NAMES)
    assert base64.b64decode(lines["tunnel_token"]).decode() == SECRET_VALUES["tunnel_token"]
