"""Run the real Pulumi program under the SDK's mock runtime and record every registration.

The engine plays the part of the Pulumi CLI and the providers, never the part of the program: the
program, its components and its config loading run exactly as under `pulumi preview`. What the
engine does that the CLI would do: deliver config through `PULUMI_CONFIG`, load the monitor's
feature list at start-up, answer registrations and invokes (with simulated provider outputs from
`homelab.simulate`), and wait for every outstanding RPC.
"""

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime.settings as runtime_settings
from google.protobuf import json_format
from pulumi.runtime import mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from homelab import simulate

# Wire signatures of the Pulumi RPC format (sdk/go/common/resource/sig).
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class RecordedResource:
    """One `RegisterResource` request as the engine received it."""

    type: str
    name: str
    urn: str
    id: str
    custom: bool
    parent: str | None
    provider: str | None
    wire: Mapping[str, Any]
    """The request's `object` as JSON, secret wrappers and unknown sentinels still in place."""
    inputs: Mapping[str, Any]
    """The inputs with secret wrappers removed (what a policy sees)."""
    secret_paths: tuple[str, ...]
    """Dotted paths of the inputs that were secret on the wire."""
    dependencies: tuple[str, ...]
    property_dependencies: Mapping[str, tuple[str, ...]]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool | None
    ignore_changes: tuple[str, ...]
    replace_on_changes: tuple[str, ...]
    additional_secret_outputs: tuple[str, ...]
    aliases: tuple[str, ...]

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")

    def is_secret(self, path: str) -> bool:
        """True if the input at `path` (or an enclosing value) was secret on the wire."""
        return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in self.secret_paths)


@dataclass(frozen=True)
class StackOutput:
    value: Any
    secret: bool
    known: bool


@dataclass
class Recording:
    """Everything one run of a stack's program registered."""

    project: str
    stack: str
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, StackOutput] = field(default_factory=dict)
    component_outputs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    placeholders: list[str] = field(default_factory=list)
    """Secret config keys the offline run filled with marked stand-ins."""
    invokes: list[str] = field(default_factory=list)
    """The token of every invoke the program made, in call order."""

    def by_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def get(self, type_: str, name: str) -> RecordedResource:
        for r in self.resources:
            if r.type == type_ and r.name == name:
                return r
        raise KeyError(f"no {type_} named {name!r}; registered: {sorted(r.name for r in self.resources)}")

    def named(self, name: str) -> RecordedResource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}")
        return found[0]

    def by_urn(self) -> dict[str, RecordedResource]:
        return {r.urn: r for r in self.resources}

    def children_of(self, parent: RecordedResource) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == parent.urn]


def _unwrap(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Remove the wire's secret wrappers, remembering where they were."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            secret_paths.append(path)
            return _unwrap(value.get("value"), path, [])
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


def _alias_text(alias: Any) -> str:
    return json_format.MessageToJson(alias, indent=None) if hasattr(alias, "DESCRIPTOR") else str(alias)


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, keeping every request it is sent."""

    def __init__(self, mock: mocks.Mocks, project: str, stack: str) -> None:
        super().__init__(mock)
        self.project = project
        self.stack = stack
        self.records: list[RecordedResource] = []
        self.component_outputs: dict[str, Mapping[str, Any]] = {}
        self.invokes: list[str] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine's URN format: the parent's type chain (never the root stack's type) + this type.
        # The SDK's mock reads project and stack from context variables, which are unset on the
        # worker threads that deliver registrations, so it names everything `stack::project`.
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != STACK_TYPE:
                type_ = f"{parent_type}${type_}"
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        wire = json_format.MessageToDict(request.object)
        secret_paths: list[str] = []
        inputs = _unwrap(wire, "", secret_paths)
        record = RecordedResource(
            type=request.type,
            name=request.name,
            urn=response.urn,
            id=response.id,
            custom=bool(request.custom),
            parent=request.parent or None,
            provider=request.provider or None,
            wire=wire,
            inputs=inputs,
            secret_paths=tuple(secret_paths),
            dependencies=tuple(request.dependencies),
            property_dependencies={k: tuple(v.urns) for k, v in request.propertyDependencies.items()},
            protect=request.protect if request.HasField("protect") else False,
            retain_on_delete=request.retainOnDelete if request.HasField("retainOnDelete") else False,
            delete_before_replace=request.deleteBeforeReplace if request.deleteBeforeReplaceDefined else None,
            ignore_changes=tuple(request.ignoreChanges),
            replace_on_changes=tuple(request.replaceOnChanges),
            additional_secret_outputs=tuple(request.additionalSecretOutputs),
            aliases=tuple(_alias_text(a) for a in request.aliases),
        )
        with self._lock:
            self.records.append(record)
        return response

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        with self._lock:
            self.invokes.append(request.tok)
        return super().Invoke(request)

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        outputs = json_format.MessageToDict(request.outputs)
        with self._lock:
            self.component_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


class OfflineMocks(mocks.Mocks):
    """Answers registrations and invokes the way the providers would, without a network."""

    def __init__(self, stack_outputs: Callable[[str], Mapping[str, Any]] | None = None) -> None:
        self._stack_outputs = stack_outputs

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(args)
        inputs = dict(args.inputs)
        resource_id = args.resource_id or simulate.resource_id(args.typ, args.name, inputs)
        return resource_id, simulate.resource_state(args.typ, args.name, inputs)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        # No check failures: the SDK iterates the second element, so it must be a list.
        return simulate.invoke_result(args.token, dict(args.args)), []

    def _stack_reference(self, args: mocks.MockResourceArgs) -> tuple[str, dict[Any, Any]]:
        stack_name = str(args.inputs.get("name", args.name))
        if self._stack_outputs is None:
            raise simulate.SimulationError(f"stack reference {stack_name!r} cannot be resolved offline here")
        outputs = dict(self._stack_outputs(stack_name))
        return stack_name, {"name": stack_name, "outputs": outputs, "secretOutputNames": []}


@contextlib.contextmanager
def _pulumi_config_env(config: Mapping[str, str], secret_keys: list[str]) -> Iterator[None]:
    """Deliver config the way the Python language host does: through the process environment."""
    saved = {k: os.environ.get(k) for k in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    os.environ["PULUMI_CONFIG"] = json.dumps(dict(config))
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def _resolve_output(value: Any) -> StackOutput:
    out = pulumi.Output.from_input(value)
    known = await out.is_known()
    secret = await out.is_secret()
    resolved = await out.future(with_unknowns=True) if known else None
    return StackOutput(value=_plain(resolved), secret=secret, known=known)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def run_program(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    stack_outputs: Callable[[str], Mapping[str, Any]] | None = None,
    into: Recording | None = None,
    preview: bool = True,
) -> Recording:
    """Run `program` as `pulumi preview` would (or as `pulumi up` would, with `preview=False`) and
    return what it registered.

    Exceptions raised by the program propagate unchanged after the runtime has settled, exactly as
    the language host would report them; pass `into` to see what was registered before the failure.
    """
    offline = OfflineMocks(stack_outputs)
    monitor = RecordingMonitor(offline, project, stack)
    recording = into if into is not None else Recording(project=project, stack=stack)
    runtime_settings.set_root_resource(None)  # type: ignore[arg-type]  # a previous run's root stack must not leak into this one
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with _pulumi_config_env(config or {}, secret_keys or []):
            mocks.set_mocks(offline, project=project, stack=stack, preview=preview, monitor=monitor)
            # The language host loads the monitor's feature list before the program runs; SDKs such as
            # pulumi_authentik read it synchronously, so the offline run must load it the same way.
            _sync_await(runtime_settings._load_monitor_feature_support())

            def body() -> None:
                program()

            _sync_await(run_pulumi_func(body))
            root = runtime_settings.get_root_resource()
            exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
            for key, value in exported.items():
                recording.outputs[key] = _sync_await(_resolve_output(value))
    finally:
        runtime_settings.set_root_resource(None)  # type: ignore[arg-type]  # the SDK resets it the same way
        asyncio.set_event_loop(None)
        loop.close()
        recording.resources = list(monitor.records)
        recording.component_outputs = dict(monitor.component_outputs)
        recording.invokes = list(monitor.invokes)
    return recording
