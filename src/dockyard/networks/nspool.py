"""A few network namespaces made ahead of need, so a container start does not wait for one.

Creating a namespace costs the kernel a millisecond or two (a loopback device, sysctl and
proc trees); moving an existing nsfs bind mount onto the container's path (MS_MOVE) costs a
fraction of that. Spares live in the daemon's netns directory as ``.spare-<random>`` with
loopback up, an rtnetlink socket and the DNS listener sockets already open inside, and a
low-priority thread tops the pool up after each take. A crash leaves only files that
startup's reconcile removes (they belong to no container), and ``stop`` removes the rest.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from dataclasses import dataclass

from dockyard.networks import netns, rtnl
from dockyard.networks.dns import listener_sockets

log = logging.getLogger("dockyard.networks")

SPARE_PREFIX = ".spare-"


@dataclass
class Ready:
    """A namespace pinned at ``path`` with sockets open inside it."""

    path: str
    rt: rtnl.RtSocket
    dns_socks: list[socket.socket]

    def close_sockets(self) -> None:
        self.rt.close()
        for s in self.dns_socks:
            s.close()


def open_inside(want_dns: bool) -> tuple[rtnl.RtSocket, list[socket.socket]]:
    """Run in a new namespace: loopback up, a netlink socket for configuring it, DNS listener sockets."""
    rt = rtnl.RtSocket()
    try:
        rt.set_up(rtnl.LOOPBACK_IFINDEX)
        return rt, listener_sockets() if want_dns else []
    except BaseException:
        rt.close()
        raise


def make(path: str, want_dns: bool) -> Ready:
    """A fresh namespace pinned at ``path``, made now."""
    rt, socks = netns.create_with(path, lambda: open_inside(want_dns))
    return Ready(path, rt, socks)


def _move(src: str, target: str) -> None:
    with open(target, "x"):
        pass
    try:
        netns.move(src, target)
    except OSError:
        os.unlink(target)
        raise
    os.unlink(src)


class NamespacePool:
    """Up to ``size`` spare namespaces in ``directory``; thread-safe."""

    def __init__(self, directory: str, size: int = 2) -> None:
        self.directory = directory
        self.size = size
        self._cv = threading.Condition()
        self._spares: deque[Ready] = deque()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.size <= 0:
            return
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._fill_loop, name="netns-pool", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop filling and remove every spare."""
        with self._cv:
            thread, self._thread = self._thread, None
            self._cv.notify_all()
        if thread is not None:
            thread.join(10)
        with self._cv:
            spares = list(self._spares)
            self._spares.clear()
        for r in spares:
            r.close_sockets()
            netns.remove(r.path)

    def take(self, path: str, want_dns: bool) -> tuple[rtnl.RtSocket, list[socket.socket]]:
        """A namespace pinned at ``path`` (a spare moved there, or a new one): its netlink socket
        and, when ``want_dns``, its DNS listener sockets. The caller closes them."""
        with self._cv:
            spare = self._spares.popleft() if self._spares else None
            self._cv.notify_all()
        if spare is not None:
            try:
                _move(spare.path, path)
            except OSError:
                log.warning("using a spare namespace failed", exc_info=True)
                spare.close_sockets()
                netns.remove(spare.path)
            else:
                if not want_dns:
                    for s in spare.dns_socks:
                        s.close()
                    spare.dns_socks = []
                return spare.rt, spare.dns_socks
        r = make(path, want_dns)
        return r.rt, r.dns_socks

    def _fill_loop(self) -> None:
        me = threading.current_thread()
        try:  # yield the CPU to container starts (threads keep their own nice value on Linux)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass
        while True:
            with self._cv:
                while self._thread is me and len(self._spares) >= self.size:
                    self._cv.wait()
                if self._thread is not me:
                    return
            path = os.path.join(self.directory, SPARE_PREFIX + os.urandom(6).hex())
            try:
                spare = make(path, True)
            except OSError:
                log.warning("making a spare namespace failed", exc_info=True)
                with self._cv:
                    self._cv.wait(5.0)
                continue
            with self._cv:
                if self._thread is me:
                    self._spares.append(spare)
                    continue
            spare.close_sockets()
            netns.remove(path)
            return
