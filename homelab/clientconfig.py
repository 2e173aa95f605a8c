"""`homelab kubeconfig [STACK ...]` and `homelab talosconfig [STACK ...]`: the stacks' admin
credentials merged into the user's client configuration, one context per cluster.

Where the credentials come from:
- the Pulumi CLI, when `pulumi` is on PATH: `pulumi stack output --json --show-secrets --stack S
  <output>` in the project directory (the real, deployed credentials; the CLI needs the stack's
  backend and passphrase or KMS key, exactly as for `pulumi up`);
- otherwise (or with `--offline`), the offline preview's outputs. Those are STAND-INS made up by the
  simulated Talos provider, not a cluster anyone can reach: they are written under a name of their
  own (`homelab-dev-offline-stand-in`), marked `source: offline-stand-in`, announced with a warning on
  standard error, and written into the user's real configuration only with `--stand-ins` (into any
  other file with `--output FILE`). Without either, the command refuses (exit 2).

Where they go: `--output FILE`, else the file `kubectl`/`talosctl` read: for kubeconfig the first
existing file of `$KUBECONFIG` (the last one when none exists, as kubectl creates it) or
`~/.kube/config`; for talosconfig `$TALOSCONFIG` or `~/.talos/config`. The file is rewritten
atomically (a temporary file in the same directory, then rename) with mode 600, its other entries
and current context untouched (the current context is set only when the file has none).

Ownership: a name is overwritten only if this command created it.
- kubeconfig: the cluster, user and context `homelab-<stack>` each carry a named extension `homelab`
  (`managed-by: homelab`, the stack, the source). kubectl keeps extensions when it rewrites the file.
- talosconfig: talosctl drops keys it does not know when it rewrites the file, so the marker lives
  beside it, in `<file>.homelab.json` (mode 600, no secret): the contexts this command wrote and the
  SHA-256 of the CA each was written with. A context is ours if it is listed there and still carries
  that CA; one that was replaced by hand, or written by someone else, is not.
An entry of the same name that is not ours is never touched: the command writes nothing and exits 2
with one line naming it (rename or delete it, or use `--output`).

Secrets are never printed: messages name stacks, contexts and files only; a malformed existing file
is reported by line and column, never with the excerpt YAML's own error message would quote.

Exit codes: 0 written, 2 nothing written (usage, a stack output unavailable, a name conflict).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pulumi
import yaml

from homelab.engine import ProviderCheckError
from homelab.simulate import SimulationError
from homelab.stackrun import project_root, run_stack
from stacks import STACK_MODULES

Kind = Literal["kubeconfig", "talosconfig"]
Source = Literal["pulumi-stack-output", "offline-stand-in"]

MARKER = "homelab"
"""The kubeconfig extension name (and the talosconfig sidecar suffix) that marks our entries."""
STAND_IN_SUFFIX = "-offline-stand-in"
KUBE_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


class ClientConfigError(Exception):
    """Nothing was written; the message is one line and holds no secret."""


@dataclass(frozen=True)
class Credentials:
    stack: str
    document: str
    """The stack output (a kubeconfig or talosconfig document): secret, never printed."""
    source: Source

    @property
    def name(self) -> str:
        """The context (and cluster, user) name this command writes."""
        base = f"homelab-{self.stack}"
        return base + STAND_IN_SUFFIX if self.source == "offline-stand-in" else base


# --- reading the stacks' outputs ---------------------------------------------------------------------


def from_pulumi(pulumi_cli: str, stack: str, output: Kind, root: Path) -> Credentials:
    """One secret output of a deployed stack through the Pulumi CLI."""
    command = [pulumi_cli, "stack", "output", "--json", "--show-secrets", "--stack", stack, "--cwd", str(root), output]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClientConfigError(f"{stack}: `pulumi stack output` could not run ({type(exc).__name__})") from None
    if done.returncode != 0:
        # The CLI's own error (stack not found, not logged in, wrong passphrase) names no secret.
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit {done.returncode}"
        raise ClientConfigError(f"{stack}: `pulumi stack output {output}` failed: {reason}")
    try:
        value = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise ClientConfigError(f"{stack}: `pulumi stack output {output}` did not print JSON") from None
    if not isinstance(value, str) or not value.strip():
        raise ClientConfigError(f"{stack}: the stack has no `{output}` output (has it been deployed with `pulumi up`?)")
    return Credentials(stack, value, "pulumi-stack-output")


def from_offline_preview(stack: str, output: Kind, root: Path) -> Credentials:
    """The stand-in the offline preview's simulated provider gives the output (update view)."""
    try:
        recording = run_stack(stack, root)
    except (pulumi.RunError, SimulationError, ProviderCheckError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClientConfigError(f"{stack}: the offline preview failed: {first}") from None
    found = recording.outputs.get(output)
    if found is None or not found.known or not isinstance(found.value, str):
        raise ClientConfigError(f"{stack}: the offline preview has no known `{output}` output")
    return Credentials(stack, found.value, "offline-stand-in")


# --- files ------------------------------------------------------------------------------------------


def default_target(kind: Kind) -> Path:
    """The file kubectl/talosctl read (and kubectl would create), from the environment."""
    if kind == "kubeconfig":
        chain = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        if chain:
            return next((p for p in chain if p.exists()), chain[-1])
        return Path.home() / ".kube" / "config"
    env = os.environ.get("TALOSCONFIG")
    return Path(env).expanduser() if env else Path.home() / ".talos" / "config"


def load_yaml(path: Path) -> Any:
    """An existing file's document (None if absent or empty); errors name the place, not the text."""
    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ClientConfigError(f"{path}:{where} not valid YAML ({problem}); nothing written") from None


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 600 from the first byte (parent made 700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 600
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    path.chmod(0o600)


def _dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


# --- kubeconfig -------------------------------------------------------------------------------------


def _marker(credentials: Credentials) -> dict[str, Any]:
    return {
        "name": MARKER,
        "extension": {"managed-by": MARKER, "stack": credentials.stack, "source": credentials.source},
    }


def _is_ours(body: Any) -> bool:
    extensions = body.get("extensions") if isinstance(body, Mapping) else None
    return any(
        isinstance(e, Mapping)
        and e.get("name") == MARKER
        and isinstance(e.get("extension"), Mapping)
        and e["extension"].get("managed-by") == MARKER
        for e in extensions or []
    )


def _named(entries: Any, name: Any) -> Any:
    return next((e for e in entries or [] if isinstance(e, Mapping) and e.get("name") == name), None)


def kube_entries(credentials: Credentials) -> dict[str, dict[str, Any]]:
    """The stack's cluster, user and context, renamed to `credentials.name` and marked."""
    source = yaml.safe_load(credentials.document)
    if not isinstance(source, Mapping) or not source.get("contexts"):
        raise ClientConfigError(f"{credentials.stack}: the `kubeconfig` output is not a kubeconfig with a context")
    context = _named(source["contexts"], source.get("current-context")) or source["contexts"][0]
    body = dict(context.get("context") or {})
    cluster = _named(source.get("clusters"), body.get("cluster"))
    user = _named(source.get("users"), body.get("user"))
    if cluster is None or user is None:
        raise ClientConfigError(f"{credentials.stack}: the `kubeconfig` output's context names no cluster or user")
    name, marker = credentials.name, _marker(credentials)
    body.update(cluster=name, user=name, extensions=[marker])
    return {
        "clusters": {"name": name, "cluster": {**cluster["cluster"], "extensions": [marker]}},
        "users": {"name": name, "user": {**user["user"], "extensions": [marker]}},
        "contexts": {"name": name, "context": body},
    }


def merge_kubeconfig(existing: Any, credentials: Sequence[Credentials], path: Path) -> dict[str, Any]:
    """`existing` with each stack's entries added or replaced; refuses names it did not create."""
    document: dict[str, Any] = (
        dict(existing) if isinstance(existing, Mapping) else {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    )
    if existing is not None and not isinstance(existing, Mapping):
        raise ClientConfigError(f"{path}: not a kubeconfig (expected a mapping); nothing written")
    merged = {section: list(document.get(section) or []) for section, _ in KUBE_SECTIONS}
    for creds in credentials:
        for section, field in KUBE_SECTIONS:
            present = _named(merged[section], creds.name)
            if present is not None and not _is_ours(present.get(field)):
                raise ClientConfigError(
                    f"{path}: {field} {creds.name!r} exists and was not written by homelab (no `homelab` "
                    f"extension); nothing written: rename or delete it (kubectl config delete-{field} "
                    f"{creds.name}), or write elsewhere with --output FILE"
                )
    for creds in credentials:
        for section, entry in kube_entries(creds).items():
            entries = merged[section]
            index = next(
                (i for i, e in enumerate(entries) if isinstance(e, Mapping) and e.get("name") == creds.name), None
            )
            if index is None:
                entries.append(entry)
            else:
                entries[index] = entry
    document.update(merged)
    document.setdefault("apiVersion", "v1")
    document.setdefault("kind", "Config")
    if not document.get("current-context") and credentials:
        document["current-context"] = credentials[0].name
    return document


# --- talosconfig ------------------------------------------------------------------------------------


def sidecar(path: Path) -> Path:
    """Where the talosconfig ownership marker lives (talosctl drops unknown keys from its file)."""
    return path.with_name(f"{path.name}.{MARKER}.json")


def _fingerprint(context: Mapping[str, Any]) -> str:
    return hashlib.sha256(str(context.get("ca", "")).encode()).hexdigest()


def talos_context(credentials: Credentials) -> dict[str, Any]:
    source = yaml.safe_load(credentials.document)
    contexts = source.get("contexts") if isinstance(source, Mapping) else None
    if not isinstance(contexts, Mapping) or not contexts:
        raise ClientConfigError(f"{credentials.stack}: the `talosconfig` output is not a talosconfig with a context")
    chosen = contexts.get(source.get("context")) or next(iter(contexts.values()))
    return dict(chosen)


def merge_talosconfig(
    existing: Any, owned: Mapping[str, str], credentials: Sequence[Credentials], path: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    """`existing` with each stack's context added or replaced, and the updated ownership record."""
    if existing is not None and not isinstance(existing, Mapping):
        raise ClientConfigError(f"{path}: not a talosconfig (expected a mapping); nothing written")
    document: dict[str, Any] = dict(existing or {})
    contexts: dict[str, Any] = dict(document.get("contexts") or {})
    for creds in credentials:
        present = contexts.get(creds.name)
        if present is not None and (
            creds.name not in owned or not isinstance(present, Mapping) or owned[creds.name] != _fingerprint(present)
        ):
            raise ClientConfigError(
                f"{path}: context {creds.name!r} exists and was not written by homelab (not recorded in "
                f"{sidecar(path).name} with its CA); nothing written: rename or remove it, or write elsewhere "
                "with --output FILE"
            )
    record = dict(owned)
    for creds in credentials:
        context = talos_context(creds)
        contexts[creds.name] = context
        record[creds.name] = _fingerprint(context)
    document["contexts"] = contexts
    if not document.get("context") and credentials:
        document["context"] = credentials[0].name
    return {"context": document.pop("context"), **document}, record


def _owned(path: Path) -> dict[str, str]:
    marker = sidecar(path)
    if not marker.exists():
        return {}
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ClientConfigError(f"{marker}: not the JSON this command writes; nothing written") from None
    contexts = data.get("contexts") if isinstance(data, dict) else None
    if not isinstance(contexts, dict):
        raise ClientConfigError(f"{marker}: not the JSON this command writes; nothing written")
    return {str(k): str(v) for k, v in contexts.items()}


# --- the command ------------------------------------------------------------------------------------


def _stacks(selected: Sequence[str]) -> list[str]:
    unknown = [s for s in selected if s not in STACK_MODULES]
    if unknown:
        raise ClientConfigError(f"unknown stack {unknown[0]!r}: this project defines {', '.join(STACK_MODULES)}")
    return list(dict.fromkeys(selected)) or list(STACK_MODULES)


def run(args: argparse.Namespace) -> int:
    kind: Kind = args.command
    root = Path(args.project_dir).resolve() if args.project_dir else project_root()
    try:
        if not (root / "Pulumi.yaml").is_file():
            raise ClientConfigError(f"{root}: not a Pulumi project (no Pulumi.yaml)")
        stacks = _stacks(args.stacks)
        target = Path(args.output).expanduser() if args.output else default_target(kind)
        pulumi_cli = None if args.offline else shutil.which("pulumi")
        if pulumi_cli is None and args.output is None and not args.stand_ins:
            why = "--offline was given" if args.offline else "the pulumi CLI is not on PATH"
            raise ClientConfigError(
                f"{why}: only the offline preview's stand-in credentials are available (not a real cluster); "
                f"write them with --output FILE, or into {target} with --stand-ins"
            )
        credentials = [
            from_pulumi(pulumi_cli, stack, kind, root) if pulumi_cli else from_offline_preview(stack, kind, root)
            for stack in stacks
        ]
        existing = load_yaml(target)
        if kind == "kubeconfig":
            write_private(target, _dump(merge_kubeconfig(existing, credentials, target)))
        else:
            document, record = merge_talosconfig(existing, _owned(target), credentials, target)
            write_private(target, _dump(document))
            write_private(sidecar(target), json.dumps({"managed-by": MARKER, "contexts": record}, indent=2) + "\n")
    except ClientConfigError as exc:
        print(f"homelab: {exc}", file=sys.stderr)
        return 2
    return _report(kind, target, credentials)


def _report(kind: Kind, target: Path, credentials: Sequence[Credentials]) -> int:
    for creds in credentials:
        if creds.source == "offline-stand-in":
            print(
                f"homelab: warning: {creds.stack}: wrote the offline preview's STAND-IN credentials as "
                f"{creds.name!r} (simulated, not a real cluster)",
                file=sys.stderr,
            )
        print(f"homelab: {kind} context {creds.name!r} written to {target} (from {creds.source})")
    return 0


def add_parsers(commands: Any) -> None:
    for kind, reader, default in (
        ("kubeconfig", "kubectl", "the first existing file of $KUBECONFIG, else ~/.kube/config"),
        ("talosconfig", "talosctl", "$TALOSCONFIG, else ~/.talos/config"),
    ):
        parser = commands.add_parser(
            kind,
            help=f"merge the stacks' admin {kind} into {reader}'s configuration (contexts homelab-<stack>, mode 600)",
        )
        parser.add_argument(
            "stacks", nargs="*", metavar="STACK", help=f"one of {', '.join(STACK_MODULES)} (default: all)"
        )
        parser.add_argument("--output", "-o", metavar="FILE", help=f"merge into FILE instead of {default}")
        parser.add_argument(
            "--offline",
            action="store_true",
            help="read the offline preview's stand-ins even when the pulumi CLI is installed",
        )
        parser.add_argument(
            "--stand-ins",
            action="store_true",
            help="allow offline stand-in credentials into the default file (they are never a real cluster)",
        )
        parser.set_defaults(func=run)
