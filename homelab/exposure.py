"""What each public hostname is exposed through, read from a stack's recorded graph.

For every ingress rule of every tunnel the stack registers: its tier, its gate(s), its backend and
where that backend runs. Gates are found in the graph, not assumed from the catalog:

- `access`      a Cloudflare Access application covers the rule and the rule demands its token;
- `authentik-oidc` / `authentik-saml`  an Authentik OIDC (redirect URI) or SAML (ACS URL) provider on
                the hostname, used by an application with at least one policy binding;
- `authentik-proxy`  the rule goes to the Authentik outpost and a proxy provider names the hostname;
- `service-token` the covering Access application admits named service tokens only (a machine
                route: a collector's write path, no person);
- `native`      nothing in front: the app's own login (Tier 2) or a public page.

Each row also shows the data class of the service behind the hostname (FR-025, the stack's
`data_classes` output: `-` for a stateless service) and, for a data holder of this stack, its 3-2-1
verdict (the `backup_protection` output: what the stack really builds).

The tier comes from the stack's policy config (the catalog as the pack sees it): a hostname in
`publicHostnames` is `native` (Tier 2, or a page that must answer before login), one in
`tier1Hostnames` is `sso` (Tier 1), one in `serviceTokenHostnames` is `machine`, any other is
`admin`. A row has
a problem when its tier's gate is missing, or a gated hostname's DNS record does not wait for its
Authentik application. What an operator checks before opening the estate to the family.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from homelab.engine import RecordedResource, Recording
from homelab.policy_eval import PackConfig
from policies.rules import RULES
from policies.rules.registry import CF_ACCESS_APP, CF_DNS_TYPES, CF_TUNNEL_CONFIG

_NAMES = {rule.id: rule.name for rule in RULES}
AK = "authentik:index/"
OUTPOST_DEFAULT = "http://authentik-server:9000"


@dataclass(frozen=True)
class Exposure:
    hostname: str
    path: str | None
    tier: str
    gates: tuple[str, ...]
    backend: str
    cluster: str
    tunnel: str
    dns: str
    """`gated` (the record waits for a gate: Access or Authentik application), `published` (a record
    that waits for nothing) or `none`."""
    problem: str | None = None
    data_class: str = "-"
    """`critical`, `important`, `media`, or `-` for a service that holds no data."""
    backups: str = "-"
    """The holder's 3-2-1 verdict where this stack protects it (`3-2-1`, `not 3-2-1 (...)`)."""


def _data(recording: Recording) -> tuple[dict[str, str], dict[str, str]]:
    """hostname -> data class, and hostname -> 3-2-1 verdict, from the stack's outputs (empty when absent)."""
    classes = recording.outputs.get("data_classes")
    rows = recording.outputs.get("backup_protection")
    by_host = {str(k).lower(): str(v) for k, v in (classes.value or {}).items()} if classes and classes.known else {}
    verdicts = (
        {
            str(r["hostname"]).lower(): str(r.get("verdict"))
            for r in rows.value or []
            if isinstance(r, Mapping) and r.get("hostname")
        }
        if rows and rows.known
        else {}
    )
    return by_host, verdicts


def _props(config: PackConfig | None, rule_id: str) -> Mapping[str, Any]:
    if config is None:
        return {}
    return config.properties.get(_NAMES[rule_id], {})


def _host(url: Any) -> str:
    return (urlsplit(str(url)).hostname or "").lower()


def _bound(recording: Recording, app: RecordedResource) -> bool:
    return any(
        app.urn in b.property_dependencies.get("target", ())
        for b in recording.by_type(f"{AK}policyBinding:PolicyBinding")
    )


def _authentik_gates(recording: Recording) -> dict[str, list[tuple[str, RecordedResource]]]:
    """hostname -> [(gate kind, application)] for applications with a policy binding."""
    by_urn = recording.by_urn()
    gates: dict[str, list[tuple[str, RecordedResource]]] = {}
    for app in recording.by_type(f"{AK}application:Application"):
        if not _bound(recording, app):
            continue
        for urn in app.property_dependencies.get("protocolProvider", ()):
            provider = by_urn.get(urn)
            if provider is None:
                continue
            inputs = provider.inputs
            if provider.type == f"{AK}providerOauth2:ProviderOauth2":
                hosts = {_host(u.get("url")) for u in inputs.get("allowedRedirectUris") or [] if isinstance(u, Mapping)}
                kind = "authentik-oidc"
            elif provider.type == f"{AK}providerProxy:ProviderProxy":
                hosts, kind = {_host(inputs.get("externalHost"))}, "authentik-proxy"
            elif provider.type == f"{AK}providerSaml:ProviderSaml":
                hosts, kind = {_host(inputs.get("acsUrl"))}, "authentik-saml"
            else:
                continue
            for host in hosts - {""}:
                gates.setdefault(host, []).append((kind, app))
    return gates


def _tokens_only(policy: RecordedResource | None) -> bool:
    """An Access policy that admits named service tokens and nothing else (`non_identity`)."""
    if policy is None:
        return False
    includes = policy.inputs.get("includes") or []
    return (
        str(policy.inputs.get("decision", "")).lower() == "non_identity"
        and bool(includes)
        and all(isinstance(i, Mapping) and set(i) == {"serviceToken"} for i in includes)
    )


def _access_covers(app: RecordedResource, hostname: str, path: str | None) -> bool:
    inputs = app.inputs
    domains = [
        inputs.get("domain"),
        *(d.get("uri") for d in inputs.get("destinations") or [] if isinstance(d, Mapping)),
    ]
    for domain in domains:
        if not isinstance(domain, str) or not domain:
            continue
        host, _, prefix = domain.lower().partition("/")
        if host != hostname:
            continue
        if not prefix:
            return True
        if path is not None and re.match(path, f"/{prefix}"):
            return True
    return False


def _cluster(tunnel_name: str, service: str, host_header: str | None) -> str:
    site = "home" if tunnel_name.endswith("prod") else "cloud"
    if service == OUTPOST_DEFAULT or urlsplit(service).hostname in ("authentik-server", "omni", "cloudflared"):
        return "management VM" if site == "cloud" else "PROD cluster"
    if host_header or ".svc" in service:
        return "CLOUD cluster" if site == "cloud" else "PROD cluster"
    return "PROD cluster" if site == "home" else "management VM"


def exposures(recording: Recording, config: PackConfig | None) -> list[Exposure]:
    """One row per ingress rule (the catch-all excluded) of every tunnel in `recording`."""
    public = {h.lower() for h in _props(config, "SEC-03").get("publicHostnames", [])}
    machines = {h.lower() for h in _props(config, "SEC-03").get("serviceTokenHostnames", [])}
    by_urn = recording.by_urn()
    tier1 = {h.lower(): k for h, k in (_props(config, "IDN-03").get("tier1Hostnames") or {}).items()}
    outposts = set(_props(config, "IDN-03").get("outpostOrigins") or [OUTPOST_DEFAULT])
    access_apps = recording.by_type(CF_ACCESS_APP)
    authentik = _authentik_gates(recording)
    records = [r for r in recording.resources if r.type in CF_DNS_TYPES]
    tunnels = {
        r.urn: r for r in recording.by_type("cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared")
    }
    classes, verdicts = _data(recording)
    rows: list[Exposure] = []
    for config_resource in recording.by_type(CF_TUNNEL_CONFIG):
        tunnel_urns = config_resource.property_dependencies.get("tunnelId", ())
        tunnel_name = next(
            (str(tunnels[u].inputs.get("name")) for u in tunnel_urns if u in tunnels), config_resource.name
        )
        for rule in (config_resource.inputs.get("config") or {}).get("ingresses") or []:
            hostname = str(rule.get("hostname") or "").lower()
            if not hostname:
                continue
            path = rule.get("path")
            service = str(rule.get("service", ""))
            origin = rule.get("originRequest") or {}
            host_header = origin.get("httpHostHeader")
            key = hostname + (path or "")
            if key in public:
                tier = "native"
            elif key in machines:
                tier = "machine"
            else:
                tier = "sso" if hostname in tier1 and path is None else "admin"
            gates: list[str] = []
            access = origin.get("access") or {}
            covering = [a for a in access_apps if _access_covers(a, hostname, path)]
            if access.get("required") and covering:
                tokens_only = all(
                    _tokens_only(by_urn.get(u)) for a in covering for u in a.property_dependencies.get("policies", ())
                )
                gates.append("service-token" if tokens_only else "access")
            ak_gates = authentik.get(hostname, [])
            for kind, _ in ak_gates:
                if kind == "authentik-proxy" and service not in outposts:
                    continue  # a proxy provider the tunnel goes around is no gate
                gates.append(kind)
            if not gates:
                gates.append("native")
            own = [r for r in records if str(r.inputs.get("name", "")).lower() == hostname]
            gate_urns = (
                {app.urn for _, app in ak_gates}
                | {a.urn for a in access_apps if _access_covers(a, hostname, None)}
                | ({a.urn for a in covering} if tier == "machine" else set())
            )
            if not own:
                dns = "none"
            elif any(gate_urns & set(r.dependencies) for r in own):
                dns = "gated"
            else:
                dns = "published"
            problem = None
            if tier == "admin" and "access" not in gates:
                problem = "admin hostname without Cloudflare Access"
            elif tier == "machine" and "service-token" not in gates:
                problem = "machine route not limited to its service tokens"
            elif tier == "sso":
                wanted = {"oidc": "authentik-oidc", "proxy": "authentik-proxy"}.get(tier1[hostname], "authentik")
                if wanted not in gates:
                    problem = f"Tier-1 hostname without its {wanted} gate"
                elif dns == "published":
                    problem = "DNS record published before its Authentik application"
            backend = service + (f" (Host: {host_header})" if host_header else "")
            if service in outposts and "authentik-proxy" in gates:
                internal = [
                    a_provider
                    for _, app in ak_gates
                    for a_provider in app.property_dependencies.get("protocolProvider", ())
                ]
                by_urn = recording.by_urn()
                targets = [str(by_urn[u].inputs.get("internalHost")) for u in internal if u in by_urn]
                backend = f"outpost -> {', '.join(targets) or '?'}"
            rows.append(
                Exposure(
                    hostname=hostname,
                    path=path,
                    tier=tier,
                    gates=tuple(gates),
                    backend=backend,
                    cluster=_cluster(tunnel_name, service, host_header),
                    tunnel=tunnel_name,
                    dns=dns,
                    problem=problem,
                    data_class=classes.get(hostname, "-"),
                    backups=verdicts.get(hostname, "-"),
                )
            )
    return sorted(rows, key=lambda r: (r.hostname, r.path or ""))


def _cells(r: Exposure, *, gates: str, no_problem: str) -> tuple[str, ...]:
    """One row's columns, in the order both renderings print them."""
    return (
        r.hostname + (r.path or ""),
        r.tier,
        gates.join(r.gates),
        r.backend,
        r.cluster,
        r.dns,
        r.data_class,
        r.backups,
        r.problem or no_problem,
    )


def render_text(stack: str, rows: Sequence[Exposure]) -> str:
    header = ("HOSTNAME", "TIER", "GATES", "BACKEND", "CLUSTER", "DNS", "DATA", "BACKUPS", "PROBLEM")
    table = [header] + [_cells(r, gates="+", no_problem="-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        f"== stack {stack} ==  {len(rows)} public hostname route(s), {sum(1 for r in rows if r.problem)} problem(s)"
    ]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join(lines) + "\n"


def render_markdown(rows: Sequence[Exposure]) -> list[str]:
    """The compliance report's exposure section."""
    lines = ["## Exposure", ""]
    if not rows:
        return [*lines, "This stack publishes no hostname.", ""]
    problems = [r for r in rows if r.problem]
    lines += [
        f"{len(rows)} public hostname route(s); {len(problems)} without their gate.",
        "",
        "| hostname | tier | gates | backend | cluster | DNS | data | backups | problem |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = _cells(r, gates=", ", no_problem="")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return [*lines, ""]


def json_document(results: Mapping[str, Sequence[Exposure] | str]) -> str:
    """`{stack: {"exposures": [...]} | {"error": "..."}}`."""
    document: dict[str, Any] = {}
    for stack, rows in results.items():
        if isinstance(rows, str):
            document[stack] = {"error": rows}
        else:
            document[stack] = {"exposures": [{**asdict(r), "gates": list(r.gates)} for r in rows]}
    return json.dumps(document, indent=2)
