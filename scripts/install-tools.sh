#!/usr/bin/env bash
# Install the system validators the test suite runs: promtool and amtool (Debian packages
# `prometheus` and `prometheus-alertmanager`). Idempotent: does nothing when both are present.
#
# The packages ship services; installing them must not leave a Prometheus or an Alertmanager
# running on a CI runner or a laptop. A temporary policy-rc.d (exit 101 = "action forbidden")
# stops invoke-rc.d from starting them, and any unit the postinst started anyway is stopped.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-tools: promtool/amtool are missing and this user is not root (apt-get install prometheus prometheus-alertmanager)" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi

policy=/usr/sbin/policy-rc.d
added_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 0755 "$policy"
  added_policy=true
fi
cleanup() {
  if [ "$added_policy" = true ]; then
    "${sudo_cmd[@]}" rm -f "$policy"
  fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null

# Belt and braces: on a host where systemd runs, make sure neither daemon stays up or starts at boot.
if [ -d /run/systemd/system ]; then
  for unit in prometheus prometheus-alertmanager; do
    "${sudo_cmd[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
command -v promtool >/dev/null && command -v amtool >/dev/null
