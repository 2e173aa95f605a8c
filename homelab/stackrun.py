"""Load a stack's `Pulumi.<stack>.yaml` and run its program offline, as `pulumi preview` would."""

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import stacks
from homelab.engine import Recording, StackOutputs, View, _pulumi_config_env, run_program
from homelab.standins import stand_in
from stacks.config.base import NAMESPACE, ConfigError, SecretSpec

PROJECT = "homelab"


@dataclass(frozen=True)
class StackInput:
    """The config the language host would hand the program, plus which keys are secret."""

    stack: str
    config: dict[str, str]
    secret_keys: list[str]
    placeholders: list[str]
    """Secret keys the offline run filled with a marked stand-in."""


def project_root() -> Path:
    """The directory holding Pulumi.yaml (the repository root)."""
    return Path(stacks.__file__).resolve().parent.parent


def _module_name(stack: str) -> str:
    module_name = stacks.STACK_MODULES.get(stack)
    if module_name is None:
        known = ", ".join(stacks.STACK_MODULES)
        raise ConfigError(f"unknown stack {stack!r}: this project defines {known}")
    return module_name


def _stack_module(stack: str) -> Any:
    return importlib.import_module(_module_name(stack))


def stack_secrets(stack: str) -> tuple[SecretSpec, ...]:
    """The secrets a stack reads (its module's `SECRETS`)."""
    return tuple(getattr(_stack_module(stack), "SECRETS", ()))


def stack_references(stack: str) -> tuple[str, ...]:
    """The stacks whose outputs a stack reads through `pulumi.StackReference` (its `REFERENCES`)."""
    return tuple(getattr(_stack_module(stack), "REFERENCES", ()))


def _encode(value: Any) -> str:
    """The language host's encoding: strings as-is, booleans lower-case, everything else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _configured(config: Mapping[str, str], path: str | None) -> bool:
    """Whether the dotted `path` (`backups.ovh`) is set in the stack's encoded config."""
    if path is None:
        return False
    section, *rest = path.split(".")
    raw = config.get(f"{NAMESPACE}:{section}")
    if raw is None:
        return False
    try:
        value: Any = json.loads(raw)
    except ValueError:
        return not rest
    for part in rest:
        if not isinstance(value, dict) or value.get(part) is None:
            return False
        value = value[part]
    return True


def load_stack_input(stack: str, root: Path | None = None) -> StackInput:
    _module_name(stack)  # an unknown stack is named before anything is read
    path = (root or project_root()) / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path.name}: stack file not found; create it (see README, 'Configuration')")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path.name}:{where} malformed YAML ({problem})") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path.name}: must be a mapping with a `config:` section")
    unknown_top = sorted(set(document) - {"config", "environment", "encryptionsalt", "secretsprovider", "encryptedkey"})
    if unknown_top:
        raise ConfigError(f"{path.name}: unknown top-level key {unknown_top[0]!r} (expected `config:`)")
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: `config:` must be a mapping of keys to values")
    # The stack module (and the SDKs it imports, a second or more) is loaded only once the file
    # parsed: a malformed file is reported without it.
    secrets = stack_secrets(stack)
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: list[str] = []
    for key, value in raw.items():
        full = str(key) if ":" in str(key) else f"{NAMESPACE}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            # An encrypted value: offline there is no key to decrypt it, so use a marked stand-in.
            short = full.split(":", 1)[1]
            config[full] = stand_in(short)
            secret_keys.append(full)
            placeholders.append(full)
            continue
        config[full] = _encode(value)
    for spec in secrets:
        full = f"{NAMESPACE}:{spec.key}"
        # An optional secret the stack file does not set stays unset, as in a real run, unless the
        # file configures what needs it (a real run then needs it too: the operator sets it).
        if full not in config and (spec.required or _configured(config, spec.required_with)):
            config[full] = stand_in(spec.key)
            secret_keys.append(full)
            placeholders.append(full)
    return StackInput(stack=stack, config=config, secret_keys=secret_keys, placeholders=placeholders)


def check_stack_config(stack: str, config: Mapping[str, str], secret_keys: list[str]) -> Any:
    """Validate `config` with the stack module's `load()` (the checks its program runs before it
    registers anything) and return the typed config; raises the one-line `ConfigError`."""
    with _pulumi_config_env(config, secret_keys):
        return _stack_module(stack).load()


def _reference_stack_name(name: str) -> str:
    """`org/homelab/dev`, `homelab/dev` and `dev` all name the `dev` stack of this project."""
    return name.rsplit("/", 1)[-1]


# Outputs of unmodified stack runs (update view), so a stack referenced by another is previewed once
# per process. Keyed by the resolved project directory: `root=None` and `root=project_root()` name
# the same stack files (the CLI passes the directory, library callers often do not).
_OUTPUTS: dict[tuple[str, Path], StackOutputs] = {}


def _outputs_key(stack: str, root: Path | None) -> tuple[str, Path]:
    return stack, (root or project_root()).resolve()


def outputs_from(recording: Recording) -> StackOutputs:
    """A stack's outputs as the backend would serve them to a `StackReference` (unknowns absent)."""
    return StackOutputs(
        values={k: v.value for k, v in recording.outputs.items() if v.known},
        secret_names=frozenset(k for k, v in recording.outputs.items() if v.secret),
    )


def _outputs_of(stack: str, root: Path | None) -> StackOutputs:
    if _outputs_key(stack, root) not in _OUTPUTS:
        run_stack(stack, root)
    return _OUTPUTS[_outputs_key(stack, root)]


def run_stack(
    stack: str,
    root: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    into: Recording | None = None,
    *,
    view: View = "update",
    references: Mapping[str, StackOutputs] | None = None,
) -> Recording:
    """Preview `stack` offline in `view`. `overrides` replaces config values, None removes one (tests
    use it to break config); `into` receives what was registered even when the program fails; `references` replaces
    the outputs of referenced stacks (default: those stacks' own offline runs, update view)."""
    stack_input = load_stack_input(stack, root)
    config = dict(stack_input.config)
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if value is None:  # a test removing a key the stack file sets
            config.pop(full, None)
            continue
        config[full] = _encode(value)
    names = stack_references(stack)
    if names:
        # A stack whose own config is invalid fails here, in milliseconds, rather than after the
        # stacks it reads have been previewed (the program validates the same way when it runs).
        check_stack_config(stack, config, stack_input.secret_keys)
    # The backend serves referenced stacks' outputs from their last deployment's state; offline they
    # come from those stacks' own update-view runs, run first (never from inside a running program:
    # the runtime's settings are process-wide). Both views of this stack read the same outputs.
    referenced = dict(references) if references is not None else {name: _outputs_of(name, root) for name in names}

    def outputs_of(name: str) -> StackOutputs:
        short = _reference_stack_name(name)
        if short not in referenced:
            raise ConfigError(f"stack {stack!r} reads stack {short!r} but does not list it in REFERENCES")
        return referenced[short]

    recording = run_program(
        lambda: stacks.build(stack),
        project=PROJECT,
        stack=stack,
        config=config,
        secret_keys=stack_input.secret_keys,
        stack_outputs=outputs_of,
        into=into,
        view=view,
        workdir=root or project_root(),
    )
    recording.placeholders = list(stack_input.placeholders)
    if not overrides and references is None and view == "update":
        _OUTPUTS[_outputs_key(stack, root)] = outputs_from(recording)
    return recording
