"""Typed stack configuration: one frozen model per stack, validated before any resource exists.

Config reaches the program the way the Pulumi language host delivers it (the `PULUMI_CONFIG`
environment map, read through the SDK). Every key of the project's namespace must be known to the
stack's model or declared as one of its secrets; anything else is an error that names the key.
Secrets are never part of a model: the stack reads them with `Config.require_secret`, so they stay
`Output`s marked secret from the first moment.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, get_args, get_origin

import pulumi
import pulumi.runtime
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

NAMESPACE = "homelab"

M = TypeVar("M", bound="ConfigModel")


class ConfigError(pulumi.RunError):
    """A configuration problem, reported as one line that names the full key.

    `pulumi.RunError` makes the Pulumi CLI print the message without a Python traceback.
    """


class ConfigModel(BaseModel):
    """Base for every config section: frozen and closed to unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


@dataclass(frozen=True)
class SecretSpec:
    """A secret config key the stack reads with `require_secret` (or `get_secret` if optional)."""

    key: str
    description: str
    required: bool = True
    required_with: str | None = None
    """A config path (`backups.ovh`) whose presence makes this optional secret required: the offline
    preview fills it then, and the stack's own check names the path when a real run lacks it."""


def _key(loc: tuple[int | str, ...]) -> str:
    return f"{NAMESPACE}:" + ".".join(str(part) for part in loc)


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the last segment of `loc`, following dicts and lists."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:
            current = _container_value(current)
            if current is None:
                return None
        while True:
            inner = _unwrap_optional(current)
            if inner is current:
                break
            current = inner
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (None, dict, list, tuple, Mapping):
        return annotation
    return args[0] if len(args) == 1 else annotation


def _container_value(annotation: Any) -> Any:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    got = error.get("input")
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = ", ".join(sorted(owner.model_fields)) if owner else ""
        return f"{_key(loc)}: unknown key" + (f" (allowed here: {allowed})" if allowed else "")
    if kind == "missing":
        return f"{_key(loc)}: required key is missing"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        word = "at least" if kind == "greater_than_equal" else "more than"
        return f"{_key(loc)}: must be {word} {bound}, got {got!r}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        word = "at most" if kind == "less_than_equal" else "less than"
        return f"{_key(loc)}: must be {word} {bound}, got {got!r}"
    message = error["msg"]
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = message[:1].lower() + message[1:]
    return f"{_key(loc)}: {message}, got {got!r}"


def format_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    errors = exc.errors(include_url=False)
    line = _describe(errors[0], model)
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return line


def _decode(value: Any) -> Any:
    """Structured values arrive JSON-encoded, scalars as strings (the language host's encoding)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc.msg})") from None
    return value


def raw_config() -> dict[str, Any]:
    """Every config value of the project namespace, keyed without the namespace."""
    env = pulumi.runtime.get_config_env()
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :]: v for k, v in env.items() if k.startswith(prefix)}


def load_config(model: type[M], secrets: tuple[SecretSpec, ...] = ()) -> M:
    """Validate the stack's config against `model`, or raise one `ConfigError` naming the key."""
    values = raw_config()
    secret_keys = set(pulumi.runtime.get_config_secret_keys_env())
    declared = {s.key: s for s in secrets}
    data: dict[str, Any] = {}
    for key, value in sorted(values.items()):
        spec = declared.get(key)
        if spec is not None:
            if f"{NAMESPACE}:{key}" not in secret_keys:
                raise ConfigError(
                    f"{NAMESPACE}:{key}: is stored in plain text; "
                    f"set it with `pulumi config set --secret {key}` (it is {spec.description})"
                )
            continue
        try:
            data[key] = _decode(value)
        except ValueError as exc:
            raise ConfigError(f"{NAMESPACE}:{key}: {exc}") from None
    for spec in secrets:
        if spec.required and spec.key not in values:
            raise ConfigError(
                f"{NAMESPACE}:{spec.key}: required secret is not set; "
                f"run `pulumi config set --secret {spec.key} <value>` ({spec.description})"
            )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model)) from None


# The one validation style for rules that span several keys: a `*_problems` function yields
# (key, problem) pairs, so the error names the exact key (a pydantic model validator cannot: its
# location is the whole model), and each stack's `load()` raises the first before any resource is
# registered. Single-field rules stay pydantic validators raising `ValueError`.
Problem = tuple[str, str]


def missing_secret_problem(spec: SecretSpec, because: str) -> Problem | None:
    """The problem of an optional secret that config `because` (`platform.velero is configured`)
    makes required, when it is not set; None when it is. Read in process only to refuse the run
    before anything is registered: the program itself reads the value with `require_secret`."""
    if spec.key in raw_config():
        return None
    return (
        spec.key,
        f"required secret is not set while {NAMESPACE}:{because}; "
        f"run `pulumi config set --secret {spec.key} <value>` ({spec.description})",
    )


def raise_first_problem(problems: Iterable[Problem]) -> None:
    """Raise the first cross-key problem as the one-line `ConfigError` the CLI prints."""
    for key, message in problems:
        raise ConfigError(f"{NAMESPACE}:{key}: {message}")
