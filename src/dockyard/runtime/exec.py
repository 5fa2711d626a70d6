"""``exec``: start another process inside a running container.

Stage 1 joins the container's cgroup and every namespace of its init that
differs from ours (mount last), forks stage 2 (so it lands in the pid
namespace), reports stage 2's pid and exits.  Stage 2 sets identity,
capabilities and seccomp as the process asks and execs; its report pipe is
close-on-exec, so EOF without an error message means the exec succeeded.
"""

from __future__ import annotations

import os

from dockyard.runtime import process
from dockyard.runtime import state as st
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.init import _close_extra_fds, _report_error, send
from dockyard.runtime.spec import validate_process
from dockyard.sys import linux

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

# joined in this order; mount last so the /proc paths above stay reachable
_JOIN_ORDER = ("cgroup", "ipc", "uts", "net", "pid", "mnt")
_NS_FLAGS = {name: flag for flag, name in linux.NAMESPACES.values()}


def _namespaces_to_join(init_pid: int) -> list[tuple[int, int]]:
    """Open the init's namespace links that differ from ours: (fd, CLONE_* flag)."""
    fds = []
    for name in _JOIN_ORDER:
        theirs = f"/proc/{init_pid}/ns/{name}"
        try:
            if os.readlink(theirs) == os.readlink(f"/proc/self/ns/{name}"):
                continue
            fds.append((os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), _NS_FLAGS[name]))
        except FileNotFoundError:
            continue
    return fds


def exec_process(
    root: str,
    cid: str,
    proc: dict[str, Any],
    *,
    stdio: tuple[int, int, int] | None = None,
    console_socket: str | None = None,
    pid_file: str | None = None,
) -> int:
    """Run ``proc`` (an OCI process object) in container ``cid``; return its host pid."""
    stored = st.read_state(root, cid)
    status = st.status_of(root, cid, stored)
    if status == "stopped":
        raise OCIRuntimeError("cannot exec in a stopped container", "state")
    if status == "paused":
        raise OCIRuntimeError("cannot exec in a paused container", "state")
    validate_process(proc)
    if proc.get("terminal") and not console_socket:
        raise OCIRuntimeError("cannot allocate tty if runtime will detach without setting console socket", "invalid")
    from dockyard.runtime.cgroups import open_cgroup

    cgroup = open_cgroup(stored.get("cgroups_path"), cid)
    program: bytes | None = None
    flags = 0
    if stored.get("seccomp"):
        from dockyard.runtime.create import compiled_seccomp

        program, flags = compiled_seccomp(root, stored["seccomp"])
    sock = None
    if proc.get("terminal"):
        from dockyard.runtime import console

        try:
            sock = console.connect_console_socket(console_socket or "")
        except OSError as exc:
            raise OCIRuntimeError(f"cannot connect to console socket {console_socket}: {exc.strerror}") from None
    ns_fds = _namespaces_to_join(stored["pid"])
    report_r, report_w = os.pipe()
    try:
        child = os.fork()
        if child == 0:
            _stage1(proc, cgroup, ns_fds, report_w, stdio, sock, program, flags)
        os.close(report_w)
        report_w = -1
        pid = 0
        error: OCIRuntimeError | None = None
        from dockyard.runtime.create import _read_messages

        for msg in _read_messages(report_r):
            if "pid" in msg:
                pid = msg["pid"]
            elif "error" in msg:
                error = OCIRuntimeError(msg["error"], msg.get("kind", "other"))
        os.waitpid(child, 0)
    finally:
        for fd, _ in ns_fds:
            os.close(fd)
        os.close(report_r)
        if report_w >= 0:
            os.close(report_w)
        if sock is not None:
            sock.close()
    if error is not None:
        raise error
    if not pid:
        raise OCIRuntimeError("exec failed: the process exited before starting", "other")
    if pid_file:
        tmp = pid_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(pid))
        os.rename(tmp, pid_file)
    return pid


def _stage1(
    proc: dict[str, Any],
    cgroup: Any,
    ns_fds: list[tuple[int, int]],
    report_w: int,
    stdio: tuple[int, int, int] | None,
    sock: Any,
    program: bytes | None,
    flags: int,
) -> None:
    code = 1
    try:
        cgroup.join_self()
        for fd, flag in ns_fds:
            linux.setns(fd, flag)
            os.close(fd)
        pid = os.fork()
        if pid == 0:
            _stage2(proc, report_w, stdio, sock, program, flags)
        send(report_w, pid=pid)
        code = 0
    except BaseException as exc:
        try:
            _report_error(report_w, exc)
        except OSError:
            pass
    os._exit(code)


def _stage2(
    proc: dict[str, Any],
    report_w: int,
    stdio: tuple[int, int, int] | None,
    sock: Any,
    program: bytes | None,
    flags: int,
) -> None:
    try:
        os.setsid()
        if stdio is not None:
            for target, fd in enumerate(stdio):
                if fd != target:
                    os.dup2(fd, target)
        _close_extra_fds({report_w})
        if proc.get("terminal"):
            from dockyard.runtime import console

            master, slave = console.open_pty("/dev/pts/ptmx")
            console.send_master(sock, master)
            os.close(master)
            sock.close()
            size = proc.get("consoleSize") or {}
            console.make_controlling(slave, size.get("width", 0), size.get("height", 0))
        process.set_rlimits(proc)
        env = process.process_env(proc)
        path = process.lookup_executable(proc["args"][0], env)
        nnp = bool(proc.get("noNewPrivileges"))
        if not nnp:
            process.load_seccomp(program, flags)
        process.set_identity(proc)
        process.enter_cwd(proc)
        if nnp:
            process.set_no_new_privs()
            process.load_seccomp(program, flags)
        process.reset_signals()
        os.execve(path, proc["args"], env)
    except BaseException as exc:
        try:
            if isinstance(exc, OSError):
                send(report_w, error=f"exec {proc['args'][0]}: {os.strerror(exc.errno or 0).lower()}", kind="other")
            else:
                _report_error(report_w, exc)
        except OSError:
            pass
    os._exit(1)
