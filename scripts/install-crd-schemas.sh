#!/usr/bin/env bash
# Install the upstream CRD validators the schema tests run: tests/crd-schemas, the
# `@kubernetes-models/*` npm packages pinned by its package-lock.json, with `npm ci`. Node.js and
# npm come from Debian when missing (as root or through sudo). Idempotent: a stamp holding the
# lock's SHA-256 skips the install while the lock is unchanged.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../tests/crd-schemas" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-crd-schemas: node/npm are missing and this user is not root (apt-get install nodejs npm)" >&2
      exit 1
    fi
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

stamp="$dir/node_modules/.homelab-lock-sha256"
wanted="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
# The packages declare node >= 22 but run on older releases (plain ES modules): warn, do not fail.
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
printf '%s\n' "$wanted" >"$stamp"
