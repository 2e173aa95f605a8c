"""Reading resource properties the way the policy server hands them over.

Props arrive wrapped by `pulumi_policy.proxy.unknown_checking_proxy`: touching a value that is
unknown at preview raises `UnknownValueError`, which the server (and the offline evaluator) turns
into a "can't run policy during preview" advisory. These helpers never swallow that error, so a
rule either decides on known values or does not decide at all; they only smooth over the shapes
the wire uses (numbers arrive as floats, booleans sometimes as strings, absent and null alike).
"""

import ipaddress
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource

RFC1918 = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
)


def get(value: Any, path: str, default: Any = None) -> Any:
    """The value at dotted `path` (`spec.template.spec`), or `default` when any step is absent/null."""
    current = value
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return default
        try:
            current = current[part]
        except KeyError:
            return default
        if current is None:
            return default
    return current


def items(value: Any) -> list[Any]:
    """The elements of a list property (empty when absent); never iterates a string."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [value[i] for i in range(len(value))]
    return []


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def is_true(value: Any) -> bool:
    """Booleans travel as `true` or `"true"` depending on the provider schema."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def number(value: Any, default: float = 0.0) -> float:
    """A numeric property (floats on the wire, strings for some OCI sizes)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """`value` as a CIDR (a bare address is a /32 or /128), or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def is_world(value: Any) -> bool:
    """True for a source that admits the whole Internet (`0.0.0.0/0`, `::/0`)."""
    net = network(value)
    return net is not None and net.prefixlen == 0


def within(value: Any, allowed: Sequence[str]) -> bool:
    """True when the CIDR `value` lies entirely inside one of the `allowed` CIDRs."""
    net = network(value)
    if net is None:
        return False
    for candidate in allowed:
        outer = network(candidate)
        if outer is not None and outer.version == net.version and net.subnet_of(outer):  # type: ignore[arg-type]
            return True
    return False


def is_private_address(value: Any) -> bool:
    """An RFC 1918 or loopback address/network."""
    net = network(value)
    if net is None:
        return False
    if net.is_loopback:
        return True
    return net.version == 4 and any(net.subnet_of(private) for private in RFC1918)  # type: ignore[arg-type]


# --- Kubernetes pod templates -------------------------------------------------------------------

POD_SPEC_PATHS: Mapping[str, str] = {
    "kubernetes:core/v1:Pod": "spec",
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
}

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec(resource_type: str, props: Any) -> Mapping[str, Any] | None:
    """The pod template of a workload resource, or None for other types."""
    path = POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return None
    return mapping(get(props, path))


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every container of a pod spec, init and ephemeral ones included."""
    for key in CONTAINER_LISTS:
        for container in items(get(spec, key)):
            yield mapping(container)


def namespace_of(props: Any) -> str:
    """The object's namespace; unset means the provider's default namespace (`default`)."""
    value = get(props, "metadata.namespace")
    return value if isinstance(value, str) and value else "default"


def k8s_name(props: Any, fallback: str) -> str:
    value = get(props, "metadata.name")
    return value if isinstance(value, str) and value else fallback


# --- stack graph --------------------------------------------------------------------------------


def depends_on(resource: PolicyResource, other: PolicyResource, prop: str | None = None) -> bool:
    """True when `resource` takes an input from `other` (or waits for it)."""
    if prop is not None:
        return any(d.urn == other.urn for d in resource.property_dependencies.get(prop, []))
    if any(d.urn == other.urn for d in resource.dependencies):
        return True
    return any(d.urn == other.urn for deps in resource.property_dependencies.values() for d in deps)


def of_type(resources: Sequence[PolicyResource], types: Collection[str]) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]
