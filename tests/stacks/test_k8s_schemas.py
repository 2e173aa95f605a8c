"""Every Kubernetes object the stacks create (and every manifest under gitops/) validates against a
schema for the cluster's Kubernetes version.

Core objects: `kubernetes-validate`'s OpenAPI schemas of the cluster's minor (strict: unknown fields
fail). CRD-backed objects: the hand-written subset schemas of tests/schemas/crd_subsets.py (the
upstream CRDs are not vendored here). Helm releases and ConfigFiles are rendered by the provider
and are not objects of the program; neither are the upstream manifests they apply (pinned by
SHA-256 in vendor/manifests.lock.yaml).
"""

import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from homelab.engine import RecordedResource
from homelab.gitops import gitops_objects
from homelab.stackrun import load_stack_input, project_root
from tests.schemas.crd_subsets import SCHEMAS

NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/")


def kubernetes_minor(stack: str) -> str:
    cluster = json.loads(load_stack_input(stack).config["homelab:cluster"])
    major, minor = str(cluster["kubernetes_version"]).split(".")[:2]
    return f"{major}.{minor}.0"


def objects(resources: list[RecordedResource]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for resource in resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(NOT_OBJECTS):
            continue
        # Children of a ConfigFile/ConfigGroup are upstream manifests pinned by SHA-256 in the lock
        # (offline, only their identity from its index), not objects the program writes.
        if resource.parent and "kubernetes:yaml/v2:Config" in resource.parent:
            continue
        found.append((resource.name, resource.type.removeprefix("kubernetes:"), dict(resource.inputs)))
    return found


def validate(type_: str, document: dict[str, Any], version: str) -> None:
    kind = type_.rpartition(":")[2]
    assert document.get("kind") == kind
    schema = SCHEMAS.get(type_)
    if schema is not None:
        jsonschema.validate(document, schema)
        return
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        pytest.fail(f"no schema for {type_}: a CRD-backed type needs one in tests/schemas/crd_subsets.py")


@pytest.mark.parametrize("stack", ["dev", "prod", "cloud"])
def test_every_object_of_the_stack_validates(previewed, stack):
    version = kubernetes_minor(stack)
    found = objects(previewed(stack).recording.resources)
    assert found
    for name, type_, document in found:
        try:
            validate(type_, document, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{stack}: {name} ({type_}) does not validate: {str(exc).splitlines()[0]}")


def test_gitops_manifests_validate():
    found = list(gitops_objects(project_root()))
    assert {obj.document["kind"] for obj in found} >= {"Deployment", "Service", "PersistentVolumeClaim", "ConfigMap"}
    for obj in found:
        kubernetes_validate.validate(obj.document, kubernetes_minor("prod"), strict=True)


def test_the_validator_rejects_an_unknown_field():
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(
            "core/v1:Namespace",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "lables": {}}},
            "1.33.0",
        )
    with pytest.raises(jsonschema.ValidationError):
        validate(
            "external-secrets.io/v1:ExternalSecret",
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": {"name": "x", "namespace": "y"},
                "spec": {"secretStoreRef": {"name": "s"}, "dataFrom": [{"find": {}}], "data": []},
            },
            "1.33.0",
        )
