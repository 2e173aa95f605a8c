"""Run the real Pulumi program under the SDK's mock runtime and record every registration.

The engine plays the part of the Pulumi CLI and the providers, never the part of the program: the
program, its components and its config loading run exactly as under `pulumi preview`. What the
engine does that the CLI would do: deliver config through `PULUMI_CONFIG`, load the monitor's
feature list at start-up, answer registrations and invokes (with simulated provider outputs from
`homelab.simulate`), and wait for every outstanding RPC. What it does that the providers would do:
run the `Check` validations of `homelab.provider_checks`, and expand remote components
(`homelab.remote`) into the children their provider registers.

A run is one of two views (`View`):
- `first-preview`: the stack does not exist yet, as in the very first `pulumi preview`. Every custom
  resource is a create: its id and every output it does not echo from its inputs are unknown (the
  wire's unknown value), so `apply` on them does not run and `Output.is_known()` is false.
- `update`: a preview against *simulated* provider state: every resource exists and answers with
  its inputs plus the computed outputs `homelab.simulate` makes up. Only measurements (a command's
  stdout, for instance) stay unknown, because no simulation may invent them.
Provider resources keep a known id in both views (their configuration is the program's own input).

The real CLI starts a new language host for every run; here many runs share one process, so each
run starts from runtime settings of its own: it runs in an empty `contextvars.Context` (the SDK keeps
its settings in context variables) with a complete new set of them, and the RPCs the SDK sends from
worker threads run in the context of the code that sent them. Without this, those threads would
read the SDK's fallback for a setting their context never set, which is the value first set in the
process, so an earlier `pulumi up`-style run made a later preview's monitor receive unknown inputs
as null.
"""

import asyncio
import contextlib
import contextvars
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import pulumi
import pulumi.runtime.settings as runtime_settings
from google.protobuf import json_format
from pulumi.runtime import mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from homelab import provider_checks, remote, simulate
from homelab.wire import SECRET_SIG, SIG_KEY, UNKNOWN

__all__ = ["SECRET_SIG", "SIG_KEY", "UNKNOWN"]

STACK_TYPE = "pulumi:pulumi:Stack"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"

View = Literal["first-preview", "update"]
VIEWS: tuple[View, ...] = ("first-preview", "update")


class ProviderCheckError(Exception):
    """A provider (or the engine) would reject the program's inputs before planning anything."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


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
    outputs_wire: Mapping[str, Any] = field(default_factory=dict)
    """What the engine answered (the resource's state: inputs plus computed outputs, unknown
    values as the wire's unknown sentinel); stack policies receive these."""
    remote: bool = False
    """A remote component (its provider registered its children)."""
    origin: str | None = None
    """For a child of an expanded remote component: where its object came from (`file <path>`, or
    `lock index <path>` when only the lock's object index was available)."""

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
    view: View = "update"
    check_failures: list[str] = field(default_factory=list)
    """Provider `Check` failures (and remote-component expansion failures), as the CLI words them."""
    notes: list[str] = field(default_factory=list)
    """What this run could not imitate (a remote component it cannot expand, say), for the reader."""

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

    def waits_for(self, later: RecordedResource, earlier: RecordedResource) -> bool:
        """True when `later` depends on `earlier`, directly or through other resources (the order the
        engine would run them in)."""
        by_urn = self.by_urn()
        seen: set[str] = set()
        todo = list(later.dependencies)
        while todo:
            urn = todo.pop()
            if urn == earlier.urn:
                return True
            if urn not in seen and urn in by_urn:
                seen.add(urn)
                todo.extend(by_urn[urn].dependencies)
        return False


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

    def __init__(self, mock: "OfflineMocks", project: str, stack: str, workdir: Path) -> None:
        super().__init__(mock)
        self.offline = mock
        self.project = project
        self.stack = stack
        self.workdir = workdir
        self.records: list[RecordedResource] = []
        self.component_outputs: dict[str, Mapping[str, Any]] = {}
        self.invokes: list[str] = []
        self.check_failures: list[str] = []
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine's URN format: the parent's type chain (never the root stack's type) + this type.
        # (The SDK's mock keeps only the parent's last type.)
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
        if request.custom and not request.type.startswith("pulumi:"):
            # The provider's Check runs on every registration, before anything is planned.
            failures = provider_checks.check(request.type, request.name, wire, self.workdir)
            if failures:
                with self._lock:
                    self.check_failures.extend(failures)
        if request.type.startswith("pulumi:providers:"):
            self.offline.provider_inputs[response.urn] = _unwrap(wire, "", [])
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
            outputs_wire=json_format.MessageToDict(response.object),
            remote=bool(request.remote),
        )
        children = self._expand(request, record) if request.remote else []
        with self._lock:
            self.records.append(record)
            self.records.extend(children)
        return response

    def _expand(self, request: Any, component: RecordedResource) -> list[RecordedResource]:
        """Register what the component's provider would register in its `Construct`."""
        if request.type not in remote.EXPANDED_TYPES:
            with self._lock:
                self.notes.append(
                    f"{request.type} '{request.name}' is a remote component the offline engine does not expand: "
                    "the children its provider registers are not shown and no rule judges them"
                )
            return []
        if any(v == UNKNOWN for v in _leaves(component.wire)):
            # The provider cannot read manifests it does not know yet: it warns and registers none.
            with self._lock:
                self.notes.append(
                    f"{request.type} '{request.name}': required inputs are unknown; its children are not "
                    "registered in this view (the provider warns: preview is incomplete)"
                )
            return []
        try:
            children = remote.expand(request.type, request.name, component.inputs, self.workdir)
        except remote.RemoteExpansionError as exc:
            with self._lock:
                self.check_failures.append(f"{request.type} resource '{request.name}': {exc}")
            return []
        package = request.type.split(":", 1)[0]
        provider = request.providers.get(package) or request.provider or None
        records: list[RecordedResource] = []
        for child in children:
            urn = self.make_urn(component.urn, child.type, child.name)
            wire: dict[str, Any] = {
                k: ({SIG_KEY: SECRET_SIG, "value": v} if k in child.secret_paths else v)
                for k, v in child.object.items()
            }
            metadata = child.object.get("metadata") or {}
            known_id = f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else metadata["name"]
            records.append(
                RecordedResource(
                    type=child.type,
                    name=child.name,
                    urn=urn,
                    id="" if self.offline.first_preview else str(known_id),
                    custom=True,
                    parent=component.urn,
                    provider=provider,
                    wire=wire,
                    inputs=dict(child.object),
                    secret_paths=child.secret_paths,
                    dependencies=tuple(records[i].urn for i in child.depends_on),
                    property_dependencies={},
                    protect=component.protect,
                    retain_on_delete=False,
                    delete_before_replace=None,
                    ignore_changes=(),
                    replace_on_changes=(),
                    additional_secret_outputs=(),
                    aliases=(),
                    outputs_wire=wire,
                    origin=child.origin,
                )
            )
        return records

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        with self._lock:
            self.invokes.append(request.tok)
        return super().Invoke(request)

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        outputs = json_format.MessageToDict(request.outputs)
        with self._lock:
            self.component_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


def _with_unknowns(value: Any, replacement: str) -> Any:
    """`value` with the SDK's `Unknown` placeholders (and the wire sentinel) replaced."""
    if isinstance(value, pulumi.output.Unknown) or value == UNKNOWN:
        return replacement
    if isinstance(value, dict):
        return {k: _with_unknowns(v, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_unknowns(v, replacement) for v in value]
    return value


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


class OfflineMocks(mocks.Mocks):
    """Answers registrations and invokes the way the providers would, without a network."""

    def __init__(
        self,
        stack_outputs: Callable[[str], "StackOutputs"] | None = None,
        *,
        first_preview: bool = False,
        preview: bool = True,
    ) -> None:
        self._stack_outputs = stack_outputs
        self.first_preview = first_preview
        self.preview = preview
        self.provider_inputs: dict[str, Mapping[str, Any]] = {}

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if args.typ == STACK_REFERENCE_TYPE:
            return self._stack_reference(args)
        inputs = _with_unknowns(dict(args.inputs), UNKNOWN)
        if self.first_preview and args.custom and not args.typ.startswith("pulumi:providers:"):
            # A create during the first preview: inputs echoed, everything the provider computes
            # unknown. (The simulation runs only to learn which outputs are computed.)
            computed = simulate.resource_state(args.typ, args.name, _with_unknowns(inputs, ""))
            return "", {**inputs, **{key: UNKNOWN for key in computed if key not in inputs}}
        state = simulate.resource_state(args.typ, args.name, inputs)
        if self.preview:
            # Measurements are only made by a real run: never invented, in either view.
            for key in simulate.measured_outputs(args.typ):
                state[key] = UNKNOWN
        resource_id = args.resource_id or simulate.resource_id(args.typ, args.name, inputs)
        return resource_id, state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        # A provider reference is `<urn>::<id>`; lookups answer for the region the provider is configured for.
        provider = self.provider_inputs.get((args.provider or "").rsplit("::", 1)[0], {})
        # No check failures: the SDK iterates the second element, so it must be a list.
        return simulate.invoke_result(args.token, dict(args.args), provider), []

    def _stack_reference(self, args: mocks.MockResourceArgs) -> tuple[str, dict[Any, Any]]:
        stack_name = str(args.inputs.get("name", args.name))
        if self._stack_outputs is None:
            raise simulate.SimulationError(f"stack reference {stack_name!r} cannot be resolved offline here")
        referenced = self._stack_outputs(stack_name)
        # The backend serves the referenced stack's outputs with the names of its secret ones, so the
        # SDK marks exactly those secret; an output the stack does not export is simply absent.
        return stack_name, {
            "name": stack_name,
            "outputs": dict(referenced.values),
            "secretOutputNames": sorted(referenced.secret_names),
        }


@dataclass(frozen=True)
class StackOutputs:
    """A referenced stack's outputs as the backend serves them to `StackReference`."""

    values: Mapping[str, Any]
    secret_names: frozenset[str] = frozenset()


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


_P = ParamSpec("_P")
_T = TypeVar("_T")


class _ContextExecutor(ThreadPoolExecutor):
    """The run's executor for the SDK's RPCs: each call runs in a copy of the sender's context, as
    `asyncio.to_thread` would, so the monitor sees the run's settings (`dry_run` above all: it decides
    whether an unknown input reaches the provider as unknown) and never another run's."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> "Future[_T]":
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


def run_program(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    stack_outputs: Callable[[str], StackOutputs] | None = None,
    into: Recording | None = None,
    preview: bool = True,
    view: View = "update",
    workdir: Path | None = None,
) -> Recording:
    """Run `program` as `pulumi preview` would (or as `pulumi up` would, with `preview=False`) and
    return what it registered. `view` selects the first preview or the update against simulated
    state (see the module docstring); `workdir` is the directory relative paths are read from, as
    the program's and the providers' working directory (default: the current directory).

    Exceptions raised by the program propagate unchanged after the runtime has settled, exactly as
    the language host would report them; pass `into` to see what was registered before the failure.
    Provider `Check` failures raise `ProviderCheckError` once the run has settled.
    """
    if view == "first-preview" and not preview:
        raise ValueError("a first preview is a preview")
    offline = OfflineMocks(stack_outputs, first_preview=view == "first-preview", preview=preview)
    monitor = RecordingMonitor(offline, project, stack, (workdir or Path.cwd()).resolve())
    recording = into if into is not None else Recording(project=project, stack=stack)
    recording.view = view
    # An empty context: no root stack, settings or config of an earlier run (or of the caller) is visible.
    contextvars.Context().run(
        _run_in_context,
        program,
        offline=offline,
        monitor=monitor,
        recording=recording,
        preview=preview,
        config=config or {},
        secret_keys=secret_keys or [],
    )
    if recording.check_failures:
        raise ProviderCheckError(recording.check_failures)
    return recording


def _run_in_context(
    program: Callable[[], None],
    *,
    offline: OfflineMocks,
    monitor: RecordingMonitor,
    recording: Recording,
    preview: bool,
    config: Mapping[str, str],
    secret_keys: list[str],
) -> None:
    """One run, in the (empty) context `run_program` gives it."""
    # Every setting gets a value of this run's own (a new RPC manager and output set, empty feature
    # and package caches, no callbacks): a setting left unset would read the process-wide default,
    # which holds objects of an earlier run (outputs bound to its closed loop, for instance).
    runtime_settings.configure(runtime_settings.Settings(project=monitor.project, stack=monitor.stack, dry_run=preview))
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_ContextExecutor())
    asyncio.set_event_loop(loop)
    try:
        with _pulumi_config_env(config, secret_keys):
            mocks.set_mocks(offline, project=monitor.project, stack=monitor.stack, preview=preview, monitor=monitor)
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
        asyncio.set_event_loop(None)
        loop.close()
        recording.resources = list(monitor.records)
        recording.component_outputs = dict(monitor.component_outputs)
        recording.invokes = list(monitor.invokes)
        # Registrations arrive on worker threads in no fixed order; report the failures sorted so
        # the same program always prints the same lines.
        recording.check_failures = sorted(monitor.check_failures)
        recording.notes = list(monitor.notes)
