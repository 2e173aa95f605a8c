"""The committed `--policy-pack-config` documents are what the repository's data generates."""

import json
import shutil
from pathlib import Path

import pytest

from homelab.policy_config import STACKS, config_path, policy_config, render, stale_policy_configs, write_policy_configs
from homelab.policy_eval import parse_pack_config
from homelab.stackrun import project_root
from policies.rules import RULES
from stacks.config.base import ConfigError

NAMES = {rule.id: rule.name for rule in RULES}


def test_committed_policy_configs_are_current() -> None:
    assert stale_policy_configs() == [], "regenerate them with `make policy-config` (homelab.policy_config)"


@pytest.mark.parametrize("stack", STACKS)
def test_committed_config_names_known_policies_and_limits(stack: str) -> None:
    document = json.loads(config_path(stack).read_text(encoding="utf-8"))
    config = parse_pack_config(document)
    schemas = {rule.name: rule.policy.config_schema for rule in RULES}
    for policy, properties in config.properties.items():
        schema = schemas[policy]
        assert schema is not None
        assert set(properties) <= set(schema.properties), f"{policy}: unknown limit"


def test_host_configs_carry_the_other_stacks_guests() -> None:
    prod = policy_config("prod")[NAMES["BUD-01"]]
    dev = policy_config("dev")[NAMES["BUD-01"]]
    assert prod["otherStacksMb"] == {"normal": 0, "testing": 4096, "gaming": 0}
    assert dev["otherStacksMb"]["testing"] == 16384
    assert prod["reservedMb"] == dev["reservedMb"] == 4096 + 8 * 1024
    assert policy_config("prod")[NAMES["BUD-06"]]["modeTargetsMb"] == {
        "normal": 28672,
        "testing": 32768,
        "gaming": 49152,
    }


def test_cloud_config_keeps_admin_hostnames_behind_access() -> None:
    cloud = policy_config("cloud")
    public = cloud[NAMES["SEC-03"]]["publicHostnames"]
    assert "auth.example.net" in public and "music.example.net" in public
    # Tier-1 hostnames are never public: Authentik gates them, checked by IDN-03.
    tier1 = {"cloud.example.net", "photos.example.net", "vault.example.net", "dav.example.net", "n8n.example.net"}
    assert not tier1 & set(public)
    assert set(cloud[NAMES["SEC-03"]]["authentikGatedHostnames"]) == tier1
    assert cloud[NAMES["IDN-03"]]["tier1Hostnames"] == {
        "cloud.example.net": "oidc",
        "photos.example.net": "oidc",
        "vault.example.net": "oidc",
        "dav.example.net": "proxy",
        "n8n.example.net": "proxy",
    }
    assert cloud[NAMES["IDN-02"]]["adminApplications"] == ["argocd", "grafana", "omni", "cloudflare-access"]
    assert not {"grafana.example.net", "omni.example.net", "argocd.example.net"} & set(public)
    assert not any("/if/admin" in host for host in public)
    assert cloud[NAMES["NET-09"]] == {"adminCidrs": ["203.0.113.10/32"], "internalCidrs": ["10.20.0.0/16"]}
    assert cloud[NAMES["BUD-03"]] == {"a1Ocpus": 2, "a1MemoryGb": 12, "microInstances": 2}
    assert cloud[NAMES["BUD-04"]] == {"blockStorageGb": 200, "objectStorageGb": 20}
    assert cloud[NAMES["DAT-08"]] == {"clusterSite": "oci"}


def test_a_changed_stack_file_makes_the_config_stale(tmp_path: Path) -> None:
    root = project_root()
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.cloud.yaml"):
        shutil.copy(root / name, tmp_path / name)
    written = write_policy_configs(tmp_path)
    assert [p.name for p in written] == ["dev.json", "prod.json", "cloud.json"]
    assert stale_policy_configs(tmp_path) == []
    prod = tmp_path / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text(encoding="utf-8").replace("memory_mb: 12288", "memory_mb: 14336"), encoding="utf-8")
    assert stale_policy_configs(tmp_path) == ["dev"]
    assert render(policy_config("dev", tmp_path)) != (tmp_path / "policies/config/dev.json").read_text(encoding="utf-8")


def test_prod_config_carries_the_cost_cap_of_its_stack_file(tmp_path: Path) -> None:
    assert policy_config("prod")[NAMES["BUD-08"]] == {"yearlyCap": 1000, "currency": "USD", "usdRates": {"EUR": 1.16}}
    assert NAMES["BUD-08"] not in policy_config("dev") and NAMES["BUD-08"] not in policy_config("cloud")
    root = project_root()
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.dev.yaml"):
        shutil.copy(root / name, tmp_path / name)
    prod = tmp_path / "Pulumi.prod.yaml"
    cost = "  homelab:cost:\n    cap: {yearly: 900, currency: EUR}\n    usd_rates: {EUR: 1.1, GBP: 1.3}\n"
    prod.write_text(prod.read_text(encoding="utf-8") + cost, encoding="utf-8")
    assert policy_config("prod", tmp_path)[NAMES["BUD-08"]] == {
        "yearlyCap": 900,
        "currency": "EUR",
        "usdRates": {"EUR": 1.1, "GBP": 1.3},
    }


def test_unknown_stack() -> None:
    with pytest.raises(ValueError, match="unknown stack 'qa'"):
        policy_config("qa")


def _project_with_exemptions(tmp_path: Path, text: str) -> Path:
    root = project_root()
    for name in ["Pulumi.yaml", *(p.name for p in root.glob("Pulumi.*.yaml"))]:
        shutil.copy(root / name, tmp_path / name)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "exemptions.yaml").write_text(text)
    return tmp_path


def test_exemptions_file_is_merged_into_the_rule_it_names() -> None:
    document = policy_config("cloud")
    net03 = document["net-03-oci-instance-disallow-public-ip"]["exemptions"]
    assert {e["resource"] for e in net03} == {
        "oci-mgmt-node-instance",
        "cloud-cloud-1-public-ip",
        "cloud-api-nlb",
        "cloud-api-public-ip",
    }
    assert all(len(e["reason"]) >= 10 for e in net03)
    assert "net-03-oci-instance-disallow-public-ip" not in policy_config("prod")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("staging: {}\n", "policies/exemptions.yaml: staging: unknown stack (this project defines dev, prod, cloud)"),
        ("cloud:\n  NET-99: []\n", "policies/exemptions.yaml: cloud.NET-99: unknown rule id"),
        (
            "cloud:\n  NET-03:\n    - resource: oci-mgmt-node-instance\n      reason: because\n",
            "policies/exemptions.yaml: cloud.NET-03[0].reason: string should have at least 10 characters",
        ),
        (
            "cloud:\n  NET-03:\n    - resource: x\n      reason: a good long reason\n      until: 2027\n",
            "policies/exemptions.yaml: cloud.NET-03[0].until: extra inputs are not permitted",
        ),
    ],
)
def test_bad_exemptions_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    root = _project_with_exemptions(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        policy_config("cloud", root)
    assert str(caught.value) == message


def test_an_exemption_covers_only_the_resource_it_names() -> None:
    from homelab.policy_eval import evaluate
    from tests.policies.previews import previewed

    # A second public instance (the management VM's twin) is not exempted by the first one's entry.
    base = previewed("cloud").recording
    config = parse_pack_config(policy_config("cloud"))
    findings = [f for f in evaluate(base, RULES, config) if f.rule_id == "NET-03"]
    assert findings == []
    document = policy_config("cloud")
    document["net-03-oci-instance-disallow-public-ip"]["exemptions"] = [
        e for e in document["net-03-oci-instance-disallow-public-ip"]["exemptions"] if e["resource"] != "cloud-api-nlb"
    ]
    findings = [f for f in evaluate(base, RULES, parse_pack_config(document)) if f.rule_id == "NET-03"]
    assert [f.resource_name for f in findings] == ["cloud-api-nlb"]
