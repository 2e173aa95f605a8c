"""`homelab vendor`: fetch the pinned upstream manifests and verify them against the lock.

For every entry of `vendor/manifests.lock.yaml`: a file already present with the pinned SHA-256 is
left alone; an absent one is downloaded, and written (atomically) only if its size, its SHA-256 and
the objects it contains all match the lock. A present file with other bytes is never overwritten
silently: it is reported and the command fails, so tampering or a half-finished edit is noticed.
`--check` downloads nothing and fails if a file is missing or differs (what a deploy machine runs
before `pulumi up`).
"""

import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from components.manifests import ManifestObject, PinnedManifest, load_documents, load_lock, sha256_of

Fetch = Callable[[str], bytes]
TIMEOUT_SECONDS = 60


class VendorError(Exception):
    """A manifest could not be fetched or does not match its pin."""


def download(url: str) -> bytes:
    """The bytes at `url` (https only: the lock refuses anything else)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        return response.read()


def objects_in(data: bytes, where: str) -> tuple[ManifestObject, ...]:
    """The index of a manifest file (empty documents skipped, lists flattened, as the provider does)."""
    try:
        documents = list(load_documents(data.decode("utf-8")))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise VendorError(f"{where}: not a YAML manifest ({exc})") from None
    found: list[ManifestObject] = []

    def add(document: object) -> None:
        if not document:
            return
        if not isinstance(document, dict):
            raise VendorError(f"{where}: a manifest document is not a mapping")
        if str(document.get("kind", "")).endswith("List") and isinstance(document.get("items"), list):
            for item in document["items"]:
                add(item)
            return
        metadata = document.get("metadata") or {}
        found.append(
            ManifestObject.model_validate(
                {
                    "apiVersion": document.get("apiVersion"),
                    "kind": document.get("kind"),
                    "name": metadata.get("name"),
                    "namespace": metadata.get("namespace"),
                }
            )
        )

    for document in documents:
        add(document)
    return tuple(found)


def verify(manifest: PinnedManifest, data: bytes) -> None:
    """Refuse bytes that are not exactly what the lock pins."""
    where = str(manifest.path)
    if len(data) != manifest.size:
        raise VendorError(f"{where}: {len(data)} bytes, the lock pins {manifest.size}; refusing it")
    digest = sha256_of(data)
    if digest != manifest.sha256:
        raise VendorError(f"{where}: SHA-256 {digest} does not match the lock ({manifest.sha256}); refusing it")
    objects = objects_in(data, where)
    if objects != manifest.objects:
        raise VendorError(f"{where}: its objects differ from the lock's index; fix the index in the lock")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def vendor(root: Path, fetch: Fetch = download, check_only: bool = False) -> tuple[list[str], list[str]]:
    """Bring every pinned manifest into `root`'s vendor directory. Returns (report lines, problems)."""
    load_lock.cache_clear()
    lock = load_lock(root)
    lines: list[str] = []
    problems: list[str] = []
    for manifest in lock.manifests:
        path = root / manifest.path
        try:
            if path.is_file():
                verify(manifest, path.read_bytes())
                lines.append(f"ok        {manifest.path}")
                continue
            if check_only:
                problems.append(f"{manifest.path}: missing; run `make vendor`")
                continue
            try:
                data = fetch(manifest.url)
            except OSError as exc:
                raise VendorError(f"{manifest.path}: download of {manifest.url} failed ({exc})") from None
            verify(manifest, data)
            _write(path, data)
            lines.append(f"fetched   {manifest.path}  sha256={manifest.sha256[:16]}…")
        except VendorError as exc:
            problems.append(str(exc))
    return lines, problems
