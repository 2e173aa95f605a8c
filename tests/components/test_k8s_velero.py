"""`Velero` under the offline engine: order, inputs, parents, options, secrets, bad input."""

import configparser

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.k8s.velero import (
    CREDENTIALS_KEY,
    CREDENTIALS_SECRET,
    REPOSITORY_KEY,
    REPOSITORY_SECRET,
    BackupSchedule,
    Velero,
    VeleroArgs,
    credentials_file,
    plugin_image_problem,
)
from components.manifests import manifest_files
from components.s3bucket import S3Bucket
from tests.components.bad_input import assert_fails_registering_no_child

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
BSL = "kubernetes:velero.io/v1:BackupStorageLocation"
SCHEDULE = "kubernetes:velero.io/v1:Schedule"
PLUGIN = "velero/velero-plugin-for-aws:v1.14.3"
ENDPOINT = "https://axns.compat.objectstorage.eu-paris-1.oraclecloud.com"
CRITICAL = BackupSchedule("critical", "0 2 * * *", ("immich", "vaultwarden"), 720, volumes=True)
IMPORTANT = BackupSchedule("important", "0 3 * * *", ("n8n",), 168, volumes=False)


def args(**changes) -> VeleroArgs:
    base: VeleroArgs = {
        "chart_version": "12.1.0",
        "crd_files": manifest_files("velero", "v1.18.1"),
        "plugin_image": PLUGIN,
        "location": S3Bucket(
            site="oci",
            endpoint=ENDPOINT,
            region="eu-paris-1",
            bucket="homelab-backups",
            access_key_id=pulumi.Output.secret("AKID0123"),
            secret_access_key=pulumi.Output.secret("s3cr3t/key+"),
        ),
        "prefix": "velero/cloud",
        "repository_password": pulumi.Config("homelab").require_secret("veleroRepositoryPassword"),
        "schedules": [CRITICAL, IMPORTANT],
    }
    return {**base, **changes}  # type: ignore[typeddict-item]


def program(**changes):
    def run():
        provider = k8s.Provider("k8s", kubeconfig="{}", cluster_identifier="test")
        Velero("velero", args(**changes), opts=pulumi.ResourceOptions(providers=[provider]))

    return run


SECRETS = {"homelab:veleroRepositoryPassword": "a-long-kopia-repository-password"}


@pytest.fixture
def rec(record):
    return record(program(), secrets=SECRETS, preview=False)


def test_every_child_belongs_to_the_component(rec):
    component = rec.get("homelab:k8s:Velero", "velero")
    children = {r.name for r in rec.children_of(component)}
    assert {
        "velero-namespace",
        "velero-crds",
        "velero-credentials",
        "velero-repository-password",
        "velero-chart",
        "velero-location",
        "velero-schedule-critical",
        "velero-schedule-important",
    } <= children


def test_namespace_is_privileged_for_the_node_agent(rec):
    labels = rec.get("kubernetes:core/v1:Namespace", "velero-namespace").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def test_chart_is_pinned_without_its_crds_or_a_location_of_its_own(rec):
    release = rec.get(RELEASE, "velero-chart")
    assert release.inputs["version"] == "12.1.0"
    assert release.inputs["skipCrds"] is True
    assert release.inputs["repositoryOpts"]["repo"] == "https://vmware-tanzu.github.io/helm-charts"
    values = release.inputs["values"]
    assert values["upgradeCRDs"] is False and values["backupsEnabled"] is False
    assert values["snapshotsEnabled"] is False
    assert values["credentials"] == {"useSecret": True, "existingSecret": CREDENTIALS_SECRET}
    assert [c["image"] for c in values["initContainers"]] == [PLUGIN]
    assert values["deployNodeAgent"] is True
    assert values["nodeAgent"]["podVolumePath"] == "/var/lib/kubelet/pods"
    assert values["configuration"]["uploaderType"] == "kopia"
    assert values["configuration"]["defaultVolumesToFsBackup"] is False


def test_chart_waits_for_crds_secrets_and_namespace_and_objects_wait_for_the_chart(rec):
    release = rec.get(RELEASE, "velero-chart")
    for name in ("velero-crds", "velero-credentials", "velero-repository-password", "velero-namespace"):
        assert rec.waits_for(release, rec.named(name)), name
    location = rec.get(BSL, "velero-location")
    assert rec.waits_for(location, release)
    for schedule in ("critical", "important"):
        assert rec.waits_for(rec.get(SCHEDULE, f"velero-schedule-{schedule}"), location)


def test_crds_come_from_the_lock(rec):
    group = rec.get("kubernetes:yaml/v2:ConfigGroup", "velero-crds")
    assert group.inputs["files"] == manifest_files("velero", "v1.18.1")
    assert len(group.inputs["files"]) == 13


def test_credentials_and_repository_password_are_secret(rec):
    credentials = rec.get(SECRET, "velero-credentials")
    assert credentials.inputs["metadata"]["name"] == CREDENTIALS_SECRET
    assert credentials.is_secret(f"stringData.{CREDENTIALS_KEY}")
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(credentials.inputs["stringData"][CREDENTIALS_KEY])
    assert dict(parsed["default"]) == {"aws_access_key_id": "AKID0123", "aws_secret_access_key": "s3cr3t/key+"}
    repository = rec.get(SECRET, "velero-repository-password")
    assert repository.inputs["metadata"]["name"] == REPOSITORY_SECRET
    assert repository.is_secret(f"stringData.{REPOSITORY_KEY}")
    assert repository.inputs["stringData"][REPOSITORY_KEY] == "a-long-kopia-repository-password"


def test_repository_password_outlives_the_stack(rec):
    # Kopia cannot open the repository with another password: deleting the Secret loses the backups.
    assert rec.get(SECRET, "velero-repository-password").retain_on_delete


def test_location_is_path_style_without_request_checksums(rec):
    spec = rec.get(BSL, "velero-location").inputs["spec"]
    assert spec["provider"] == "aws" and spec["default"] is True
    assert spec["objectStorage"] == {"bucket": "homelab-backups", "prefix": "velero/cloud"}
    assert spec["config"] == {
        "region": "eu-paris-1",
        "s3Url": ENDPOINT,
        "s3ForcePathStyle": "true",
        "checksumAlgorithm": "",
    }
    assert spec["credential"] == {"name": CREDENTIALS_SECRET, "key": CREDENTIALS_KEY}


def test_schedules_carry_class_namespaces_ttl_and_volume_choice(rec):
    critical = rec.get(SCHEDULE, "velero-schedule-critical").inputs["spec"]
    assert critical["schedule"] == "0 2 * * *"
    template = critical["template"]
    assert template["includedNamespaces"] == ["immich", "vaultwarden"]
    assert template["ttl"] == "720h0m0s"
    assert template["defaultVolumesToFsBackup"] is True
    assert template["snapshotVolumes"] is False
    assert template["storageLocation"] == "offsite"
    important = rec.get(SCHEDULE, "velero-schedule-important").inputs["spec"]["template"]
    assert important["defaultVolumesToFsBackup"] is False and important["ttl"] == "168h0m0s"


def test_credentials_file_is_an_aws_shared_credentials_file():
    text = credentials_file("AK", "S%K")
    assert text.startswith("[default]\n") and "aws_secret_access_key = S%K" in text


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (PLUGIN, None),
        ("docker.io/velero/velero-plugin-for-aws:v1.15.0", None),
        ("velero/velero-plugin-for-aws:v1.14.2", "v1.14.2 sends request checksums OCI and OVH refuse"),
        ("velero/velero-plugin-for-aws:v1.9.1", "use v1.14.3 or newer"),
        ("velero/velero-plugin-for-aws:latest", "exact version tag"),
        ("velero/velero-plugin-for-aws", "must be velero/velero-plugin-for-aws:<version>"),
        ("example/velero-plugin-for-aws:v1.14.3", "must be velero/velero-plugin-for-aws:<version>"),
    ],
)
def test_plugin_image_problem(image, problem):
    found = plugin_image_problem(image)
    assert found is None if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"plugin_image": "velero/velero-plugin-for-aws:v1.13.1"}, "plugin_image"),
        ({"schedules": [CRITICAL, CRITICAL]}, "listed twice"),
        ({"schedules": [BackupSchedule("critical", "0 2 * * *", (), 720, volumes=True)]}, "names no namespace"),
        ({"schedules": [BackupSchedule("critical", "0 2 * * *", ("a",), 0, volumes=True)]}, "TTL"),
    ],
)
def test_bad_input_registers_no_child(changes, message):
    assert_fails_registering_no_child(program(**changes), message, "homelab:k8s:Velero", SECRETS)
