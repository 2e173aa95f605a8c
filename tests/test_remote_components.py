"""Remote components are expanded as the Kubernetes provider expands them, and the pack sees the children."""

import textwrap
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumiverse_talos as talos
import pytest

from homelab.engine import ProviderCheckError, Recording, run_program
from homelab.policy_eval import evaluate
from homelab.render import view_mismatch
from policies.rules.hygiene import known_types_only
from tests.policies.previews import preview

MANIFEST = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: widget-controller
      namespace: widgets
    spec:
      replicas: 1
    ---
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.com
    spec:
      group: example.com
      names: {kind: Widget, plural: widgets}
      scope: Namespaced
      versions: [{name: v1, served: true, storage: true}]
    ---
    apiVersion: v1
    kind: Namespace
    metadata:
      name: widgets
    ---
    # an empty document, skipped like the provider skips it
    ---
    apiVersion: example.com/v1
    kind: Widget
    metadata:
      name: first
    ---
    apiVersion: v1
    kind: Secret
    metadata:
      name: widget-token
      namespace: widgets
    stringData:
      token: hunter2
    """
)


def _run(workdir: Path, file: str, *, first_preview: bool = False) -> Recording:
    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        k8s.yaml.v2.ConfigFile("widgets", file=file, opts=pulumi.ResourceOptions(provider=provider))

    return run_program(
        program,
        project="homelab",
        stack="test",
        workdir=workdir,
        view="first-preview" if first_preview else "update",
    )


@pytest.fixture(scope="module")
def expanded(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    workdir = tmp_path_factory.mktemp("project")
    (workdir / "widgets.yaml").write_text(MANIFEST, encoding="utf-8")
    return _run(workdir, "widgets.yaml")


def test_each_object_is_a_child_with_the_providers_type_token_and_name(expanded: Recording) -> None:
    component = expanded.get("kubernetes:yaml/v2:ConfigFile", "widgets")
    children = expanded.children_of(component)
    assert [(c.type, c.name) for c in children] == [
        # CRDs and Namespaces first, as the provider orders them.
        ("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "widgets:widgets.example.com"),
        ("kubernetes:core/v1:Namespace", "widgets:widgets"),
        ("kubernetes:apps/v1:Deployment", "widgets:widgets/widget-controller"),
        # A namespaced object without a namespace gets the provider's default one.
        ("kubernetes:example.com/v1:Widget", "widgets:default/first"),
        ("kubernetes:core/v1:Secret", "widgets:widgets/widget-token"),
    ]
    assert all(c.custom and c.origin == "file widgets.yaml" for c in children)
    provider = expanded.get("pulumi:providers:kubernetes", "k8s")
    assert all(c.provider is not None and c.provider.startswith(provider.urn) for c in children)
    assert children[0].urn.endswith(
        "kubernetes:yaml/v2:ConfigFile$kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition::widgets:widgets.example.com"
    )


def test_children_depend_on_their_crd_and_namespace_and_secrets_stay_secret(expanded: Recording) -> None:
    crd = expanded.get("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "widgets:widgets.example.com")
    namespace = expanded.get("kubernetes:core/v1:Namespace", "widgets:widgets")
    widget = expanded.get("kubernetes:example.com/v1:Widget", "widgets:default/first")
    deployment = expanded.get("kubernetes:apps/v1:Deployment", "widgets:widgets/widget-controller")
    assert crd.urn in widget.dependencies
    assert namespace.urn in deployment.dependencies
    secret = expanded.get("kubernetes:core/v1:Secret", "widgets:widgets/widget-token")
    assert secret.is_secret("stringData") and not secret.is_secret("metadata")


def test_ops04_judges_the_children_not_the_opaque_component(expanded: Recording) -> None:
    """Before expansion OPS-04 saw one `ConfigFile` and nothing inside it."""
    findings = evaluate(expanded, [known_types_only], graph_checks=[])
    flagged = {f.resource_name for f in findings}
    # Widget is nobody's reviewed type: refused. The CRD, Namespace, Deployment and Secret are known.
    assert flagged == {"widgets:default/first"}


def test_a_first_preview_expands_the_same_children_with_unknown_ids(tmp_path: Path) -> None:
    (tmp_path / "widgets.yaml").write_text(MANIFEST, encoding="utf-8")
    first = _run(tmp_path, "widgets.yaml", first_preview=True)
    children = first.children_of(first.get("kubernetes:yaml/v2:ConfigFile", "widgets"))
    assert len(children) == 5 and all(c.id == "" for c in children)


def test_a_missing_file_fails_like_the_providers_read(tmp_path: Path) -> None:
    with pytest.raises(ProviderCheckError, match=r"reading YAML file from disk: open absent\.yaml"):
        _run(tmp_path, "absent.yaml")


def test_a_url_is_refused_offline(tmp_path: Path) -> None:
    with pytest.raises(ProviderCheckError, match="vendored files, not URLs"):
        _run(tmp_path, "https://example.com/v1.0.0/install.yaml")


def test_the_real_stacks_record_the_gateway_api_crds_with_their_real_tokens() -> None:
    recording = preview("dev").recording
    crds = recording.by_type("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")
    assert sorted(c.name for c in crds) == [
        "cilium-gateway-api-standard:gatewayclasses.gateway.networking.k8s.io",
        "cilium-gateway-api-standard:gateways.gateway.networking.k8s.io",
        "cilium-gateway-api-standard:grpcroutes.gateway.networking.k8s.io",
        "cilium-gateway-api-standard:httproutes.gateway.networking.k8s.io",
        "cilium-gateway-api-standard:referencegrants.gateway.networking.k8s.io",
        "cilium-gateway-api-tlsroute:tlsroutes.gateway.networking.k8s.io",
    ]
    by_urn = recording.by_urn()
    assert {by_urn[c.parent].type for c in crds if c.parent} == {
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:yaml/v2:ConfigFile",
    }
    # The files are not committed: without `make vendor` the lock's index stands in, labelled so.
    assert all(c.origin is not None and c.origin.split()[0] in ("file", "lock") for c in crds)
    assert not [f for f in preview("dev").findings if f.rule_id == "OPS-04"]


def test_a_remote_component_the_engine_cannot_expand_is_named_not_hidden() -> None:
    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        k8s.helm.v4.Chart("chart", chart="oci://example.invalid/chart", opts=pulumi.ResourceOptions(provider=provider))

    recording = run_program(program, project="homelab", stack="test")
    assert recording.notes == [
        "kubernetes:helm.sh/v4:Chart 'chart' is a remote component the offline engine does not expand: "
        "the children its provider registers are not shown and no rule judges them"
    ]


def test_a_config_file_with_an_unknown_path_registers_no_children_in_the_first_preview(tmp_path: Path) -> None:
    (tmp_path / "widgets.yaml").write_text(MANIFEST, encoding="utf-8")

    def program() -> None:
        schematic = talos.imagefactory.Schematic("schematic", schematic="customization: {}\n")
        k8s.yaml.v2.ConfigFile("widgets", file=schematic.id.apply(lambda _: "widgets.yaml"))

    first = run_program(program, project="homelab", stack="test", workdir=tmp_path, view="first-preview")
    update = run_program(program, project="homelab", stack="test", workdir=tmp_path)
    assert not first.children_of(first.get("kubernetes:yaml/v2:ConfigFile", "widgets"))
    assert "preview is incomplete" in first.notes[0]
    assert len(view_mismatch(first, update)) == 5
