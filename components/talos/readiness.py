"""The bootstrap health gate of `TalosCluster`: run once, by a local command, when a cluster is created.

The provider's health data source (`talos_cluster_health`) cannot wait longer than 5 minutes
(siderolabs/terraform-provider-talos#241) and, as a data source, runs on every `pulumi up`: a slow
first boot failed the run, and a powered-off DEV could never be updated. This probe runs only in the
`create` of a `command:local:Command` (its `update` does nothing), so it gates the first bootstrap and
never an `up` of an existing cluster. It retries until its own deadline instead of inheriting a cap.

It checks, from the machine running Pulumi, what the next steps need: every Talos API endpoint
accepts connections, and the Kubernetes API server reports `/readyz` (etcd included) with the
cluster's admin client certificate. Node readiness in Kubernetes is not checked: nodes stay NotReady
until Cilium, the next step, runs (CNI `none`).

Standard library only: the command runs `python3 -m components.talos.readiness` from the project
directory, whatever interpreter the machine has.
"""

import argparse
import base64
import os
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

TALOS_API_PORT = 50000
ENV_CA, ENV_CERT, ENV_KEY = "TALOS_READY_CA", "TALOS_READY_CERT", "TALOS_READY_KEY"


def pem(value: str) -> str:
    """The kubeconfig's client configuration carries base64-encoded PEM; accept plain PEM too."""
    return value if value.lstrip().startswith("-----BEGIN") else base64.b64decode(value).decode()


def talos_api_open(host: str, port: int = TALOS_API_PORT, timeout: float = 5.0) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"Talos API {host}:{port}: {exc}"


def api_ready(endpoint: str, context: ssl.SSLContext, timeout: float = 10.0) -> str | None:
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/readyz", context=context, timeout=timeout) as reply:
            body = reply.read().decode(errors="replace").strip()
            return None if reply.status == 200 and body == "ok" else f"{endpoint}/readyz: {reply.status} {body}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{endpoint}/readyz: {exc}"


def wait(
    checks: Sequence[Callable[[], str | None]],
    deadline_seconds: float,
    interval_seconds: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Run every check until all pass or the deadline passes; the last failures (empty when healthy)."""
    end = clock() + deadline_seconds
    while True:
        failures = [problem for check in checks if (problem := check()) is not None]
        if not failures or clock() >= end:
            return failures
        print(f"waiting: {'; '.join(failures)}", file=sys.stderr, flush=True)
        sleep(interval_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m components.talos.readiness")
    parser.add_argument("--kubernetes-endpoint", required=True, help="https://<host>:6443")
    parser.add_argument("--talos-endpoint", action="append", default=[], help="Talos API endpoint (repeat)")
    parser.add_argument("--timeout-seconds", type=float, default=1200)
    args = parser.parse_args(argv)
    try:
        ca, cert, key = (pem(os.environ[name]) for name in (ENV_CA, ENV_CERT, ENV_KEY))
    except KeyError as exc:
        print(f"readiness: {exc.args[0]} is not set", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        cert_file, key_file = Path(scratch, "client.crt"), Path(scratch, "client.key")
        cert_file.write_text(cert)
        key_file.write_text(key)
        key_file.chmod(0o600)
        context = ssl.create_default_context(cadata=ca)
        context.load_cert_chain(cert_file, key_file)
        checks: list[Callable[[], str | None]] = [lambda host=h: talos_api_open(host) for h in args.talos_endpoint]
        checks.append(lambda: api_ready(args.kubernetes_endpoint, context))
        failures = wait(checks, args.timeout_seconds)
    if failures:
        print(f"cluster not healthy after {args.timeout_seconds:g} s: {'; '.join(failures)}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
