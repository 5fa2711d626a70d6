"""The two forked stages that become the container's init.

Stage 1 (child of ``create``) joins the cgroup and the namespaces given by
path, unshares the new ones and forks stage 2, which is PID 1 of the new
pid namespace; stage 1 then reports stage 2's host pid and exits, so the
init is reparented to the caller's subreaper exactly like runc's.

Stage 2 sets up the filesystem, terminal, hostname, sysctls and the
process identity, reports "ready" and waits on the exec fifo until
``start`` writes to it.  All messages go up one pipe as JSON lines.
"""

from __future__ import annotations

import json
import os
import select
import signal

from dockyard.runtime import process, rootfs
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.sys import linux

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any


class InitContext:
    """Everything stage 1 and 2 need, prepared by ``create`` before forking.

    A plain class: importing dataclasses would cost more than a container start's syscalls.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        cid: str,
        fifo_path: str,
        report_w: int,
        ack_r: int,
        cgroup: Any,
        cgroup_binds: list[tuple[str, str]],
        stdio: tuple[int, int, int] | None = None,
        console: Any = None,
        seccomp_program: bytes | None = None,
        seccomp_flags: int = 0,
        wants_runtime_hooks: bool = False,
        bundle: str = "",
    ) -> None:
        self.spec = spec
        self.cid = cid
        self.fifo_path = fifo_path
        self.report_w = report_w
        self.ack_r = ack_r
        self.cgroup = cgroup
        self.cgroup_binds = cgroup_binds
        self.stdio = stdio
        self.console = console  # a connected socket.socket when the process wants a terminal
        self.seccomp_program = seccomp_program
        self.seccomp_flags = seccomp_flags
        self.wants_runtime_hooks = wants_runtime_hooks
        self.bundle = bundle
        self.host_pid = 0
        # a cgroup namespace must be rooted at the container's cgroup, so join before unsharing;
        # otherwise the parent moves the init in while it sets up (the move waits for an RCU grace period)
        self.join_cgroup_early = any(
            ns["type"] == "cgroup" for ns in (spec.get("linux") or {}).get("namespaces") or []
        )


def send(fd: int, **msg: Any) -> None:
    os.write(fd, (json.dumps(msg) + "\n").encode())


def _report_error(fd: int, exc: BaseException) -> None:
    if os.environ.get("DOCKYARD_RUNTIME_DEBUG"):
        import traceback

        send(fd, error="".join(traceback.format_exception(exc)), kind="other")
        return
    if isinstance(exc, OCIRuntimeError):
        send(fd, error=exc.message, kind=exc.kind)
    elif isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        text = exc.strerror or str(exc)
        send(fd, error=f"{text}{where}".strip(), kind="other")
    else:
        send(fd, error=f"{type(exc).__name__}: {exc}", kind="other")


def join_and_unshare(namespaces: list[dict[str, Any]]) -> None:
    """setns into namespaces given by path (mount last), unshare the rest."""
    flags = 0
    joins: list[tuple[str, int]] = []
    for ns in namespaces:
        flag = linux.NAMESPACES[ns["type"]][0]
        if ns.get("path"):
            joins.append((ns["path"], flag))
        else:
            flags |= flag
    joins.sort(key=lambda item: item[1] == linux.CLONE_NEWNS)
    for path, flag in joins:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise OCIRuntimeError(f"cannot open namespace {path}: {exc.strerror}", "other") from None
        try:
            linux.setns(fd, flag)
        except OSError as exc:
            raise OCIRuntimeError(f"cannot join namespace {path}: {exc.strerror}", "other") from None
        finally:
            os.close(fd)
    if flags:
        linux.unshare(flags)


def stage1(ctx: InitContext) -> None:
    """Runs in the first child; never returns."""
    code = 1
    try:
        if ctx.join_cgroup_early:
            ctx.cgroup.join_self()
        join_and_unshare((ctx.spec.get("linux") or {}).get("namespaces") or [])
        pid = os.fork()
        if pid == 0:
            stage2(ctx)
        send(ctx.report_w, pid=pid)
        code = 0
    except BaseException as exc:  # report everything: the parent prints it
        try:
            _report_error(ctx.report_w, exc)
        except OSError:
            pass
    os._exit(code)


def _close_extra_fds(keep: set[int]) -> None:
    """Nothing the caller left open may leak into the container."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def _created_signal(signum: int, _frame: Any) -> None:
    """As PID 1 of its namespace the init ignores default-handled signals; die on them instead."""
    os._exit(128 + signum)


def stage2(ctx: InitContext) -> None:
    """The container init: set everything up, report, wait for start, exec."""
    spec = ctx.spec
    proc = spec["process"]
    root = spec["root"]["path"]
    linux_cfg = spec.get("linux") or {}
    ready = False
    try:
        os.setsid()
        ctx.host_pid = int(os.readlink("/proc/self"))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, _created_signal)
        if ctx.stdio is not None:
            for target, fd in enumerate(ctx.stdio):
                if fd != target:
                    os.dup2(fd, target)
        _close_extra_fds({ctx.report_w, ctx.ack_r})
        new_mount_ns = any(ns["type"] == "mount" and not ns.get("path") for ns in linux_cfg.get("namespaces") or [])
        if not new_mount_ns:
            raise OCIRuntimeError("a new mount namespace is required", "invalid")
        rootfs.prepare_root(root, linux_cfg.get("rootfsPropagation"))
        rootfs.mount_all(root, spec, ctx.cgroup_binds)
        cwd = proc.get("cwd") or "/"
        try:
            os.makedirs(rootfs.resolve_in_root(root, cwd), 0o755, exist_ok=True)
        except OSError:
            pass  # a read-only rootfs without the cwd fails at chdir with runc's message
        slave_inside = None
        if proc.get("terminal"):
            from dockyard.runtime import console

            master, slave = console.open_pty(rootfs.resolve_in_root(root, "/dev/pts/ptmx"))
            console.send_master(ctx.console, master)
            os.close(master)
            ctx.console.close()
            rootfs.bind_console(root, slave)
            slave_inside = "/" + os.path.relpath(slave, root)
        if ctx.wants_runtime_hooks:
            send(ctx.report_w, hooks=True)
            if os.read(ctx.ack_r, 1) != b"1":
                os._exit(1)
        if (spec.get("hooks") or {}).get("createContainer"):
            from dockyard.runtime import hooks

            hooks.run_hooks(spec, "createContainer", _hook_state(ctx, "created"))
        fifo = os.open(ctx.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        rootfs.do_pivot(root)
        if spec.get("hostname"):
            linux.sethostname(spec["hostname"])
        if spec.get("domainname"):
            linux.setdomainname(spec["domainname"])
        for key, value in (linux_cfg.get("sysctl") or {}).items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
                fh.write(str(value))
        rootfs.readonly_paths(linux_cfg.get("readonlyPaths") or [])
        rootfs.mask_paths(linux_cfg.get("maskedPaths") or [])
        if spec["root"].get("readonly"):
            rootfs.readonly_root()
        if slave_inside:
            size = proc.get("consoleSize") or {}
            from dockyard.runtime import console

            console.make_controlling(slave_inside, size.get("width", 0), size.get("height", 0))
        process.set_rlimits(proc)
        env = process.process_env(proc)
        path = process.lookup_executable(proc["args"][0], env)
        nnp = bool(proc.get("noNewPrivileges"))
        if not nnp:
            process.load_seccomp(ctx.seccomp_program, ctx.seccomp_flags)
        process.set_identity(proc)
        process.enter_cwd(proc)
        if nnp:
            process.set_no_new_privs()
        send(ctx.report_w, ready=True)
        os.close(ctx.report_w)
        os.close(ctx.ack_r)
        ready = True
        _wait_for_start(fifo)
        if (spec.get("hooks") or {}).get("startContainer"):
            from dockyard.runtime import hooks

            hooks.run_hooks(spec, "startContainer", _hook_state(ctx, "running"))
        if nnp:
            process.load_seccomp(ctx.seccomp_program, ctx.seccomp_flags)
        process.execute(path, proc["args"], env)
    except BaseException as exc:
        if not ready:
            try:
                _report_error(ctx.report_w, exc)
            except OSError:
                pass
        else:
            try:
                os.write(2, f"{exc}\n".encode())
            except OSError:
                pass
    os._exit(1)


def _hook_state(ctx: InitContext, status: str) -> dict[str, Any]:
    return {
        "ociVersion": ctx.spec.get("ociVersion", "1.0.2"),
        "id": ctx.cid,
        "status": status,
        "pid": ctx.host_pid,
        "bundle": ctx.bundle,
    }


def _wait_for_start(fifo: int) -> None:
    """Block until ``start`` writes a byte into the exec fifo; EOF alone means give up."""
    poller = select.poll()
    poller.register(fifo, select.POLLIN)
    while True:
        poller.poll()
        data = os.read(fifo, 1)
        if data:
            os.close(fifo)
            return
        os._exit(1)
