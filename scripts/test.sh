#!/usr/bin/env bash
# Set up (packages, venv) and run every check: ruff, mypy, the import contract, docker-py's suite
# (tests/conformance), the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports   # the layering: pyproject.toml [tool.importlinter]
if [ $# -eq 0 ]; then
  tests/conformance/dockerpy.sh   # docker-py's integration suite (~4 min); fails only below its recorded floor
fi
exec .venv/bin/pytest -q "$@"
