"""Every configurable limit of the pack is obeyed: overridden both ways, and numeric limits at their boundary.

`OVERRIDES` holds, for every config key of every rule, a subject whose verdict the override flips:
a `pass` override lets through what the base config reports, a `violate` override reports what the
base config lets through. Each case asserts both verdicts, so a rule that ignores the key (reads a
constant, or the default) fails here. `BOUNDARIES` puts a subject exactly at a numeric limit (no
violation) and one unit past it (a violation), at the default and at an overridden value, so a
flipped comparison (`>` for `>=`) fails here. `test_every_limit_is_covered` fails when a rule gains
a key without these cases.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from policies.rules import RULES
from tests.policies import cases_identity as ident
from tests.policies.cases import (
    CATCH_ALL,
    DEPLOYMENT,
    DNS,
    DOWNLOAD,
    DOWNLOAD_PROPS,
    INSTANCE,
    MACHINE_ROUTE,
    MACHINES,
    MFA,
    MINIO_S3,
    NAMESPACE,
    OCI_S3,
    OVH_S3,
    PUBLIC_INGRESS,
    SERVICE,
    SL,
    TALOS_URL,
    TUNNEL_CONFIG,
    VM,
    VOLUME,
    access_app,
    access_policy,
    access_stack,
    admin_ingress,
    backup_stack,
    claim,
    costed,
    data_volume,
    deployment,
    dump_job,
    estimate,
    etcd_vm,
    ingress,
    instance,
    labelled_namespace,
    lifecycle,
    machine_stack,
    micro,
    namespace,
    node_stack,
    restricted_container,
    security_list,
    service,
    sized_bucket,
    snapshot_job,
    storage_class,
    tunnel_config,
    velero,
    vm,
)
from tests.policies.helpers import Res, resource_args, run, stack_args

Args = ResourceValidationArgs | StackValidationArgs
Config = Mapping[str, Any] | None
BY_ID = {rule.id: rule for rule in RULES}


@dataclass(frozen=True)
class Override:
    rule: str
    key: str
    kind: Literal["pass", "violate"]
    """What the override does to the subject: lets it pass, or makes it violate."""
    build: Callable[[Config], Args]
    """The subject under a given rule config (None: the rule's defaults)."""
    value: Any
    expected: str
    """A fragment of the violation the subject gets under the config that reports it."""
    base: Config = None

    @property
    def id(self) -> str:
        return f"{self.rule}.{self.key}-{self.kind}"


def violations(rule: str, args: Args) -> list[str]:
    outcome = run(BY_ID[rule], args)
    assert outcome.cannot_run is None, outcome.cannot_run
    return outcome.violations


def _merge(base: Config, key: str, value: Any) -> dict[str, Any]:
    return {**(base or {}), key: value}


# --- subjects ----------------------------------------------------------------------------------


def sl_rule(source: str, port: int) -> Callable[[Config], Args]:
    return lambda config: resource_args(SL, security_list(ingress(source, ports=(port, port))), config=config)


def lan_balancer(config: Config) -> Args:
    props = service("LoadBalancer", loadBalancerSourceRanges=["192.168.68.0/24"])
    return resource_args(SERVICE, props, config=config)


def host_network(namespace_name: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(
        DEPLOYMENT, deployment(namespace=namespace_name, hostNetwork=True), config=config
    )


def origin(service_url: str) -> Callable[[Config], Args]:
    rule = {"hostname": "grafana.example.org", "service": service_url}
    return lambda config: resource_args(TUNNEL_CONFIG, tunnel_config(rule, CATCH_ALL), config=config)


def dns(kind: str, content: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(DNS, {"name": "www", "type": kind, "content": content}, config=config)


def public_route(config: Config) -> Args:
    return access_stack([admin_ingress(), PUBLIC_INGRESS], access_policy(MFA), access_app(), config=config)


def second_factor(method: str) -> Callable[[Config], Args]:
    requires = [{"authMethod": {"authMethod": method}}]
    return lambda config: access_stack([admin_ingress()], access_policy(requires), access_app(), config=config)


def session(duration: str) -> Callable[[Config], Args]:
    return lambda config: access_stack(
        [admin_ingress()], access_policy(MFA), access_app(sessionDuration=duration), config=config
    )


def vm_with_keys(*tags: str) -> Callable[[Config], Args]:
    init = {"userAccount": {"keys": ["ssh-ed25519 AAAA"]}}
    return lambda config: resource_args(VM, vm(list(tags), initialization=init), config=config)


def node_booting(url: str, *tags: str) -> Callable[[Config], Args]:
    def build(config: Config) -> Args:
        args = node_stack(url, tags=tags or ("kubernetes",))
        return StackValidationArgs(args.resources, dict(config) if config is not None else None)

    return build


def download(algorithm: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(DOWNLOAD, {**DOWNLOAD_PROPS, "checksumAlgorithm": algorithm}, config=config)


def privileged(namespace_name: str) -> Callable[[Config], Args]:
    container = restricted_container(
        securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": True}
    )
    return lambda config: resource_args(DEPLOYMENT, deployment(container, namespace=namespace_name), config=config)


def adds_capability(capability: str) -> Callable[[Config], Args]:
    context = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": [capability]}}
    container = restricted_container(securityContext=context)
    return lambda config: resource_args(DEPLOYMENT, deployment(container), config=config)


def privileged_namespace(name: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(NAMESPACE, namespace(name, "privileged"), config=config)


def env(name: str, value: str) -> Callable[[Config], Args]:
    container = restricted_container(env=[{"name": name, "value": value}])
    return lambda config: resource_args(DEPLOYMENT, deployment(container), config=config)


def image(reference: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(DEPLOYMENT, deployment(restricted_container(image=reference)), config=config)


def shape(name: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(INSTANCE, instance(shape=name), config=config)


def unprotected_guest(*tags: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(VM, vm(list(tags)), config=config)


def claim_on(class_name: str) -> Callable[[Config], Args]:
    return lambda config: stack_args([storage_class("retained", "Retain"), claim("photos", class_name)], config)


def tagged_instance(**tags: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(INSTANCE, instance(freeformTags=dict(tags)), config=config)


def labelled_service(**labels: str) -> Callable[[Config], Args]:
    props = service()
    props["metadata"]["labels"] = dict(labels)
    return lambda config: resource_args(SERVICE, props, config=config)


def guests(*memory_and_tags: tuple[float, tuple[str, ...]]) -> Callable[[Config], Args]:
    def build(config: Config) -> Args:
        resources = [Res(VM, f"guest-{i}", vm(list(tags), memory)) for i, (memory, tags) in enumerate(memory_and_tags)]
        return stack_args(resources, config)

    return build


def starts_on_boot(*tags: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(VM, vm(list(tags), onBoot=True), config=config)


HOST = {"reservedMb": 12288, "otherStacksMb": {}}

OVERRIDES: list[Override] = [
    # NET-09
    Override("NET-09", "adminCidrs", "pass", sl_rule("198.51.100.0/24", 6443), ["198.51.100.0/24"], "6443"),
    Override(
        "NET-09",
        "adminCidrs",
        "violate",
        sl_rule("198.51.100.0/24", 6443),
        ["203.0.113.7/32"],
        "6443",
        base={"adminCidrs": ["198.51.100.0/24"]},
    ),
    Override("NET-09", "internalCidrs", "pass", sl_rule("100.64.0.0/10", 50000), ["100.64.0.0/10"], "50000"),
    Override("NET-09", "internalCidrs", "violate", sl_rule("10.0.0.0/16", 6443), ["192.168.0.0/16"], "6443"),
    Override("NET-09", "adminPorts", "pass", sl_rule("198.51.100.0/24", 6443), [50000, 50001], "6443"),
    Override("NET-09", "adminPorts", "violate", sl_rule("198.51.100.0/24", 22), [22], "admin port(s) 22"),
    # NET-04
    Override("NET-04", "allowedServices", "pass", lan_balancer, ["apps/web"], "Service apps/web is of type"),
    Override(
        "NET-04",
        "allowedServices",
        "violate",
        lan_balancer,
        ["apps/other"],
        "Service apps/web is of type",
        base={"allowedServices": ["apps/web"]},
    ),
    # NET-05
    Override("NET-05", "systemNamespaces", "pass", host_network("cilium"), ["cilium"], "host network"),
    Override("NET-05", "systemNamespaces", "violate", host_network("kube-system"), ["cilium"], "host network"),
    # NET-06
    Override(
        "NET-06", "originHostSuffixes", "pass", origin("http://grafana.lab.internal"), [".lab.internal"], "grafana."
    ),
    Override(
        "NET-06",
        "originHostSuffixes",
        "violate",
        origin("http://grafana.monitoring.svc.cluster.local"),
        [".home.arpa"],
        "not an internal origin",
    ),
    # NET-07
    Override("NET-07", "allowedTypes", "pass", dns("MX", "mail.example.org"), ["MX"], "is a MX record"),
    Override("NET-07", "allowedTypes", "violate", dns("TXT", "v=spf1 -all"), ["CAA"], "is a TXT record"),
    # SEC-03
    Override(
        "SEC-03", "publicHostnames", "pass", public_route, ["cloud.example.org"], "cloud.example.org has no Cloudflare"
    ),
    Override(
        "SEC-03",
        "publicHostnames",
        "violate",
        public_route,
        ["blog.example.org"],
        "cloud.example.org has no Cloudflare",
        base={"publicHostnames": ["cloud.example.org"]},
    ),
    Override(
        "SEC-03",
        "serviceTokenHostnames",
        "pass",
        lambda config: machine_stack([{"anyValidServiceToken": {}}], config=config),
        [],
        "admits more than service tokens",
        base=MACHINES,
    ),
    Override(
        "SEC-03",
        "serviceTokenHostnames",
        "violate",
        lambda config: machine_stack([{"anyValidServiceToken": {}}], config=config),
        [MACHINE_ROUTE],
        "admits more than service tokens",
    ),
    # SEC-04
    Override("SEC-04", "acceptedAuthMethods", "pass", second_factor("otp"), ["otp"], "without a second factor"),
    Override("SEC-04", "acceptedAuthMethods", "violate", second_factor("mfa"), ["hwk"], "without a second factor"),
    Override("SEC-04", "maxSessionHours", "pass", session("48h"), 48, "keeps sessions for 48h"),
    Override("SEC-04", "maxSessionHours", "violate", session("12h"), 8, "keeps sessions for 12h"),
    # SEC-05
    Override("SEC-05", "kubernetesTags", "pass", vm_with_keys("kubernetes"), ["k3s"], "installs SSH keys"),
    Override("SEC-05", "kubernetesTags", "violate", vm_with_keys("k3s"), ["k3s"], "installs SSH keys"),
    # SEC-06
    Override(
        "SEC-06", "kubernetesTags", "pass", node_booting("https://mirror/img.raw", "kubernetes"), ["k3s"], "boots"
    ),
    Override("SEC-06", "kubernetesTags", "violate", node_booting("https://mirror/img.raw", "k3s"), ["k3s"], "boots"),
    Override(
        "SEC-06",
        "imageUrlPattern",
        "pass",
        node_booting("https://mirror.example.org/talos/v1.10.6/nocloud-amd64.raw.zst"),
        r"^https://mirror\.example\.org/talos/v\d+\.\d+\.\d+/",
        "not a pinned Talos Image Factory image",
    ),
    Override(
        "SEC-06",
        "imageUrlPattern",
        "violate",
        node_booting(TALOS_URL),
        r"^https://mirror\.example\.org/",
        "not a pinned Talos Image Factory image",
    ),
    # SEC-16
    Override("SEC-16", "algorithms", "pass", download("sha384"), ["sha384"], "not checked against"),
    Override("SEC-16", "algorithms", "violate", download("sha256"), ["sha512"], "not checked against"),
    # SEC-07
    Override("SEC-07", "systemNamespaces", "pass", privileged("longhorn-system"), ["longhorn-system"], "privileged"),
    Override("SEC-07", "systemNamespaces", "violate", privileged("kube-system"), ["longhorn-system"], "privileged"),
    Override("SEC-07", "allowedCapabilities", "pass", adds_capability("NET_RAW"), ["NET_RAW"], "(NET_RAW)"),
    Override("SEC-07", "allowedCapabilities", "violate", adds_capability("NET_BIND_SERVICE"), [], "NET_BIND_SERVICE"),
    # SEC-08
    Override(
        "SEC-08",
        "privilegedNamespaces",
        "pass",
        privileged_namespace("longhorn-system"),
        ["longhorn-system"],
        "enforce",
    ),
    Override("SEC-08", "privilegedNamespaces", "violate", privileged_namespace("kube-system"), ["cilium"], "enforce"),
    # SEC-09
    Override("SEC-09", "namePattern", "pass", env("DB_PASSWORD", "hunter2"), "(?i)token", "sets DB_PASSWORD"),
    Override("SEC-09", "namePattern", "violate", env("UNLOCK_PIN", "1234"), "(?i)pin", "sets UNLOCK_PIN"),
    Override(
        "SEC-09",
        "allowedNamePattern",
        "pass",
        env("API_TOKEN_LOCATION", "/run/secrets/token"),
        "(?i)_LOCATION$",
        "sets API_TOKEN_LOCATION",
    ),
    Override(
        "SEC-09",
        "allowedNamePattern",
        "violate",
        env("PASSWORD_FILE", "/run/secrets/db"),
        "(?i)_PATH$",
        "sets PASSWORD_FILE",
    ),
    # SEC-13
    Override(
        "SEC-13",
        "requireDigest",
        "pass",
        image("ghcr.io/example/web:1.2.3"),
        False,
        "not pinned by digest",
        base={"requireDigest": True},
    ),
    Override("SEC-13", "requireDigest", "violate", image("ghcr.io/example/web:1.2.3"), True, "not pinned by digest"),
    # BUD-01
    Override("BUD-01", "hostMemoryMb", "pass", guests((57344, ())), 131072, "over the host's"),
    Override("BUD-01", "hostMemoryMb", "violate", guests((32768, ())), 32768, "over the host's"),
    Override("BUD-01", "reservedMb", "pass", guests((57344, ())), 4096, "over the host's"),
    Override("BUD-01", "reservedMb", "violate", guests((32768, ())), 40960, "over the host's"),
    Override(
        "BUD-01",
        "otherStacksMb",
        "pass",
        guests((32768, ("mode-testing",))),
        {"testing": 0},
        "mode testing needs",
        base={"otherStacksMb": {"testing": 24576}},
    ),
    Override(
        "BUD-01", "otherStacksMb", "violate", guests((32768, ("mode-testing",))), {"testing": 24576}, "mode testing"
    ),
    Override("BUD-01", "modes", "pass", guests((57344, ("mode-gaming",))), ["normal", "testing"], "mode gaming"),
    Override("BUD-01", "modes", "violate", guests((57344, ("mode-party",))), ["normal", "party"], "mode party"),
    # BUD-06
    Override("BUD-06", "reservedMb", "pass", guests((24576, ("mode-normal",))), 4096, "mode normal needs"),
    Override("BUD-06", "reservedMb", "violate", guests((8192, ("mode-normal",))), 24576, "mode normal needs"),
    Override(
        "BUD-06",
        "otherStacksMb",
        "pass",
        guests((8192, ("mode-testing",))),
        {},
        "mode testing needs",
        base={"otherStacksMb": {"testing": 16384}},
    ),
    Override(
        "BUD-06", "otherStacksMb", "violate", guests((8192, ("mode-testing",))), {"testing": 16384}, "mode testing"
    ),
    Override(
        "BUD-06",
        "modeTargetsMb",
        "pass",
        guests((24576, ("mode-normal",))),
        {"normal": 40960},
        "over its 28.0 GiB target",
    ),
    Override(
        "BUD-06",
        "modeTargetsMb",
        "violate",
        guests((8192, ("mode-normal",))),
        {"normal": 16384},
        "over its 16.0 GiB target",
    ),
    # BUD-07
    Override("BUD-07", "bootModes", "pass", starts_on_boot("mode-testing"), ["normal", "testing"], "starts on boot"),
    Override("BUD-07", "bootModes", "violate", starts_on_boot("mode-normal"), ["testing"], "starts on boot"),
    # BUD-02
    Override("BUD-02", "allowedShapes", "pass", shape("VM.Standard.E4.Flex"), ["VM.Standard.E4.Flex"], "E4.Flex"),
    Override("BUD-02", "allowedShapes", "violate", shape("VM.Standard.A1.Flex"), ["VM.Standard.E2.1.Micro"], "A1"),
    # DAT-01
    Override("DAT-01", "guestTags", "pass", unprotected_guest("stateful"), ["database"], "is not protected"),
    Override("DAT-01", "guestTags", "violate", unprotected_guest("database"), ["database"], "is not protected"),
    # DAT-03
    Override("DAT-03", "statefulTags", "pass", unprotected_guest("stateful"), ["database"], "protection flag"),
    Override("DAT-03", "statefulTags", "violate", unprotected_guest("database"), ["database"], "protection flag"),
    # DAT-04
    Override("DAT-04", "retainStorageClasses", "pass", claim_on("nfs-media"), ["nfs-media"], "not known to retain"),
    Override(
        "DAT-04",
        "retainStorageClasses",
        "violate",
        claim_on("nfs-media"),
        ["longhorn"],
        "not known to retain",
        base={"retainStorageClasses": ["nfs-media"]},
    ),
    # OPS-01
    Override("OPS-01", "ociTags", "pass", tagged_instance(**{"managed-by": "pulumi"}), ["managed-by"], "stack"),
    Override(
        "OPS-01",
        "ociTags",
        "violate",
        tagged_instance(**{"managed-by": "pulumi", "stack": "cloud"}),
        ["managed-by", "owner"],
        "owner",
    ),
    Override("OPS-01", "kubernetesLabels", "pass", labelled_service(app="web"), ["app"], "app.kubernetes.io/name"),
    Override(
        "OPS-01",
        "kubernetesLabels",
        "violate",
        labelled_service(**{"app.kubernetes.io/name": "web"}),
        ["app.kubernetes.io/name", "app.kubernetes.io/part-of"],
        "app.kubernetes.io/part-of",
    ),
]


# --- boundaries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    rule: str
    key: str
    build: Callable[[float, Config], Args]
    """The subject using `amount` of the limited quantity, under a rule config."""
    default: float
    """The limit the rule's default config sets (asserted against the schema)."""
    override: float
    """Another limit, set through the config."""
    step: float = 1
    """One unit past the limit."""
    config: Callable[[float], dict[str, Any]] | None = None
    """How the limit is written into the config (default: `{key: limit}`)."""

    @property
    def id(self) -> str:
        return f"{self.rule}.{self.key}"

    def written(self, limit: float) -> dict[str, Any]:
        return self.config(limit) if self.config is not None else {self.key: limit}


def session_minutes(amount: float, config: Config) -> Args:
    return session(f"{amount * 60:g}m")(config)


def memory_use(amount: float, config: Config) -> Args:
    """One guest of `amount` MiB, in every mode; nothing reserved and no other stacks unless configured."""
    return guests((amount, ()))({**HOST, "reservedMb": 0, **(config or {})})


def a1_ocpus(amount: float, config: Config) -> Args:
    return stack_args([_a1("a", amount / 2, 1), _a1("b", amount / 2, 1)], config)


def a1_memory(amount: float, config: Config) -> Args:
    return stack_args([_a1("a", 0.5, amount / 2), _a1("b", 0.5, amount / 2)], config)


def _a1(name: str, ocpus: float, memory: float) -> Res:
    props = instance(shapeConfig={"ocpus": ocpus, "memoryInGbs": memory})
    return Res(INSTANCE, name, props)


def micros(amount: float, config: Config) -> Args:
    return stack_args([micro(f"m{i}") for i in range(int(amount))], config)


def block_storage(amount: float, config: Config) -> Args:
    boot = Res(INSTANCE, "node", instance(sourceDetails={"sourceType": "image", "bootVolumeSizeInGbs": "50"}))
    volume = Res(VOLUME, "data", {"compartmentId": "c", "availabilityDomain": "AD-1", "sizeInGbs": f"{amount - 50:g}"})
    return stack_args([boot, volume], config)


def backups(amount: float, config: Config) -> Args:
    return stack_args(
        [Res("oci:Core/volumeBackup:VolumeBackup", f"backup-{i}", {"volumeId": "v"}) for i in range(int(amount))],
        config,
    )


def stored(amount: float, config: Config) -> Args:
    """The Talos image bucket (1 GB) and a backup bucket declaring the rest of `amount`."""
    return stack_args([sized_bucket("images", "1"), sized_bucket("backups", f"{amount - 1:g}")], config)


def mode_total(amount: float, config: Config) -> Args:
    """Guests of the `testing` mode totalling `amount` MiB with the ledger's other parts set to zero."""
    return guests((amount, ("mode-testing",)))({"reservedMb": 0, "otherStacksMb": {}, **(config or {})})


BOUNDARIES: list[Boundary] = [
    Boundary("SEC-04", "maxSessionHours", session_minutes, 24, 8, step=1 / 60),
    Boundary("BUD-01", "hostMemoryMb", memory_use, 65536, 49152),
    Boundary(
        "BUD-06",
        "modeTargetsMb",
        mode_total,
        32768,
        20480,
        config=lambda limit: {"modeTargetsMb": {"normal": 28672, "testing": limit, "gaming": 49152}},
    ),
    Boundary("BUD-03", "a1Ocpus", a1_ocpus, 2, 4, step=0.5),
    Boundary("BUD-03", "a1MemoryGb", a1_memory, 12, 24),
    Boundary("BUD-03", "microInstances", micros, 2, 1),
    Boundary("BUD-04", "blockStorageGb", block_storage, 200, 100),
    Boundary("BUD-04", "volumeBackups", backups, 5, 2),
    Boundary("BUD-04", "objectStorageGb", stored, 20, 50, step=0.5),
    # A minimum: at the limit passes, one day under it violates.
    Boundary("DAT-07", "minKeepDays", lambda days, config: kept_for(days)(config), 7, 30, step=-1),
]


def kept_for(days: float) -> Callable[[Config], Args]:
    """A backup bucket whose lifecycle deletes objects and previous versions after `days`."""
    return lambda config: backup_stack(lifecycle(int(days), int(days)), config=config)


def using(build: Callable[[float, Config], Args], amount: float) -> Callable[[Config], Args]:
    return lambda config: build(amount, config)


# The numeric limits, overridden both ways (their boundaries are below).
OVERRIDES += [
    Override("BUD-03", "a1Ocpus", "pass", using(a1_ocpus, 4), 4, "4 OCPUs"),
    Override("BUD-03", "a1Ocpus", "violate", using(a1_ocpus, 2), 1, "2 OCPUs"),
    Override("BUD-03", "a1MemoryGb", "pass", using(a1_memory, 24), 24, "24 GB"),
    Override("BUD-03", "a1MemoryGb", "violate", using(a1_memory, 12), 6, "12 GB"),
    Override("BUD-03", "microInstances", "pass", using(micros, 3), 3, "3 E2.1.Micro"),
    Override("BUD-03", "microInstances", "violate", using(micros, 2), 0, "2 E2.1.Micro"),
    Override("BUD-04", "blockStorageGb", "pass", using(block_storage, 400), 400, "totals 400 GB"),
    Override("BUD-04", "blockStorageGb", "violate", using(block_storage, 200), 150, "totals 200 GB"),
    Override("BUD-04", "volumeBackups", "pass", using(backups, 7), 10, "7 volume backups"),
    Override("BUD-04", "volumeBackups", "violate", using(backups, 5), 4, "5 volume backups"),
    Override("BUD-04", "objectStorageGb", "pass", using(stored, 28), 30, "up to 28 GB"),
    Override("BUD-04", "objectStorageGb", "violate", using(stored, 20), 10, "up to 20 GB"),
    Override("DAT-07", "minKeepDays", "pass", kept_for(3), 3, "after 3 days, under the 7-day minimum"),
    Override("DAT-07", "minKeepDays", "violate", kept_for(30), 60, "under the 60-day minimum"),
]


def _offsite(*resources: Res) -> Callable[[Config], Args]:
    return lambda config: stack_args(list(resources), config)


_OVH_ONLY = {"ovh": ["cloud.ovh.net"]}
OVERRIDES += [
    # A class that must leave its site: `important` data kept on OCI passes by default.
    Override("DAT-08", "offsiteClasses", "pass", _offsite(data_volume(), dump_job(f"{OCI_S3}/b")), [],
             "no copy leaves"),
    Override("DAT-08", "offsiteClasses", "violate", _offsite(data_volume("important"), dump_job(f"{OCI_S3}/b")),
             ["critical", "important"], "'authentik' (important"),
    # Where a target is: a self-hosted endpoint counts once it is listed as a site.
    Override("DAT-08", "siteEndpoints", "pass", _offsite(data_volume(), dump_job(f"{MINIO_S3}/b")),
             {**_OVH_ONLY, "friend": ["minio.example.net"]}, "no known site"),
    Override("DAT-08", "siteEndpoints", "violate", _offsite(data_volume(), dump_job(f"{OVH_S3}/b")),
             {"ovh": ["ovh.example"]}, "no known site"),
    # The cluster's site: a namespace backed up to OVH is offsite at home, not when the cluster runs at OVH.
    Override("DAT-08", "clusterSite", "pass", _offsite(labelled_namespace("immich"), velero(OCI_S3, "b", ["immich"])),
             "home", "only to oci", base={"clusterSite": "oci"}),
    Override("DAT-08", "clusterSite", "violate",
             _offsite(labelled_namespace("immich"), velero(OVH_S3, "b", ["immich"])), "ovh", "only to ovh"),
    # The Proxmox host's site: etcd snapshotted to OCI is offsite at home, not were the host at OCI.
    Override("DAT-08", "hostSite", "pass", _offsite(etcd_vm(), snapshot_job(f"{OCI_S3}/b")), "home", "only to oci",
             base={"hostSite": "oci"}),
    Override("DAT-08", "hostSite", "violate", _offsite(etcd_vm(), snapshot_job(f"{OCI_S3}/b")), "oci", "only to oci"),
]  # fmt: skip


def _grafana_bound_to(group_name: str) -> Callable[[Config], Args]:
    resources = [ident.group(group_name), ident.app("grafana"), ident.binding("grafana", group_name)]
    return lambda config: ident.S(resources, config)


def _dav_routed_to(service_url: str) -> Callable[[Config], Args]:
    return lambda config: ident.tier1_stack(dav_service=service_url, config=config or {})


def _mfa(action: str = "configure", bound_to: str | None = None) -> Callable[[Config], Args]:
    return lambda config: ident.mfa_stack(action=action, bound_to=bound_to, **dict(config or {}))


GRAFANA_ADMIN = {"adminApplications": ["grafana"]}
OTHER_OUTPOST = "http://ak-outpost.authentik.svc:9000"

# The identity rules (IDN-*) and SEC-03's Authentik-gated list.
OVERRIDES += [
    Override(
        "SEC-03", "authentikGatedHostnames", "pass", public_route, ["cloud.example.org"], "cloud.example.org has no"
    ),
    Override(
        "SEC-03",
        "authentikGatedHostnames",
        "violate",
        public_route,
        ["blog.example.org"],
        "cloud.example.org has no",
        base={"authentikGatedHostnames": ["cloud.example.org"]},
    ),
    Override("IDN-02", "adminApplications", "pass", _grafana_bound_to("family"), [], "also bound", base=GRAFANA_ADMIN),
    Override("IDN-02", "adminApplications", "violate", _grafana_bound_to("family"), ["grafana"], "also bound"),
    Override("IDN-02", "adminGroup", "pass", _grafana_bound_to("ops"), "ops", "group 'ops'", base=GRAFANA_ADMIN),
    Override("IDN-02", "adminGroup", "violate", _grafana_bound_to("admin"), "ops", "group 'admin'", base=GRAFANA_ADMIN),
    Override("IDN-03", "tier1Hostnames", "pass", _dav_routed_to("http://baikal:80"), {}, "not to the outpost",
             base=ident.TIER1),
    Override("IDN-03", "tier1Hostnames", "violate", _dav_routed_to("http://baikal:80"),
             ident.TIER1["tier1Hostnames"], "not to the outpost"),
    Override("IDN-03", "outpostOrigins", "pass", _dav_routed_to(OTHER_OUTPOST), [OTHER_OUTPOST], "not to the outpost",
             base=ident.TIER1),
    Override("IDN-03", "outpostOrigins", "violate", _dav_routed_to(ident.OUTPOST), [OTHER_OUTPOST],
             "not to the outpost", base=ident.TIER1),
    Override("IDN-05", "adminGroup", "pass", _mfa(bound_to="family"), "family", "second factor"),
    Override("IDN-05", "adminGroup", "violate", _mfa(bound_to="admin"), "family", "second factor"),
    Override("IDN-05", "enforcingActions", "pass", _mfa(action="skip"), ["skip"], "second factor"),
    Override("IDN-05", "enforcingActions", "violate", _mfa(action="deny"), ["configure"], "second factor"),
]  # fmt: skip


# --- BUD-02 catalogue, BUD-08 yearly cost cap -----------------------------------------------------
FILE_SYSTEM = "oci:FileStorage/fileSystem:FileSystem"


def oci_resource(resource_type: str) -> Callable[[Config], Args]:
    return lambda config: resource_args(resource_type, {"compartmentId": "c"}, config=config)


def yearly_cost(total: float, currency: str = "USD") -> Callable[[Config], Args]:
    return lambda config: costed(estimate(total, currency), config)


def cost_in_usd(amount: float, config: Config) -> Args:
    return costed(estimate(amount, "USD"), config)


OVERRIDES += [
    Override("BUD-02", "allowedTypes", "pass", oci_resource(FILE_SYSTEM), [FILE_SYSTEM], "FileSystem"),
    Override("BUD-02", "allowedTypes", "violate", oci_resource("oci:Core/vcn:Vcn"), [INSTANCE], "Core/vcn:Vcn"),
    Override("BUD-08", "yearlyCap", "pass", yearly_cost(1200), 1500, "1,200.00 USD, over the NFR-012 cap"),
    Override("BUD-08", "yearlyCap", "violate", yearly_cost(900), 800, "over the NFR-012 cap of 800.00 USD"),
    Override("BUD-08", "currency", "pass", yearly_cost(300, "GBP"), "GBP", "not compared"),
    # 800 EUR is 928 USD at the default rate; against a cap in GBP there is no rate: not compared.
    Override("BUD-08", "currency", "violate", yearly_cost(800, "EUR"), "GBP", "not compared"),
    Override("BUD-08", "usdRates", "pass", yearly_cost(300, "GBP"), {"GBP": 1.3}, "not compared"),
    Override("BUD-08", "usdRates", "violate", yearly_cost(800, "EUR"), {"EUR": 1.3}, "(1,040.00 USD), over"),
]
BOUNDARIES += [Boundary("BUD-08", "yearlyCap", cost_in_usd, 1000, 500, step=0.01)]


def test_the_cost_cap_boundary_holds_after_conversion() -> None:
    """862.07 EUR at 1.16 USD/EUR is 1,000.00 USD: exactly at the cap; a cent more is over it."""
    assert violations("BUD-08", costed(estimate(862.07, "EUR"))) == []
    assert violations("BUD-08", costed(estimate(862.08, "EUR"))) != []


# --- NET-13 / OPS-06 (platform) ------------------------------------------------------------------
def undenied_workload(namespace_name: str) -> Callable[[Config], Args]:
    return lambda config: stack_args([Res(DEPLOYMENT, "web", deployment(namespace=namespace_name))], config)


def pulumi_object(key: str) -> Callable[[Config], Args]:
    kind, namespace_name, name = key.split("/")
    props = {"metadata": {"name": name, "namespace": namespace_name}}
    return lambda config: resource_args(f"kubernetes:core/v1:{kind}", props, config=config)


OVERRIDES += [
    Override("NET-13", "systemNamespaces", "pass", undenied_workload("infra"), ["kube-system", "infra"], "infra"),
    Override(
        "NET-13",
        "systemNamespaces",
        "violate",
        undenied_workload("infra"),
        ["kube-system"],
        "namespace infra runs 'web'",
        base={"systemNamespaces": ["kube-system", "infra"]},
    ),
    Override(
        "OPS-06",
        "argocdObjects",
        "pass",
        pulumi_object("ConfigMap/apps/settings"),
        [],
        "ConfigMap/apps/settings",
        base={"argocdObjects": ["ConfigMap/apps/settings"]},
    ),
    Override(
        "OPS-06",
        "argocdObjects",
        "violate",
        pulumi_object("ConfigMap/apps/settings"),
        ["ConfigMap/apps/settings"],
        "ConfigMap/apps/settings is declared under gitops/",
    ),
]


@pytest.mark.parametrize("case", OVERRIDES, ids=[c.id for c in OVERRIDES])
def test_the_rule_obeys_the_override(case: Override) -> None:
    base = violations(case.rule, case.build(case.base))
    overridden = violations(case.rule, case.build(_merge(case.base, case.key, case.value)))
    reported, clean = (base, overridden) if case.kind == "pass" else (overridden, base)
    assert any(case.expected in v for v in reported), reported
    assert clean == [], clean


@pytest.mark.parametrize("case", BOUNDARIES, ids=[c.id for c in BOUNDARIES])
def test_numeric_limit_at_the_boundary(case: Boundary) -> None:
    schema_default = BY_ID[case.rule].defaults[case.key]
    if isinstance(schema_default, Mapping):
        assert case.default in schema_default.values(), (case.default, schema_default)
    else:
        assert case.default == schema_default
    # At the default limit, and one unit past it.
    assert violations(case.rule, case.build(case.default, None)) == []
    assert violations(case.rule, case.build(case.default + case.step, None)) != []
    # At an overridden limit, and one unit past it.
    config = case.written(case.override)
    assert violations(case.rule, case.build(case.override, config)) == []
    assert violations(case.rule, case.build(case.override + case.step, config)) != []


# Quantities a mode's total adds up, not limits: their boundary is the limit they count against
# (hostMemoryMb, modeTargetsMb); their overrides are in OVERRIDES.
LEDGER_QUANTITIES = {"reservedMb", "otherStacksMb"}
# Exchange rates convert an amount, they limit nothing: their overrides are in OVERRIDES, and the cap's
# boundary after a conversion has its own test.
CONVERSIONS = {"usdRates"}


def _numeric(schema: Mapping[str, Any]) -> bool:
    if schema.get("type") in ("number", "integer"):
        return True
    extra = schema.get("additionalProperties")
    return schema.get("type") == "object" and isinstance(extra, Mapping) and extra.get("type") == "number"


def test_every_limit_is_covered() -> None:
    overridden = {(c.rule, c.key, c.kind) for c in OVERRIDES}
    bounded = {(c.rule, c.key) for c in BOUNDARIES}
    missing: list[str] = []
    for rule in RULES:
        schema = rule.policy.config_schema
        assert schema is not None
        for key, prop in schema.properties.items():
            if key == "exemptions":  # covered for every rule by test_rules.py
                continue
            missing += [
                f"{rule.id}.{key}: {kind} override"
                for kind in ("pass", "violate")
                if (rule.id, key, kind) not in overridden
            ]
            if _numeric(prop) and key not in LEDGER_QUANTITIES | CONVERSIONS and (rule.id, key) not in bounded:
                missing.append(f"{rule.id}.{key}: boundary")
    assert missing == []
