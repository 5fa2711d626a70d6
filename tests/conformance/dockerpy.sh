#!/usr/bin/env bash
# docker-py's own integration suite (docker==7.0.0, the last sdist that ships tests/integration) against a
# private dockyard daemon. Prints "N passed, M failed" (the scored tests: run minus skipped minus excluded).
# Exits 1 only when fewer tests pass than the floor recorded in tests/conformance/dockerpy-floor.txt.
#   tests/conformance/dockerpy.sh [PYTEST_ARGS...]      e.g. -k exec, or a node id under tests/integration
# Environment: DOCKERPY_CACHE (default .cache/dockerpy: sdist, venv, results), DOCKERPY_TIMEOUT (per test, s).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
[ -x .venv/bin/dockyard ] || ./scripts/setup.sh
CACHE=${DOCKERPY_CACHE:-$REPO/.cache/dockerpy}
VERSION=7.0.0
mkdir -p "$CACHE"

if [ ! -d "$CACHE/docker-$VERSION/tests/integration" ]; then
  .venv/bin/pip download -q --no-binary :all: --no-deps "docker==$VERSION" -d "$CACHE"
  tar -xzf "$CACHE/docker-$VERSION.tar.gz" -C "$CACHE"
fi
# its own venv: the SDK under test with the requests it works with, and the suite's test dependencies
if [ ! -f "$CACHE/venv/.ready-$VERSION" ]; then
  rm -rf "$CACHE/venv"
  /usr/bin/python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q "$CACHE/docker-$VERSION" 'requests<2.32' 'urllib3<2' 'paramiko<4' \
    'websocket-client' 'pytest==7.4.2' 'pytest-timeout==2.1.0' 'packaging'
  touch "$CACHE/venv/.ready-$VERSION"
fi
exec .venv/bin/python tests/conformance/run_dockerpy.py --suite "$CACHE/docker-$VERSION" \
  --python "$CACHE/venv/bin/python" --excludes tests/conformance/dockerpy-excludes.txt \
  --floor tests/conformance/dockerpy-floor.txt --results "$CACHE/results" "$@"
