"""Container start-up cost: dockyard's runtime against runc (and crun when it works here).

Measures, alternating runtimes within each round so drift hits all alike:
  * cli-steps: ``create`` + ``start`` + wait for exit + ``delete`` as separate commands
  * cli-run:   ``run`` (create+start+wait+delete in one command)
  * api:       dockyard in-process (what the engine's shim uses): the same four steps, no new interpreter
and the memory each runtime leaves resident: the init waiting in "created" state and,
after start, any runtime process besides the container's own.

Usage (root): .venv/bin/python bench/runtime_bench.py [-n 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from dockyard.sys.linux import set_child_subreaper

BUSYBOX = "/bin/busybox"


def make_bundle(base: str, args: list[str]) -> str:
    rootfs = os.path.join(base, "rootfs")
    if not os.path.isdir(rootfs):
        os.makedirs(os.path.join(rootfs, "bin"))
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in ("true", "sh", "sleep"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        for d in ("proc", "dev", "sys", "tmp"):
            os.makedirs(os.path.join(rootfs, d))
    bundle = os.path.join(base, "bundle-" + "-".join(args))
    os.makedirs(bundle, exist_ok=True)
    config = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/bin"], "cwd": "/",
                    "capabilities": {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")},
                    "noNewPrivileges": True},
        "root": {"path": rootfs, "readonly": True},
        "hostname": "bench",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                  "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
    }
    with open(os.path.join(bundle, "config.json"), "w") as fh:
        json.dump(config, fh)
    return bundle


class CLI:
    def __init__(self, name: str, argv: list[str], root: str) -> None:
        self.name, self.argv, self.root = name, argv, root
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def call(self, *args: str) -> None:
        subprocess.run([*self.argv, "--root", self.root, *args], check=True, env=self.env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def steps(self, cid: str, bundle: str) -> None:
        pid_file = os.path.join(self.root, cid + ".pid")
        self.call("create", "--bundle", bundle, "--pid-file", pid_file, cid)
        with open(pid_file) as fh:
            pid = int(fh.read())
        self.call("start", cid)
        os.waitpid(pid, 0)  # we are the subreaper the init was reparented to
        self.call("delete", cid)
        os.unlink(pid_file)

    def run(self, cid: str, bundle: str) -> None:
        self.call("run", "--bundle", bundle, cid)


def api_steps(root: str) -> Callable[[str, str], None]:
    from dockyard.runtime.api import get_runtime

    rt = get_runtime("dockyard", root)

    def steps(cid: str, bundle: str) -> None:
        pid = rt.create(cid, bundle)
        rt.start(cid)
        os.waitpid(pid, 0)
        rt.delete(cid)

    return steps


def works(cli: CLI, bundle: str) -> bool:
    try:
        cli.run("probe", bundle)
        return True
    except subprocess.CalledProcessError:
        subprocess.run([*cli.argv, "--root", cli.root, "delete", "--force", "probe"], capture_output=True)
        return False


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def resident(cli: CLI, bundle: str) -> tuple[int, int]:
    """(RSS of the init while "created", RSS of runtime processes other than the container's after start)."""
    pid_file = os.path.join(cli.root, "mem.pid")
    cli.call("create", "--bundle", bundle, "--pid-file", pid_file, "mem")
    with open(pid_file) as fh:
        pid = int(fh.read())
    created = rss_kib(pid)
    cli.call("start", "mem")
    time.sleep(0.05)
    # a runtime process still around would carry this --root on its command line (a monitor, a shim)
    extra = sum(rss_kib(int(p)) for p in os.listdir("/proc")
                if p.isdigit() and int(p) != pid and cli.root in _cmd(int(p)))
    subprocess.run([*cli.argv, "--root", cli.root, "delete", "--force", "mem"], env=cli.env, check=True)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    os.unlink(pid_file)
    return created, extra


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20, help="rounds (median over these)")
    opts = parser.parse_args()
    set_child_subreaper()
    base = tempfile.mkdtemp(prefix="dyrtbench")
    try:
        bundle = make_bundle(base, ["true"])
        sleeper = make_bundle(base, ["sleep", "5"])
        clis = [CLI("dockyard", [sys.executable, "-m", "dockyard.runtime.cli"], os.path.join(base, "dy"))]
        for name in ("runc", "crun"):
            if shutil.which(name):
                cli = CLI(name, [name], os.path.join(base, name))
                if works(cli, bundle):
                    clis.append(cli)
                else:
                    print(f"# {name} cannot run containers on this host; skipped")
        cases: dict[str, Callable[[str, str], None]] = {}
        for cli in clis:
            cases[f"{cli.name} cli-steps"] = cli.steps
            cases[f"{cli.name} cli-run"] = cli.run
        cases["dockyard api-steps"] = api_steps(os.path.join(base, "api"))
        for fn in cases.values():  # warm-up: page cache, pyc files
            fn("warm", bundle)
        times: dict[str, list[float]] = {k: [] for k in cases}
        for i in range(opts.n):
            for label, fn in cases.items():
                t0 = time.perf_counter()
                fn(f"b{i}", bundle)
                times[label].append((time.perf_counter() - t0) * 1000)
        med = {k: statistics.median(v) for k, v in times.items()}
        runc_steps = med.get("runc cli-steps")
        runc_run = med.get("runc cli-run")
        print(f"{'case':<22}{'median ms':>10}{'min ms':>9}{'vs runc':>9}")
        for label, m in med.items():
            ref = runc_run if label.endswith("cli-run") else runc_steps
            ratio = f"{m / ref:.2f}x" if ref else "-"
            print(f"{label:<22}{m:>10.1f}{min(times[label]):>9.1f}{ratio:>9}")
        print()
        print(f"{'runtime':<12}{'init RSS while created (KiB)':>30}{'runtime RSS after start (KiB)':>31}")
        for cli in clis:
            created, extra = resident(cli, sleeper)
            print(f"{cli.name:<12}{created:>30}{extra:>31}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
