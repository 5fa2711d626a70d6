"""Random-kill benchmark: kill -9 the daemon at a random moment of an operation, restart it, check consistency.

Each trial picks one operation (run, start, stop, restart, rm, exec, commit, load, network create+connect, volume
create, pull, push, build), prepares what it needs, starts it through the dockyard CLI, kills the daemon with SIGKILL
after a random delay (0 .. --max-delay seconds), restarts it and runs the consistency checker. Pull and push go
to a loopback registry (tests/helpers/registry.py); build builds a small Dockerfile with a RUN step. Beside the
random kills, every --failpoint-every'th trial of an operation that has failpoints (util/failpoint.py) is armed
with one of them instead: the daemon is restarted with DOCKYARD_FAILPOINTS naming a step, dies exactly there,
and is restarted clean. The checker:

* every container record matches the host: a running one has its init alive in its cgroup, its rootfs mounted
  and its namespace; a stopped one has no process, no rootfs mount, no namespace;
* nothing runs that the API cannot see: every process in the daemon's cgroups and every shim belongs to a
  container the API reports running;
* every veth, netns bind mount and iptables rule of the daemon belongs to a recorded running container or
  network; networks and containers agree on who is connected;
* the stores hold nothing half-made: no ``.tmp-`` blob or layer, no staging dir, no layer without its row or
  row without its directory, no blob that is neither an image's config nor a layer's tar, no layer held by a
  holder that is gone, every image's config and layers present, no snapshot without its container, no build
  step container left marked running, no exec shim file left in a running container's state dir;
* every image runs (``run --rm IMAGE sh -c true``: busybox and what the trial made);
* the interrupted operation can be retried to success.

The checker waits up to --settle seconds for asynchronous clean-up (an exit being recorded, a veth deleted in
the background) before it reports an inconsistency. A private daemon (tests/helpers/daemon.py) on a scratch data
root; everything is removed afterwards, also on failure.

    python bench/crash_bench.py [--trials 200] [--seed N] [--max-delay 0.4] [--ops pull,push,build]
                                [--failpoint-every 3]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from helpers.daemon import (  # noqa: E402
    DOCKER,
    TestDaemon,
    cgroup_dirs,
    finish_daemon,
    iptables_lines,
    links_with_prefix,
    mounts_under,
    processes_referencing,
)
from helpers.registry import Registry, busybox_layer, files_layer, seed_image  # noqa: E402
from helpers.storecheck import store_problems  # noqa: E402

DOCKYARD = os.path.join(os.path.dirname(sys.executable), "dockyard")
OPS = ["run", "start", "stop", "restart", "rm", "exec", "commit", "load", "network", "volume", "pull", "push", "build"]
# the named steps each operation passes (util/failpoint.py), armed on some trials instead of a random kill
FAILPOINTS = {
    "run": ["container.create.recorded", "container.start.mounted", "container.start.networked",
            "container.start.spec-written", "container.start.shim-launched"],
    "start": ["container.start.mounted", "container.start.spec-written", "container.start.shim-launched"],
    "stop": ["container.stop.signalled"],
    "restart": ["container.stop.signalled", "container.restart.stopped", "container.start.shim-launched"],
    "rm": ["container.remove.network-released"],
    "exec": ["exec.create.recorded", "exec.start.launching", "exec.start.spawned"],
    "network": ["network.create.recorded", "network.endpoint.recorded", "network.connect.attached"],
    "pull": ["layer.register.blob-written", "image.pull.layer-unpacked", "image.pull.committed",
             "image.pull.digest-set"],
    "push": ["image.push.upload-started", "image.push.blobs-pushed", "image.push.manifest-put"],
    "build": ["container.start.shim-launched", "layer.register.blob-written", "build.step.committed",
              "build.image.tagged"],
}
DOCKERFILE = "FROM busybox\nARG N\nRUN echo $N > /n && sleep 0.2\nENV CRASH=$N\nRUN cat /n\n"


class Bench:
    def __init__(self, d: TestDaemon, rng: random.Random, max_delay: float, settle: float) -> None:
        self.d = d
        self.rng = rng
        self.max_delay = max_delay
        self.settle = settle
        self.load_tar = ""
        self.trial_images: list[str] = []
        self.registry: Registry | None = None
        self.context = ""

    # -- clients -------------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.d.cli(*args, timeout=timeout)

    def ok(self, *args: str) -> str:
        p = self.cli(*args)
        if p.returncode != 0:
            raise RuntimeError(f"dockyard {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout.strip()

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.d.api_json(method, path, body, timeout=60)

    # -- the kill ------------------------------------------------------------------------------
    def interrupt(self, argv: list[str]) -> float:
        """Start ``argv`` (a dockyard CLI command line) and SIGKILL the daemon after a random delay; restart it."""
        delay = self.rng.uniform(0, self.max_delay)
        proc = subprocess.Popen(argv, env=self.d.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        self.d.kill9()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.d.start(timeout=60)
        return delay

    def interrupt_at(self, argv: list[str], point: str) -> bool:
        """Restart the daemon armed with failpoint ``point``, run ``argv``; True when the daemon died there
        (an operation may finish without passing a step, e.g. a pull whose layers all exist)."""
        self.d.terminate()
        os.environ["DOCKYARD_FAILPOINTS"] = point
        try:
            self.d.start(timeout=60)
        finally:
            del os.environ["DOCKYARD_FAILPOINTS"]
        proc = subprocess.Popen(argv, env=self.d.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert self.d.proc is not None
        died = False
        try:
            self.d.proc.wait(5)
            died = self.d.proc.returncode == -9
        except subprocess.TimeoutExpired:
            pass
        if died:
            self.d.start(timeout=60)
        else:
            self.d.restart()  # disarm
        return died

    # -- operations: (prepare, argv, retry) ----------------------------------------------------
    def running(self, name: str) -> str:
        return self.ok("run", "-d", "--name", name, "-p", "127.0.0.1::80", "busybox", "sleep", "600")

    def op(self, kind: str, i: int) -> tuple[list[str], Callable[[], None]]:
        n = f"t{i}"
        if kind == "run":
            def retry() -> None:
                if self.exists("containers", n):
                    if not self.inspect(n)["State"]["Running"]:
                        self.ok("start", n)
                else:
                    self.running(n)
            return ["run", "-d", "--name", n, "-p", "127.0.0.1::80", "busybox", "sleep", "600"], retry
        if kind == "start":
            self.ok("create", "--name", n, "busybox", "sleep", "600")
            return ["start", n], lambda: self.ensure_running(n)
        if kind == "stop":
            self.running(n)
            return ["stop", "-t", "1", n], lambda: self.ok("stop", "-t", "1", n) and None
        if kind == "restart":
            self.running(n)
            return ["restart", "-t", "1", n], lambda: self.ok("restart", "-t", "1", n) and None
        if kind == "rm":
            self.running(n)
            return ["rm", "-f", n], lambda: self.ok("rm", "-f", n) and None if self.exists("containers", n) else None
        if kind == "exec":
            self.running(n)
            return ["exec", n, "sh", "-c", "echo hi > /tmp/x; sleep 0.2"], lambda: self.ok("exec", n, "true") and None
        if kind == "commit":
            self.running(n)
            self.trial_images.append(f"img{i}:latest")
            return ["commit", n, f"img{i}"], lambda: self.ok("commit", n, f"img{i}") and None
        if kind == "load":
            self.trial_images.append("crashload:latest")
            if self.exists("images", "crashload:latest"):
                self.ok("rmi", "-f", "crashload:latest")
            self.cli("image", "prune", "-f")
            return ["load", "-i", self.load_tar], lambda: self.ok("load", "-i", self.load_tar) and None
        if kind == "network":
            self.running(n)

            def retry_net() -> None:
                if not self.exists("networks", f"net{i}"):
                    self.ok("network", "create", f"net{i}")
                nets = self.inspect(n)["NetworkSettings"]["Networks"]
                if f"net{i}" not in nets:
                    self.ok("network", "connect", f"net{i}", n)
            script = f"{DOCKYARD} network create net{i} && {DOCKYARD} network connect net{i} {n}"
            return ["sh", "-c", script], retry_net  # the kill lands in the create or in the connect
        if kind == "volume":  # through the docker CLI (the dockyard CLI has no volume commands)
            def retry_vol() -> None:
                p = self.d.docker("volume", "create", f"vol{i}")
                if p.returncode != 0:
                    raise RuntimeError(f"docker volume create vol{i}: {p.stderr.strip()}")
            return ["sh", "-c", f"{DOCKER} volume create vol{i}"], retry_vol
        if kind == "pull":
            assert self.registry is not None
            ref = f"{self.registry.host}/crash/pull:latest"
            self.trial_images.append(ref)
            status, info = self.api("GET", f"/images/{ref}/json")
            if status == 200:  # by ID: its tag and its digest reference go, and the layers it alone holds
                self.ok("rmi", "-f", info["Id"])
            return ["pull", "-q", ref], lambda: self.ok("pull", "-q", ref) and None
        if kind == "push":
            assert self.registry is not None
            ref = f"{self.registry.host}/crash/push{i}:latest"
            self.ok("tag", "crashload:latest", ref)
            self.trial_images.append(ref)

            def retry_push() -> None:
                self.ok("push", ref)
                assert self.registry is not None
                status, _h, _b = self.registry.get_manifest(f"crash/push{i}", "latest",
                                                            "application/vnd.docker.distribution.manifest.v2+json")
                if status != 200:
                    raise RuntimeError(f"the registry has no manifest for {ref} after the push: {status}")
            return ["push", ref], retry_push
        if kind == "build":
            tag = f"crashbuild{i}:latest"
            self.trial_images.append(tag)
            argv = ["build", "-q", "--build-arg", f"N={i}", "-t", tag, self.context]

            def retry_build() -> None:
                self.ok(*argv)
                out = self.ok("run", "--rm", tag, "cat", "/n")
                if out != str(i):
                    raise RuntimeError(f"{tag} holds {out!r} in /n, not {i}")
            return argv, retry_build
        raise ValueError(kind)

    def ensure_running(self, n: str) -> None:
        if not self.inspect(n)["State"]["Running"]:
            self.ok("start", n)

    def exists(self, kind: str, ref: str) -> bool:
        path = {"containers": f"/containers/{ref}/json", "networks": f"/networks/{ref}",
                "images": f"/images/{ref}/json", "volumes": f"/volumes/{ref}"}[kind]
        return self.api("GET", path)[0] == 200

    def inspect(self, ref: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/containers/{ref}/json")
        if status != 200:
            raise RuntimeError(f"inspect {ref}: {status} {body}")
        result: dict[str, Any] = body
        return result

    # -- the checker ---------------------------------------------------------------------------
    def problems(self) -> list[str]:
        d = self.d
        out: list[str] = []
        _, containers = self.api("GET", "/containers/json?all=1")
        running: dict[str, dict[str, Any]] = {}
        for c in containers:
            info = self.inspect(c["Id"])
            if info["State"]["Running"]:
                running[c["Id"]] = info
        pids_by_cid: dict[str, list[int]] = {}
        for top in cgroup_dirs(d.cgroup_parent):
            for root, _dirs, files in os.walk(top):
                if "cgroup.procs" not in files:
                    continue
                cid = next((part for part in root.split("/") if len(part) == 64), None)
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
                if cid is None:
                    if pids and root.rstrip("/") != top.rstrip("/"):
                        out.append(f"processes {pids} in {root}")
                    continue
                pids_by_cid.setdefault(cid, []).extend(pids)
        for cid, pids in pids_by_cid.items():
            if pids and cid not in running:
                out.append(f"container {cid[:12]} has processes {pids} but the API does not say it runs")
        for cid, info in running.items():
            if info["State"]["Pid"] not in pids_by_cid.get(cid, []):
                out.append(f"container {cid[:12]} is recorded running, its init {info['State']['Pid']} is not")
        snaps = os.path.join(d.data_root, "snapshots")
        for m in mounts_under(snaps):
            cid = os.path.relpath(m, snaps).split("/")[0]
            if cid not in running:
                out.append(f"rootfs of {cid[:12]} mounted, container not running")
        netns_dir = os.path.join(d.data_root, "netns")
        for m in mounts_under(netns_dir):
            name = os.path.basename(m)
            if not name.startswith(".") and name not in running and m != netns_dir:
                out.append(f"netns {name[:12]} mounted, container not running")
        for pid in processes_referencing(os.path.join(d.data_root, "containers")):
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            cid = os.path.basename(cwd)
            if len(cid) == 64 and cid not in running:
                out.append(f"a shim ({pid}) serves {cid[:12]}, which the API does not say runs")
        _, networks = self.api("GET", "/networks")
        endpoints = 0
        for net in networks:
            _, full = self.api("GET", f"/networks/{net['Id']}")
            for cid in full["Containers"]:
                endpoints += 1
                if cid not in running:
                    out.append(f"network {net['Name']} lists {cid[:12]}, which does not run")
                elif net["Name"] not in running[cid]["NetworkSettings"]["Networks"]:
                    out.append(f"network {net['Name']} lists {cid[:12]}, whose inspect does not list it")
            for cid, info in running.items():
                if net["Name"] in info["NetworkSettings"]["Networks"] and cid not in full["Containers"] \
                        and info["HostConfig"]["NetworkMode"] not in ("host", "none"):
                    out.append(f"{cid[:12]} lists network {net['Name']}, which does not list it")
        veths = [n for n in links_with_prefix(d.resource_prefix) if n.startswith(d.resource_prefix + "v")]
        if len(veths) != endpoints:
            out.append(f"{len(veths)} veths for {endpoints} endpoints")
        net_tags = {"n" + n["Id"][:12] for n in networks}
        ctr_tags = {"c" + cid[:12] for cid in running}
        for line in iptables_lines(f"DOCKYARD-{d.resource_prefix}"):
            if "--comment" not in line:
                continue
            tag = line.split("--comment", 1)[1].split()[0].strip('"')
            if tag not in net_tags | ctr_tags:
                out.append(f"iptables rule of nothing recorded: {line}")
        return out + store_problems(d.data_root, set(running))

    def check(self) -> list[str]:
        deadline = time.monotonic() + self.settle
        while True:
            found = self.problems()
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def images_run(self) -> list[str]:
        """Every image runs: the tagged ones by name, the untagged ones a crash left (a pull or a build step
        committed, not yet tagged) by ID."""
        bad = []
        _, listed = self.api("GET", "/images/json?all=1")
        refs = ["busybox:latest", *self.trial_images]
        refs += [img["Id"] for img in listed if not [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]]
        for ref in refs:
            if not self.exists("images", ref):
                continue
            p = self.cli("run", "--rm", ref, "sh", "-c", "true")
            if p.returncode != 0:
                bad.append(f"image {ref} does not run: {p.stderr.strip()}")
        return bad

    def cleanup(self) -> None:
        _, containers = self.api("GET", "/containers/json?all=1")
        for c in containers:
            self.api("DELETE", f"/containers/{c['Id']}?force=1&v=1")
        _, networks = self.api("GET", "/networks")
        for n in networks:
            if n["Name"] not in ("bridge", "host", "none"):
                self.api("DELETE", f"/networks/{n['Id']}")
        _, vols = self.api("GET", "/volumes")
        for v in vols.get("Volumes") or []:
            self.api("DELETE", f"/volumes/{v['Name']}?force=1")
        for ref in self.trial_images:
            self.api("DELETE", f"/images/{ref}?force=1")
        self.trial_images = []
        self.api("POST", "/images/prune")
        self.api("POST", "/build/prune?all=1")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-delay", type=float, default=0.4)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--ops", default=",".join(OPS), help="comma-separated operations to mix")
    ap.add_argument("--failpoint-every", type=int, default=3,
                    help="arm a failpoint on every n-th trial of an operation that has some (0: never)")
    args = ap.parse_args()
    ops = [o for o in args.ops.split(",") if o]
    unknown = set(ops) - set(OPS)
    if unknown:
        ap.error(f"unknown operations: {', '.join(sorted(unknown))}")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    d = TestDaemon()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    inconsistencies: list[tuple[int, str, float, str]] = []
    per_op: Counter[str] = Counter()
    per_point: Counter[str] = Counter()
    failed_retries = 0
    t0 = time.monotonic()
    reg: Registry | None = None
    try:
        d.start()
        d.load_busybox(None)
        b = Bench(d, rng, args.max_delay, args.settle)
        tmp = tempfile.mkdtemp(prefix="dyc", dir=d.tmp)
        b.ok("run", "--name", "seed", "busybox", "sh", "-c", "echo crash > /crash.txt")
        b.ok("commit", "seed", "crashload:latest")
        b.ok("rm", "seed")
        b.load_tar = os.path.join(tmp, "crashload.tar")
        b.ok("save", "-o", b.load_tar, "crashload:latest")
        b.ok("rmi", "crashload:latest")
        if {"pull", "push"} & set(ops):
            reg = Registry(d.tmp, "http").start()
            b.registry = reg
            seed_image(reg, "crash/pull", "latest", [busybox_layer(), files_layer({"crash.txt": b"crash\n"})],
                       cmd=["sh"])
        b.context = os.path.join(tmp, "ctx")
        os.makedirs(b.context)
        with open(os.path.join(b.context, "Dockerfile"), "w") as f:
            f.write(DOCKERFILE)
        if "push" in ops:
            b.ok("load", "-i", b.load_tar)
        for i in range(args.trials):
            kind = ops[i % len(ops)] if i < len(ops) else rng.choice(ops)
            per_op[kind] += 1
            argv, retry = b.op(kind, i)
            full = argv if argv[0] == "sh" else [DOCKYARD, *argv]
            points = FAILPOINTS.get(kind, [])
            if args.failpoint_every and points and per_op[kind] % args.failpoint_every == 0:
                point = rng.choice(points)
                died = b.interrupt_at(full, point)
                per_point[point if died else f"{point} (not reached)"] += 1
                delay = -1.0
            else:
                delay = b.interrupt(full)
            found = b.check()
            try:
                retry()
            except Exception as e:  # noqa: BLE001 - a failed retry is an inconsistency, counted
                failed_retries += 1
                found.append(f"retry failed: {e}")
            found += b.check() if not found else []
            found += b.images_run()
            for f in found:
                inconsistencies.append((i, kind, delay, f))
            how = f"kill after {delay * 1000:5.0f} ms" if delay >= 0 else "failpoint"
            print(f"trial {i:3d} {kind:8s} {how}: {'ok' if not found else '; '.join(found)}", flush=True)
            b.cleanup()
            if kind == "push" or "push" in ops:
                if not b.exists("images", "crashload:latest"):
                    b.ok("load", "-i", b.load_tar)
            left = b.check()
            for f in left:
                inconsistencies.append((i, kind, delay, f"after cleanup: {f}"))
    finally:
        if reg is not None:
            reg.stop()
        try:
            finish_daemon(d)
            clean = "host clean"
        except AssertionError as e:
            clean = f"NOT CLEAN: {e}"
    elapsed = time.monotonic() - t0
    print(f"\nseed {seed}: {sum(per_op.values())} trials in {elapsed:.0f} s ({dict(per_op)})")
    print(f"failpoints armed: {dict(per_point)}")
    print(f"inconsistencies: {len(inconsistencies)}; failed retries: {failed_retries}; after the run: {clean}")
    for i, kind, delay, f in inconsistencies:
        print(f"  trial {i} {kind} @{delay * 1000:.0f} ms: {f}")
    return 0 if not inconsistencies and clean == "host clean" else 1


if __name__ == "__main__":
    sys.exit(main())
