"""The mutation suite: break the REAL stacks one way at a time; the expected rule must catch each break.

Each stack is previewed once (module-scoped). A mutation either changes the stack's config (the
program runs again with `run_stack(..., overrides=...)`; a break the typed config already refuses
counts as caught by validation and its message is asserted), or edits a copy of the recorded graph
(wire props, options, added or removed resources) before the pack evaluates it, which is what the
analyzer would see had a component been changed that way. The unmodified stacks have no mandatory
violation and no mandatory rule that cannot run.
"""

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest

from homelab.engine import SECRET_SIG, SIG_KEY, RecordedResource, Recording, StackOutput
from homelab.findings import Finding
from homelab.graph_checks import GRAPH_CHECKS
from homelab.policy_eval import evaluate
from homelab.stackrun import load_stack_input, project_root
from policies.rules import RULES
from stacks.config.base import ConfigError
from tests.policies.previews import Preview, preview, run

MANDATORY = {r.id for r in RULES if r.level.value == "mandatory"}


@pytest.fixture(scope="module")
def dev() -> Preview:
    return preview("dev")


@pytest.fixture(scope="module")
def prod() -> Preview:
    return preview("prod")


@pytest.fixture(scope="module")
def cloud() -> Preview:
    return preview("cloud")


# --- editing a recorded graph -------------------------------------------------------------------


def _set_path(document: dict[str, Any], path: str, wrap: Callable[[Any], Any]) -> None:
    """Apply `wrap` to the value at a dotted path with `[i]` indexes (as `secret_paths` names them)."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        if name:
            parts.append(name)
        for index in rest.split("[") if rest else []:
            parts.append(int(index.rstrip("]")))
    target: Any = document
    for part in parts[:-1]:
        target = target[part]
    last = parts[-1]
    if isinstance(target, dict) and last in target:
        target[last] = wrap(target[last])
    elif isinstance(target, list) and isinstance(last, int):
        items: list[Any] = target
        items[last] = wrap(items[last])


def _wire(inputs: Mapping[str, Any], secret_paths: tuple[str, ...]) -> dict[str, Any]:
    wire = copy.deepcopy(dict(inputs))
    for path in sorted(secret_paths, key=len, reverse=True):
        _set_path(wire, path, lambda value: {SIG_KEY: SECRET_SIG, "value": value})
    return wire


def mutate(
    recording: Recording,
    name: str,
    edit: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> Recording:
    """A copy of `recording` with resource `name`'s inputs edited in place by `edit` and its
    options (protect, retain_on_delete, additional_secret_outputs, secret_paths, type) replaced."""
    resources: list[RecordedResource] = []
    found = False
    for resource in recording.resources:
        if resource.name != name:
            resources.append(resource)
            continue
        found = True
        inputs = copy.deepcopy(dict(resource.inputs))
        if edit is not None:
            edit(inputs)
        secret_paths = tuple(options.pop("secret_paths", resource.secret_paths))
        wire = _wire(inputs, secret_paths)
        # The resource's state echoes its inputs (stack rules read the state), plus what it computed.
        computed = {k: v for k, v in resource.outputs_wire.items() if k not in resource.wire}
        outputs = {**computed, **wire}
        resources.append(
            replace(resource, inputs=inputs, wire=wire, outputs_wire=outputs, secret_paths=secret_paths, **options)
        )
    assert found, f"no resource {name!r} in the {recording.stack} graph"
    return Recording(recording.project, recording.stack, resources, dict(recording.outputs))


def without(recording: Recording, name: str) -> Recording:
    kept = [r for r in recording.resources if r.name != name]
    assert len(kept) == len(recording.resources) - 1, name
    return Recording(recording.project, recording.stack, kept, dict(recording.outputs))


def adding(recording: Recording, type_: str, name: str, inputs: Mapping[str, Any], parent: str) -> Recording:
    """`recording` plus one resource registered inside the component `parent` (a resource name)."""
    owner = next(r for r in recording.resources if r.name == parent)
    added = replace(
        owner,
        type=type_,
        name=name,
        urn=f"urn:pulumi:{recording.stack}::homelab::{owner.type}${type_}::{name}",
        custom=True,
        parent=owner.urn,
        wire=copy.deepcopy(dict(inputs)),
        outputs_wire=copy.deepcopy(dict(inputs)),
        inputs=copy.deepcopy(dict(inputs)),
        secret_paths=(),
        dependencies=(),
        property_dependencies={},
        protect=False,
        retain_on_delete=False,
        additional_secret_outputs=(),
    )
    return Recording(recording.project, recording.stack, [*recording.resources, added], dict(recording.outputs))


def caught(base: Preview, recording: Recording, rule_id: str, resource: str | None = None) -> list[Finding]:
    """The blocking findings of `rule_id` on `recording`; fails unless there is at least one.

    Only that rule (or graph check) is evaluated: a rule's findings depend on the graph and its own
    config only, never on the other rules, and the whole pack costs up to a tenth of a second a call."""
    rules = [r for r in RULES if r.id == rule_id]
    checks = [c for c in GRAPH_CHECKS if c.id == rule_id]
    assert rules or checks, f"no rule or graph check {rule_id}"
    evaluated = evaluate(recording, rules, config=base.config, graph_checks=checks)
    findings = [f for f in evaluated if f.blocking and f.rule_id == rule_id]
    assert findings, f"{rule_id} did not catch the mutation"
    if resource is not None:
        assert resource in {f.resource_name for f in findings}, [f.message for f in findings]
    return findings


def section(stack: str, name: str) -> dict[str, Any]:
    return json.loads(load_stack_input(stack).config[f"homelab:{name}"])


def rerun(stack: str, name: str, edit: Callable[[dict[str, Any]], None]) -> Recording:
    """Run the real program again with one config section edited."""
    value = section(stack, name)
    edit(value)
    return run(stack, overrides={name: value})


# --- the unmodified stacks ----------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod", "cloud"])
def test_unmodified_stack_passes_the_gate(stack: str) -> None:
    base = preview(stack)
    assert [f.message for f in base.findings if f.blocking] == []
    assert [f.message for f in base.findings if f.kind == "cannot-run" and f.rule_id in MANDATORY] == []


# --- network exposure ---------------------------------------------------------------------------


def test_security_list_opened_to_the_world(cloud: Preview) -> None:
    def open_ssh(inputs: dict[str, Any]) -> None:
        inputs["ingressSecurityRules"].append(
            {"protocol": "6", "source": "0.0.0.0/0", "sourceType": "CIDR_BLOCK", "tcpOptions": {"min": 22, "max": 22}}
        )

    [finding] = caught(cloud, mutate(cloud.recording, "cloud-security-list", open_ssh), "NET-01")
    assert finding.message.startswith(
        "[NET-01] security list 'cloud-security-list' admits ingress from 0.0.0.0/0 (TCP 22)."
    )


def test_kubernetes_api_rule_opened_to_the_world(cloud: Preview) -> None:
    def world(inputs: dict[str, Any]) -> None:
        inputs["source"] = "0.0.0.0/0"

    recording = mutate(cloud.recording, "cloud-kubernetes-api-from-203-0-113-10-32", world)
    caught(cloud, recording, "NET-02")
    [finding] = caught(cloud, recording, "NET-09")
    assert "admits admin port(s) 6443 from 0.0.0.0/0" in finding.message


def test_world_admin_cidr_is_refused_by_the_config() -> None:
    with pytest.raises(ConfigError, match=r"homelab:network\.admin_cidrs.*admits far more"):
        rerun("cloud", "network", lambda net: net.update(admin_cidrs=["0.0.0.0/0"]))


def test_admin_cidr_not_in_the_policy_config(cloud: Preview) -> None:
    recording = rerun("cloud", "network", lambda net: net.update(admin_cidrs=["198.51.100.0/24"]))
    [*findings] = caught(cloud, recording, "NET-09")
    assert {f.resource_name for f in findings} >= {"cloud-kubernetes-api-from-198-51-100-0-24"}


def test_public_api_balancer_without_nsg(cloud: Preview) -> None:
    recording = mutate(cloud.recording, "cloud-api-nlb", lambda i: i.update(networkSecurityGroupIds=[]))
    caught(cloud, recording, "NET-12", "cloud-api-nlb")


def test_default_security_list_left_to_oci(cloud: Preview) -> None:
    [finding] = caught(cloud, without(cloud.recording, "cloud-default-security-list"), "NET-10", "cloud-vcn")
    assert "keeps OCI's default security list unmanaged" in finding.message


def test_load_balancer_service(prod: Preview) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "grafana", "namespace": "monitoring", "labels": {"app.kubernetes.io/name": "grafana"}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "grafana"}},
    }
    recording = adding(prod.recording, "kubernetes:core/v1:Service", "grafana-lb", service, "media-storage-class")
    [finding] = caught(prod, recording, "NET-04", "grafana-lb")
    assert finding.message.startswith("[NET-04] Service monitoring/grafana is of type LoadBalancer.")


def with_app(dev: Preview) -> Recording:
    """The dev graph plus a compliant app workload (the provisioner's pod, in an app namespace)."""
    provisioner = next(r for r in dev.recording.resources if r.name == "storage-deployment")
    workload = copy.deepcopy(dict(provisioner.inputs))
    # `komga` is one of DEV's workload namespaces, so it has its default-deny policy (NET-13).
    workload["metadata"] = {"name": "whoami", "namespace": "komga", "labels": {"app.kubernetes.io/name": "whoami"}}
    return adding(dev.recording, "kubernetes:apps/v1:Deployment", "whoami", workload, "storage-class")


def test_compliant_app_workload_passes(dev: Preview) -> None:
    assert [f.message for f in evaluate(with_app(dev), config=dev.config) if f.blocking] == []


def test_workload_in_a_namespace_without_default_deny(dev: Preview) -> None:
    def elsewhere(inputs: dict[str, Any]) -> None:
        inputs["metadata"]["namespace"] = "scratch"

    [finding] = caught(dev, mutate(with_app(dev), "whoami", elsewhere), "NET-13")
    assert "namespace scratch runs 'whoami'" in finding.message


def test_host_network_workload(dev: Preview) -> None:
    def host_network(inputs: dict[str, Any]) -> None:
        inputs["spec"]["template"]["spec"]["hostNetwork"] = True

    caught(dev, mutate(with_app(dev), "whoami", host_network), "NET-05", "whoami")


def test_tunnel_without_catch_all(cloud: Preview) -> None:
    def drop_catch_all(inputs: dict[str, Any]) -> None:
        inputs["config"]["ingresses"].pop()

    caught(cloud, mutate(cloud.recording, "prod-config", drop_catch_all), "NET-06", "prod-config")


def test_tunnel_routing_to_a_public_origin(cloud: Preview) -> None:
    def public_origin(inputs: dict[str, Any]) -> None:
        inputs["config"]["ingresses"][0]["service"] = "https://grafana.example.com:443"

    [finding] = caught(cloud, mutate(cloud.recording, "prod-config", public_origin), "NET-06")
    assert "points at grafana.example.com, which is not an internal origin" in finding.message


def test_dns_record_to_the_home_address(cloud: Preview) -> None:
    def a_record(inputs: dict[str, Any]) -> None:
        inputs.update(type="A", content="198.51.100.23", proxied=False)

    caught(cloud, mutate(cloud.recording, "prod-dns-komga", a_record), "NET-07", "prod-dns-komga")


def test_locally_managed_tunnel(cloud: Preview) -> None:
    caught(
        cloud,
        mutate(cloud.recording, "prod-tunnel", lambda i: i.update(configSrc="local")),
        "NET-11",
        "prod-tunnel",
    )


def test_router_port_forward(prod: Preview) -> None:
    recording = adding(
        prod.recording, "unifi:port/forward:Forward", "plex", {"dstPort": "32400", "fwdIp": "192.168.68.72"}, "tank"
    )
    caught(prod, recording, "NET-08", "plex")


# --- security -----------------------------------------------------------------------------------


def test_origin_without_tls_verification(cloud: Preview) -> None:
    def no_verify(inputs: dict[str, Any]) -> None:
        inputs["config"]["ingresses"][0].setdefault("originRequest", {})["noTlsVerify"] = True

    caught(cloud, mutate(cloud.recording, "prod-config", no_verify), "SEC-01", "prod-config")


def test_insecure_proxmox_provider() -> None:
    recording = rerun("prod", "proxmox", lambda p: p.update(insecure=True))
    base = preview("prod")
    caught(base, recording, "SEC-02", "proxmox")


def test_admin_service_made_public_is_refused_by_the_catalog() -> None:
    def public_grafana(catalog: dict[str, Any]) -> None:
        catalog["services"] = {"grafana": {"tier": "public"}}

    with pytest.raises(ConfigError, match=r"homelab:catalog\.services\.grafana\.tier: admin services are never public"):
        rerun("cloud", "catalog", public_grafana)


def test_admin_route_without_access_application(cloud: Preview) -> None:
    [finding] = caught(cloud, without(cloud.recording, "prod-access-grafana"), "SEC-03")
    assert "tunnel hostname grafana.example.net has no Cloudflare Access application" in finding.message


def test_access_policy_without_mfa(cloud: Preview) -> None:
    recording = mutate(cloud.recording, "prod-admins", lambda i: i.pop("requires"))
    findings = caught(cloud, recording, "SEC-04")
    assert {f.resource_name for f in findings} == {
        "prod-access-alertmanager",
        "prod-access-argocd",
        "prod-access-grafana",
        "prod-access-ntfy",
        "prod-access-prometheus",
    }


def test_node_vm_with_ssh_keys(prod: Preview) -> None:
    def keys(inputs: dict[str, Any]) -> None:
        inputs["initialization"]["userAccount"] = {"username": "admin", "keys": ["ssh-ed25519 AAAAC3Nz admin"]}

    caught(prod, mutate(prod.recording, "talos-prod-worker-1", keys), "SEC-05", "talos-prod-worker-1")


def test_cloud_node_with_ssh_keys(cloud: Preview) -> None:
    def keys(inputs: dict[str, Any]) -> None:
        inputs["metadata"]["ssh_authorized_keys"] = "ssh-ed25519 AAAAC3Nz admin"

    caught(cloud, mutate(cloud.recording, "cloud-cloud-1-instance", keys), "SEC-05", "cloud-cloud-1-instance")


def test_node_booting_a_general_purpose_image(prod: Preview) -> None:
    def ubuntu(inputs: dict[str, Any]) -> None:
        inputs["url"] = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"

    findings = caught(prod, mutate(prod.recording, "talos-image-pve", ubuntu), "SEC-06")
    assert {f.resource_name for f in findings} == {"talos-prod-cp-1", "talos-prod-worker-1"}


def test_download_without_checksum(prod: Preview) -> None:
    def unchecked(inputs: dict[str, Any]) -> None:
        inputs.pop("checksum")
        inputs.pop("checksumAlgorithm")

    caught(prod, mutate(prod.recording, "talos-image-pve", unchecked), "SEC-16", "talos-image-pve")


def test_privileged_container(dev: Preview) -> None:
    def privileged(inputs: dict[str, Any]) -> None:
        for container in inputs["spec"]["template"]["spec"]["containers"]:
            container["securityContext"] = {"privileged": True}

    caught(dev, mutate(with_app(dev), "whoami", privileged), "SEC-07", "whoami")


def test_secret_env_value_in_plain_text(dev: Preview) -> None:
    def plaintext(inputs: dict[str, Any]) -> None:
        container = inputs["spec"]["template"]["spec"]["containers"][0]
        container.setdefault("env", []).append({"name": "S3_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI/K7MDENG"})

    [finding] = caught(dev, mutate(with_app(dev), "whoami", plaintext), "SEC-09")
    assert "sets S3_SECRET_ACCESS_KEY in plain text" in finding.message


def test_unpinned_image(dev: Preview) -> None:
    def latest(inputs: dict[str, Any]) -> None:
        inputs["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/rancher/local-path-provisioner:latest"

    caught(dev, mutate(with_app(dev), "whoami", latest), "SEC-13", "whoami")


def test_machine_secrets_not_kept_secret(cloud: Preview) -> None:
    recording = mutate(cloud.recording, "cloud-secrets", additional_secret_outputs=())
    caught(cloud, recording, "SEC-10", "cloud-secrets")


def test_instance_hardening_removed(cloud: Preview) -> None:
    def soften(inputs: dict[str, Any]) -> None:
        inputs["isPvEncryptionInTransitEnabled"] = False
        inputs["instanceOptions"] = {"areLegacyImdsEndpointsDisabled": False}

    recording = mutate(cloud.recording, "cloud-cloud-1-instance", soften)
    caught(cloud, recording, "SEC-11", "cloud-cloud-1-instance")
    caught(cloud, recording, "SEC-12", "cloud-cloud-1-instance")


def test_machine_config_user_data_in_plain_text(cloud: Preview) -> None:
    recording = mutate(cloud.recording, "cloud-cloud-1-instance", secret_paths=())
    [finding] = caught(cloud, recording, "SEC-20", "cloud-cloud-1-instance")
    assert "sends `metadata.user_data` in plain text" in finding.message


# --- budgets ------------------------------------------------------------------------------------


def test_gaming_vm_memory_over_the_host_is_refused_by_the_ledger() -> None:
    with pytest.raises(ConfigError, match=r"homelab:host\.memory_mb: host mode 'gaming' needs"):
        rerun("prod", "gaming", lambda g: g.update(memory_mb=40960))


def test_node_memory_pushes_a_mode_over_the_host(prod: Preview) -> None:
    def bigger(inputs: dict[str, Any]) -> None:
        inputs["memory"]["dedicated"] = 24576

    [finding] = caught(prod, mutate(prod.recording, "talos-prod-worker-1", bigger), "BUD-01")
    assert finding.message.startswith("[BUD-01] mode gaming needs 72.0 GiB")


def test_a_fourth_ocpu(cloud: Preview) -> None:
    def more(inputs: dict[str, Any]) -> None:
        inputs["shapeConfig"]["ocpus"] = 3

    [finding] = caught(cloud, mutate(cloud.recording, "cloud-cloud-1-instance", more), "BUD-03")
    assert finding.message.startswith("[BUD-03] A1 instances use 4 OCPUs")


def test_paid_shape(cloud: Preview) -> None:
    recording = mutate(cloud.recording, "oci-mgmt-node-instance", lambda i: i.update(shape="VM.Standard.E4.Flex"))
    caught(cloud, recording, "BUD-02", "oci-mgmt-node-instance")


def test_a_paid_oci_service(cloud: Preview) -> None:
    file_system = {"compartmentId": "ocid1.compartment.oc1..x", "availabilityDomain": "AD-1"}
    recording = adding(cloud.recording, "oci:FileStorage/fileSystem:FileSystem", "nfs", file_system, "oci-mgmt")
    [finding] = caught(cloud, recording, "BUD-02", "nfs")
    assert "not in the Always Free catalogue" in finding.message


def test_electricity_at_a_higher_rate_breaks_the_yearly_cap(prod: Preview) -> None:
    """BUD-08 reads the prod stack's `cost_estimate` export: its electricity lines as five times the
    rate would make them (advisory: reported, not blocking)."""
    exported = copy.deepcopy(prod.recording.outputs["cost_estimate"].value)
    for line in exported["lines"]:
        if line["item"].startswith("electricity:"):
            line["yearly"] = round(line["yearly"] * 5, 2)
    exported["yearly_total"] = round(sum(line["yearly"] for line in exported["lines"]), 2)
    recording = Recording(prod.recording.project, "prod", list(prod.recording.resources), dict(prod.recording.outputs))
    recording.outputs["cost_estimate"] = StackOutput(value=exported, secret=False, known=True)
    assert not [f for f in prod.findings if f.rule_id == "BUD-08"]
    [finding] = [f for f in evaluate(recording, config=prod.config) if f.rule_id == "BUD-08"]
    assert finding.level == "advisory" and finding.kind == "violation"
    assert "over the NFR-012 cap of 1,000.00 USD" in finding.message


def test_boot_volumes_over_200_gb(cloud: Preview) -> None:
    def bigger(inputs: dict[str, Any]) -> None:
        inputs["sourceDetails"]["bootVolumeSizeInGbs"] = "150"

    [finding] = caught(cloud, mutate(cloud.recording, "cloud-cloud-1-instance", bigger), "BUD-04")
    assert "over the Always Free 200 GB" in finding.message


# --- data protection ----------------------------------------------------------------------------


def test_protect_dropped_from_the_pool(prod: Preview) -> None:
    caught(prod, mutate(prod.recording, "tank-pool", protect=False), "DAT-01", "tank-pool")


def test_retain_dropped_from_the_pool(prod: Preview) -> None:
    caught(prod, mutate(prod.recording, "tank-pool", retain_on_delete=False), "DAT-02", "tank-pool")


def test_protect_dropped_from_a_node(dev: Preview) -> None:
    recording = rerun("dev", "cluster", lambda c: c.update(protect_vms=False))
    caught(dev, recording, "DAT-01", "talos-dev-cp-1")


def test_data_volume_deletable(cloud: Preview) -> None:
    recording = mutate(cloud.recording, "oci-mgmt-data", protect=False, retain_on_delete=False)
    caught(cloud, recording, "DAT-01", "oci-mgmt-data")
    caught(cloud, recording, "DAT-02", "oci-mgmt-data")


def test_public_unversioned_bucket(cloud: Preview) -> None:
    recording = mutate(
        cloud.recording, "cloud-talos-images", lambda i: i.update(accessType="ObjectRead", versioning="Disabled")
    )
    findings = caught(cloud, recording, "DAT-06", "cloud-talos-images")
    assert len(findings) == 2


# --- hygiene ------------------------------------------------------------------------------------


def test_helm_chart_range_is_refused_by_the_config() -> None:
    with pytest.raises(ConfigError, match=r"homelab:cilium\.chart_version"):
        rerun("prod", "cilium", lambda c: c.update(chart_version="~1.17"))


def test_unpinned_helm_release(prod: Preview) -> None:
    recording = mutate(prod.recording, "cilium-release", lambda i: i.pop("version"))
    caught(prod, recording, "OPS-02", "cilium-release")


def test_unknown_resource_type(prod: Preview) -> None:
    recording = mutate(prod.recording, "gaming-vm", type="proxmoxve:index/vm:Vm")
    caught(prod, recording, "OPS-04", "gaming-vm")


# --- code mutations (`make mutate`) ---------------------------------------------------------------
#
# The tests above break the recorded graph; `make mutate` (tests/mutate.py) breaks the code itself:
# each mutation below is one small edit, applied alone to a scratch copy of the repository, after
# which `tests` must fail. A mutation whose `old` text no longer occurs exactly once is reported as
# stale by `make mutate`: update it with the code it mutates.


@dataclass(frozen=True)
class CodeMutation:
    id: str
    description: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


POLICY_TESTS = ("tests/policies", "tests/test_mutations.py")
POOL_TESTS = ("tests/test_scripts.py", "tests/components/test_proxmox_zfs.py", "tests/stacks/test_prod.py")
GRAPH_TESTS = ("tests/test_snapshots.py", "tests/test_mutations.py", "tests/stacks", "tests/components")
CONFIG_TESTS = ("tests/test_config_fuzz.py", "tests/test_cli.py", "tests/stacks", "tests/test_mutations.py")


def _flip(rule_file: str, id_: str, description: str, old: str) -> CodeMutation:
    return CodeMutation(
        id_, description, f"policies/rules/{rule_file}", old, old.replace(" > ", " >= ", 1), POLICY_TESTS
    )


CODE_MUTATIONS: tuple[CodeMutation, ...] = (
    CodeMutation(
        "net09-ignores-internal-cidrs",
        "NET-09 ignores its internalCidrs config (reads the built-in private ranges)",
        "policies/rules/network.py",
        'allowed = [*config["adminCidrs"], *config["internalCidrs"]]',
        'allowed = [*config["adminCidrs"], *PRIVATE_CIDRS]',
        POLICY_TESTS,
    ),
    _flip(
        "budget.py",
        "bud04-backups-ge",
        "BUD-04: `>` turned into `>=` on the volume-backup limit",
        'if used.volume_backups > int(config["volumeBackups"]):',
    ),
    CodeMutation(
        "pool-script-deleted-fi",
        "a `fi` deleted from the ZFS pool script",
        "components/proxmox/zfs.py",
        '            "  fi",\n            "fi",\n            f"health=$(zpool list -H -o health {p})",',
        '            "  fi",\n            f"health=$(zpool list -H -o health {p})",',
        POOL_TESTS,
    ),
    _flip(
        "budget.py",
        "bud04-storage-ge",
        "BUD-04: `>` turned into `>=` on the block-storage limit",
        "if used.block_storage_gb > limit:",
    ),
    _flip(
        "budget.py",
        "bud03-ocpus-ge",
        "BUD-03: `>` turned into `>=` on the A1 OCPU limit",
        "if used.a1_ocpus > ocpu_limit:",
    ),
    _flip(
        "budget.py",
        "bud03-micro-ge",
        "BUD-03: `>` turned into `>=` on the E2.1.Micro count",
        "if used.e2_micro_instances > micro_limit:",
    ),
    _flip("budget.py", "bud01-host-ge", "BUD-01: `>` turned into `>=` on the host memory cap", "if total > cap:"),
    CodeMutation(
        "bud08-cap-lt",
        "BUD-08: a total exactly at the cap counted as over it (`<=` turned into `<`)",
        "homelab/budget.py",
        "else self.total_in_cap_currency <= self.cap",
        "else self.total_in_cap_currency < self.cap",
        POLICY_TESTS,
    ),
    CodeMutation(
        "cost-conversion-inverted",
        "a currency conversion divides where it should multiply by the US-dollar rate",
        "homelab/budget.py",
        "return amount * rates[source] / rates[target]",
        "return amount * rates[target] / rates[source]",
        POLICY_TESTS,
    ),
    _flip("budget.py", "bud06-target-ge", "BUD-06: `>` turned into `>=` on a mode target", "if total > target:"),
    _flip(
        "security.py",
        "sec04-session-ge",
        "SEC-04: `>` turned into `>=` on the session length",
        'if hours is not None and hours > float(config["maxSessionHours"]):',
    ),
    CodeMutation(
        "net04-ignores-allowlist",
        "NET-04 ignores its allowedServices config",
        "policies/rules/network.py",
        'if name not in config["allowedServices"]:',
        "if name not in []:",
        POLICY_TESTS,
    ),
    CodeMutation(
        "sec13-ignores-require-digest",
        "SEC-13 ignores its requireDigest config",
        "policies/rules/workloads.py",
        'bool(config["requireDigest"])',
        "False",
        POLICY_TESTS,
    ),
    CodeMutation(
        "sec09-ignores-pointer-pattern",
        "SEC-09 ignores its allowedNamePattern config",
        "policies/rules/workloads.py",
        'pointer = re.compile(config["allowedNamePattern"])',
        'pointer = re.compile(r"(?i)(_FILE|_PATH|_DIR|_URL|_ENDPOINT|_NAME|_REF)$")',
        POLICY_TESTS,
    ),
    CodeMutation(
        "dat01-ignores-guest-tags",
        "DAT-01 ignores its guestTags config",
        "policies/rules/data.py",
        'lost = data_bearing(args.resource_type, args.props, config["guestTags"])',
        "lost = data_bearing(args.resource_type, args.props)",
        POLICY_TESTS,
    ),
    CodeMutation(
        "zfs-pool-unprotected",
        "`protect=True` dropped from the ZFS pool's data-bearing children",
        "components/proxmox/zfs.py",
        "pulumi.ResourceOptions(protect=True, retain_on_delete=True))",
        "pulumi.ResourceOptions(retain_on_delete=True))",
        GRAPH_TESTS,
    ),
    CodeMutation(
        "mgmt-data-volume-unprotected",
        "`protect=True` dropped from the management VM's data volume",
        "components/oci/management_vm.py",
        "opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True, retain_on_delete=True)),",
        "opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),",
        GRAPH_TESTS,
    ),
    CodeMutation(
        "talos-vm-boot-media-not-ignored",
        "`ignore_changes` on the Talos VMs' boot media removed (an image change would replace a VM)",
        "components/proxmox/talos_vms.py",
        "[*BOOT_MEDIA_FIELDS, ",
        "[",
        GRAPH_TESTS,
    ),
    CodeMutation(
        "talos-secrets-version-not-ignored",
        "`ignore_changes` on the Talos machine secrets removed (a new contract would regenerate the PKI)",
        "components/talos/cluster.py",
        'ignore_changes=["talosVersion"],',
        "ignore_changes=[],",
        GRAPH_TESTS,
    ),
    CodeMutation(
        "talos-secrets-not-secret",
        "the Talos machine secrets' outputs no longer kept secret",
        "components/talos/cluster.py",
        'additional_secret_outputs=["machineSecrets", "clientConfiguration"],',
        "additional_secret_outputs=[],",
        GRAPH_TESTS,
    ),
    CodeMutation(
        "bastion-ssh-widened",
        "SSH to the management VM widened from the Bastion's /32 to the world",
        "components/oci/network.py",
        'cidr=bastion.private_endpoint_ip_address.apply(lambda ip: f"{ip}/32"),',
        'cidr=bastion.private_endpoint_ip_address.apply(lambda ip: "0.0.0.0/0"),',
        GRAPH_TESTS,
    ),
    CodeMutation(
        "admin-cidr-check-widened",
        "admin CIDRs accepted up to /8 instead of /16",
        "stacks/config/cloud.py",
        "if cidr.prefixlen < 16:",
        "if cidr.prefixlen < 8:",
        CONFIG_TESTS,
    ),
    CodeMutation(
        "oci-node-no-in-transit-encryption",
        "in-transit encryption of the CLOUD nodes' volumes switched off",
        "components/oci/node.py",
        "            is_pv_encryption_in_transit_enabled=True,",
        "            is_pv_encryption_in_transit_enabled=False,",
        GRAPH_TESTS,
    ),
    CodeMutation(
        "secrets-script-deleted-done",
        "a `done` deleted from the management VM's secret installer",
        "components/oci/compose.py",
        "  changed=1\ndone\n",
        "  changed=1\n",
        ("tests/test_scripts.py", "tests/test_compose.py"),
    ),
    CodeMutation(
        "secret-seed-not-secret",
        "the cloud stack reads its secret seed (every derived password) as plain config",
        "stacks/cloud.py",
        'secrets.require_secret("secretSeed"),',
        'secrets.require("secretSeed"),',
        GRAPH_TESTS,
    ),
    CodeMutation(
        "config-accepts-unknown-keys",
        "stack config models accept unknown keys",
        "stacks/config/base.py",
        'model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)',
        'model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=False)',
        CONFIG_TESTS,
    ),
    CodeMutation(
        "email-notifies-one-admin",
        "the sign-up e-mail transport stops after the first admin (`send_once=True`)",
        "components/authentik/identity.py",
        '                    email_subject_prefix="[homelab] ",\n                    send_once=False,',
        '                    email_subject_prefix="[homelab] ",\n                    send_once=True,',
        ("tests/components/test_authentik_identity.py",),
    ),
    CodeMutation(
        "recovery-link-without-relay",
        "the sign-in page offers the e-mailed password reset although Authentik has no relay",
        "components/authentik/identity.py",
        'recovery if args["email"] else None',
        "recovery",
        ("tests/components/test_authentik_identity.py",),
    ),
    CodeMutation(
        "smtp-password-in-environment",
        "the relay password is read from the environment value instead of the secret file",
        "components/oci/compose.py",
        'env["AUTHENTIK_EMAIL__PASSWORD"] = f"file://{_secret(\'smtp_password\')}"',
        'env["AUTHENTIK_EMAIL__PASSWORD"] = "env://SMTP_PASSWORD"',
        ("tests/test_compose.py",),
    ),
    CodeMutation(
        "ntfy-authentik-may-read",
        "ntfy lets Authentik's token read its topic too (read-write instead of write-only)",
        "components/monitoring/ntfy.py",
        'f"{extra.user}:{extra.topic}:wo"',
        'f"{extra.user}:{extra.topic}:rw"',
        ("tests/components/test_monitoring.py",),
    ),
    CodeMutation(
        "dat08-vms-at-the-cluster-site",
        "DAT-08 places Proxmox VMs at the cluster's site instead of the host's",
        "policies/rules/data.py",
        "found.append((holder, holding.data_class, host_site, vm, False))",
        "found.append((holder, holding.data_class, cluster_site, vm, False))",
        POLICY_TESTS,
    ),
    CodeMutation(
        "dat08-ignores-annotations",
        "DAT-08 stops reading the `homelab.dev/backup` annotation of Kubernetes objects",
        "policies/rules/data.py",
        "            readers.append(lambda p=props: _annotated_manifest(p))",
        "            pass",
        POLICY_TESTS,
    ),
    CodeMutation(
        "etcd-holding-on-workers",
        "the etcd holder tags land on every Talos VM, workers included",
        "components/proxmox/talos_vms.py",
        'if node.role == "controlplane" and self.control_plane_holding is not None:',
        "if self.control_plane_holding is not None:",
        ("tests/components/test_proxmox_talos_vms.py", "tests/stacks/test_etcd_backup.py"),
    ),
    CodeMutation(
        "cronjob-failed-inverted",
        "BackupCronJobFailed compares the newest run with the last success the wrong way round",
        "components/monitoring/rules.py",
        'f"{CRONJOB_SCHEDULE_METRIC}{{{match}}} > {CRONJOB_SUCCESS_METRIC}{{{match}}}"',
        'f"{CRONJOB_SCHEDULE_METRIC}{{{match}}} < {CRONJOB_SUCCESS_METRIC}{{{match}}}"',
        ("tests/monitoring",),
    ),
    CodeMutation(
        "state-dump-not-in-manifest",
        "the nightly dump copies the Pulumi state but its manifest does not say so",
        "components/oci/dump.py",
        "copied = [*holders, *([STATE_HOLDER] if state is not None else [])]",
        "copied = list(holders)",
        ("tests/components/test_oci_dump.py", "tests/stacks/test_cloud_backups.py"),
    ),
    CodeMutation(
        "dump-failure-recorded-as-success",
        "the nightly dump records every run as a success, failed or not",
        "components/oci/dump.py",
        'if [ "$rc" = 0 ]; then metric {DUMP_JOB} 1; else metric {DUMP_JOB} 0; fi',
        "metric {DUMP_JOB} 1",
        ("tests/components/test_oci_dump.py",),
    ),
    CodeMutation(
        "drill-judged-as-daily",
        "BackupTooOld applies the daily jobs' 26 h age to the monthly restore drill",
        "components/monitoring/rules.py",
        """f'time() - {BACKUP_SUCCESS_METRIC}{{job!="{DRILL_JOB}"}} > {duration_seconds(t.backup_age.age)}',""",
        'f"time() - {BACKUP_SUCCESS_METRIC} > {duration_seconds(t.backup_age.age)}",',
        ("tests/monitoring",),
    ),
    CodeMutation(
        "node-boot-volumes-not-backed-up",
        "the weekly volume backups skip the CLOUD nodes' boot volumes while the report counts them",
        "stacks/cloud.py",
        '                    **{f"{key}-boot": volume for key, volume in node_boot_volume_ids.items()},\n',
        "",
        ("tests/stacks/test_cloud_backups.py",),
    ),
    CodeMutation(
        "state-keep-drops-the-newest",
        "the state copies kept on the data volume lose the newest instead of the oldest",
        "components/oci/dump.py",
        "-printf '%f\\\\n' | sort -r | tail",
        "-printf '%f\\\\n' | sort | tail",
        ("tests/components/test_oci_dump.py",),
    ),
    CodeMutation(
        "referenced-stacks-before-own-config",
        "a stack's own config no longer validated before its referenced stacks are previewed",
        "homelab/stackrun.py",
        "        check_stack_config(stack, config, stack_input.secret_keys)\n",
        "        pass\n",
        ("tests/test_cli.py",),
    ),
)


@pytest.mark.parametrize("mutation", CODE_MUTATIONS, ids=[m.id for m in CODE_MUTATIONS])
def test_every_code_mutation_still_applies(mutation: CodeMutation) -> None:
    # A mutation whose text moved away is silently not run by `make mutate` (reported stale), so the
    # score would overstate what the suite catches. Milliseconds: it only reads the mutated file.
    text = (project_root() / mutation.path).read_text(encoding="utf-8")
    assert text.count(mutation.old) == 1, f"{mutation.id}: update the mutation to the code in {mutation.path}"
