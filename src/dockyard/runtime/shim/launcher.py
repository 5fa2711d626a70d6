"""A small long-lived process that forks one shim per container (and one per exec), pre-warmed.

Starting a fresh interpreter per container would cost tens of milliseconds
and megabytes; instead the daemon starts this once.  It imports the shim and
the runtime, freezes the GC (so forked children do not dirty the shared
pages by collecting), then waits on a SOCK_SEQPACKET channel from the
daemon.  It keeps one shim forked ahead of time and hands it the next job,
so a start pays a message rather than a fork.  Each message is the shim's
JSON config plus fds (SCM_RIGHTS): the socket the shim reports
create/start on, then any attach streams opened
before the start; or, with ``"kind": "exec"``, an exec shim's config plus its
stream socket.  The shim is forked into its own session (setsid), so no
signal for the daemon's process group reaches it; the launcher ends with the
daemon (EOF on the channel, or its parent changed), the shims do not.

Usage: ``python -m dockyard.runtime.shim.launcher CHANNEL_FD DATA_ROOT`` (the
data root is only on the command line so a test harness can find the
processes of one daemon).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys


def _warm() -> None:
    """Import what a shim needs before forking, so every shim shares it."""
    import dockyard.runtime.api  # noqa: F401
    import dockyard.runtime.cgroups  # noqa: F401
    import dockyard.runtime.shim.exec  # noqa: F401
    import dockyard.runtime.shim.start  # noqa: F401

    try:  # parse the host's cgroup mounts once here, not in every shim's exit path
        dockyard.runtime.cgroups.open_cgroup("/dockyard-prewarm/none", "none")
    except Exception:  # noqa: BLE001 - only a cache fill
        pass
    for name in ("create", "lifecycle", "exec"):  # the in-process runtime's lazily imported steps
        try:
            __import__(f"dockyard.runtime.{name}")
        except ImportError:
            pass


def _serve(msg: bytes, fds: list[int]) -> None:
    """Body of a shim: a container's (then the native monitor) or an exec's."""
    socks = [socket.socket(fileno=fd) for fd in fds]
    for s in socks:
        s.set_inheritable(False)
    cfg = json.loads(msg)
    if cfg.get("kind") == "exec":
        from dockyard.runtime.shim.exec import serve_exec

        serve_exec(cfg, socks[0])
    else:
        from dockyard.runtime.shim.start import serve

        serve(cfg, socks[0], socks[1:])


class _Spare:
    """A shim forked ahead of time: it waits for its job on ``sock``, so a start costs a message, not a fork.

    The spare is in its own session (setsid) already, so no signal for the
    daemon's process group reaches it; EOF on its socket (the launcher is
    gone) ends it.
    """

    def __init__(self, channel: socket.socket) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            ours.close()
            _spare_body(channel, theirs)
        theirs.close()
        self.sock, self.pid = ours, pid
        self.handed = False

    def hand(self, msg: bytes, fds: list[int]) -> bool:
        """Give the spare its job; False if it is gone.  Either way it is used up."""
        self.handed = True
        try:
            socket.send_fds(self.sock, [msg], fds)
            return True
        except OSError:
            return False
        finally:
            self.sock.close()

    def dismiss(self) -> None:
        """EOF to the spare, and wait until it is gone (SIGCHLD is ignored: waitpid returns once it exited)."""
        self.sock.close()
        if self.handed:  # a shim at work now: it is not ours to wait for
            return
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _spare_body(channel: socket.socket, jobs: socket.socket) -> None:
    try:
        # ignored dispositions survive execve: the shim and its containers start from the defaults
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()
        channel.close()
        msg, fds, _, _ = socket.recv_fds(jobs, 1 << 20, 32)
        jobs.close()
        if msg and fds:
            _serve(msg, fds)
    except BaseException as exc:  # noqa: BLE001
        try:
            os.write(2, f"shim: {exc!r}\n".encode())
        finally:
            os._exit(1)
    os._exit(0)


def main(argv: list[str]) -> int:
    channel = socket.socket(fileno=int(argv[0]))
    parent = os.getppid()
    _warm()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # shims are never waited for: no zombies
    gc.collect()
    gc.freeze()
    spare = _Spare(channel)
    poller = select.poll()
    poller.register(channel.fileno(), select.POLLIN)
    try:
        while True:
            # the channel's EOF says the daemon is gone; the parent check covers a channel kept open elsewhere
            if not poller.poll(5000):
                if os.getppid() != parent:
                    return 0
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(channel, 1 << 20, 32)
            except InterruptedError:
                continue
            except OSError:
                return 0
            if not msg:
                return 0
            if fds and not spare.hand(msg, fds):  # the spare died (killed by hand?): a fresh one takes it
                spare = _Spare(channel)
                if not spare.hand(msg, fds):  # the daemon reads the failure from the closed sockets
                    os.write(2, b"launcher: no shim for the job\n")
            for fd in fds:
                os.close(fd)
            if fds:
                spare = _Spare(channel)  # after the job went out: the start does not wait for this fork
    finally:
        spare.dismiss()  # nothing of the launcher's outlives it but the shims at work


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
