"""Provider-side `Check` validations run offline, with the provider's message."""

from pathlib import Path

import pulumi
import pulumi_oci as oci
import pytest
from pulumi_command import local, remote

from homelab.engine import ProviderCheckError, Recording, View, run_program


def _storage_object(source: pulumi.Input[str]) -> None:
    oci.objectstorage.StorageObject("image", namespace="ns", bucket="images", object="talos.oci", source=source)


def _run(program, workdir: Path, view: View = "update") -> Recording:
    return run_program(program, project="homelab", stack="test", workdir=workdir, view=view)


def test_a_storage_object_whose_source_is_missing_is_rejected_like_the_oci_provider(tmp_path: Path) -> None:
    """The old engine accepted it; `pulumi preview` on a fresh clone failed at Check."""
    with pytest.raises(ProviderCheckError) as caught:
        _run(lambda: _storage_object(".talos-images/talos.oci"), tmp_path)
    assert caught.value.failures == [
        "oci:ObjectStorage/storageObject:StorageObject resource 'image': property source has a problem: "
        "cannot get file information for the specified source: .talos-images/talos.oci"
    ]


def test_a_present_source_passes_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "talos.oci").write_bytes(b"archive")
    recording = _run(lambda: _storage_object("talos.oci"), tmp_path)
    assert recording.get("oci:ObjectStorage/storageObject:StorageObject", "image").inputs["source"] == "talos.oci"


def test_an_unknown_source_is_not_checked_during_a_first_preview(tmp_path: Path) -> None:
    def program() -> None:
        build = local.Command("build", create="make-archive")
        _storage_object(build.stdout)

    recording = _run(program, tmp_path, "first-preview")
    assert recording.check_failures == []


def test_file_assets_and_archives_must_exist(tmp_path: Path) -> None:
    (tmp_path / "present.txt").write_text("x")

    def program() -> None:
        connection = remote.ConnectionArgs(host="192.0.2.10", user="root")
        remote.CopyToRemote("ok", connection=connection, source=pulumi.FileAsset("present.txt"), remote_path="/a")
        remote.CopyToRemote("asset", connection=connection, source=pulumi.FileAsset("gone.txt"), remote_path="/b")
        remote.CopyToRemote("dir", connection=connection, source=pulumi.FileArchive("gone-dir"), remote_path="/c")

    with pytest.raises(ProviderCheckError) as caught:
        _run(program, tmp_path)
    assert caught.value.failures == [
        "command:remote:CopyToRemote resource 'asset': property source has a problem: "
        "failed to open asset file 'gone.txt': open gone.txt: no such file or directory",
        "command:remote:CopyToRemote resource 'dir': property source has a problem: "
        "couldn't read archive path 'gone-dir': stat gone-dir: no such file or directory",
    ]
