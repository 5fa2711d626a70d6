"""``create``: prepare state and cgroup, fork the init, relay its setup result.

On any failure everything made so far is undone (init killed, cgroup and
state directory removed) before the error propagates, so a bad bundle
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal

from dockyard.runtime import state as st
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.init import InitContext, stage1
from dockyard.runtime.spec import load_bundle
from dockyard.runtime.state import wait_gone
from dockyard.util.placement import spread_new_dirs

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any


def _cgroup_resources(spec: dict[str, Any]) -> dict[str, Any]:
    from dockyard.runtime.devices import device_rules

    resources = dict((spec.get("linux") or {}).get("resources") or {})
    resources["devices"] = device_rules(spec)
    return resources


_SECCOMP_LAYOUT = "binary-tree"  # programs cached before the layout changed are compiled again


def compiled_seccomp(root: str, seccomp_cfg: dict[str, Any]) -> tuple[bytes, int]:
    """The BPF program for a profile, cached under the root: libseccomp takes ~10 ms per compile."""
    from dockyard.sys.linux import SECCOMP_FILTER_FLAGS

    uname = os.uname()
    canonical = json.dumps([seccomp_cfg, uname.release, uname.machine, _SECCOMP_LAYOUT], sort_keys=True).encode()
    path = os.path.join(root, ".seccomp", _sha256(canonical).hexdigest() + ".bpf")
    wanted = seccomp_cfg.get("flags") or []
    if all(f in SECCOMP_FILTER_FLAGS for f in wanted):
        try:
            with open(path, "rb") as fh:
                return fh.read(), sum(SECCOMP_FILTER_FLAGS[f] for f in set(wanted))
        except FileNotFoundError:
            pass
    from dockyard.runtime import seccomp  # the compiler (libseccomp) only on a cache miss

    try:
        flags = seccomp.filter_flags(seccomp_cfg)
        program = seccomp.compile_filter(seccomp_cfg)
    except (seccomp.SeccompError, OSError, ValueError, KeyError, TypeError) as exc:
        raise OCIRuntimeError(f"invalid seccomp profile: {exc}", "invalid") from None
    try:
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(program)
        os.rename(tmp, path)
    except OSError:
        pass  # the cache is only an optimisation
    return program, flags


def _sha256(data: bytes) -> Any:
    """sha256 from the interpreter's built-in module: hashlib would load OpenSSL first (~4 ms on each start)."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # Python 3.12+ calls it _sha2
        try:
            from _sha2 import sha256  # type: ignore[import-not-found, no-redef, unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment, unused-ignore]
    return sha256(data)


def _read_messages(fd: int) -> Any:
    """Yield JSON messages from the init's report pipe until EOF."""
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)


def create(
    root: str,
    cid: str,
    bundle: str,
    *,
    stdio: tuple[int, int, int] | None = None,
    console_socket: str | None = None,
    pid_file: str | None = None,
) -> int:
    """Create container ``cid`` from ``bundle``; return the init's host pid."""
    directory = st.container_dir(root, cid)
    if os.path.exists(directory):
        raise OCIRuntimeError(f"container with id exists: {cid}", "exists")
    bundle = os.path.abspath(bundle)
    spec = load_bundle(bundle)
    proc = spec.get("process")
    if not proc:
        raise OCIRuntimeError("invalid config: process is required to create a container", "invalid")
    if proc.get("terminal") and not console_socket:
        raise OCIRuntimeError("cannot allocate tty if runtime will detach without setting console socket", "invalid")
    if not proc.get("terminal") and console_socket:
        raise OCIRuntimeError("cannot use console socket if runtime will not detach or allocate tty", "invalid")
    hooks = spec.get("hooks") or {}
    if any(hooks.get(n) for n in ("createContainer", "startContainer", "prestart", "createRuntime")):
        from dockyard.runtime import hooks as _preloaded  # noqa: F401  (needed after pivot_root)
    seccomp_cfg = (spec.get("linux") or {}).get("seccomp")
    program: bytes | None = None
    flags = 0
    if seccomp_cfg:
        program, flags = compiled_seccomp(root, seccomp_cfg)

    from dockyard.runtime.cgroups import CgroupError, open_cgroup

    os.makedirs(root, 0o711, exist_ok=True)
    spread_new_dirs(root)  # each container's state dir in a lightly used block group (util/placement.py)
    try:
        os.mkdir(directory, 0o711)
    except FileExistsError:
        raise OCIRuntimeError(f"container with id exists: {cid}", "exists") from None
    cgroups_path = (spec.get("linux") or {}).get("cgroupsPath")
    cgroup = None
    init_pid = 0
    sock = None
    try:
        fifo_path = os.path.join(directory, st.FIFO_NAME)
        os.mkfifo(fifo_path, 0o622)
        try:
            cgroup = open_cgroup(cgroups_path, cid)
            cgroup.create()
            cgroup.apply(_cgroup_resources(spec))
        except (CgroupError, OSError, ValueError, KeyError, TypeError) as exc:
            raise OCIRuntimeError(f"cannot set up the cgroup: {exc}", "other") from None
        binds: list[tuple[str, str]] = []
        if any(m.get("type") == "cgroup" for m in spec.get("mounts") or []):
            binds = [(d, name) for name, d in cgroup.mount_sources().items()]
        if console_socket:
            from dockyard.runtime.console import connect_console_socket

            try:
                sock = connect_console_socket(console_socket)
            except OSError as exc:
                raise OCIRuntimeError(f"cannot connect to console socket {console_socket}: {exc.strerror}") from None
        report_r, report_w = os.pipe()
        ack_r, ack_w = os.pipe()
        ctx = InitContext(
            spec=spec,
            cid=cid,
            fifo_path=fifo_path,
            report_w=report_w,
            ack_r=ack_r,
            cgroup=cgroup,
            cgroup_binds=binds,
            stdio=stdio,
            console=sock,
            seccomp_program=program,
            seccomp_flags=flags,
            wants_runtime_hooks=bool(hooks.get("prestart") or hooks.get("createRuntime")),
            bundle=bundle,
        )
        child = os.fork()
        if child == 0:
            stage1(ctx)  # never returns
        os.close(report_w)
        os.close(ack_r)
        if sock is not None:
            sock.close()
            sock = None
        try:
            init_pid = _follow_init(report_r, ack_w, child, spec, cid, bundle,
                                    None if ctx.join_cgroup_early else cgroup)
        finally:
            os.close(report_r)
            os.close(ack_w)
        stored = {
            "id": cid,
            "pid": init_pid,
            "init_start_time": st.proc_start_time(init_pid),
            "bundle": bundle,
            "rootfs": spec["root"]["path"],
            "created": st.utc_now(),
            "owner": "root" if os.geteuid() == 0 else str(os.geteuid()),
            "annotations": spec.get("annotations") or {},
            "cgroups_path": cgroups_path,
            "hooks": {k: hooks.get(k) for k in ("poststart", "poststop") if hooks.get(k)},
            "process": proc,
            "seccomp": seccomp_cfg,
        }
        adj = (spec.get("process") or {}).get("oomScoreAdj")
        if adj is not None:
            with open(f"/proc/{init_pid}/oom_score_adj", "w") as fh:
                fh.write(str(adj))
        st.write_state(root, cid, stored)
        if pid_file:
            tmp = pid_file + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(str(init_pid))
            os.rename(tmp, pid_file)
        return init_pid
    except BaseException:
        if sock is not None:
            sock.close()
        if init_pid:
            try:
                os.kill(init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_gone(init_pid)
        if cgroup is not None:
            try:
                cgroup.destroy(kill=True)
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
        st.remove_dir(directory)
        raise


def _follow_init(report_r: int, ack_w: int, child: int, spec: dict[str, Any], cid: str, bundle: str,
                 cgroup: Any) -> int:
    """Relay the init's messages; run prestart/createRuntime hooks when it asks; return its pid.

    Stage 1 and the init write to the same pipe, so "ready" may come before the pid when stage 1 is
    descheduled between its fork and its report (a loaded machine): the result needs both.
    """
    init_pid = 0
    join_error: OCIRuntimeError | None = None
    hooks_pending = False
    error: OCIRuntimeError | None = None
    ready = False
    for msg in _read_messages(report_r):
        if "pid" in msg:
            init_pid = msg["pid"]
            os.waitpid(child, 0)
            child = 0
            if cgroup is not None:
                try:
                    cgroup.add_pid(init_pid)
                except Exception as exc:  # noqa: BLE001 - the init may have died; its own message wins
                    join_error = OCIRuntimeError(f"cannot move the container init into its cgroup: {exc}")
        elif "hooks" in msg:
            hooks_pending = True
        elif "error" in msg:
            error = OCIRuntimeError(msg["error"], msg.get("kind", "other"))
            break
        elif "ready" in msg:
            ready = True
        if ready and init_pid:
            break
        if hooks_pending and init_pid:
            hooks_pending = False
            from dockyard.runtime.hooks import run_hooks

            hook_state = {"ociVersion": spec.get("ociVersion"), "id": cid, "status": "creating",
                          "pid": init_pid, "bundle": bundle}
            try:
                run_hooks(spec, "prestart", hook_state)
                run_hooks(spec, "createRuntime", hook_state)
            except OCIRuntimeError as exc:
                os.write(ack_w, b"0")
                error = exc
                break
            os.write(ack_w, b"1")
    if child:
        os.waitpid(child, 0)
    error = error or join_error
    if error is not None:
        _raise_with_pid(error, init_pid)
    if not ready or not init_pid:
        _raise_with_pid(OCIRuntimeError("container init exited before reporting its setup", "other"), init_pid)
    return init_pid


def _raise_with_pid(error: OCIRuntimeError, init_pid: int) -> None:
    """Kill the half-made init before the caller's cleanup looks at the cgroup."""
    if init_pid:
        try:
            os.kill(init_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_gone(init_pid)
    raise error
