"""A private real dockerd for the engine benchmark: its own data root, exec root, pidfile and socket in a tmp dir.

No bridge and no iptables, so it touches neither the host's network nor the default /var/lib/docker.  `stop()`
terminates it (and its containerd), unmounts whatever is left under the tmp dir, removes the dir, and returns what
was still on the host so the benchmark can say so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from helpers.daemon import mounts_under, processes_referencing, tail_file  # noqa: E402

DOCKERD = shutil.which("dockerd") or (os.path.exists("/usr/sbin/dockerd") and "/usr/sbin/dockerd") or None
# the same docker CLI the benchmark points at dockyard, so only the daemons differ; the client shipped with
# Debian's docker.io is timed as well where it is installed
DOCKER_CLI = shutil.which("docker") or "/usr/local/bin/docker"
DOCKER_IO_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else None
OUTSIDE_ROOTS = ("/etc/docker/key.json", "/etc/docker", "/run/docker/plugins", "/run/docker",
                 "/run/containerd/s", "/run/containerd")


GWBRIDGE = "docker_gwbridge"


class PrivateDockerd:
    """One dockerd under a scratch directory, driven with its own docker client."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="dyb", dir="/tmp")
        self.socket = os.path.join(self.tmp, "d.sock")
        self.host = f"unix://{self.socket}"
        self.log_path = os.path.join(self.tmp, "dockerd.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        self.env.pop("DOCKER_CONTEXT", None)
        self.env.update({"DOCKER_HOST": self.host, "DOCKER_CONFIG": os.path.join(self.tmp, "cfg")})
        # cgroups dockerd may create at the top of each v1 hierarchy; removed again only if we made them
        self._cgroup_dirs_before = {d for d in self._docker_cgroups() if os.path.isdir(d)}
        # what dockerd 20.10 / containerd make outside the given roots (trust key, plugin dir, shim sockets)
        self._outside_before = {p for p in OUTSIDE_ROOTS if os.path.lexists(p)}
        # swarm commands (even refused ones) make dockerd create docker_gwbridge, which outlives dockerd
        self._gwbridge_before = os.path.exists(f"/sys/class/net/{GWBRIDGE}")

    @staticmethod
    def _docker_cgroups() -> list[str]:
        root = "/sys/fs/cgroup"
        try:
            return [os.path.join(root, c, "docker") for c in os.listdir(root)]
        except OSError:
            return []

    def argv(self) -> list[str]:
        assert DOCKERD
        return [DOCKERD, "--data-root", os.path.join(self.tmp, "data"), "--exec-root", os.path.join(self.tmp, "exec"),
                "--pidfile", os.path.join(self.tmp, "d.pid"), "-H", self.host, "--bridge=none",
                "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--userland-proxy=false"]

    def start(self, timeout: float = 60.0) -> PrivateDockerd:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if os.path.exists(self.socket) and self.docker("version", timeout=10).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        return tail_file(self.log_path, n)

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 120,
               cli: str = DOCKER_CLI) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([cli, *args], input=input, capture_output=True, env=self.env, timeout=timeout)

    def load(self, archive: bytes) -> None:
        r = self.docker("load", input=archive, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"docker load into dockerd failed: {r.stderr.decode(errors='replace')}")

    def stop(self) -> list[str]:
        """Remove its containers, SIGTERM it, and clean the tmp dir; returns what had to be forced or remains."""
        forced: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", timeout=30).stdout.decode().split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=60)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                forced.append("dockerd ignored SIGTERM")
                self.proc.kill()
                self.proc.wait()
        for _ in range(50):  # containerd and shims exit shortly after dockerd
            if not processes_referencing(self.tmp):
                break
            time.sleep(0.1)
        for pid in processes_referencing(self.tmp):
            forced.append(f"process {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mp in sorted(mounts_under(self.tmp), key=len, reverse=True):
            forced.append(f"mount {mp}")
            if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)
        for d in self._docker_cgroups():
            if d not in self._cgroup_dirs_before and os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    forced.append(f"cgroup {d}")
        for path in OUTSIDE_ROOTS:  # files before their dirs; only what this dockerd made, dirs only when empty
            if path not in self._outside_before and os.path.lexists(path):
                try:
                    os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
                except OSError:
                    forced.append(f"left {path}")
        if not self._gwbridge_before and os.path.exists(f"/sys/class/net/{GWBRIDGE}"):
            subprocess.run(["ip", "link", "del", GWBRIDGE], capture_output=True)
        if not self._gwbridge_before and os.path.exists(f"/sys/class/net/{GWBRIDGE}"):
            forced.append(f"link {GWBRIDGE}")
        left = [f"mount {m}" for m in mounts_under(self.tmp)] + [f"process {p}" for p in
                                                                 processes_referencing(self.tmp)]
        if not mounts_under(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return forced + [f"LEFT {x}" for x in left]
