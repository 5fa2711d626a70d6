#!/usr/bin/env bash
# Set up (packages, venv) and run every check: ruff, mypy, the import contract, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports   # the layering: pyproject.toml [tool.importlinter]
exec .venv/bin/pytest -q "$@"
