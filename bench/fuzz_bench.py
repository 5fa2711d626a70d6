"""API fuzz benchmark: schemathesis against a private daemon, from the Engine API's swagger document.

Starts a private dockyard daemon (tests/helpers/daemon.py) that also listens on a loopback TCP port, runs
``schemathesis run`` over every operation the engine implements (swarm, plugins and session aside, and the
endless streams: events, attach) for a bounded time, then prints the requests sent, their status classes and
every 5xx by endpoint, whether the daemon survived, and what the crash bench's consistency checker finds
afterwards (records against the host).

Pull, push, login, search, distribution inspect, import from a URL and builds from a remote context name
whatever host the fuzzer makes up, so the daemon and schemathesis run in a network namespace of their own
(``unshare --net``, only its loopback up): nothing they send can leave the machine, and every one of those
operations is fuzzed too.

schemathesis lives in its own venv (``.venv-fuzz`` at the top of the repo, made on first use from PyPI), so the
engine's dependencies stay as they are.

    python bench/fuzz_bench.py [--max-time 150] [--workers 2] [--seed N] [--phases fuzzing]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)

from crash_bench import Bench  # noqa: E402

from helpers.daemon import TestDaemon, finish_daemon  # noqa: E402
from helpers.hostprobe import free_port  # noqa: E402

SPEC_CANDIDATES = [os.path.join(REPO, "..", "..", "shared", "specs", "docker-engine-api-v1.47.yaml"),
                   "/work/shared/specs/docker-engine-api-v1.47.yaml"]
FUZZ_VENV = os.path.join(REPO, ".venv-fuzz")
SCHEMATHESIS = "schemathesis>=4,<5"
# operations that reach outside this machine, hang by design, or belong to features dockyard leaves out
EXCLUDE_PATHS = r"^/(swarm|services|tasks|secrets|configs|nodes|plugins|session|events)|/attach(/ws)?$"
IN_NETNS = "DYFUZZ_IN_NETNS"
# the daemon's message when a registry cannot be reached (Go's net errors, as dockerd words them)
UNREACHABLE = re.compile(r"dial tcp|no such host|i/o timeout|connection refused|network is unreachable|lookup ")


def ensure_venv() -> str:
    exe = os.path.join(FUZZ_VENV, "bin", "schemathesis")
    if not os.path.exists(exe):
        subprocess.run(["/usr/bin/python3", "-m", "venv", FUZZ_VENV], check=True)
        subprocess.run([os.path.join(FUZZ_VENV, "bin", "pip"), "install", "-q", SCHEMATHESIS], check=True)
    return exe


def templates(spec_path: str) -> list[tuple[re.Pattern[str], str]]:
    import yaml

    with open(spec_path) as f:
        paths = yaml.safe_load(f)["paths"]
    out = []
    for p in paths:
        out.append((re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p))
    out.sort(key=lambda t: t[1].count("{"))  # literal paths before templated ones
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-time", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    args = ap.parse_args()
    spec = next((p for p in SPEC_CANDIDATES if os.path.exists(p)), None)
    if spec is None:
        print("the Engine API swagger document is not on this machine")
        return 2
    exe = ensure_venv()  # from PyPI, before the private network namespace
    if os.environ.get(IN_NETNS) != "1":
        script = 'ip link set lo up && exec "$0" "$@"'
        env = dict(os.environ, **{IN_NETNS: "1"})
        return subprocess.run(["unshare", "--net", "sh", "-c", script, sys.executable, os.path.abspath(__file__),
                               *sys.argv[1:]], env=env).returncode
    port = free_port()
    d = TestDaemon(["-H", f"tcp://127.0.0.1:{port}", "--insecure-tcp"])
    out_dir = tempfile.mkdtemp(prefix="dyfuzz", dir="/tmp")  # outlives the daemon's tmp dir
    har = os.path.join(out_dir, "fuzz.har")
    crashed = False
    problems: list[str] = []
    elapsed = 0.0
    p = None
    try:
        d.start()
        d.load_busybox(None)
        argv = [exe, "run", spec, "--url", f"http://127.0.0.1:{port}/v1.47", "--checks", "not_a_server_error",
                "--max-time", str(args.max_time), "--workers", str(args.workers), "--request-timeout", "10",
                "--exclude-path-regex", EXCLUDE_PATHS, "--report", "har", "--report-har-path", har,
                "--generation-database", "none", "--no-color", "--suppress-health-check", "all",
                "--warnings", "off", "--phases", args.phases]
        if args.seed is not None:
            argv += ["--seed", str(args.seed)]
        t0 = time.monotonic()
        hooks = {"SCHEMATHESIS_HOOKS": os.path.join(HERE, "fuzz_hooks.py")}  # x-tar bodies (image load)
        p = subprocess.run(argv, capture_output=True, text=True, cwd=out_dir, timeout=args.max_time + 600,
                           env=dict(os.environ, **hooks))
        with open(os.path.join(out_dir, "schemathesis.log"), "w") as f:
            f.write(p.stdout + p.stderr)
        elapsed = time.monotonic() - t0
        crashed = d.proc is None or d.proc.poll() is not None
        if not crashed:
            b = Bench(d, __import__("random").Random(0), 0, 10.0)
            problems = b.check()
            b.cleanup()
            problems += [f"after cleanup: {x}" for x in b.check()]
    finally:
        try:
            finish_daemon(d)
            clean = "host clean"
        except AssertionError as e:
            clean = f"NOT CLEAN: {e}"
    entries = []
    try:
        with open(har) as f:
            entries = json.load(f)["log"]["entries"]
    except (OSError, ValueError, KeyError):
        if p is not None:
            print(p.stdout[-3000:], p.stderr[-3000:])
    tmpl = templates(spec)
    classes: Counter[str] = Counter()
    fives: Counter[str] = Counter()
    unreachable: Counter[str] = Counter()
    for ent in entries:
        status = int(ent["response"]["status"])
        classes[f"{status // 100}xx" if status else "no answer"] += 1
        if status >= 500 or status == 0:
            path = re.sub(r"^/v\d+\.\d+", "", urlsplit(ent["request"]["url"]).path)
            name = next((t for rx, t in tmpl if rx.match(path)), path)
            text = str((ent["response"].get("content") or {}).get("text") or "")
            # a registry the fuzzer made up, out of reach in the private namespace: dockerd answers 500 as well
            bucket = unreachable if status == 500 and UNREACHABLE.search(text) else fives
            bucket[f"{ent['request']['method']} {name} -> {status}"] += 1
    print(f"schemathesis {args.max_time} s budget, ran {elapsed:.0f} s, {len(entries)} requests")
    print("status classes: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())))
    print(f"5xx: {sum(fives.values())}")
    for k, v in fives.most_common():
        print(f"  {v:5d}  {k}")
    print(f"500 for a registry out of reach (dockerd's status too, not counted above): {sum(unreachable.values())}")
    for k, v in unreachable.most_common():
        print(f"  {v:5d}  {k}")
    print(f"daemon crashed: {'yes' if crashed else 'no'}")
    print(f"consistency problems after the run: {len(problems)}")
    for x in problems:
        print(f"  {x}")
    print(f"after stop: {clean}")
    print(f"schemathesis's own report: {out_dir}/schemathesis.log")

    return 0 if not fives and not crashed and not problems and clean == "host clean" else 1


if __name__ == "__main__":
    sys.exit(main())
