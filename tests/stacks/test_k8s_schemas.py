"""Every Kubernetes object the stacks create (and every manifest under gitops/) validates against a
schema for the cluster's Kubernetes version.

Core objects: `kubernetes-validate`'s OpenAPI schemas of the cluster's minor (strict: unknown fields
fail). CRD-backed objects, twice:
- against the validators the `@kubernetes-models/*` npm packages generate from the upstream API
  types (types, required fields, enums, patterns; tests/crd-schemas, pinned by package-lock.json,
  installed by `make tools`). Those accept unknown fields, so
- against the hand-written closed subsets of tests/schemas/crd_subsets.py as well, which reject a
  misspelt or unknown key.
Helm releases and ConfigFiles are rendered by the provider and are not objects of the program;
neither are the upstream manifests they apply (pinned by SHA-256 in vendor/manifests.lock.yaml).
"""

import json
import os
import shutil
import subprocess
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from homelab.engine import RecordedResource
from homelab.gitops import gitops_objects
from homelab.stackrun import load_stack_input, project_root
from tests.schemas.crd_subsets import SCHEMAS

NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/")
CRD_SCHEMAS = project_root() / "tests" / "crd-schemas"
SUBSET_ONLY: frozenset[str] = frozenset(
    {"velero.io/v1:BackupStorageLocation", "velero.io/v1:Schedule", "talos.dev/v1alpha1:ServiceAccount"}
)
"""CRD-backed types with no upstream `@kubernetes-models` package: validated by their subset only
(npm has no `@kubernetes-models/velero` and none for Talos' CRDs; the subsets follow Velero v1.18.1's
API types and Talos' `ServiceAccountSpec`)."""


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


# `kubernetes_validate.validate` reads and parses its schema files, the large `_definitions.json`
# among them, for every object it is given: about 10 ms each, for a few hundred objects a session.
# The files are read-only package data, so each is parsed once (the parsed schema is never changed).
kubernetes_validate.utils.schema_contents = cache(kubernetes_validate.utils.schema_contents)


@cache
def _subset_validator(type_: str) -> jsonschema.protocols.Validator:
    """The validator of a subset schema, its schema checked once (`jsonschema.validate` checks the
    schema against the metaschema on every call, which costs more than the validation itself)."""
    schema = SCHEMAS[type_]
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate(type_: str, document: dict[str, Any], version: str) -> None:
    kind = type_.rpartition(":")[2]
    assert document.get("kind") == kind
    if type_ in SCHEMAS:
        # What `jsonschema.validate(document, schema)` raises: the best match of all errors.
        error = jsonschema.exceptions.best_match(_subset_validator(type_).iter_errors(document))
        if error is not None:
            raise error
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


def upstream_validators() -> str:
    """The `node` that runs tests/crd-schemas/validate.mjs; fails in CI, skips elsewhere, if absent."""
    node = shutil.which("node")
    installed = (CRD_SCHEMAS / "node_modules" / "@kubernetes-models").is_dir()
    if node is not None and installed:
        return node
    reason = "node is not on PATH" if node is None else "tests/crd-schemas/node_modules is missing"
    if os.environ.get("CI"):
        pytest.fail(f"the upstream CRD validators must run in CI: {reason} (make tools)")
    pytest.skip(f"upstream CRD validators not installed: {reason}; run `make tools`")


@cache
def _upstream_results(batch: str) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [upstream_validators(), "validate.mjs"],
        input=batch,
        cwd=CRD_SCHEMAS,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {str(r["id"]): r for r in json.loads(done.stdout)}


def validate_upstream(documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`{id: {"error": str | None, "unknownType": bool}}` for each CRD-backed document (one node run)."""
    batch = json.dumps([{"id": key, "object": doc} for key, doc in sorted(documents.items())], sort_keys=True)
    return _upstream_results(batch)


def test_crd_backed_objects_validate_against_the_upstream_api_types(previewed):
    documents: dict[str, dict[str, Any]] = {}
    for stack in ("dev", "prod", "cloud"):
        for name, type_, document in objects(previewed(stack).recording.resources):
            if type_ in SCHEMAS and type_ not in SUBSET_ONLY:
                documents[f"{stack}: {name} ({type_})"] = document
    assert {key.rsplit("(", 1)[1].rstrip(")") for key in documents} >= {
        "cert-manager.io/v1:Certificate",
        "external-secrets.io/v1:ClusterSecretStore",
        "external-secrets.io/v1:ExternalSecret",
        "argoproj.io/v1alpha1:ApplicationSet",
        "cilium.io/v2:CiliumNetworkPolicy",
        "gateway.networking.k8s.io/v1:HTTPRoute",
        "monitoring.coreos.com/v1:PrometheusRule",
    }
    results = validate_upstream(documents)
    unknown = sorted(key for key, result in results.items() if result["unknownType"])
    assert unknown == [], f"no upstream validator for {unknown[:3]}: add its package or list the type in SUBSET_ONLY"
    errors = [f"{key}: {result['error']}" for key, result in sorted(results.items()) if result["error"]]
    assert errors == [], "\n".join(errors)


def test_the_upstream_validators_reject_what_the_crds_reject():
    bad = {
        # A CA issuer without its secret, a refresh interval that is not a duration string, a store
        # reference of a kind the CRD does not know.
        "issuer": {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": "x"},
            "spec": {"ca": {}},
        },
        "external-secret": {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "x", "namespace": "y"},
            "spec": {"refreshInterval": 3600, "secretStoreRef": {"name": "s", "kind": "Vault"}},
        },
        "unknown-kind": {"apiVersion": "cert-manager.io/v1", "kind": "Certificat", "metadata": {"name": "x"}},
    }
    results = validate_upstream(bad)
    assert "secretName" in str(results["issuer"]["error"])
    assert "refreshInterval" in str(results["external-secret"]["error"])
    assert "secretStoreRef/kind" in str(results["external-secret"]["error"])
    assert results["unknown-kind"]["unknownType"] is True


def test_missing_upstream_validators_fail_in_ci_and_skip_elsewhere(monkeypatch, tmp_path):
    monkeypatch.setitem(globals(), "CRD_SCHEMAS", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run in CI"):
        upstream_validators()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="make tools"):
        upstream_validators()
