"""compose benchmark: `up -d` of a 10-service project, a no-change `up -d`, then `down`.

The project: ten busybox httpd services on one network; two of them have healthchecks and the other eight
depend on them with `condition: service_healthy`. Timed, round-robin over the same rounds:
  - dockyard compose against a dockyard daemon,
  - docker-compose 1.29 against the same dockyard daemon,
  - docker-compose 1.29 against a private real dockerd, where one is installed (bench/engine_dockerd.py),
    and dockyard compose against that dockerd too (it is a client of any Engine API).
Printed: the median wall time of each step per tool with the median CPU time of the client process (which
a loaded host changes far less than wall time), and the targets (up -d at least 5x faster than
docker-compose 1.29 on dockerd; a no-change up -d in at most 0.3 s).

    .venv/bin/python bench/compose_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from engine_dockerd import DOCKERD, PrivateDockerd  # noqa: E402

from helpers.daemon import DOCKYARD, TestDaemon, finish_daemon  # noqa: E402

V1 = shutil.which("docker-compose")


def project_yaml() -> str:
    lines = ["services:"]
    for i in range(1, 3):
        lines += [f"  health{i}:", "    image: busybox:latest", '    command: ["httpd", "-f", "-p", "80", "-h", "/"]',
                  "    networks: [front]", "    healthcheck:", '      test: ["CMD", "true"]',
                  "      interval: 500ms", "      timeout: 2s", "      retries: 20"]
    for i in range(1, 9):
        lines += [f"  web{i}:", "    image: busybox:latest", '    command: ["httpd", "-f", "-p", "80", "-h", "/"]',
                  "    networks: [front]", "    depends_on:",
                  "      health1: {condition: service_healthy}", "      health2: {condition: service_healthy}"]
    lines += ["networks:", "  front: {}"]
    return "\n".join(lines) + "\n"


CPU: dict[str, list[float]] = {}  # "tool/step" -> the client's CPU seconds (user + sys) per run


def timed(argv: list[str], cwd: str, env: dict[str, str], key: str = "") -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    dt = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    if key:
        CPU.setdefault(key, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dycb", dir="/tmp")
    proj = os.path.join(work, "benchapp")
    os.makedirs(proj)
    with open(os.path.join(proj, "compose.yaml"), "w") as f:
        f.write(project_yaml())
    d = TestDaemon().start()
    real: PrivateDockerd | None = None
    results: dict[str, dict[str, list[float]]] = {}
    notes: list[str] = []
    tools: dict[str, tuple[list[str], dict[str, str]]] = {
        "dockyard compose -> dockyard": ([DOCKYARD, "compose", "-p", "benchdy"], d.env)}
    try:
        d.load_busybox(None)
        if V1:
            tools["docker-compose 1.29 -> dockyard"] = ([V1, "-p", "benchv1"], d.env)
        else:
            notes.append("docker-compose 1.29 not installed: its rows are missing")
        if DOCKERD and V1:
            try:
                real = PrivateDockerd().start()
                _s, _h, archive = d.api("GET", "/images/get?names=busybox:latest", timeout=120)
                real.load(archive)
                tools["docker-compose 1.29 -> dockerd"] = ([V1, "-p", "benchreal"], real.env)
                tools["dockyard compose -> dockerd"] = ([DOCKYARD, "compose", "-p", "benchdyreal"], real.env)
            except RuntimeError as e:
                notes.append(f"dockerd could not be started: {str(e).splitlines()[0]}")
                real = None
        else:
            notes.append("dockerd not installed: no comparison with the real engine")
        # warm-up: one full cycle per tool (byte-compiled code, page cache, the daemons' pools)
        for argv, env in tools.values():
            timed(argv + ["up", "-d"], proj, env)
            timed(argv + ["down", "-t", "1"], proj, env)
        for _ in range(args.rounds):
            for name, (argv, env) in tools.items():
                r = results.setdefault(name, {"up -d": [], "no-change up -d": [], "down": []})
                r["up -d"].append(timed(argv + ["up", "-d"], proj, env, f"{name}/up -d"))
                r["no-change up -d"].append(timed(argv + ["up", "-d"], proj, env, f"{name}/no-change up -d"))
                r["down"].append(timed(argv + ["down", "-t", "1"], proj, env, f"{name}/down"))
    finally:
        for argv, env in tools.values():
            subprocess.run(argv + ["down", "-t", "1"], cwd=proj, env=env, capture_output=True, timeout=300)
        if real is not None:
            left = real.stop()
            if left:
                notes.append(f"dockerd cleanup: {left}")
        finish_daemon(d)
        shutil.rmtree(work, ignore_errors=True)
    print(f"compose: 10 services (2 with healthchecks, 8 depending on them), {args.rounds} rounds, medians")
    print(f"{'tool':34} {'up -d':>9} {'no-change up -d':>16} {'down':>9}")
    med: dict[str, dict[str, float]] = {}
    for name, r in results.items():
        med[name] = {k: statistics.median(v) for k, v in r.items()}
        m = med[name]
        print(f"{name:34} {m['up -d']:8.3f}s {m['no-change up -d']:15.3f}s {m['down']:8.3f}s")
        cpu = {k: statistics.median(CPU.get(f"{name}/{k}") or [0.0]) for k in m}
        print(f"{'  client CPU (user+sys)':34} {cpu['up -d']:8.3f}s {cpu['no-change up -d']:15.3f}s "
              f"{cpu['down']:8.3f}s")
    ours = med.get("dockyard compose -> dockyard")
    ref = med.get("docker-compose 1.29 -> dockerd")
    if ours and ref:
        ratio = ref["up -d"] / ours["up -d"]
        print(f"target up -d >= 5x faster than docker-compose 1.29 on dockerd: {ratio:.1f}x "
              f"({'met' if ratio >= 5 else 'NOT met'})")
    if ours:
        nc = ours["no-change up -d"]
        print(f"target no-change up -d <= 0.3 s: {nc:.3f} s ({'met' if nc <= 0.3 else 'NOT met'})")
    with open("/proc/loadavg") as fh:
        print("load average:", " ".join(fh.read().split()[:3]))
    for n in notes:
        print("note:", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
