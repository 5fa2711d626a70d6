"""The runtime interface the engine's shim uses: in-process, or runc/crun via their CLI.

``get_runtime("dockyard", root)`` runs everything in the calling process
(no interpreter start per step).  The init it creates is reparented to the
caller's subreaper, so a shim that set PR_SET_CHILD_SUBREAPER reaps it.
``get_runtime("runc"|"crun", root)`` drives those binaries with the same
methods and the same ``OCIRuntimeError`` kinds, classified from their
messages.
"""

from __future__ import annotations

import json
import os

from dockyard.runtime.errors import OCIRuntimeError

# typing and subprocess (re, enum, threading...) would sit in the launcher's heap, shared and partly
# dirtied by every shim; only the runc/crun driver needs subprocess
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

Stdio = tuple[int, int, int]


if TYPE_CHECKING:

    class OCIRuntime(Protocol):
        name: str

        def create(self, cid: str, bundle: str, *, stdio: Stdio | None = None,
                   console_socket: str | None = None, pid_file: str | None = None) -> int: ...
        def start(self, cid: str) -> None: ...
        def state(self, cid: str) -> dict[str, Any]: ...
        def kill(self, cid: str, sig: int, all: bool = False) -> None: ...
        def delete(self, cid: str, force: bool = False) -> None: ...
        def exec(self, cid: str, process: dict[str, Any], *, stdio: Stdio | None = None,
                 console_socket: str | None = None, pid_file: str | None = None) -> int: ...
        def pause(self, cid: str) -> None: ...
        def resume(self, cid: str) -> None: ...
        def update(self, cid: str, resources: dict[str, Any]) -> None: ...
        def ps(self, cid: str) -> list[int]: ...


class DockyardRuntime:
    """The Python runtime, called in-process."""

    name = "dockyard"

    def __init__(self, root: str) -> None:
        self.root = root

    def create(self, cid: str, bundle: str, *, stdio: Stdio | None = None,
               console_socket: str | None = None, pid_file: str | None = None) -> int:
        from dockyard.runtime.create import create

        return create(self.root, cid, bundle, stdio=stdio, console_socket=console_socket, pid_file=pid_file)

    def start(self, cid: str) -> None:
        from dockyard.runtime import lifecycle

        lifecycle.start(self.root, cid)

    def state(self, cid: str) -> dict[str, Any]:
        from dockyard.runtime import lifecycle

        return lifecycle.state(self.root, cid)

    def kill(self, cid: str, sig: int, all: bool = False) -> None:
        from dockyard.runtime import lifecycle

        lifecycle.kill(self.root, cid, sig, all)

    def delete(self, cid: str, force: bool = False) -> None:
        from dockyard.runtime import lifecycle

        lifecycle.delete(self.root, cid, force)

    def exec(self, cid: str, process: dict[str, Any], *, stdio: Stdio | None = None,
             console_socket: str | None = None, pid_file: str | None = None) -> int:
        from dockyard.runtime.exec import exec_process

        return exec_process(self.root, cid, process, stdio=stdio, console_socket=console_socket, pid_file=pid_file)

    def pause(self, cid: str) -> None:
        from dockyard.runtime import lifecycle

        lifecycle.pause(self.root, cid)

    def resume(self, cid: str) -> None:
        from dockyard.runtime import lifecycle

        lifecycle.resume(self.root, cid)

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        from dockyard.runtime import lifecycle

        lifecycle.update(self.root, cid, resources)

    def ps(self, cid: str) -> list[int]:
        from dockyard.runtime import lifecycle

        return lifecycle.ps(self.root, cid)

    def oom_kill_count(self, cid: str) -> int:
        """Not in the OCI interface: how many OOM kills the container's cgroup saw."""
        from dockyard.runtime import lifecycle

        return lifecycle.oom_kill_count(self.root, cid)


def classify(message: str) -> str:
    """Map a runtime's error text to an OCIRuntimeError kind (runc/crun wording)."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low and "exec" in low:
        return "not_found"
    if "permission denied" in low:
        return "permission"
    if "does not exist" in low or "not found" in low and "container" in low:
        return "not_exist"
    if "already exists" in low or "id exists" in low:
        return "exists"
    if "not running" in low or "not stopped" in low or "has stopped" in low or "paused" in low:
        return "state"
    return "other"


class CLIRuntime:
    """runc or crun through their command line, with ``--root``."""

    def __init__(self, binary: str, root: str) -> None:
        self.name = os.path.basename(binary)
        self.binary = binary
        self.root = root

    def _run(self, args: list[str], stdio: Stdio | None = None, stdin: bytes | None = None,
             pass_fds: tuple[int, ...] = ()) -> str:
        import subprocess

        kwargs: dict[str, Any] = {}
        if stdio == (-1, -1, -1):  # the container must not inherit pipes we would wait on
            kwargs = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        elif stdio is not None:
            kwargs = {"stdin": stdio[0], "stdout": stdio[1], "stderr": stdio[2]}
        log = os.path.join(self.root, f".log-{os.getpid()}")
        os.makedirs(self.root, exist_ok=True)
        cmd = [self.binary, "--root", self.root, "--log", log, "--log-format", "json", *args]
        try:
            if stdio is not None:
                proc = subprocess.run(cmd, check=False, pass_fds=pass_fds, **kwargs)
                out = ""
            else:
                res = subprocess.run(cmd, check=False, capture_output=True, input=stdin)
                proc = res
                out = res.stdout.decode()
            if proc.returncode != 0:
                message = self._last_error(log) or (
                    getattr(proc, "stderr", b"") or b"").decode(errors="replace").strip() or f"{self.name} failed"
                raise OCIRuntimeError(message, classify(message))
            return out
        finally:
            try:
                os.unlink(log)
            except FileNotFoundError:
                pass

    @staticmethod
    def _last_error(log: str) -> str:
        try:
            with open(log) as fh:
                lines = fh.read().splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("error", "fatal"):
                return str(entry.get("msg", ""))
        return ""

    def create(self, cid: str, bundle: str, *, stdio: Stdio | None = None,
               console_socket: str | None = None, pid_file: str | None = None) -> int:
        pid_path = pid_file or os.path.join(self.root, f".{cid}.pid")
        args = ["create", "--bundle", bundle, "--pid-file", pid_path]
        if console_socket:
            args += ["--console-socket", console_socket]
        self._run([*args, cid], stdio=stdio or (-1, -1, -1))
        with open(pid_path) as fh:
            pid = int(fh.read().strip())
        if not pid_file:
            os.unlink(pid_path)
        return pid

    def start(self, cid: str) -> None:
        self._run(["start", cid])

    def state(self, cid: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._run(["state", cid]))
        return data

    def kill(self, cid: str, sig: int, all: bool = False) -> None:
        self._run(["kill", *(["--all"] if all else []), cid, str(sig)])

    def delete(self, cid: str, force: bool = False) -> None:
        self._run(["delete", *(["--force"] if force else []), cid])

    def exec(self, cid: str, process: dict[str, Any], *, stdio: Stdio | None = None,
             console_socket: str | None = None, pid_file: str | None = None) -> int:
        import tempfile

        pid_path = pid_file or os.path.join(self.root, f".{cid}.exec-{os.getpid()}.pid")
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.root, delete=False) as fh:
            fh.write(json.dumps(process))
        try:
            args = ["exec", "--detach", "--process", fh.name, "--pid-file", pid_path]
            if console_socket:
                args += ["--console-socket", console_socket]
            self._run([*args, cid], stdio=stdio or (-1, -1, -1))
        finally:
            os.unlink(fh.name)
        with open(pid_path) as pf:
            pid = int(pf.read().strip())
        if not pid_file:
            os.unlink(pid_path)
        return pid

    def pause(self, cid: str) -> None:
        self._run(["pause", cid])

    def resume(self, cid: str) -> None:
        self._run(["resume", cid])

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        self._run(["update", "--resources", "-", cid], stdin=json.dumps(resources).encode())

    def ps(self, cid: str) -> list[int]:
        return [int(p) for p in json.loads(self._run(["ps", "--format", "json", cid]) or "[]")]


def get_runtime(name: str, root: str) -> OCIRuntime:
    """"dockyard" -> in-process runtime; "runc"/"crun" (or a path to either) -> CLI runtime."""
    if name == "dockyard":
        return DockyardRuntime(root)
    import shutil

    binary = name if os.path.isabs(name) else shutil.which(name)
    if not binary:
        raise OCIRuntimeError(f"OCI runtime {name!r} not found in $PATH", "not_found")
    return CLIRuntime(binary, root)
