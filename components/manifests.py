"""Pinned upstream manifests: the lock (`vendor/manifests.lock.yaml`) and where their files live.

Upstream YAML (Gateway API CRDs, CRDs of charts) is applied with `kubernetes.yaml.v2.ConfigFile`
from a local file, never from a URL: the file is downloaded once by `make vendor`, which refuses it
unless its SHA-256 and the objects it holds match the lock, so every `pulumi up` applies exactly the
reviewed bytes and needs no download at deploy time.

Threat model: a moved tag, a compromised mirror or a truncated download would change the cluster's
CRDs without a code change. The lock names the bytes (SHA-256), and the program refuses a vendored
file whose checksum differs, before anything is registered.

The program refers to a file by its path relative to the project directory (the directory Pulumi
runs the program and the Kubernetes provider in), so its inputs are the same on every machine.
"""

import hashlib
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import pulumi
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCK_FILE = PurePosixPath("vendor/manifests.lock.yaml")
VENDOR_DIR = PurePosixPath("vendor/manifests")


class ManifestLoader(yaml.SafeLoader):
    """The safe loader, reading one thing as Kubernetes (YAML 1.2) does: a plain `=` is a string.

    PyYAML's YAML 1.1 resolver tags a bare `=` as `value`, which the safe loader cannot construct;
    the prometheus-operator CRDs list `=` among their matcher types.
    """


ManifestLoader.add_constructor("tag:yaml.org,2002:value", ManifestLoader.construct_yaml_str)


def load_documents(text: str) -> list[Any]:
    """Every YAML document of a manifest file, as the Kubernetes provider reads them."""
    return list(yaml.load_all(text, Loader=ManifestLoader))


class ManifestLockError(pulumi.RunError):
    """The lock is malformed, or a manifest the program asks for is not pinned in it (a `RunError`:
    the CLI prints the one line, no traceback)."""


class ManifestObject(BaseModel):
    """One object of a manifest, as the Kubernetes provider names it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: str = Field(alias="apiVersion", pattern=r"^([a-z0-9.-]+/)?v[0-9]+((alpha|beta)[0-9]+)?$")
    kind: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")
    name: str = Field(min_length=1)
    namespace: str | None = None

    def as_manifest(self) -> dict[str, object]:
        """The object's identity as a manifest (no spec: the index records identity only)."""
        metadata: dict[str, object] = {"name": self.name}
        if self.namespace is not None:
            metadata["namespace"] = self.namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata}


class PinnedManifest(BaseModel):
    """One upstream file, pinned by URL, version and SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    """The upstream project (and channel), e.g. `gateway-api`."""
    version: str = Field(pattern=r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")
    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    objects: tuple[ManifestObject, ...] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _pinned_https(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError("must be an https URL")
        if not PurePosixPath(parts.path).name.endswith((".yaml", ".yml")):
            raise ValueError("must name a .yaml file")
        return url

    @model_validator(mode="after")
    def _version_in_url(self) -> "PinnedManifest":
        # A URL without the version (a branch, `latest`) would let the bytes move under the pin.
        if f"/{self.version}/" not in urlsplit(self.url).path:
            raise ValueError(f"url must contain the pinned version /{self.version}/ as a path segment")
        return self

    @property
    def file_name(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name

    @property
    def path(self) -> PurePosixPath:
        """Where `make vendor` writes the file, relative to the project directory."""
        return VENDOR_DIR / self.source / self.version / self.file_name


class ManifestLock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    manifests: tuple[PinnedManifest, ...]

    @model_validator(mode="after")
    def _unique(self) -> "ManifestLock":
        seen: set[PurePosixPath] = set()
        for manifest in self.manifests:
            if manifest.path in seen:
                raise ValueError(f"{manifest.path} is pinned twice")
            seen.add(manifest.path)
        return self

    def of(self, source: str, version: str) -> tuple[PinnedManifest, ...]:
        """The files of `source` at `version`, in lock order; an unpinned pair is an error."""
        found = tuple(m for m in self.manifests if m.source == source and m.version == version)
        if not found:
            pinned = sorted({m.version for m in self.manifests if m.source == source})
            hint = f"pinned versions: {', '.join(pinned)}" if pinned else "nothing of it is pinned"
            raise ManifestLockError(
                f"{source} {version} is not pinned in {LOCK_FILE} ({hint}); add it there and run `make vendor`"
            )
        return found

    def by_path(self, path: str) -> PinnedManifest | None:
        wanted = PurePosixPath(path)
        return next((m for m in self.manifests if m.path == wanted), None)


def parse_lock(text: str, where: str = str(LOCK_FILE)) -> ManifestLock:
    try:
        document = yaml.safe_load(text)
        return ManifestLock.model_validate(document)
    except yaml.YAMLError as exc:
        raise ManifestLockError(f"{where}: malformed YAML ({exc})") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(p) for p in error["loc"])
        raise ManifestLockError(f"{where}: {location}: {error['msg']}") from None


@cache
def load_lock(project_dir: Path = PROJECT_DIR) -> ManifestLock:
    path = project_dir / LOCK_FILE
    return parse_lock(path.read_text(encoding="utf-8"), str(LOCK_FILE))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_local(manifest: PinnedManifest, project_dir: Path = PROJECT_DIR) -> bool:
    """True if the vendored file is present and holds the pinned bytes; False if it is absent.

    A present file with other bytes is an error: applying it would deploy unreviewed CRDs.
    """
    path = project_dir / manifest.path
    if not path.is_file():
        return False
    actual = sha256_of(path.read_bytes())
    if actual != manifest.sha256:
        raise ManifestLockError(
            f"{manifest.path}: SHA-256 {actual} does not match the lock ({manifest.sha256}); "
            "delete the file and run `make vendor`"
        )
    return True


def manifest_files(source: str, version: str, project_dir: Path = PROJECT_DIR) -> list[str]:
    """The vendored files of `source` at `version`, as the program hands them to `ConfigFile`.

    Raises if the pair is not pinned, or if a vendored file is present with other bytes than the
    lock names. An absent file is not an error here: the Kubernetes provider reports it when it
    reads the file (run `make vendor` before `pulumi preview`/`up`).
    """
    files: list[str] = []
    for manifest in load_lock(project_dir).of(source, version):
        verify_local(manifest, project_dir)
        files.append(str(manifest.path))
    return files
