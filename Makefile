# The two commands a newcomer needs:  make preview  (offline preview of all stacks)  and  make test.
# Both set everything up first; nothing needs the Pulumi CLI or a cloud account.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen

.PHONY: setup tools vendor preview test lint typecheck unit bench mutate policy-config report snapshots clean

# uv comes from PyPI like everything else; it is installed into .tools when the machine has none.
.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

# Bytecode is compiled at install: this machine class and CI run with PYTHONDONTWRITEBYTECODE=1, so
# without it every process recompiles the SDKs (pulumi_cloudflare alone is ~26 MB of source).
setup: $(if $(shell command -v uv 2>/dev/null),,.tools/bin/uv)
	$(UV) sync --frozen --quiet --compile-bytecode

# Download the pinned upstream manifests (Gateway API CRDs, ...) into vendor/manifests and verify
# them against vendor/manifests.lock.yaml. Needed before a real `pulumi preview`/`up`, not offline.
vendor: setup
	$(RUN) homelab vendor

# System validators the tests run (promtool, amtool: Debian `prometheus`, `prometheus-alertmanager`).
# Installed only when missing, as root (CI) or through sudo; the packages' daemons are never started.
# Then the upstream CRD validators (tests/crd-schemas, npm ci from its lock; Node.js from Debian if missing).
tools:
	scripts/install-tools.sh
	scripts/install-crd-schemas.sh

preview: setup
	$(RUN) homelab preview --all

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup
	$(RUN) basedpyright

unit: setup
	$(RUN) pytest

test: lint typecheck unit

bench: setup
	$(RUN) python -m homelab.bench

# Break the code one small mutation at a time (tests/test_mutations.py, CODE_MUTATIONS) in a scratch
# copy and report which mutations the tests miss. Not part of `make test`: it runs tests per mutation.
mutate: setup
	$(RUN) python -m tests.mutate

# Regenerate policies/config/<stack>.json from the capacity ledger, the cloud config and the catalog.
policy-config: setup
	$(RUN) homelab policy-config --write

# Regenerate the reviewed graph snapshots (tests/snapshots) after an intended change.
snapshots: setup
	UPDATE_SNAPSHOTS=1 $(RUN) pytest -q tests/test_snapshots.py

# Markdown compliance reports of every stack, in reports/ (not committed); prod's cost chart beside its report.
report: setup
	mkdir -p reports
	for stack in dev prod cloud; do $(RUN) homelab report $$stack --output reports/$$stack.md || exit $$?; done

clean:
	rm -rf .venv .tools .pytest_cache .ruff_cache .hypothesis
