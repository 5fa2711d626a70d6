"""The reference target: the same end-to-end tests against a private real dockerd (`pytest --target=dockerd`).

A test that fails here is a broken test (it asserts something docker does not do), as youki validates its suite on
runc. The dockerd gets what a TestDaemon gets: its own data root, exec root, socket and cgroup parent, and a bridge
of its own (made here, with the daemon's test subnet); no iptables rules, so it changes nothing else on the host.
busybox:latest comes from the session's cached archive (bootstrapped once by a dockyard daemon).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time

from helpers.daemon import TestDaemon, start_daemon

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
# what dockerd 20.10 and its containerd make outside the given roots; removed again only if this one made them
GWBRIDGE = "docker_gwbridge"
OUTSIDE_ROOTS = ("/etc/docker/key.json", "/etc/docker", "/run/docker/plugins", "/run/docker")


class DockerdTarget(TestDaemon):
    """A TestDaemon whose daemon is dockerd: same clients, same host-clean checks."""

    api_version = "1.41"  # Debian's dockerd 20.10
    reference = True

    def __init__(self) -> None:
        super().__init__()
        self._outside_before = {p for p in OUTSIDE_ROOTS if os.path.lexists(p)}
        self._gwbridge_before = os.path.exists(f"/sys/class/net/{GWBRIDGE}")

    def argv(self) -> list[str]:
        return [DOCKERD, "--data-root", self.data_root, "--exec-root", self.exec_root, "--pidfile", self.pidfile,
                "-H", self.host, "--bridge", self.bridge, "--iptables=false", "--ip6tables=false",
                "--ip-masq=false",
                # absolute, so every controller's cgroup is /<parent>/<id>, not under this process's own cgroup
                "--cgroup-parent", "/" + self.cgroup_parent]

    def start(self, timeout: float = 60.0) -> DockerdTarget:
        if not os.path.exists(f"/sys/class/net/{self.bridge}"):  # a restart finds it still there
            net = ipaddress.ip_interface(self.bip)
            subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", str(net), "dev", self.bridge], check=True)
            subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        return super().start(timeout)  # type: ignore[return-value]

    def terminate(self, timeout: float = 60) -> int:
        rc = super().terminate(timeout)
        for _ in range(100):  # its containerd and shims leave shortly after it
            if not self._own_processes():
                break
            time.sleep(0.1)
        return rc

    def _own_processes(self) -> list[int]:
        from helpers.daemon import processes_referencing

        return processes_referencing(self.tmp)

    def force_clean(self) -> list[str]:
        forced = super().force_clean()
        for path in OUTSIDE_ROOTS:
            if path not in self._outside_before and os.path.lexists(path):
                try:
                    os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
                except OSError:
                    pass
        # the bridge is ours to remove; the empty cgroup parent dockerd keeps is removed above, as expected;
        # dockerd leaves its bind mount of the host's netns (exec-root/netns/default) mounted when it exits
        expected = (f"link {self.bridge}", "cgroup ", f"mount {self.exec_root}/netns/default")
        return [f for f in forced if not f.startswith(expected)]

    def stop(self) -> list[str]:
        forced = super().stop()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        # a swarm command, even a refused one, makes dockerd create docker_gwbridge, which outlives it
        if not self._gwbridge_before and os.path.exists(f"/sys/class/net/{GWBRIDGE}"):
            subprocess.run(["ip", "link", "del", GWBRIDGE], capture_output=True)
            if os.path.exists(f"/sys/class/net/{GWBRIDGE}"):
                forced.append(f"link {GWBRIDGE}")
        return forced

    def load_busybox(self, cache_tar: str | None) -> None:
        if not cache_tar or not os.path.exists(cache_tar):
            helper = start_daemon()  # dockyard bootstraps busybox from Debian's busybox-static once
            try:
                helper.load_busybox(cache_tar)
            finally:
                from helpers.daemon import finish_daemon

                finish_daemon(helper)
        assert cache_tar
        with open(cache_tar, "rb") as f:
            r = subprocess.run([self.docker_path(), "load", "-q"], stdin=f, capture_output=True, env=self.env)
        if r.returncode != 0:
            raise RuntimeError(f"docker load into dockerd failed: {r.stderr!r}")

    @staticmethod
    def docker_path() -> str:
        from helpers.daemon import DOCKER

        return DOCKER


