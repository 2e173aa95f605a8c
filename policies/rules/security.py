"""Security rules: TLS verification, Access and MFA, immutable nodes, secrets, hardened hosts (NFR-006, NFR-007)."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from policies.rules import registry as reg
from policies.rules.base import Rule, resource_rule, stack_rule
from policies.rules.walk import depends_on, get, is_false, is_true, items, mapping, of_type

Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]
Config = Mapping[str, Any]

# Providers whose `insecure` flag turns off TLS certificate verification.
TLS_PROVIDER_TYPES = (
    "pulumi:providers:proxmoxve",
    "pulumi:providers:authentik",
)
_SKIP_VERIFY = re.compile(r"insecure-skip-tls-verify\s*:\s*[\"']?true", re.IGNORECASE)

# Computed outputs that carry credentials: the program must list them in
# `additional_secret_outputs` (SDK-added entries count), so state never holds them in plain text
# whatever the provider does with nested sensitive fields.
SENSITIVE_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    reg.TALOS_SECRETS: ("machineSecrets", "clientConfiguration"),
    "talos:cluster/kubeconfig:Kubeconfig": ("kubeconfigRaw", "kubernetesClientConfiguration"),
    "talos:machine/configurationApply:ConfigurationApply": ("machineConfiguration",),
    reg.CF_TUNNEL: ("tunnelSecret",),
    "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken": ("clientSecret",),
    "proxmoxve:storage/pbs:Pbs": ("password", "encryptionKey"),
    "proxmoxve:user/token:Token": ("value",),
    "oci:Identity/customerSecretKey:CustomerSecretKey": ("key",),
    "oci:Identity/authToken:AuthToken": ("token",),
    "authentik:index/token:Token": ("key",),
    "authentik:index/providerOauth2:ProviderOauth2": ("clientSecret",),
    # Webhook mappings are where a transport's credentials live (ntfy's bearer token).
    "authentik:index/propertyMappingNotification:PropertyMappingNotification": ("expression",),
    "command:remote:Command": ("connection",),
    "random:index/randomPassword:RandomPassword": ("result",),
}

KUBERNETES_TAGS = ["kubernetes", "k8s", "talos", "talos-node"]


def _computed(read: Callable[[], Any], when_unknown: Any) -> Any:
    """Read a value the program derives from another resource's output (an Access app's AUD tag):
    unknown at the first preview means "will be set", not "missing"."""
    try:
        return read()
    except UnknownValueError:
        return when_unknown


@resource_rule(
    id="SEC-01",
    slug="cloudflare-tunnel-disallow-no-tls-verify",
    nfr="NFR-006",
    topic="security",
    description="Tunnel origins are reached with TLS verification on: no `noTlsVerify` anywhere in the tunnel's "
    "ingress (NFR-006: traffic between the connector and the origin cannot be intercepted).",
    fix="remove `no_tls_verify=True`; for an origin with a private CA set `ca_pool` (and `origin_server_name`) "
    "on that ingress rule, or use `http://` to an in-cluster origin.",
)
def tunnel_verifies_origins(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.CF_TUNNEL_CONFIG:
        return
    if is_true(get(args.props, "config.originRequest.noTlsVerify")):
        report(f"tunnel config '{args.name}' disables origin TLS verification for every rule.")
    for rule in items(get(args.props, "config.ingresses")):
        if is_true(get(rule, "originRequest.noTlsVerify")):
            report(f"tunnel ingress {get(rule, 'hostname', '(catch-all)')} disables origin TLS verification.")


@resource_rule(
    id="SEC-02",
    slug="provider-disallow-insecure-tls",
    nfr="NFR-006",
    topic="security",
    description="Providers verify the TLS certificate of the API they manage (NFR-006: no credentials sent "
    "to an endpoint nobody has authenticated).",
    fix="remove `insecure: true` from the provider settings in the stack config and give the API a "
    "certificate the machine trusts (or add its CA to the system trust store).",
)
def provider_tls_verified(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type in TLS_PROVIDER_TYPES and is_true(args.props.get("insecure")):
        report(f"provider '{args.name}' skips TLS verification (insecure=true).")
    elif args.resource_type == "pulumi:providers:kubernetes":
        kubeconfig = args.props.get("kubeconfig")
        if isinstance(kubeconfig, str) and _SKIP_VERIFY.search(kubeconfig):
            report(f"provider '{args.name}' skips TLS verification (kubeconfig insecure-skip-tls-verify).")


def _app_destinations(app: PolicyResource) -> set[tuple[str, str]]:
    """(host, path prefix) of everything an Access application covers."""
    found: set[tuple[str, str]] = set()
    for uri in [get(app.props, "domain"), *(get(d, "uri") for d in items(get(app.props, "destinations")))]:
        if isinstance(uri, str) and uri:
            host, _, path = uri.lower().partition("/")
            found.add((host, f"/{path}" if path else ""))
    return found


def _covers(destination: tuple[str, str], hostname: str, path_regex: str | None) -> bool:
    """Whether an Access destination covers an ingress rule (`path` is cloudflared's regex)."""
    host, prefix = destination
    host_matches = hostname.endswith(host[1:]) if host.startswith("*.") else host == hostname
    if not host_matches:
        return False
    if not prefix:
        return True
    # A path-scoped application covers a rule whose path pattern only matches below its prefix.
    return path_regex is not None and re.match(path_regex, prefix) is not None


def ingress_key(hostname: str, path: str | None) -> str:
    """How `publicHostnames` names an ingress rule: the hostname, plus the path pattern if any."""
    return hostname + (path or "")


@stack_rule(
    id="SEC-03",
    slug="cloudflare-access-enforce-sso-coverage",
    nfr="NFR-007",
    topic="security",
    description="Every tunnel hostname that is not explicitly public is behind a Cloudflare Access application "
    "with a policy, and its ingress rule demands Access (`access.required` with the app's AUD tag) "
    "(NFR-007: 100% of admin services behind authentication).",
    fix="create a ZeroTrustAccessApplication for the hostname with at least one allow policy and set "
    "`origin_request.access` (required=True, aud_tags=[app.aud]) on its ingress rule; a service with its own "
    "login belongs in `publicHostnames` of the policy config.",
    severity=Severity.CRITICAL,
    config={
        "publicHostnames": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Hostnames served without Cloudflare Access (apps with their own login).",
        },
        "authentikGatedHostnames": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Tier-1 hostnames gated by Authentik instead of Access (IDN-03 checks their gate).",
        },
        "serviceTokenHostnames": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Machine routes (hostname + path pattern): their Access application admits named service "
            "tokens only (`non_identity` policies whose includes are all `service_token`), never a person.",
        },
    },
)
def access_covers_hostnames(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    apps = [(a, _app_destinations(a)) for a in of_type(args.resources, {reg.CF_ACCESS_APP})]
    machines = {h.lower() for h in config["serviceTokenHostnames"]}
    by_urn = {r.urn: r for r in args.resources}
    public = {h.lower() for h in [*config["publicHostnames"], *config["authentikGatedHostnames"]]}
    for tunnel_config in of_type(args.resources, {reg.CF_TUNNEL_CONFIG}):
        for rule in items(get(tunnel_config.props, "config.ingresses")):
            hostname = str(get(rule, "hostname", "")).lower()
            path = get(rule, "path")
            if not hostname or ingress_key(hostname, path).lower() in public:
                continue
            where = ingress_key(hostname, path)
            covering = [a for a, dests in apps if any(_covers(d, hostname, path) for d in dests)]
            if not covering:
                report(f"tunnel hostname {where} has no Cloudflare Access application.", tunnel_config.urn)
                continue
            if not any(items(get(a.props, "policies")) for a in covering):
                report(f"Access application for {where} has no policy.", covering[0].urn)
            access = mapping(get(rule, "originRequest.access"))
            tags = _computed(lambda access=access: items(get(access, "audTags")), ["(computed)"])
            if not is_true(get(access, "required")) or not tags:
                text = f"tunnel ingress {where} does not require an Access token (access.required)."
                report(text, tunnel_config.urn)
            if where.lower() in machines:
                for app in covering:
                    for dependency in app.property_dependencies.get("policies", []):
                        policy = by_urn.get(dependency.urn, dependency)
                        if policy.resource_type == reg.CF_ACCESS_POLICY and not _admits_only_tokens(policy.props):
                            report(
                                f"machine route {where} admits more than service tokens (Access policy "
                                f"'{policy.name}').",
                                app.urn,
                            )


def _admits_only_tokens(policy: Mapping[str, Any]) -> bool:
    """A `non_identity` policy whose every include names one service token (not any valid token)."""
    includes = items(get(policy, "includes"))
    decision = str(get(policy, "decision", "")).lower()
    return decision == "non_identity" and bool(includes) and all(set(mapping(i)) == {"serviceToken"} for i in includes)


def _requires_mfa(policy: Mapping[str, Any], methods: list[str]) -> bool:
    return any(str(get(req, "authMethod.authMethod", "")).lower() in methods for req in items(get(policy, "requires")))


@stack_rule(
    id="SEC-04",
    slug="cloudflare-access-enforce-mfa",
    nfr="NFR-007",
    topic="security",
    description="Every allow policy of a Cloudflare Access application requires a second factor (`auth_method` "
    "mfa/hwk) and sessions are bounded (NFR-007: 2FA for critical services).",
    fix='add `requires=[{auth_method: {auth_method: "mfa"}}]` to the allow policy and keep '
    "`session_duration` at or below `maxSessionHours`.",
    severity=Severity.CRITICAL,
    config={
        "acceptedAuthMethods": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["mfa", "hwk"],
            "description": "RFC 8176 `amr` values that count as a second factor.",
        },
        "maxSessionHours": {"type": "number", "default": 24, "description": "Longest Access session."},
    },
)
def access_requires_mfa(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    methods = [m.lower() for m in config["acceptedAuthMethods"]]
    by_urn = {r.urn: r for r in args.resources}
    for app in of_type(args.resources, {reg.CF_ACCESS_APP}):
        policies: list[tuple[str, Mapping[str, Any]]] = []
        for entry in items(get(app.props, "policies")):
            if get(entry, "decision") is not None:
                policies.append((str(get(entry, "name", "inline")), mapping(entry)))
        for dependency in app.property_dependencies.get("policies", []):
            policy = by_urn.get(dependency.urn, dependency)
            if policy.resource_type == reg.CF_ACCESS_POLICY:
                policies.append((policy.name, policy.props))
        for name, policy in policies:
            if str(get(policy, "decision", "")).lower() == "allow" and not _requires_mfa(policy, methods):
                report(f"Access policy '{name}' of application '{app.name}' allows without a second factor.", app.urn)
        for resource, duration in [(app, get(app.props, "sessionDuration"))]:
            hours = _hours(duration)
            if hours is not None and hours > float(config["maxSessionHours"]):
                report(f"Access application '{resource.name}' keeps sessions for {duration}.", resource.urn)


def _hours(duration: Any) -> float | None:
    """`24h`, `30m`, `1h30m` -> hours; None when unset or unparseable."""
    if not isinstance(duration, str):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", duration)
    if not parts:
        return None
    scale = {"h": 1.0, "m": 1 / 60, "s": 1 / 3600}
    return sum(float(value) * scale[unit] for value, unit in parts)


def _is_kubernetes_vm(props: Any, tags: list[str]) -> bool:
    return any(str(tag).lower() in tags for tag in items(get(props, "tags")))


def _is_kubernetes_instance(props: Any, tags: list[str]) -> bool:
    freeform = mapping(get(props, "freeformTags"))
    return any(str(k).lower() in tags or str(freeform[k]).lower() in tags for k in freeform)


@resource_rule(
    id="SEC-05",
    slug="kubernetes-node-disallow-login",
    nfr="NFR-006",
    topic="security",
    description="Kubernetes nodes (VMs tagged `kubernetes`, OCI instances tagged so) have no SSH keys or "
    "passwords: Talos is administered only through its mTLS API (NFR-006: immutable OS, no shell to attack).",
    fix="remove `initialization.user_account` from the node VM (keep `ip_configs`/`dns`) and any "
    "`ssh_authorized_keys` from the instance metadata; use talosctl with the stack's talosconfig.",
    config={
        "kubernetesTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": KUBERNETES_TAGS,
            "description": "Tags (VM tags, OCI freeform tag keys or values) that mark a Kubernetes node.",
        }
    },
)
def kubernetes_nodes_without_login(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    tags = [t.lower() for t in config["kubernetesTags"]]
    if args.resource_type in reg.PVE_VM_TYPES and _is_kubernetes_vm(args.props, tags):
        account = mapping(get(args.props, "initialization.userAccount"))
        if items(get(account, "keys")):
            report(f"Kubernetes node VM '{args.name}' installs SSH keys through cloud-init.")
        if get(account, "password"):
            report(f"Kubernetes node VM '{args.name}' sets a cloud-init password.")
    elif (
        args.resource_type == reg.OCI_INSTANCE
        and _is_kubernetes_instance(args.props, tags)
        and get(args.props, "metadata.ssh_authorized_keys")
    ):
        report(f"Kubernetes node instance '{args.name}' installs SSH keys through its metadata.")


@stack_rule(
    id="SEC-06",
    slug="proxmox-vm-enforce-talos-image-for-kubernetes-nodes",
    nfr="NFR-006",
    topic="security",
    description="Kubernetes node VMs boot an image downloaded from the Talos Image Factory at a pinned version "
    "(NFR-006: every node runs the immutable, API-managed Talos OS and nothing else).",
    fix="boot the VM from a `proxmoxve.download.File` whose URL is "
    "`https://factory.talos.dev/image/<schematic>/<vX.Y.Z>/...` and reference it in `disks[].file_id` "
    "or `cdrom.file_id`.",
    config={
        "kubernetesTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": KUBERNETES_TAGS,
            "description": "VM tags that mark a Kubernetes node.",
        },
        "imageUrlPattern": {
            "type": "string",
            # A schematic id is the SHA-256 of its customization: an exact, content-addressed image.
            "default": r"^https://factory\.talos\.dev/image/[0-9a-f]{64}/v\d+\.\d+\.\d+/",
            "description": "Regular expression every node boot image URL matches.",
        },
    },
)
def kubernetes_nodes_boot_talos(args: StackValidationArgs, report: StackReport, config: Config) -> None:
    tags = [t.lower() for t in config["kubernetesTags"]]
    pattern = re.compile(config["imageUrlPattern"])
    downloads = of_type(args.resources, reg.PVE_DOWNLOAD_TYPES)
    for vm in of_type(args.resources, reg.PVE_VM_TYPES):
        if not _is_kubernetes_vm(vm.props, tags):
            continue
        images = [d for d in downloads if depends_on(vm, d, "disks") or depends_on(vm, d, "cdrom")]
        if not images:
            report(f"Kubernetes node VM '{vm.name}' boots no image downloaded by this stack.", vm.urn)
            continue
        for image in images:
            url = str(get(image.props, "url", ""))
            if not pattern.search(url):
                report(f"Kubernetes node VM '{vm.name}' boots {url}, not a pinned Talos Image Factory image.", vm.urn)


@resource_rule(
    id="SEC-10",
    slug="resource-enforce-secret-outputs",
    nfr="NFR-006",
    topic="security",
    description="Outputs that carry credentials are listed in `additional_secret_outputs`, so the state file only "
    "ever holds them encrypted (NFR-006; the provider's nested sensitive flags are not relied on).",
    fix="add the listed outputs to `opts=ResourceOptions(additional_secret_outputs=[...])` of the resource.",
    severity=Severity.CRITICAL,
)
def sensitive_outputs_are_secret(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    missing = [f for f in SENSITIVE_OUTPUTS.get(args.resource_type, ()) if f not in args.opts.additional_secret_outputs]
    if missing:
        report(f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}' does not keep {', '.join(missing)} secret.")


@resource_rule(
    id="SEC-11",
    slug="oci-instance-enable-in-transit-encryption",
    nfr="NFR-006",
    topic="security",
    description="OCI instances encrypt paravirtualized volume traffic in transit (NFR-006: data between the host "
    "and the boot/block volumes is never in clear text).",
    fix="set `is_pv_encryption_in_transit_enabled=True` on the instance (the SDK's create-time field; "
    "`launch_options.is_pv_encryption_in_transit_enabled` is for updates) with a PARAVIRTUALIZED launch mode.",
)
def instance_in_transit_encryption(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.OCI_INSTANCE:
        return
    enabled = is_true(get(args.props, "launchOptions.isPvEncryptionInTransitEnabled")) or is_true(
        get(args.props, "isPvEncryptionInTransitEnabled")
    )
    if not enabled:
        report(f"instance '{args.name}' does not encrypt volume traffic in transit.")


@resource_rule(
    id="SEC-12",
    slug="oci-instance-disable-legacy-imds",
    nfr="NFR-006",
    topic="security",
    description="OCI instances serve only the v2 metadata endpoint, which needs a header a forged request "
    "(SSRF) cannot set (NFR-006: host hardening).",
    fix="set `instance_options=InstanceInstanceOptionsArgs(are_legacy_imds_endpoints_disabled=True)`.",
)
def instance_without_legacy_imds(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type == reg.OCI_INSTANCE and not is_true(
        get(args.props, "instanceOptions.areLegacyImdsEndpointsDisabled")
    ):
        report(f"instance '{args.name}' still serves the legacy IMDS v1 endpoints.")


@resource_rule(
    id="SEC-16",
    slug="proxmox-download-enforce-checksum",
    nfr="NFR-006",
    topic="security",
    description="Images are downloaded onto Proxmox over verified https with a sha256/sha512 checksum "
    "(NFR-006: what boots is exactly the reviewed image).",
    fix='use an `https://` URL, keep `verify` on, and set `checksum` with `checksum_algorithm="sha256"` '
    "(compute it once with `curl -L <url> | sha256sum` and pin it in the stack config).",
    config={
        "algorithms": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["sha256", "sha512"],
            "description": "Accepted checksum algorithms.",
        }
    },
)
def downloads_are_verified(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type not in reg.PVE_DOWNLOAD_TYPES:
        return
    url = str(get(args.props, "url", ""))
    if not url.lower().startswith("https://"):
        report(f"download '{args.name}' fetches {url} without https.")
    if is_false(get(args.props, "verify")):
        report(f"download '{args.name}' skips TLS verification (verify=false).")
    algorithm = str(get(args.props, "checksumAlgorithm", "")).lower()
    if not get(args.props, "checksum") or algorithm not in config["algorithms"]:
        report(f"download '{args.name}' is not checked against a sha256/sha512 checksum.")


RULES: tuple[Rule, ...] = (
    tunnel_verifies_origins,
    provider_tls_verified,
    access_covers_hostnames,
    access_requires_mfa,
    kubernetes_nodes_without_login,
    kubernetes_nodes_boot_talos,
    sensitive_outputs_are_secret,
    instance_in_transit_encryption,
    instance_without_legacy_imds,
    downloads_are_verified,
)
