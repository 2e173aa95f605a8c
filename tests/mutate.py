"""`make mutate`: apply each code mutation of tests/test_mutations.py (`CODE_MUTATIONS`) alone to a
scratch copy of the repository, run the tests it names there, and report which mutations survived.

    python -m tests.mutate            # every mutation
    python -m tests.mutate ID ...     # only these
    python -m tests.mutate --list

A mutation is killed when its tests fail, survives when they pass, and is stale when the text it
replaces no longer occurs exactly once (the code moved on: update the mutation). Before any
mutation the tests it names must pass on the unmodified copy. Exit status: 0 when every mutation
was killed, 1 otherwise. Not part of `make test` (it runs the tests once per mutation).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from homelab.stackrun import project_root
from tests.test_mutations import CODE_MUTATIONS, CodeMutation

SKIP = {".git", ".venv", ".tools", ".pytest_cache", ".ruff_cache", ".hypothesis", "__pycache__", "reports"}


def _copy(root: Path, scratch: Path) -> None:
    shutil.copytree(root, scratch, ignore=lambda _dir, names: [n for n in names if n in SKIP], dirs_exist_ok=True)


def _pytest(scratch: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    # PYTHONPATH puts the scratch copy first for subprocesses too (the venv's editable install
    # points at the real checkout).
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
    result = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    failed = next((line for line in lines if line.startswith(("FAILED", "ERROR"))), "")
    return result.returncode, failed or (lines[-1] if lines else result.stderr.strip()[-200:])


def run(mutations: list[CodeMutation]) -> int:
    root = project_root()
    with tempfile.TemporaryDirectory(prefix="homelab-mutate-") as tmp:
        scratch = Path(tmp)
        _copy(root, scratch)
        baseline = tuple(sorted({t for m in mutations for t in m.tests}))
        code, detail = _pytest(scratch, baseline)
        if code != 0:
            print(f"the unmodified tests fail, nothing to measure: {detail}")
            return 1
        killed, survived, stale = [], [], []
        for mutation in mutations:
            path = scratch / mutation.path
            original = path.read_text(encoding="utf-8")
            if original.count(mutation.old) != 1:
                stale.append(mutation)
                print(f"STALE    {mutation.id}: the text to mutate occurs {original.count(mutation.old)} times")
                continue
            path.write_text(original.replace(mutation.old, mutation.new, 1), encoding="utf-8")
            started = time.perf_counter()
            try:
                code, detail = _pytest(scratch, mutation.tests)
            finally:
                path.write_text(original, encoding="utf-8")
            seconds = time.perf_counter() - started
            if code == 0:
                survived.append(mutation)
                print(f"SURVIVED {mutation.id} ({seconds:.0f} s): {mutation.description}")
            else:
                killed.append(mutation)
                print(f"killed   {mutation.id} ({seconds:.0f} s): {detail}")
    total = len(mutations)
    print(f"\nscore: {len(killed)}/{total} killed, {len(survived)} survived, {len(stale)} stale")
    for mutation in survived:
        print(f"  survived: {mutation.id} — {mutation.description} ({mutation.path})")
    return 0 if len(killed) == total else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mutate", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("ids", nargs="*", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for mutation in CODE_MUTATIONS:
            print(f"{mutation.id:40} {mutation.description}")
        return 0
    known = {m.id: m for m in CODE_MUTATIONS}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        parser.error(f"unknown mutation {unknown[0]!r} (see --list)")
    return run([known[i] for i in args.ids] if args.ids else list(CODE_MUTATIONS))


if __name__ == "__main__":
    sys.exit(main())
