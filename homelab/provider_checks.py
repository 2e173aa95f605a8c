"""Validations the providers (and the engine) perform at `Check` time that the program can violate offline.

A real `pulumi preview` sends every custom resource's inputs to its provider's `Check` before it
plans anything; a failure stops the preview. Offline there is no provider, so the checks that depend
only on the inputs and on the machine running the preview are repeated here, with the provider's
own message. Each entry names where the real check lives. Unknown inputs are skipped, as the
providers skip them during a preview.

Registered checks:
- every asset or archive input (`FileAsset`, `FileArchive`, e.g. `command:remote:CopyToRemote`'s
  `source`): the engine reads local paths to hash them when the resource is registered;
- `oci:ObjectStorage/storageObject:StorageObject.source`: the OCI provider's `ValidateSourceValue`
  calls `os.Stat` on the path (and its state function records path + modification time, so a
  rebuilt file is a replacement of the object).
Remote components' manifest files are read by their `Construct` (see `homelab.remote`).
"""

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from homelab.wire import ARCHIVE_SIG, ASSET_SIG, SIG_KEY, UNKNOWN

CheckFn = Callable[[Mapping[str, Any], Path], list[tuple[str, str]]]
"""(inputs as on the wire, working directory) -> [(property, reason)]."""

CHECKS: dict[str, list[CheckFn]] = {}


def provider_check(*type_tokens: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        for token in type_tokens:
            CHECKS.setdefault(token, []).append(fn)
        return fn

    return register


def _local(path: str, workdir: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else workdir / candidate


@provider_check("oci:ObjectStorage/storageObject:StorageObject")
def _storage_object_source(inputs: Mapping[str, Any], workdir: Path) -> list[tuple[str, str]]:
    source = inputs.get("source")
    if not isinstance(source, str) or source == UNKNOWN or not source:
        return []
    if not _local(source, workdir).exists():
        return [("source", f"cannot get file information for the specified source: {source}")]
    return []


def _assets(value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(value, Mapping):
        if value.get(SIG_KEY) in (ASSET_SIG, ARCHIVE_SIG):
            yield path, value
            if value.get(SIG_KEY) == ARCHIVE_SIG:
                for key, asset in (value.get("assets") or {}).items():
                    yield from _assets(asset, f"{path}.assets.{key}")
            return
        for key, item in value.items():
            yield from _assets(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _assets(item, f"{path}[{index}]")


def asset_failures(inputs: Mapping[str, Any], workdir: Path) -> list[tuple[str, str]]:
    """Local files behind `FileAsset`/`FileArchive` inputs that the engine could not read."""
    failures: list[tuple[str, str]] = []
    for prop, asset in _assets(inputs, ""):
        local = asset.get("path")
        if not isinstance(local, str) or local == UNKNOWN:
            continue
        target = _local(local, workdir)
        if asset.get(SIG_KEY) == ASSET_SIG and not target.is_file():
            failures.append((prop, f"failed to open asset file '{local}': open {local}: no such file or directory"))
        elif asset.get(SIG_KEY) == ARCHIVE_SIG and not target.exists():
            failures.append((prop, f"couldn't read archive path '{local}': stat {local}: no such file or directory"))
    return failures


def check(type_: str, name: str, inputs: Mapping[str, Any], workdir: Path) -> list[str]:
    """Every `Check` failure of one registration, worded as the CLI reports it."""
    failures = asset_failures(inputs, workdir)
    for fn in CHECKS.get(type_, []):
        failures.extend(fn(inputs, workdir))
    return [f"{type_} resource '{name}': property {prop} has a problem: {reason}" for prop, reason in failures]
