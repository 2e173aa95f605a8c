"""The platform layer as the stacks compose it: what prod/cloud/dev register, bad input, Argo CD's OIDC.

Bad input is checked by each stack's `load()` (the fast path, no program run) and, once per kind of
mistake, through the CLI (exit 2, one line naming the key) and the engine (nothing registered).
"""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import stacks
from homelab import stackrun
from homelab.cli import main
from homelab.engine import Recording, StackOutputs, run_program
from stacks.config import ConfigError
from tests.stacks.test_k8s_schemas import kubernetes_minor, objects, validate

PLATFORM = "homelab:platform"


def stack_config(stack: str, edit: Callable[[dict[str, Any]], None]) -> tuple[dict[str, str], list[str]]:
    inp = stackrun.load_stack_input(stack)
    config = dict(inp.config)
    platform = json.loads(config[PLATFORM])
    edit(platform)
    config[PLATFORM] = json.dumps(platform)
    return config, inp.secret_keys


def load_error(stack: str, edit: Callable[[dict[str, Any]], None]) -> str:
    config, secret_keys = stack_config(stack, edit)
    with pytest.raises(ConfigError) as error:
        stackrun.check_stack_config(stack, config, secret_keys)
    return str(error.value)


def _undeclared_key(p: dict[str, Any]) -> None:
    p["secrets"]["bitwarden"]["keys"] = {}


def _namespace_not_allowed(p: dict[str, Any]) -> None:
    p["secrets"]["bitwarden"]["allowed_namespaces"] = ["komga"]


def _chart_range(p: dict[str, Any]) -> None:
    p["longhorn"]["chart_version"] = "~1.9"


def _latest_chart(p: dict[str, Any]) -> None:
    p["secrets"]["external_secrets_version"] = "latest"


def _unpinned_crds(p: dict[str, Any]) -> None:
    p["secrets"]["external_secrets_version"] = "2.8.0"


def _short_refresh(p: dict[str, Any]) -> None:
    p["secrets"]["refresh_interval"] = "30m"


def _twingate_floating(p: dict[str, Any]) -> None:
    p["twingate"]["image"] = "twingate/connector:latest"


CLIENT = {
    "image": "twingate/client:1.0.0",
    "nfs_media": {"server": "192.168.68.51", "share": "/tank/media", "csi_chart_version": "v4.11.0"},
}


def _client_floating(p: dict[str, Any]) -> None:
    p["twingate"]["client"] = {**CLIENT, "image": "twingate/client:latest"}


def _client_at_home(p: dict[str, Any]) -> None:
    p["twingate"]["client"] = CLIENT


def _client_nfs_by_name(p: dict[str, Any]) -> None:
    p["twingate"]["client"] = {**CLIENT, "nfs_media": {**CLIENT["nfs_media"], "server": "nas.home"}}


def _replicas(p: dict[str, Any]) -> None:
    p["longhorn"]["replica_count"] = 4


def _unknown_key(p: dict[str, Any]) -> None:
    p["argocd_acess"] = True


@pytest.mark.parametrize(
    ("stack", "edit", "fragments"),
    [
        (
            "prod",
            _undeclared_key,
            ("homelab:catalog.services.romm.secrets.ROMM_AUTH_SECRET_KEY", "'romm-auth-secret-key' is not declared"),
        ),
        (
            "cloud",
            _undeclared_key,
            ("homelab:catalog.services.vaultwarden.secrets.ADMIN_TOKEN", "homelab:platform.secrets.bitwarden.keys"),
        ),
        ("prod", _namespace_not_allowed, ("homelab:catalog.services.romm.secrets", "'romm' is not allowed")),
        ("prod", _chart_range, ("homelab:platform.longhorn.chart_version", "exact chart version")),
        ("cloud", _latest_chart, ("homelab:platform.secrets.external_secrets_version", "exact chart version")),
        ("prod", _unpinned_crds, ("homelab:platform.secrets.external_secrets_version", "v2.8.0 is not pinned")),
        ("prod", _short_refresh, ("homelab:platform.secrets.refresh_interval", "under one hour")),
        ("cloud", _twingate_floating, ("homelab:platform.twingate.image", "exact version tag")),
        ("cloud", _client_floating, ("homelab:platform.twingate.client.image", "exact version tag")),
        ("prod", _client_at_home, ("homelab:platform.twingate.client", "only the cloud stack")),
        ("cloud", _client_nfs_by_name, ("homelab:platform.twingate.client.nfs_media.server", "IPv4")),
        ("prod", _replicas, ("homelab:platform.longhorn.replica_count", "at most 3")),
        ("dev", _unknown_key, ("homelab:platform.argocd_acess", "unknown key")),
    ],
)
def test_bad_platform_config_names_the_key(stack, edit, fragments):
    message = load_error(stack, edit)
    for fragment in fragments:
        assert fragment in message


def _with_argocd(p: dict[str, Any], path: str = "gitops") -> None:
    p["argocd"] = {
        "chart_version": "10.1.1",
        "app_version": "v3.4.4",
        "hostname": "argocd.example.net",
        "repo_url": "https://github.com/example/homelab",
        "path": path,
        "clusters": {
            "dev": {"stack": "dev", "environment": "dev"},
            "cloud": {"stack": "cloud", "environment": "cloud"},
        },
    }


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("gitops/missing", "'gitops/missing' is not a folder"),
        ("../outside", "'../outside' is not a folder"),
        ("docs", "docs/overlays/cloud/kustomization.yaml does not exist"),
    ],
)
def test_a_gitops_path_that_does_not_exist_is_refused(path, fragment):
    message = load_error("prod", lambda p: _with_argocd(p, path))
    assert message.startswith("homelab:platform.argocd.path: ") and fragment in message


def test_a_catalog_secret_error_registers_nothing():
    recording = Recording(project="homelab", stack="prod")
    with pytest.raises(ConfigError, match=r"romm\.secrets\.ROMM_AUTH_SECRET_KEY"):
        stackrun.run_stack(
            "prod",
            overrides={"platform": {**_platform("prod"), "secrets": _without_keys(_platform("prod")["secrets"])}},
            into=recording,
        )
    assert recording.resources == []


def _platform(stack: str) -> dict[str, Any]:
    return json.loads(stackrun.load_stack_input(stack).config[PLATFORM])


def _without_keys(secrets: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(secrets)
    changed["bitwarden"]["keys"] = {}
    return changed


def test_cli_reports_an_undeclared_secret_as_exit_2(isolated_project: Path, capsys):
    path = isolated_project / "Pulumi.cloud.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"][PLATFORM]["secrets"]["bitwarden"]["keys"] = {}
    path.write_text(yaml.safe_dump(document))
    code = main(["--project-dir", str(isolated_project), "preview", "cloud"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "homelab:catalog.services.vaultwarden.secrets.ADMIN_TOKEN" in err


# --- the committed stacks -------------------------------------------------------------------------
def _types(recording: Recording) -> set[str]:
    return {r.type for r in recording.resources}


def test_prod_registers_secrets_longhorn_twingate_and_policies(previewed):
    rec = previewed("prod").recording
    assert {
        "homelab:k8s:ArgoCd",
        "kubernetes:argoproj.io/v1alpha1:ApplicationSet",
        "homelab:k8s:CertManager",
        "homelab:k8s:ExternalSecrets",
        "homelab:k8s:AppSecrets",
        "homelab:k8s:Longhorn",
        "homelab:k8s:TwingateSite",
        "homelab:k8s:NetworkPolicies",
        "kubernetes:external-secrets.io/v1:ClusterSecretStore",
    } <= _types(rec)
    # Talos gets Longhorn's extensions and mount; the VMs ignore boot-media changes (no replacement).
    schematic = rec.get("talos:imageFactory/schematic:Schematic", "talos-schematic").inputs["schematic"]
    assert "siderolabs/iscsi-tools" in schematic and "siderolabs/util-linux-tools" in schematic
    applies = rec.by_type("talos:machine/configurationApply:ConfigurationApply")
    assert applies and all("/var/lib/longhorn" in a.inputs["machineConfigurationInput"] for a in applies)
    for vm in rec.by_type("proxmoxve:index/vmLegacy:VmLegacy"):
        if vm.name.startswith("gaming"):
            continue
        assert vm.ignore_changes, vm.name


def test_cloud_and_dev_export_argocd_registrations_as_secrets(previewed):
    for stack, server in (("dev", "https://192.168.68.61:6443"), ("cloud", "https://")):
        output = previewed(stack).recording.outputs["argocd_cluster"]
        assert output.secret, stack
        assert str(output.value["server"]).startswith(server) and output.value["server"].endswith(":6443")
    cloud = previewed("cloud").recording
    assert cloud.outputs["twingate_service_key"].secret


def test_every_workload_namespace_has_a_default_deny_policy(previewed):
    for stack in ("dev", "prod", "cloud"):
        findings = [f for f in previewed(stack).findings if f.rule_id == "NET-13"]
        assert findings == [], stack
        denied = {
            r.inputs["metadata"]["namespace"]
            for r in previewed(stack).recording.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
            if r.inputs["metadata"]["name"] == "default-deny-ingress"
        }
        assert denied, stack


# --- Argo CD on prod: enabled with the identity stack's client, or failing loudly without it ---------
def run_prod_with_argocd(oidc: dict[str, Any] | None) -> Recording:
    refs = {name: stackrun._outputs_of(name, None) for name in ("dev", "cloud")}
    cloud = refs["cloud"]
    values = {k: v for k, v in cloud.values.items() if k != "oidc_argocd"}
    if oidc is not None:
        values["oidc_argocd"] = oidc
    refs["cloud"] = StackOutputs(values=values, secret_names=cloud.secret_names | {"oidc_argocd"})
    config, secret_keys = stack_config("prod", _with_argocd)

    return run_program(
        lambda: stacks.build("prod"),
        project="homelab",
        stack="prod",
        config=config,
        secret_keys=secret_keys,
        stack_outputs=lambda name: refs[name.rsplit("/", 1)[-1]],
    )


def test_prod_with_argocd_registers_the_release_clusters_and_root():
    rec = run_prod_with_argocd(
        {"issuer": "https://auth.example.net/application/o/argocd/", "client_id": "argocd", "client_secret": "x"}
    )
    assert "kubernetes:argoproj.io/v1alpha1:ApplicationSet" in _types(rec)
    clusters = {
        r.inputs["metadata"]["name"]
        for r in rec.by_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"].get("labels", {}).get("argocd.argoproj.io/secret-type") == "cluster"
    }
    assert clusters == {"cluster-in-cluster", "cluster-dev", "cluster-cloud"}
    dev = rec.get("kubernetes:core/v1:Secret", "argocd-cluster-dev")
    config = json.loads(dev.inputs["stringData"]["config"])
    assert config["bearerToken"].startswith("offline-placeholder-service-account-token-")
    assert rec.get("kubernetes:core/v1:Namespace", "argocd-namespace")
    policies = {r.name for r in rec.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert "network-policies-argocd-deny" in policies
    # Argo CD's objects validate too.
    argocd = [r for r in rec.resources if r.name.startswith(("argocd", "network-policies-argocd"))]
    for name, type_, document in objects(argocd):
        assert name
        validate(type_, document, kubernetes_minor("prod"))


def test_prod_with_argocd_fails_loudly_without_the_identity_output():
    with pytest.raises(ConfigError, match=r"stack 'cloud' exports no `oidc_argocd\.client_secret`"):
        run_prod_with_argocd(None)
