#!/usr/bin/env bash
# Run every benchmark and print its figures. Not part of the test suite.
#   bench/run.sh            all benchmarks
#   bench/run.sh runtime    only bench/runtime_bench.py (likewise engine, images, network, build, compose, registry, pull_push, auth)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
which=${1:-all}
for b in runtime engine images network build compose registry pull_push auth; do
  f=bench/${b}_bench.py
  if [ "$which" = all ] || [ "$which" = "$b" ]; then
    if [ -f "$f" ]; then
      echo "=== $b"
      .venv/bin/python "$f"
    fi
  fi
done
