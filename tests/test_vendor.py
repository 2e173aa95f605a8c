"""The manifest lock and `homelab vendor`: pinned bytes or nothing."""

import hashlib
import textwrap
from pathlib import Path

import pytest

from components.manifests import (
    ManifestLockError,
    PinnedManifest,
    load_lock,
    manifest_files,
    parse_lock,
    verify_local,
)
from homelab.cli import preview_stack
from homelab.vendor import vendor

BODY = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: widgets\n"
URL = "https://example.invalid/widgets/v1.0.0/widgets.yaml"


def _lock(sha256: str = hashlib.sha256(BODY).hexdigest(), size: int = len(BODY), name: str = "widgets") -> str:
    return textwrap.dedent(
        f"""\
        version: 1
        manifests:
          - source: widgets
            version: v1.0.0
            url: {URL}
            sha256: {sha256}
            size: {size}
            objects:
              - {{apiVersion: v1, kind: Namespace, name: {name}}}
        """
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor/manifests.lock.yaml").write_text(_lock(), encoding="utf-8")
    load_lock.cache_clear()
    yield tmp_path
    load_lock.cache_clear()


def test_the_committed_lock_pins_every_gateway_api_file_by_tag_and_checksum() -> None:
    lock = load_lock()
    gateway = lock.of("gateway-api", "v1.2.1")
    assert len(gateway) == 5
    assert all(f"/{m.version}/" in m.url and len(m.sha256) == 64 for m in lock.manifests)
    assert all("/v1.2.1/" in m.url for m in gateway)
    assert {o.kind for m in lock.manifests for o in m.objects} == {"CustomResourceDefinition"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_lock(sha256="abc"), "sha256"),
        (_lock().replace("/v1.0.0/", "/main/"), "pinned version"),
        (_lock().replace("https://", "http://"), "https"),
        (_lock().replace("version: 1\n", "version: 2\n", 1), "version"),
    ],
)
def test_a_malformed_lock_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ManifestLockError, match=message):
        parse_lock(text)


def test_an_unpinned_version_names_the_pinned_ones(project: Path) -> None:
    with pytest.raises(ManifestLockError, match=r"widgets v9\.9\.9 is not pinned .*pinned versions: v1\.0\.0"):
        manifest_files("widgets", "v9.9.9", project)


def test_fetch_verifies_writes_and_is_idempotent(project: Path) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return BODY

    lines, problems = vendor(project, fetch)
    assert not problems and fetched == [URL]
    assert (project / "vendor/manifests/widgets/v1.0.0/widgets.yaml").read_bytes() == BODY
    assert manifest_files("widgets", "v1.0.0", project) == ["vendor/manifests/widgets/v1.0.0/widgets.yaml"]
    lines, problems = vendor(project, fetch)
    assert not problems and fetched == [URL] and lines[0].startswith("ok")


def test_a_checksum_mismatch_is_refused_and_nothing_is_written(project: Path) -> None:
    _, problems = vendor(project, lambda url: BODY.replace(b"widgets", b"gadgets"))
    assert problems and "refusing it" in problems[0]
    assert not (project / "vendor/manifests/widgets/v1.0.0/widgets.yaml").exists()


def test_an_index_that_differs_from_the_file_is_refused(project: Path) -> None:
    (project / "vendor/manifests.lock.yaml").write_text(_lock(name="other"), encoding="utf-8")
    _, problems = vendor(project, lambda url: BODY)
    assert problems == [
        "vendor/manifests/widgets/v1.0.0/widgets.yaml: its objects differ from the lock's index; "
        "fix the index in the lock"
    ]


def test_a_tampered_vendored_file_stops_the_program_and_the_check(project: Path) -> None:
    target = project / "vendor/manifests/widgets/v1.0.0/widgets.yaml"
    target.parent.mkdir(parents=True)
    target.write_bytes(BODY + b"# edited\n")
    manifest = load_lock(project).manifests[0]
    assert isinstance(manifest, PinnedManifest)
    with pytest.raises(ManifestLockError, match="does not match the lock"):
        verify_local(manifest, project)
    _, problems = vendor(project, check_only=True)
    assert problems and "bytes" in problems[0]


def test_check_reports_missing_files_without_downloading(project: Path) -> None:
    def no_network(url: str) -> bytes:
        raise AssertionError("--check must not download")

    _, problems = vendor(project, no_network, check_only=True)
    assert problems == ["vendor/manifests/widgets/v1.0.0/widgets.yaml: missing; run `make vendor`"]


def test_a_stack_asking_for_an_unpinned_version_fails_with_one_line(isolated_project: Path) -> None:
    path = isolated_project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("gateway_api_version: v1.2.1", "gateway_api_version: v1.3.0"))
    result = preview_stack("dev", isolated_project)
    assert result.exit_code == 2
    assert result.error is not None
    assert result.error.startswith("gateway-api-experimental v1.3.0 is not pinned in vendor/manifests.lock.yaml")
