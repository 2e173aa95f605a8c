"""Kubernetes workload security: restricted pods, namespace admission, secrets, pinned images (NFR-006)."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.rules import registry as reg
from policies.rules.base import Rule, resource_rule
from policies.rules.walk import containers, get, is_false, is_true, items, k8s_name, mapping, namespace_of, pod_spec

Report = Callable[[str], None]
Config = Mapping[str, Any]

SYSTEM_NAMESPACES = ["kube-system"]
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def _effective(container: Mapping[str, Any], pod: Mapping[str, Any], key: str) -> Any:
    value = get(container, f"securityContext.{key}")
    return value if value is not None else get(pod, f"securityContext.{key}")


@resource_rule(
    id="SEC-07",
    slug="kubernetes-pod-enforce-restricted-profile",
    nfr="NFR-006",
    topic="security",
    description="Workloads outside the system namespaces meet the Pod Security 'restricted' profile: non-root, "
    "no privilege escalation, all capabilities dropped, a seccomp profile, no host namespaces or hostPath "
    "(NFR-006: a compromised app cannot take over its node).",
    fix="set pod `securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}` and per "
    "container `securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}`; remove "
    "privileged, hostPID/hostIPC and hostPath volumes.",
    config={
        "systemNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": SYSTEM_NAMESPACES,
            "description": "Namespaces of cluster infrastructure exempt from the restricted profile.",
        },
        "allowedCapabilities": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["NET_BIND_SERVICE"],
            "description": "Capabilities a container may add back.",
        },
    },
)
def pods_restricted(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    pod = pod_spec(args.resource_type, args.props)
    if pod is None or namespace_of(args.props) in config["systemNamespaces"]:
        return
    for flag in ("hostPID", "hostIPC"):
        if is_true(get(pod, flag)):
            report(f"'{args.name}' shares the node's {flag[4:]} namespace ({flag}: true).")
    host_paths = [str(get(v, "name", "?")) for v in items(get(pod, "volumes")) if get(v, "hostPath") is not None]
    if host_paths:
        report(f"'{args.name}' mounts hostPath volume(s) {', '.join(host_paths)}.")
    for container in containers(pod):
        missing: list[str] = []
        if not is_true(_effective(container, pod, "runAsNonRoot")):
            missing.append("runAsNonRoot: true")
        if _effective(container, pod, "runAsUser") in (0, 0.0):
            missing.append("a non-zero runAsUser")
        if not is_false(get(container, "securityContext.allowPrivilegeEscalation")):
            missing.append("allowPrivilegeEscalation: false")
        if is_true(get(container, "securityContext.privileged")):
            missing.append("privileged: false")
        dropped = [str(c).upper() for c in items(get(container, "securityContext.capabilities.drop"))]
        if "ALL" not in dropped:
            missing.append("capabilities.drop [ALL]")
        added = [str(c).upper() for c in items(get(container, "securityContext.capabilities.add"))]
        extra = [c for c in added if c not in config["allowedCapabilities"]]
        if extra:
            missing.append(f"no added capabilities ({', '.join(extra)})")
        if _effective(container, pod, "seccompProfile.type") not in ("RuntimeDefault", "Localhost"):
            missing.append("seccompProfile RuntimeDefault")
        if missing:
            report(f"'{args.name}' container '{get(container, 'name', '?')}' lacks {', '.join(missing)}.")


@resource_rule(
    id="SEC-08",
    slug="kubernetes-namespace-enforce-psa-labels",
    nfr="NFR-006",
    topic="security",
    description="Every namespace enforces a Pod Security level (`baseline` or `restricted`); `privileged` only "
    "for allowlisted infrastructure namespaces (NFR-006: the cluster itself rejects unsafe pods).",
    fix="label the namespace `pod-security.kubernetes.io/enforce: restricted` (or `baseline`); list "
    "infrastructure namespaces that truly need `privileged` in `privilegedNamespaces`.",
    config={
        "privilegedNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": SYSTEM_NAMESPACES,
            "description": "Namespaces allowed to enforce `privileged` (CNI, CSI).",
        }
    },
)
def namespaces_enforce_psa(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    if args.resource_type != reg.K8S_NAMESPACE:
        return
    name = k8s_name(args.props, args.name)
    level = mapping(get(args.props, "metadata.labels")).get(PSA_ENFORCE)
    if level in ("baseline", "restricted"):
        return
    if level == "privileged" and name in config["privilegedNamespaces"]:
        return
    shown = "no enforce label" if level is None else f"enforce={level}"
    report(f"namespace {name} has {shown}.")


_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


@resource_rule(
    id="SEC-09",
    slug="kubernetes-workload-disallow-plaintext-secrets",
    nfr="NFR-006",
    topic="security",
    description="No credential is written in plain text into a container's env or a ConfigMap (NFR-006: secrets "
    "live in Secrets fed by External Secrets, never in manifests or state in clear).",
    fix="move the value into a Secret (ExternalSecret from Bitwarden) and reference it with "
    "`valueFrom.secretKeyRef` (or `envFrom.secretRef`); keep ConfigMaps for non-secret settings.",
    config={
        "namePattern": {
            "type": "string",
            "default": r"(?i)(passw(or)?d|secret|token|api[_-]?key|private[_-]?key|credential|bearer)",
            "description": "Env var / ConfigMap key names that hold credentials.",
        },
        "allowedNamePattern": {
            "type": "string",
            "default": r"(?i)(_FILE|_PATH|_DIR|_URL|_ENDPOINT|_NAME|_REF)$",
            "description": "Names that only point at a credential (a file path, a secret's name).",
        },
    },
)
def no_plaintext_secrets(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    secretish = re.compile(config["namePattern"])
    pointer = re.compile(config["allowedNamePattern"])

    def sensitive(key: str, value: Any) -> bool:
        if isinstance(value, str) and _PRIVATE_KEY.search(value):
            return True
        return bool(value) and bool(secretish.search(key)) and not pointer.search(key)

    pod = pod_spec(args.resource_type, args.props)
    if pod is not None:
        for container in containers(pod):
            for env in items(get(container, "env")):
                key = str(get(env, "name", ""))
                if sensitive(key, get(env, "value")):
                    report(f"'{args.name}' container '{get(container, 'name', '?')}' sets {key} in plain text.")
    elif args.resource_type == reg.K8S_CONFIGMAP:
        data = mapping(get(args.props, "data"))
        for key in data:
            if sensitive(str(key), data[key]):
                report(f"ConfigMap '{k8s_name(args.props, args.name)}' holds {key} in plain text.")


_FLOATING_TAGS = {"latest", "stable", "main", "master", "edge", "nightly", "dev", "develop", "rolling"}


def _image_problem(image: str, require_digest: bool) -> str | None:
    if "@sha256:" in image:
        return None
    if require_digest:
        return "is not pinned by digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (implicitly latest)"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in _FLOATING_TAGS or not re.search(r"\d", tag):
        return f"uses the floating tag {tag}"
    return None


@resource_rule(
    id="SEC-13",
    slug="kubernetes-container-enforce-pinned-image",
    nfr="NFR-006",
    topic="security",
    description="Every container image is pinned by digest or an exact version tag, never `latest` or a "
    "floating tag (NFR-006: what was scanned is what runs).",
    fix="reference the image as `repo:1.2.3@sha256:<digest>` (or at least an exact version tag); let Renovate bump it.",
    config={
        "requireDigest": {
            "type": "boolean",
            "default": False,
            "description": "Accept only `@sha256:` references (exact tags are rejected too).",
        }
    },
)
def images_pinned(args: ResourceValidationArgs, report: Report, config: Config) -> None:
    pod = pod_spec(args.resource_type, args.props)
    if pod is None:
        return
    for container in containers(pod):
        image = str(get(container, "image", ""))
        problem = _image_problem(image, bool(config["requireDigest"])) if image else "has no image"
        if problem:
            report(f"'{args.name}' container '{get(container, 'name', '?')}' image {image} {problem}.")


RULES: tuple[Rule, ...] = (pods_restricted, namespaces_enforce_psa, no_plaintext_secrets, images_pinned)
