"""What the providers would answer, for the offline preview.

A real `pulumi preview` asks each provider plugin for the outputs of a resource and the result of an
invoke. Offline there is no plugin, so this module answers instead: every resource echoes its inputs
(as a provider's state does) plus the computed outputs the program reads, and every invoke the
program makes has a deterministic, realistic answer. Nothing here is visible to the program as a
different code path: it only decides what the engine sends back over the same RPCs.

Add an entry when a component starts reading a computed output or calling an invoke; an invoke with
no entry fails loudly rather than returning an empty result the program would misread.

No invented facts: an output that only a real run can measure (what a command printed on a host) is
declared with `measured(...)`. The engine answers it as unknown in every preview, so the program
prints "known after up" instead of a canned measurement; only an offline `up` (tests of the code
that parses such output) receives the simulated text.
"""

import hashlib
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

ResourceOutputs = Callable[[str, dict[str, Any]], dict[str, Any]]
ResourceId = Callable[[str, dict[str, Any]], str]
InvokeResult = Callable[[dict[str, Any]], dict[str, Any]]
ProviderInvokeResult = Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Any]]

RESOURCE_OUTPUTS: dict[str, ResourceOutputs] = {}
RESOURCE_IDS: dict[str, ResourceId] = {}
INVOKES: dict[str, InvokeResult] = {}
PROVIDER_INVOKES: dict[str, ProviderInvokeResult] = {}
MEASURED_OUTPUTS: dict[str, tuple[str, ...]] = {}


class SimulationError(Exception):
    """The offline engine was asked for something it cannot simulate."""


def fake_hex(seed: str, length: int = 32) -> str:
    """A stable hex string derived from `seed` (ids, fingerprints, schematic ids)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def fake_ocid(kind: str, name: str) -> str:
    return f"ocid1.{kind}.oc1..offline{fake_hex(kind + name, 24)}"


def resource_output(type_token: str) -> Callable[[ResourceOutputs], ResourceOutputs]:
    def register(fn: ResourceOutputs) -> ResourceOutputs:
        RESOURCE_OUTPUTS[type_token] = fn
        return fn

    return register


def resource_id_of(type_token: str) -> Callable[[ResourceId], ResourceId]:
    """Register how the provider would name a resource of this type (most ids are opaque)."""

    def register(fn: ResourceId) -> ResourceId:
        RESOURCE_IDS[type_token] = fn
        return fn

    return register


def resource_id(type_token: str, name: str, inputs: dict[str, Any]) -> str:
    fn = RESOURCE_IDS.get(type_token)
    return fn(name, inputs) if fn else f"{name}-id"


def measured(type_token: str, *outputs: str) -> None:
    """Declare outputs of `type_token` that only a real run measures (unknown in every preview)."""
    MEASURED_OUTPUTS[type_token] = outputs


def measured_outputs(type_token: str) -> tuple[str, ...]:
    return MEASURED_OUTPUTS.get(type_token, ())


def invoke_with_provider(token: str) -> Callable[[ProviderInvokeResult], ProviderInvokeResult]:
    """Register an invoke whose answer depends on the provider's configuration (its region)."""

    def register(fn: ProviderInvokeResult) -> ProviderInvokeResult:
        PROVIDER_INVOKES[token] = fn
        return fn

    return register


def invoke(token: str) -> Callable[[InvokeResult], InvokeResult]:
    def register(fn: InvokeResult) -> InvokeResult:
        INVOKES[token] = fn
        return fn

    return register


def resource_state(type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    computed = RESOURCE_OUTPUTS.get(type_token)
    return {**inputs, **(computed(name, inputs) if computed else {})}


def invoke_result(token: str, args: dict[str, Any], provider: Mapping[str, Any] | None = None) -> dict[str, Any]:
    with_provider = PROVIDER_INVOKES.get(token)
    if with_provider is not None:
        return with_provider(args, provider or {})
    fn = INVOKES.get(token)
    if fn is None:
        raise SimulationError(f"the offline engine has no simulation for invoke {token!r}; add one in homelab/simulate")
    return fn(args)


def _load_provider_modules() -> None:
    """Each provider's simulation lives in its own module of this package; load them all."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


_load_provider_modules()
