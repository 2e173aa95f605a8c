"""`homelab exposure`: public hostnames with their gates, read from the recorded graph."""

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from homelab import cli
from homelab.cli import main
from homelab.engine import Recording
from homelab.exposure import Exposure, exposures
from homelab.render import StackResult
from homelab.report import render_markdown
from homelab.stackrun import project_root
from policies.rules import RULES

TIER1 = {"cloud.example.net", "photos.example.net", "vault.example.net", "dav.example.net", "n8n.example.net"}


@pytest.fixture(scope="module")
def cloud(previewed: Callable[[str], StackResult]) -> StackResult:
    return previewed("cloud")


def _rows(result: StackResult, recording: Recording | None = None) -> dict[str, Exposure]:
    rows = exposures(recording or result.recording, result.config)  # type: ignore[arg-type]
    return {r.hostname + (r.path or ""): r for r in rows}


def test_every_tier1_and_admin_hostname_has_its_gate(cloud: StackResult) -> None:
    rows = _rows(cloud)
    assert [r for r in rows.values() if r.problem] == []
    assert {h for h, r in rows.items() if r.tier == "sso"} == TIER1
    assert rows["dav.example.net"].gates == ("authentik-proxy",)
    assert rows["dav.example.net"].backend == "outpost -> http://dav.example.net"
    assert rows["photos.example.net"].gates == ("authentik-oidc",)
    assert all(rows[h].dns == "gated" for h in TIER1)
    admin = [r for r in rows.values() if r.tier == "admin"]
    assert len(admin) == 8 and all("access" in r.gates for r in admin)
    assert rows["omni.example.net"].gates == ("access", "authentik-saml")
    assert rows["music.example.net"].gates == ("native",) and rows["music.example.net"].cluster == "CLOUD cluster"
    assert rows["books.example.net"].cluster == "PROD cluster"


METRICS = "telemetry.example.net^/api/v1/write(/.*)?$"
LOGS = "telemetry.example.net^/loki/api/v1/push(/.*)?$"


def test_the_collectors_write_paths_admit_only_their_service_token(cloud: StackResult) -> None:
    rows = _rows(cloud)
    for key, backend in (
        (METRICS, "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"),
        (LOGS, "http://loki-gateway.monitoring.svc.cluster.local:80"),
    ):
        row = rows[key]
        assert (row.tier, row.gates, row.dns, row.problem) == ("machine", ("service-token",), "gated", None)
        assert (row.backend, row.cluster, row.tunnel) == (backend, "PROD cluster", "homelab-prod")
    # Only the write paths: nothing else of the hostname (Prometheus' query API, Loki's) is routed.
    assert {k for k in rows if k.startswith("telemetry.")} == {METRICS, LOGS}


def test_a_machine_route_that_admits_people_is_a_problem(cloud: StackResult) -> None:
    assert cloud.recording is not None
    recording = cloud.recording
    widened = [
        dataclasses.replace(r, inputs={**r.inputs, "decision": "allow"}) if r.name == "prod-machines" else r
        for r in recording.resources
    ]
    rows = _rows(cloud, Recording(recording.project, recording.stack, widened, dict(recording.outputs)))
    assert rows[METRICS].gates == ("access",)
    assert rows[METRICS].problem == "machine route not limited to its service tokens"


def _without(recording: Recording, name: str) -> Recording:
    kept = [r for r in recording.resources if r.name != name]
    assert len(kept) == len(recording.resources) - 1, name
    return Recording(recording.project, recording.stack, kept, dict(recording.outputs))


def test_a_missing_gate_is_a_problem_read_from_the_graph(cloud: StackResult) -> None:
    assert cloud.recording is not None
    no_access = _rows(cloud, _without(cloud.recording, "prod-access-grafana"))
    assert no_access["grafana.example.net"].problem == "admin hostname without Cloudflare Access"
    no_app = _rows(cloud, _without(cloud.recording, "authentik-app-immich"))
    assert no_app["photos.example.net"].problem == "Tier-1 hostname without its authentik-oidc gate"
    # A DNS record that no longer waits for its application is published too early.
    recording = cloud.recording
    early = [
        dataclasses.replace(r, dependencies=()) if r.name == "cloud-gated-dns-n8n" else r for r in recording.resources
    ]
    rows = _rows(cloud, Recording(recording.project, recording.stack, early, dict(recording.outputs)))
    assert rows["n8n.example.net"].problem == "DNS record published before its Authentik application"


def test_cli_json_and_exit_codes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cloud: StackResult
) -> None:
    # The command's `run_stack("cloud", <project dir>)` is served from the session's preview of the
    # committed stack (that very call, made once): this test is about the command's output and codes.
    run_stack = cli.run_stack

    def committed(stack: str, root: Path | None = None, *args: Any, **kwargs: Any) -> Recording:
        if stack == "cloud" and not args and not kwargs and root in (None, project_root()):
            assert cloud.recording is not None
            return cloud.recording
        return run_stack(stack, root, *args, **kwargs)

    monkeypatch.setattr(cli, "run_stack", committed)
    assert main(["exposure", "cloud", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    hostnames = {row["hostname"] for row in document["cloud"]["exposures"]}
    assert hostnames >= TIER1
    assert main(["exposure", "nowhere"]) == 2
    assert "unknown stack" in capsys.readouterr().err


def test_the_compliance_report_shows_the_exposure(cloud: StackResult) -> None:
    assert cloud.recording is not None
    markdown = render_markdown("cloud", cloud.recording, cloud.findings, RULES, config=cloud.config)
    section = markdown.split("## Exposure", 1)[1].split("## Findings", 1)[0]
    # 23 for people, plus the collectors' two machine routes on the PROD tunnel.
    assert "25 public hostname route(s); 0 without their gate." in section
    assert "| dav.example.net | sso | authentik-proxy |" in section
    assert "| management VM | gated | critical | 3-2-1 |" in section  # omni: data class and verdict


def test_each_route_shows_its_data_class_and_backup_verdict(cloud: StackResult) -> None:
    rows = _rows(cloud)
    assert {h: r.data_class for h, r in rows.items() if h in ("vault.example.net", "music.example.net")} == {
        "vault.example.net": "critical",
        "music.example.net": "media",
    }
    # Stateless services hold nothing; every path of a hostname is the same service's data.
    assert rows["home.example.net"].data_class == "-" and rows["alerts.example.net"].data_class == "-"
    assert rows["auth.example.net"].data_class == "critical"
    # The verdict is this stack's own (what it builds): the management VM's data and critical CLOUD
    # cluster data are 3-2-1 with OVH; `important` data stays on OCI by class (no offsite copy);
    # PROD's holders are the prod stack's.
    assert rows["omni.example.net"].backups == "3-2-1"
    assert rows["photos.example.net"].backups == "3-2-1"
    assert rows["recipes.example.net"].backups == "not 3-2-1 (2 copies, no offsite copy)"
    assert rows["comics.example.net"].data_class == "media" and rows["comics.example.net"].backups == "-"
    # Without the outputs (a stack that exports none) the columns say nothing rather than guess.
    assert cloud.recording is not None
    bare = Recording(cloud.recording.project, cloud.recording.stack, list(cloud.recording.resources), {})
    assert {r.data_class for r in _rows(cloud, bare).values()} == {"-"}
