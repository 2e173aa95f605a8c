"""The `--policy-pack-config` documents of the stacks, generated from the same data the stacks read.

A policy only sees the resources of the stack it runs on. What it must know beyond them comes from
the repository's own data, never from a hand-copied number:

- `dev` / `prod`: the host capacity ledger (`stacks.capacity`): the other stack's guests per mode
  and the host reservations, so BUD-01/BUD-06 can total each host mode; `prod` also: the NFR-012
  cap and exchange rates of `homelab:cost` (BUD-08, set against the stack's `cost_estimate`).
- `cloud`: the admin CIDRs and VCN range of `Pulumi.cloud.yaml` (NET-09), the Always Free quota it
  declares (BUD-03/BUD-04), and the catalog's native and public routes, the only tunnel hostnames
  allowed without a gate (SEC-03). Admin services never appear there, whatever their tier says;
  Tier-1 hostnames are listed with the kind of their Authentik gate (SEC-03, IDN-03), and the admin
  applications with their group (IDN-02, IDN-05).

Exemptions are the operator's decisions, not derived data: they live in `policies/exemptions.yaml`
(stack -> rule id -> [{resource, reason}]) and are merged into each rule's `exemptions` list.

The committed files under `policies/config/` are checked against this module by a test, and
`write_policy_configs()` regenerates them (exposed as a CLI command).
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from components.cloudflare.routes import TunnelRoute
from homelab.gitops import argocd_object_keys
from homelab.stackrun import load_stack_input, project_root
from policies.rules import RULES
from policies.rules.security import ingress_key
from stacks.config.base import ConfigError, ConfigModel

CONFIG_DIR = Path("policies") / "config"
EXEMPTIONS_FILE = Path("policies") / "exemptions.yaml"
STACKS = ("dev", "prod", "cloud")

_NAMES = {rule.id: rule.name for rule in RULES}


def _policy(rule_id: str) -> str:
    return _NAMES[rule_id]


def _sections(stack: str, root: Path | None) -> dict[str, Any]:
    """The `homelab:*` sections of a stack file as plain values (secrets left out)."""
    prefix = "homelab:"
    stack_input = load_stack_input(stack, root)
    sections: dict[str, Any] = {}
    for key, value in stack_input.config.items():
        if not key.startswith(prefix) or key in stack_input.secret_keys:
            continue
        sections[key[len(prefix) :]] = json.loads(value) if value[:1] in "{[" else value
    return sections


def _host_config(stack: str, root: Path | None) -> dict[str, Any]:
    from stacks.capacity import ledger_from_stack_files, policy_config_for  # noqa: PLC0415 (homelab stacks only)

    ledger = policy_config_for(stack, ledger_from_stack_files(root))
    host = {key: ledger[key] for key in ("hostMemoryMb", "reservedMb", "otherStacksMb")}
    return {
        _policy("BUD-01"): host,
        _policy("BUD-06"): {
            "reservedMb": host["reservedMb"],
            "otherStacksMb": host["otherStacksMb"],
            "modeTargetsMb": ledger["modeTargetsMb"],
        },
    }


def _cloud_config(root: Path | None) -> dict[str, Any]:
    from components.authentik.specs import OUTPOST_ORIGIN  # noqa: PLC0415 (cloud stack only)
    from stacks.catalog import ADMIN_GROUP, build_catalog  # noqa: PLC0415 (cloud stack only)
    from stacks.config.cloud import CloudConfig  # noqa: PLC0415
    from stacks.identity import ACCESS_CLIENT  # noqa: PLC0415 (cloud stack only)

    config = CloudConfig.model_validate(_sections("cloud", root))
    catalog = build_catalog(config.catalog.domain, config.catalog.services)
    public = sorted(
        ingress_key(route.hostname, route.path_regex)
        for route in (
            TunnelRoute(key=s.name, hostname=s.hostname, service=s.upstream, path=s.path)
            for s in catalog.services
            # Tier-1 apps are never public: Authentik gates them (IDN-03), admin apps and machine
            # routes Access (SEC-03).
            if not s.is_admin and s.tier not in ("sso", "machine")
        )
    )
    machines = sorted(
        ingress_key(
            s.hostname, TunnelRoute(key=s.name, hostname=s.hostname, service=s.upstream, path=s.path).path_regex
        )
        for s in catalog.services
        if s.is_machine
    )
    tier1 = {s.hostname: str(s.sso) for s in catalog.services if s.tier == "sso"}
    admin_apps = sorted(s.name for s in catalog.services if s.is_admin and s.sso is not None)
    quota = config.quota
    return {
        _policy("NET-09"): {
            "adminCidrs": [str(c) for c in config.network.admin_cidrs],
            "internalCidrs": [str(config.network.vcn_cidr)],
        },
        _policy("SEC-03"): {
            "publicHostnames": public,
            "authentikGatedHostnames": sorted(tier1),
            "serviceTokenHostnames": machines,
        },
        _policy("IDN-02"): {"adminApplications": [*admin_apps, ACCESS_CLIENT], "adminGroup": ADMIN_GROUP},
        _policy("IDN-03"): {"tier1Hostnames": tier1, "outpostOrigins": [OUTPOST_ORIGIN]},
        _policy("IDN-05"): {"adminGroup": ADMIN_GROUP},
        _policy("BUD-03"): {
            "a1Ocpus": quota.a1_ocpus,
            "a1MemoryGb": quota.a1_memory_gb,
            "microInstances": quota.e2_micro_instances,
        },
        _policy("BUD-04"): {"blockStorageGb": quota.block_storage_gb, "objectStorageGb": quota.object_storage_gb},
        # The CLOUD cluster runs on OCI: a copy of its namespaces leaves the site only outside OCI.
        _policy("DAT-08"): {"clusterSite": "oci"},
    }


def _cost_config(root: Path | None) -> dict[str, Any]:
    """BUD-08's cap and rates: `homelab:cost` of the prod stack, the stack that exports the estimate."""
    from stacks.cost import CostConfig  # noqa: PLC0415 (prod stack only)

    cost = CostConfig.model_validate(_sections("prod", root).get("cost", {}))
    return {
        _policy("BUD-08"): {
            "yearlyCap": cost.cap.yearly,
            "currency": cost.cap.currency,
            "usdRates": dict(sorted(cost.usd_rates.items())),
        }
    }


class Exemption(ConfigModel):
    resource: str = Field(min_length=1)
    """The resource's Pulumi name, as the preview prints it."""
    reason: str = Field(min_length=10)


def exemptions(root: Path | None = None) -> dict[str, dict[str, list[Exemption]]]:
    """`policies/exemptions.yaml`: stack -> rule id -> exemptions, validated against the pack."""
    path = (root or project_root()) / EXEMPTIONS_FILE
    if not path.is_file():
        return {}
    name = EXEMPTIONS_FILE.as_posix()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: malformed YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{name}: must map stacks to rule ids to exemptions")
    result: dict[str, dict[str, list[Exemption]]] = {}
    for stack, rules in document.items():
        if stack not in STACKS:
            raise ConfigError(f"{name}: {stack}: unknown stack (this project defines {', '.join(STACKS)})")
        if not isinstance(rules, dict):
            raise ConfigError(f"{name}: {stack}: must map rule ids to lists of exemptions")
        for rule_id, entries in rules.items():
            if rule_id not in _NAMES:
                raise ConfigError(f"{name}: {stack}.{rule_id}: unknown rule id")
            if not isinstance(entries, list):
                raise ConfigError(f"{name}: {stack}.{rule_id}: must be a list of {{resource, reason}}")
            parsed: list[Exemption] = []
            for index, entry in enumerate(entries):
                try:
                    parsed.append(Exemption.model_validate(entry))
                except ValidationError as exc:
                    error = exc.errors(include_url=False)[0]
                    where = ".".join(str(part) for part in error["loc"])
                    raise ConfigError(
                        f"{name}: {stack}.{rule_id}[{index}]{'.' + where if where else ''}: {error['msg'].lower()}"
                    ) from None
            result.setdefault(stack, {})[rule_id] = parsed
    return result


def policy_config(stack: str, root: Path | None = None) -> dict[str, Any]:
    """The `--policy-pack-config` document of `stack`, keyed by policy name."""
    if stack == "cloud":
        document = _cloud_config(root)
    elif stack in ("dev", "prod"):
        document = _host_config(stack, root)
        if stack == "prod":
            document.update(_cost_config(root))
    else:
        raise ValueError(f"unknown stack {stack!r}: this project defines {', '.join(STACKS)}")
    # Every stack: what Argo CD owns (gitops/), so no stack creates the same object (OPS-06).
    document[_policy("OPS-06")] = {"argocdObjects": argocd_object_keys(root or project_root())}
    for rule_id, entries in sorted(exemptions(root).get(stack, {}).items()):
        policy = document.setdefault(_policy(rule_id), {})
        policy["exemptions"] = [entry.model_dump() for entry in entries]
    return document


def config_path(stack: str, root: Path | None = None) -> Path:
    return (root or project_root()) / CONFIG_DIR / f"{stack}.json"


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_policy_configs(root: Path | None = None) -> list[Path]:
    """Regenerate `policies/config/<stack>.json` for every stack; returns the files written."""
    written: list[Path] = []
    for stack in STACKS:
        path = config_path(stack, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(policy_config(stack, root)), encoding="utf-8")
        written.append(path)
    return written


def stale_policy_configs(root: Path | None = None) -> list[str]:
    """Stacks whose committed policy config differs from what the repository's data generates."""
    stale: list[str] = []
    for stack in STACKS:
        path = config_path(stack, root)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != render(policy_config(stack, root)):
            stale.append(stack)
    return stale
