"""Benchmark the offline preview against its floor (`make bench`).

The floor is a bare Python process importing exactly the SDK modules the stacks import: no preview
can be faster than loading its SDKs. The ratio shows what the engine, the program and the policy
pack cost on top. Each command runs in a fresh process several times and the fastest run counts
(the least disturbed by other load on the machine).
"""

import argparse
import json
import subprocess
import sys
import time

SDK_PREFIXES = ("pulumi", "pulumi_", "pulumiverse_")

_COLLECT = """
import json, sys, contextlib, io
from homelab.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["preview", "--all"])
mods = sorted(m for m in sys.modules if m.split(".")[0].startswith({prefixes!r}))
print(json.dumps({{"code": code, "modules": mods}}))
"""

_FLOOR = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
"""


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m homelab.bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of each command; the fastest counts")
    args = parser.parse_args(argv)

    collected = subprocess.run(
        [sys.executable, "-c", _COLLECT.format(prefixes=SDK_PREFIXES)],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(collected.stdout.strip().splitlines()[-1])
    modules: list[str] = info["modules"]

    preview = min(_time([sys.executable, "-m", "homelab", "preview", "--all"]) for _ in range(args.runs))
    floor = min(_time([sys.executable, "-c", _FLOOR, json.dumps(modules)]) for _ in range(args.runs))
    top_level = sorted({m.split(".")[0] for m in modules})
    print(f"SDK modules the stacks import: {len(modules)} (packages: {', '.join(top_level)})")
    print(f"floor   (bare python importing them): {floor:6.2f} s")
    print(f"preview (homelab preview --all):      {preview:6.2f} s")
    print(f"ratio   preview / floor:              {preview / floor:6.2f}")
    print(f"preview exit code: {info['code']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
