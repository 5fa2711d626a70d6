"""A real dockyard daemon for end-to-end tests: own data root, socket, bridge, subnet and cgroup parent.

Everything the daemon makes is findable from this object (paths under its tmp dir, links and chains named after
its resource prefix, cgroups under its cgroup parent), so `stop()` can leave the host clean even after a crash.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
DOCKYARD = os.path.join(VENV_BIN, "dockyard")
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
CGROUP_ROOT = "/sys/fs/cgroup"
TEST_BRIDGE_PREFIX = "dyt"
STARTED: list[TestDaemon] = []  # every daemon this test session made, for the final host-clean check


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def tail_file(path: str, n: int) -> str:
    """The last ``n`` lines of a log file ("" if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def mounts_under(prefix: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix.rstrip("/") + "/"):
                out.append(mp)
    return out


def processes_referencing(prefix: str) -> list[int]:
    """Pids whose command line, cwd or open files name a path under ``prefix`` (shims, containers)."""
    me = os.getpid()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        base = f"/proc/{entry}"
        try:
            with open(f"{base}/cmdline", "rb") as f:
                if prefix.encode() in f.read():
                    pids.append(int(entry))
                    continue
            links = [os.readlink(f"{base}/cwd")]
            for fd in os.listdir(f"{base}/fd"):
                try:
                    links.append(os.readlink(f"{base}/fd/{fd}"))
                except OSError:
                    pass
            if any(link.startswith(prefix) for link in links):
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def cgroup_dirs(parent: str) -> list[str]:
    out: list[str] = []
    try:
        controllers = os.listdir(CGROUP_ROOT)
    except OSError:
        return out
    for ctrl in controllers:
        d = os.path.join(CGROUP_ROOT, ctrl, parent)
        if os.path.isdir(d):
            out.append(d)
    return out


def _cgroup_pids(directory: str) -> list[int]:
    pids: list[int] = []
    for root, _dirs, files in os.walk(directory):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids += [int(x) for x in f.read().split()]
            except OSError:
                pass
    return pids


def _remove_cgroup_tree(directory: str) -> None:
    for root, dirs, _files in os.walk(directory, topdown=False):
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                pass
    try:
        os.rmdir(directory)
    except OSError:
        pass


def links_with_prefix(*prefixes: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = []
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefixes):
            names.append(name)
    return names


def iptables_lines(word: str, cmd: str = "iptables") -> list[str]:
    out = subprocess.run([f"{cmd}-save"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if word in line]


def ip6tables_lines(word: str) -> list[str]:
    return [f"ip6tables: {line}" for line in iptables_lines(word, "ip6tables")]


def _remove_iptables(word: str, cmd: str = "iptables") -> None:
    """Delete every rule mentioning ``word``, then flush and delete chains named with it."""
    for table in ("nat", "filter", "mangle", "raw"):
        out = subprocess.run([f"{cmd}-save", "-t", table], capture_output=True, text=True).stdout
        chains = []
        for line in out.splitlines():
            if line.startswith("-A ") and word in line:
                subprocess.run([cmd, "-t", table, "-D", *shlex.split(line[3:])], capture_output=True)
            elif line.startswith(":") and word in line:
                chains.append(line[1:].split()[0])
        for chain in chains:
            subprocess.run([cmd, "-t", table, "-F", chain], capture_output=True)
            subprocess.run([cmd, "-t", table, "-X", chain], capture_output=True)


def _free_bip() -> str:
    """A 10.2xx.y.1/24 no route on the host uses yet (parallel test daemons must not collide)."""
    routes = subprocess.run(["ip", "-o", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(100):
        a, b = random.randint(200, 250), random.randint(0, 255)
        if f"10.{a}.{b}." not in routes:
            return f"10.{a}.{b}.1/24"
    raise RuntimeError("no free test subnet")


class TestDaemon:
    __test__ = False  # not a test class
    api_version = "1.47"  # what the daemon speaks; raw requests name it (/v{api_version}/...)
    reference = False  # True for the real dockerd of --target=dockerd (helpers/dockerd.py)

    def wording(self, message: str) -> str:
        """An error message as this daemon words it: docker 23+ (and dockyard) start them lower-case, dockerd
        20.10 (the reference) with a capital."""
        return message[:1].upper() + message[1:] if self.reference else message

    def __init__(self, extra_args: list[str] | None = None, tmp: str | None = None) -> None:
        self.tmp = tmp or tempfile.mkdtemp(prefix="dyt", dir="/tmp")
        self.suffix = os.urandom(3).hex()
        self.data_root = os.path.join(self.tmp, "root")
        self.exec_root = os.path.join(self.tmp, "run")
        self.socket = os.path.join(self.tmp, "d.sock")
        self.pidfile = os.path.join(self.tmp, "d.pid")
        self.host = f"unix://{self.socket}"
        self.bridge = f"{TEST_BRIDGE_PREFIX}{self.suffix}"
        self.resource_prefix = f"t{self.suffix[:5]}"
        self.bip = _free_bip()
        self.cgroup_parent = f"dockyard-{self.suffix}"
        self.log_path = os.path.join(self.tmp, "daemon.log")
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None
        STARTED.append(self)
        self.env = dict(os.environ)
        self.env.pop("DOCKER_CONTEXT", None)
        self.env.update({"DOCKER_HOST": self.host, "DOCKYARD_HOST": self.host,
                         "DOCKER_CONFIG": os.path.join(self.tmp, "docker-config")})

    # -- process ---------------------------------------------------------
    def argv(self) -> list[str]:
        return [DOCKYARD, "daemon", "--data-root", self.data_root, "-H", self.host, "--pidfile", self.pidfile,
                "--bridge", self.bridge, "--bip", self.bip, "--exec-root", self.exec_root,
                "--cgroup-parent", self.cgroup_parent, "--resource-prefix", self.resource_prefix,
                "--log-level", "debug", *self.extra_args]

    def start(self, timeout: float = 20.0) -> TestDaemon:
        os.makedirs(self.tmp, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _, _ = self.api("GET", "/_ping", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not answer /_ping within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        return tail_file(self.log_path, n)

    def kill9(self) -> None:
        """Kill the daemon the hard way (containers and shims must survive)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the daemon's own clean shutdown (live restore keeps containers running)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def restart(self) -> TestDaemon:
        self.terminate()
        return self.start()

    def stop(self) -> list[str]:
        """Stop everything this daemon made and return what had to be cleaned by force (empty = clean)."""
        forced: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                status, _, body = self.api("GET", "/containers/json?all=1", timeout=10)
                for c in json.loads(body) if status == 200 else []:
                    self.api("DELETE", f"/containers/{c['Id']}?force=1&v=1", timeout=30)
            except (OSError, ValueError):
                forced.append("container removal through the API failed")
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                forced.append("daemon ignored SIGTERM")
        forced += self.force_clean()
        return forced

    def force_clean(self) -> list[str]:
        forced: list[str] = []
        for d in cgroup_dirs(self.cgroup_parent):
            freezer = os.path.join(d, "freezer.state")
            for root, _dirs, files in os.walk(d):
                if "freezer.state" in files:
                    try:
                        with open(os.path.join(root, "freezer.state"), "w") as f:
                            f.write("THAWED")
                    except OSError:
                        pass
            del freezer
            for pid in _cgroup_pids(d):
                forced.append(f"container process {pid}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid in processes_referencing(self.tmp):
            forced.append(f"process {pid} referencing {self.tmp}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1 if forced else 0)
        for d in cgroup_dirs(self.cgroup_parent):
            forced.append(f"cgroup {d}")
            for _ in range(50):
                _remove_cgroup_tree(d)
                if not os.path.exists(d):
                    break
                time.sleep(0.05)
        for mp in sorted(mounts_under(self.tmp), key=len, reverse=True):
            forced.append(f"mount {mp}")
            if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)
        for name in links_with_prefix(self.bridge, self.resource_prefix):
            forced.append(f"link {name}")
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        if iptables_lines(self.resource_prefix) or iptables_lines(self.bridge):
            forced.append("iptables rules")
            _remove_iptables(self.resource_prefix)
            _remove_iptables(self.bridge)
        if ip6tables_lines(self.resource_prefix) or ip6tables_lines(self.bridge):
            forced.append("ip6tables rules")
            _remove_iptables(self.resource_prefix, "ip6tables")
            _remove_iptables(self.bridge, "ip6tables")
        return forced

    def leftovers(self) -> list[str]:
        """What of this daemon is still on the host (nothing, after a clean stop)."""
        left = [f"mount {m}" for m in mounts_under(self.tmp)]
        left += [f"cgroup {d}" for d in cgroup_dirs(self.cgroup_parent)]
        left += [f"link {n}" for n in links_with_prefix(self.bridge, self.resource_prefix)]
        left += iptables_lines(self.resource_prefix) + iptables_lines(self.bridge)
        left += ip6tables_lines(self.resource_prefix) + ip6tables_lines(self.bridge)
        left += [f"process {p}" for p in processes_referencing(self.tmp)]
        return left

    def remove_tmp(self) -> None:
        if not mounts_under(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- clients -------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, timeout: float = 60,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Raw HTTP over the unix socket; dict/list bodies are sent as JSON."""
        conn = _UnixHTTPConnection(self.socket, timeout)
        try:
            hdrs = dict(headers or {})
            data: bytes | None = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def api_json(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        status, _, data = self.api(method, path, body, timeout)
        return status, (json.loads(data) if data.strip() else None)

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=120)

    def cli(self, *args: str, input: str | bytes | None = None, check: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKYARD, *args], input=input, capture_output=True, text=True, env=self.env,
                              check=check, timeout=timeout)

    def docker(self, *args: str, input: str | None = None, check: bool = False,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True, env=self.env,
                              check=check, timeout=timeout)

    # -- images ----------------------------------------------------------
    def load_busybox(self, cache_tar: str | None) -> None:
        """busybox:latest in this daemon: load the session's cached archive, else bootstrap (and fill the cache)."""
        if cache_tar and os.path.exists(cache_tar):
            with open(cache_tar, "rb") as f:
                status, _, body = self.api("POST", "/images/load?quiet=1", f.read(),
                                           headers={"Content-Type": "application/x-tar"}, timeout=120)
            if status == 200 and self.api("GET", "/images/busybox:latest/json")[0] == 200:
                return
        status, _, body = self.api("POST", "/images/bootstrap?name=busybox", timeout=300)
        if status != 200 or self.api("GET", "/images/busybox:latest/json")[0] != 200:
            raise RuntimeError(f"busybox bootstrap failed: {status} {body[-500:]!r}")
        if cache_tar and not os.path.exists(cache_tar):
            status, _, data = self.api("GET", "/images/get?names=busybox:latest", timeout=120)
            if status == 200:
                tmp = cache_tar + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, cache_tar)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value or raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def start_daemon(extra_args: list[str] | None = None) -> TestDaemon:
    return TestDaemon(extra_args).start()


def finish_daemon(d: TestDaemon) -> None:
    """Stop a daemon, force-clean what it left, and fail loudly if anything had to be forced or remains."""
    forced = d.stop()
    left = d.leftovers()
    log = d.log_tail(80)
    d.remove_tmp()
    assert not left, f"daemon left on the host: {left}"
    assert not forced, f"had to force-clean: {forced}\n--- daemon log ---\n{log}"
