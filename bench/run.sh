#!/usr/bin/env bash
# Run the benchmarks and print their figures. Not part of the test suite.
#   bench/run.sh            every speed benchmark (runtime engine images network build compose registry pull_push auth)
#   bench/run.sh runtime    only bench/runtime_bench.py (likewise each name above)
#   bench/run.sh crash      the random-kill run: bench/crash_bench.py (200 trials, ~15 min; not part of `all`)
#   bench/run.sh fuzz       the API fuzz: bench/fuzz_bench.py (150 s of schemathesis; not part of `all`)
#   bench/run.sh robust     crash and fuzz
# Arguments after the name go to the script (bench/run.sh crash --trials 20).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
which=${1:-all}
if [ $# -gt 0 ]; then shift; fi
speed="runtime engine images network build compose registry pull_push auth"
robust="crash fuzz"
case "$which" in
  all) names=$speed ;;
  robust) names=$robust ;;
  *)
    case " $speed $robust " in
      *" $which "*) names=$which ;;
      *) echo "bench/run.sh: no benchmark named $which (all, robust, $speed $robust)" >&2; exit 2 ;;
    esac ;;
esac
status=0
for b in $names; do
  f=bench/${b}_bench.py
  if [ -f "$f" ]; then
    echo "=== $b"
    .venv/bin/python "$f" "$@" || status=$?
  fi
done
exit $status
