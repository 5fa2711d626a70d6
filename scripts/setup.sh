#!/usr/bin/env bash
# Install everything dockyard needs on a Debian 12 machine (as root): system packages, a venv, the package.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(runc crun tini busybox-static iptables iproute2 procps util-linux mmdebstrap
              python3-venv python3-dev libseccomp2 libcap2 socat docker-compose gcc libc6-dev
              skopeo apache2-utils docker-registry)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v docker >/dev/null 2>&1; then
  missing+=(docker.io)   # only for its docker CLI, the client our interop tests drive; its daemon is never started
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # never let a package start a service (docker.io would start dockerd)
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# A venv from Debian's real interpreter (not a pyenv shim: those add ~60 ms to every start).
PY=/usr/bin/python3
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  rm -rf .venv
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Byte-compile the package: with PYTHONDONTWRITEBYTECODE set, every start of the CLI, the daemon and the
# shim launcher would otherwise compile the sources again (tens of milliseconds per command).
.venv/bin/python -m compileall -q src >/dev/null
# the per-container monitor is a small C program, built from src/dockyard/runtime/shim/native
.venv/bin/python -m dockyard.runtime.shim.monitor >/dev/null
# the Debian tini package ships a static build we bind-mount as the container's init
[ -x /usr/bin/tini-static ] || { echo "setup: tini-static missing" >&2; exit 1; }
echo "setup: ok ($(.venv/bin/python --version))"
