"""Network benchmark: HTTP through a published port on 127.0.0.1 vs straight to the container IP,
and the time to create a namespace attached to a user network.

``network_bench.py churn [N [GAP_MS]]`` instead measures container network setup/teardown alone:
prepare_container + release_container for N containers (default 50) on the default bridge
and on a user network, GAP_MS apart (default 0, back to back), median/p90, with the time spent
in each step.

The "container" is a namespace made by the network service with busybox httpd running in it
(nsenter), so the figures isolate the network path (bridge, veth, DNAT) from the rest of the
engine. Traffic only goes to loopback and the container's address. Bounded loops.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from dockyard.networks.models import ContainerNetConfig  # noqa: E402
from dockyard.networks.service import NetworkService  # noqa: E402
from dockyard.storage.db import StateDB  # noqa: E402
from dockyard.util.ids import new_id  # noqa: E402


class _NoContainers:
    """The network service's view of containers when a benchmark has none: nothing else runs."""

    def live_ids(self) -> set[str]:
        return set()

    def identify(self, ref: str) -> tuple[str, str]:
        return ref, ref

    def settings_changed(self, cid: str, settings: dict[str, object]) -> None:
        pass

REQUESTS = 1000
BIG = 64 * 1024 * 1024
BIG_ROUNDS = 5
CREATE_ROUNDS = 20


def http_get(host: str, port: int, path: str) -> int:
    """One HTTP/1.0 GET (busybox httpd closes after each); returns the body size."""
    with socket.create_connection((host, port), timeout=10) as c:
        c.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        total = 0
        head = b""
        while True:
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            if not head:
                head = chunk
                total += len(chunk) - chunk.find(b"\r\n\r\n") - 4
            else:
                total += len(chunk)
        return total


def measure(host: str, port: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    for _ in range(REQUESTS):
        http_get(host, port, "/small")
    rps = REQUESTS / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    got = sum(http_get(host, port, "/big") for _ in range(BIG_ROUNDS))
    mbps = got / (time.perf_counter() - t0) / 1e6
    return rps, mbps


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="dytbench", dir="/tmp")
    suffix = os.urandom(3).hex()
    db = StateDB(os.path.join(tmp, "state.db"))
    svc = NetworkService(db, tmp, None, _NoContainers(), bridge=f"dyt{suffix}", bip=f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.1/24",
                         prefix=f"t{suffix[:5]}")
    httpd: subprocess.Popen[bytes] | None = None
    try:
        svc.startup()
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        with open(os.path.join(www, "small"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(www, "big"), "wb") as f:
            f.write(os.urandom(1 << 20) * (BIG >> 20))
        hport = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            hport = s.getsockname()[1]
        cid = new_id()
        net = svc.prepare_container(ContainerNetConfig(
            container_id=cid, name="web", hostname="web", files_dir=os.path.join(tmp, "c"),
            port_bindings={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(hport)}]}))
        httpd = subprocess.Popen(["nsenter", f"--net={net.netns_path}", "busybox", "httpd", "-f", "-p", "80",
                                  "-h", www])
        ip = net.settings["IPAddress"]
        for _ in range(100):
            try:
                http_get(ip, 80, "/small")
                break
            except OSError:
                time.sleep(0.05)
        trials = [(measure(ip, 80), measure("127.0.0.1", hport)) for _ in range(3)]  # alternate: shared CPU
        direct = (max(t[0][0] for t in trials), max(t[0][1] for t in trials))
        published = (max(t[1][0] for t in trials), max(t[1][1] for t in trials))
        print("best of 3 alternating trials")
        print(f"direct to {ip}:80            {direct[0]:8.0f} req/s  {direct[1]:8.1f} MB/s")
        print(f"published 127.0.0.1:{hport:<6}  {published[0]:8.0f} req/s  {published[1]:8.1f} MB/s")
        print(f"published/direct             {published[0] / direct[0]:8.2f}        {published[1] / direct[1]:8.2f}")
        svc.create("benchnet", ipam_cfg={"Config": [{"Subnet": f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"}]})
        times = []
        for i in range(CREATE_ROUNDS):
            c = new_id()
            t0 = time.perf_counter()
            svc.prepare_container(ContainerNetConfig(container_id=c, name=f"b{i}", hostname=f"b{i}",
                                                     network_mode="benchnet",
                                                     files_dir=os.path.join(tmp, "c" + c[:8])))
            times.append(time.perf_counter() - t0)
            svc.release_container(c)
        times.sort()
        print(f"create+connect on a user network: median {times[len(times) // 2] * 1000:.1f} ms, "
              f"max {times[-1] * 1000:.1f} ms ({CREATE_ROUNDS} rounds)")
        return 0
    finally:
        if httpd is not None:
            httpd.kill()
            httpd.wait()
        svc.destroy_all()
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)


CHURN_DEFAULT = 50


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class StepClock:
    """Wraps named functions to add up the wall time spent in each (per phase), for the breakdown."""

    def __init__(self) -> None:
        self.phase = ""
        self.totals: dict[tuple[str, str], list[float]] = {}
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, attr: str, label: str) -> None:
        orig = getattr(owner, attr, None) if owner is not None else None
        if orig is None:
            return
        clock = self

        def timed(*a: object, **kw: object) -> object:
            t0 = time.perf_counter_ns()
            try:
                return orig(*a, **kw)  # type: ignore[operator]
            finally:
                phase = clock.phase if threading.current_thread() is threading.main_thread() else "backgrnd"
                clock.totals.setdefault((phase, label), []).append((time.perf_counter_ns() - t0) / 1e6)

        self._undo.append((owner, attr, orig))
        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, orig in reversed(self._undo):
            setattr(owner, attr, orig)
        self._undo.clear()

    def report(self, rounds: int) -> None:
        for (phase, label), xs in sorted(self.totals.items()):
            print(f"    {phase:8s} {label:28s} {sum(xs) / rounds:7.2f} ms/container  ({len(xs) / rounds:.1f} calls)")
        self.totals.clear()


def _instrument(svc: NetworkService) -> StepClock:
    from dockyard.networks import bridge, etcfiles, netns

    try:
        from dockyard.networks import rtnl
    except ImportError:  # comparing with a tree from before the rtnetlink fast path
        rtnl = None  # type: ignore[assignment]
    rt_cls = getattr(rtnl, "RtSocket", None)

    clock = StepClock()
    for owner, attr in ((netns, "create"), (netns, "create_with"), (netns, "remove"), (netns, "run_in"),
                        (bridge, "loopback_up"), (bridge, "configure_inside"),
                        (etcfiles, "write_files"), (etcfiles, "read_host_resolv"),
                        (getattr(svc, "nspool", None), "take"), (rt_cls, "add_veth"), (rt_cls, "configure"),
                        (svc.netlink, "attach"), (svc.netlink, "delete_link"),
                        (svc.firewall, "remove_container"), (svc.firewall, "add_ports"), (svc.firewall, "_ipt"),
                        (svc.firewall, "_restore"), (svc.dns, "add_listener"), (svc.dns, "remove_listener"),
                        (svc, "_write_files"), (svc, "_settings_for"), (svc.store.db, "tx"),
                        (svc.store.db, "query"), (svc.store.db, "query_one"), (svc.ports, "reserve")):
        clock.wrap(owner, attr, f"{getattr(owner, '__name__', type(owner).__name__)}.{attr}")
    return clock


def churn(rounds: int, gap: float = 0.0) -> int:
    """prepare+release ``rounds`` containers on the default bridge and on a user network, ``gap``
    seconds apart (0: back to back)."""
    tmp = tempfile.mkdtemp(prefix="dytbench", dir="/tmp")
    suffix = os.urandom(3).hex()
    db = StateDB(os.path.join(tmp, "state.db"))
    second = random.randint(200, 250)
    third = random.randint(0, 254)
    svc = NetworkService(db, tmp, None, _NoContainers(), bridge=f"dyt{suffix}", bip=f"10.{second}.{third}.1/24",
                         prefix=f"t{suffix[:5]}")
    try:
        t0 = time.perf_counter()
        svc.startup()
        print(f"startup {1000 * (time.perf_counter() - t0):.1f} ms")
        svc.create("churnnet", ipam_cfg={"Config": [{"Subnet": f"10.{second}.{third + 1}.0/24"}]})
        for mode in ("default", "churnnet"):
            for warm in range(3):  # first calls pay for imports and sockets
                c = new_id()
                svc.prepare_container(ContainerNetConfig(container_id=c, name=f"w{warm}", network_mode=mode,
                                                         files_dir=os.path.join(tmp, "c", c)))
                svc.release_container(c)
            clock = _instrument(svc)
            prep: list[float] = []
            rel: list[float] = []
            rem: list[float] = []
            for i in range(rounds):
                if gap:
                    time.sleep(gap)  # a container's lifetime: lets background deletion finish as in real use
                c = new_id()
                cfg = ContainerNetConfig(container_id=c, name=f"b{i}", hostname=c[:12], network_mode=mode,
                                         files_dir=os.path.join(tmp, "c", c))
                clock.phase = "prepare"
                t0 = time.perf_counter_ns()
                svc.prepare_container(cfg)
                prep.append((time.perf_counter_ns() - t0) / 1e6)
                clock.phase = "release"
                t0 = time.perf_counter_ns()
                svc.release_container(c)  # the container exited
                rel.append((time.perf_counter_ns() - t0) / 1e6)
                clock.phase = "remove"
                t0 = time.perf_counter_ns()
                svc.remove_container(c)  # docker rm (--rm): releases again, idempotently
                rem.append((time.perf_counter_ns() - t0) / 1e6)
            clock.restore()
            print(f"{mode:9s} (N={rounds})  prepare median {statistics.median(prep):6.2f} ms p90 {_pct(prep, 0.9):6.2f}"
                  f" | release median {statistics.median(rel):6.2f} ms p90 {_pct(rel, 0.9):6.2f}"
                  f" | remove median {statistics.median(rem):6.2f} ms p90 {_pct(rem, 0.9):6.2f}")
            clock.report(rounds)
        return 0
    finally:
        svc.destroy_all()
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "churn":
        raise SystemExit(churn(int(sys.argv[2]) if len(sys.argv) > 2 else CHURN_DEFAULT,
                               float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0))
    raise SystemExit(main())
