"""Remote components, expanded offline the way their provider expands them.

`kubernetes:yaml/v2:ConfigFile` and `ConfigGroup` are *remote* components: the program registers one
component, and the Kubernetes provider's `Construct` reads the manifests and registers each object
as a child. The real policy gate therefore sees every CRD, Deployment and Secret of the file, not
one opaque `ConfigFile`. This module does what that `Construct` does (pulumi-kubernetes 4.x,
`provider/pkg/provider/yaml/v2`):

- each object becomes a custom resource of type `kubernetes:<group>/<version>:<Kind>` (the core
  group is `core`), named `<prefix>:<namespace>/<name>` or `<prefix>:<name>`, where the prefix is
  `resourcePrefix` or else the component's name (an empty prefix means none);
- lists (`v1/List`, `*List`) are flattened; a namespaced object without a namespace gets the
  provider's default namespace (`default`);
- CustomResourceDefinitions and Namespaces come first and the objects that need them depend on
  them; `v1/Secret` `data`/`stringData` are secret;
- the parent is the component, and the provider is the component's Kubernetes provider.

Files are read relative to the project directory, as the provider reads them. A file that is
absent but pinned in `vendor/manifests.lock.yaml` is expanded from the lock's object index
(identity only, no spec) and labelled so; any other absent file fails like the provider's read.
Manifests from a URL are refused offline (the provider would download them at every preview).
"""

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from components.manifests import ManifestLockError, load_documents, load_lock, sha256_of

CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
EXPANDED_TYPES = frozenset({CONFIG_FILE, CONFIG_GROUP})
DEFAULT_NAMESPACE = "default"

# Built-in kinds that are not namespaced (the provider asks the API server; offline this table and
# the CRDs in the same manifests decide). Anything else is namespaced.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)


class RemoteExpansionError(Exception):
    """The provider's `Construct` would fail on these inputs (its message, offline)."""


@dataclass(frozen=True)
class Child:
    """One object of an expanded component, as the provider registers it."""

    type: str
    name: str
    object: Mapping[str, Any]
    origin: str
    """`file <path>` (read and verified here) or `lock index <path>` (file absent, identity only)."""
    secret_paths: tuple[str, ...]
    depends_on: tuple[int, ...]
    """Indexes (into the expansion) of the children this one depends on."""


def type_token(api_version: str, kind: str) -> str:
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{kind}"


def _flatten(objects: Sequence[Any], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj in objects:
        if not obj:
            continue  # empty documents are skipped by the provider too
        if not isinstance(obj, dict):
            raise RemoteExpansionError(f"{where}: a manifest document must be a mapping")
        if str(obj.get("kind", "")).endswith("List") and isinstance(obj.get("items"), list):
            out.extend(_flatten(obj["items"], where))
            continue
        if not obj.get("kind") or not obj.get("apiVersion"):
            raise RemoteExpansionError(f"{where}: Kubernetes resources require a kind and apiVersion")
        if not (obj.get("metadata") or {}).get("name"):
            raise RemoteExpansionError(f"{where}: Kubernetes resources require a .metadata.name")
        out.append(obj)
    return out


def _read_file(path: str, workdir: Path) -> tuple[list[dict[str, Any]], str]:
    if urlsplit(path).scheme in ("http", "https"):
        raise RemoteExpansionError(
            f"{path}: manifests are applied from vendored files, not URLs (pin it in vendor/manifests.lock.yaml)"
        )
    full = workdir / path
    try:
        # The program's own lock (the one its components read), whatever directory it runs in.
        pinned = load_lock().by_path(path)
    except ManifestLockError as exc:
        raise RemoteExpansionError(str(exc)) from None
    if full.is_file():
        data = full.read_bytes()
        if pinned is not None and sha256_of(data) != pinned.sha256:
            raise RemoteExpansionError(f"{path}: SHA-256 does not match vendor/manifests.lock.yaml; run `make vendor`")
        try:
            documents = list(load_documents(data.decode("utf-8")))
        except yaml.YAMLError as exc:
            raise RemoteExpansionError(f"{path}: decoding YAML: {exc}") from None
        return _flatten(documents, path), f"file {path}"
    if pinned is not None:
        return [o.as_manifest() for o in pinned.objects], f"lock index {path}"
    raise RemoteExpansionError(f"reading YAML file from disk: open {path}: no such file or directory")


def _sources(type_: str, inputs: Mapping[str, Any], workdir: Path) -> list[tuple[dict[str, Any], str]]:
    objects: list[tuple[dict[str, Any], str]] = []
    if type_ == CONFIG_FILE:
        file = inputs.get("file")
        if not isinstance(file, str) or not file:
            raise RemoteExpansionError("ConfigFile: `file` is required")
        found, origin = _read_file(file, workdir)
        return [(o, origin) for o in found]
    for item in inputs.get("files") or []:
        pattern = str(item)
        matches = [pattern]
        if urlsplit(pattern).scheme not in ("http", "https") and glob.has_magic(pattern):
            matches = sorted(str(Path(m).relative_to(workdir)) for m in glob.glob(str(workdir / pattern)))
        for match in matches:
            found, origin = _read_file(match, workdir)
            objects.extend((o, origin) for o in found)
    texts = inputs.get("yaml")
    for text in [texts] if isinstance(texts, str) else list(texts or []):
        try:
            documents = list(yaml.safe_load_all(str(text)))
        except yaml.YAMLError as exc:
            raise RemoteExpansionError(f"ConfigGroup yaml: decoding YAML: {exc}") from None
        objects.extend((o, "inline yaml") for o in _flatten(documents, "yaml"))
    objects.extend((o, "inline objs") for o in _flatten(list(inputs.get("objs") or []), "objs"))
    return objects


def _rank(obj: Mapping[str, Any]) -> int:
    # The provider sorts by the cli-utils dependency graph: CRDs and Namespaces before their users.
    kind = obj.get("kind")
    return 0 if kind == "CustomResourceDefinition" else 1 if kind == "Namespace" else 2


def expand(type_: str, name: str, inputs: Mapping[str, Any], workdir: Path) -> list[Child]:
    """The children the Kubernetes provider would register for this component."""
    found = _sources(type_, inputs, workdir)
    crd_scopes: dict[tuple[str, str], str] = {}
    for obj, _ in found:
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            for version in spec.get("versions") or []:
                group_version = f"{spec.get('group')}/{(version or {}).get('name')}"
                crd_scopes[(group_version, str((spec.get("names") or {}).get("kind")))] = str(spec.get("scope"))
    prefix = inputs.get("resourcePrefix", name)
    ordered = sorted(enumerate(found), key=lambda item: (_rank(item[1][0]), item[0]))
    children: list[Child] = []
    crd_index: dict[str, int] = {}
    namespace_index: dict[str, int] = {}
    for _, (found_obj, origin) in ordered:
        obj = found_obj
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        metadata = dict(obj.get("metadata") or {})
        scope = crd_scopes.get((api_version, kind))
        namespaced = scope == "Namespaced" if scope else kind not in CLUSTER_SCOPED_KINDS
        if namespaced and not metadata.get("namespace"):
            metadata["namespace"] = DEFAULT_NAMESPACE
            obj = {**obj, "metadata": metadata}
        namespace = metadata.get("namespace") if namespaced else None
        object_name = f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])
        resource_name = f"{prefix}:{object_name}" if prefix else object_name
        depends: list[int] = []
        group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""
        for crd_name, index in crd_index.items():
            if crd_name.endswith("." + group) and group:
                depends.append(index)
        if namespace and namespace in namespace_index:
            depends.append(namespace_index[namespace])
        secret = ("data", "stringData") if (api_version, kind) == ("v1", "Secret") else ()
        if kind == "CustomResourceDefinition":
            crd_index[str(metadata["name"])] = len(children)
        if kind == "Namespace":
            namespace_index[str(metadata["name"])] = len(children)
        children.append(
            Child(
                type=type_token(api_version, kind),
                name=resource_name,
                object=obj,
                origin=origin,
                secret_paths=tuple(p for p in secret if p in obj),
                depends_on=tuple(sorted(set(depends))),
            )
        )
    return children
