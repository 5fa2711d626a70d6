"""One function per ``dockyard runtime`` command: options in, exit status out."""

from __future__ import annotations

import json
import os
import signal
import sys

from dockyard.runtime import lifecycle
from dockyard.runtime import state as st
from dockyard.runtime.errors import OCIRuntimeError

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

    Opts = dict[str, Any]


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGWINCH)


def _id(pos: list[str], command: str) -> str:
    if not pos:
        raise OCIRuntimeError(f'"{command}" requires a container id', "invalid")
    return pos[0]


def cmd_create(root: str, opts: Opts, pos: list[str]) -> int:
    from dockyard.runtime.create import create

    create(root, _id(pos, "create"), opts.get("bundle", "."), console_socket=opts.get("console-socket"),
           pid_file=opts.get("pid-file"))
    return 0


def cmd_start(root: str, opts: Opts, pos: list[str]) -> int:
    lifecycle.start(root, _id(pos, "start"))
    return 0


def cmd_state(root: str, opts: Opts, pos: list[str]) -> int:
    print(json.dumps(lifecycle.state(root, _id(pos, "state")), indent=2))
    return 0


def cmd_kill(root: str, opts: Opts, pos: list[str]) -> int:
    sig = lifecycle.parse_signal(pos[1] if len(pos) > 1 else "SIGTERM")
    lifecycle.kill(root, _id(pos, "kill"), sig, bool(opts.get("all")))
    return 0


def cmd_delete(root: str, opts: Opts, pos: list[str]) -> int:
    lifecycle.delete(root, _id(pos, "delete"), bool(opts.get("force")))
    return 0


def cmd_pause(root: str, opts: Opts, pos: list[str]) -> int:
    lifecycle.pause(root, _id(pos, "pause"))
    return 0


def cmd_resume(root: str, opts: Opts, pos: list[str]) -> int:
    lifecycle.resume(root, _id(pos, "resume"))
    return 0


def cmd_ps(root: str, opts: Opts, pos: list[str]) -> int:
    pids = lifecycle.ps(root, _id(pos, "ps"))
    if opts.get("format") == "json":
        print(json.dumps(pids))
        return 0
    print(f"{'PID':>8}  CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        print(f"{pid:>8}  {cmd}")
    return 0


def cmd_update(root: str, opts: Opts, pos: list[str]) -> int:
    source = opts.get("resources")
    if not source:
        raise OCIRuntimeError("update needs --resources FILE (or - for stdin)", "invalid")
    try:
        text = sys.stdin.read() if source == "-" else open(source).read()
        resources = json.loads(text)
    except (OSError, ValueError) as exc:
        raise OCIRuntimeError(f"cannot read resources from {source}: {exc}", "invalid") from None
    lifecycle.update(root, _id(pos, "update"), resources)
    return 0


def cmd_list(root: str, opts: Opts, pos: list[str]) -> int:
    states = []
    for cid in st.list_ids(root):
        try:
            states.append(lifecycle.state(root, cid))
        except OCIRuntimeError:
            continue
    if opts.get("quiet"):
        for s in states:
            print(s["id"])
    elif opts.get("format") == "json":
        print(json.dumps(states))
    else:
        print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED':<32}OWNER")
        for s in states:
            print(f"{s['id']:<20}{s['pid']:<10}{s['status']:<10}{s['bundle']:<40}{s['created']:<32}{s['owner']}")
    return 0


def cmd_features(root: str, opts: Opts, pos: list[str]) -> int:
    from dockyard.runtime.features import features

    print(json.dumps(features(), indent=2))
    return 0


def _wait_exit(pid: int) -> int:
    """Wait for our (subreaped) child ``pid`` forwarding signals; shell-style exit status."""

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 255
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def cmd_run(root: str, opts: Opts, pos: list[str]) -> int:
    from dockyard.runtime.create import create
    from dockyard.sys.linux import set_child_subreaper

    cid = _id(pos, "run")
    detach = bool(opts.get("detach"))
    if not detach:
        set_child_subreaper()
    pid = create(root, cid, opts.get("bundle", "."), console_socket=opts.get("console-socket"),
                 pid_file=opts.get("pid-file"))
    try:
        lifecycle.start(root, cid)
    except OCIRuntimeError:
        lifecycle.delete(root, cid, force=True)
        raise
    if detach:
        return 0
    code = _wait_exit(pid)
    if not opts.get("keep"):
        lifecycle.delete(root, cid, force=True)
    return code


def _process_from_cli(root: str, cid: str, opts: Opts, pos: list[str]) -> dict[str, Any]:
    """An OCI process: --process FILE, or the container's process with the CLI's overrides."""
    if opts.get("process"):
        try:
            with open(opts["process"]) as fh:
                proc: dict[str, Any] = json.load(fh)
        except (OSError, ValueError) as exc:
            raise OCIRuntimeError(f"cannot read process {opts['process']}: {exc}", "invalid") from None
        return proc
    if len(pos) < 2:
        raise OCIRuntimeError("exec needs a command (or --process FILE)", "invalid")
    base = dict(st.read_state(root, cid).get("process") or {})
    proc = {
        "terminal": bool(opts.get("tty")),
        "args": pos[1:],
        "env": list(base.get("env") or []) + list(opts.get("env") or []),
        "cwd": opts.get("cwd") or base.get("cwd") or "/",
        "user": dict(base.get("user") or {"uid": 0, "gid": 0}),
        "capabilities": base.get("capabilities"),
        "noNewPrivileges": bool(base.get("noNewPrivileges") or opts.get("no-new-privs")),
        "rlimits": base.get("rlimits") or [],
    }
    if opts.get("user"):
        uid, _, gid = opts["user"].partition(":")
        proc["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if opts.get("additional-gids"):
        proc["user"]["additionalGids"] = [int(g) for g in opts["additional-gids"]]
    if opts.get("cap") and proc["capabilities"] is not None:
        caps = {k: list(v) for k, v in proc["capabilities"].items()}
        for name in opts["cap"]:
            for key in ("bounding", "effective", "permitted"):
                caps.setdefault(key, []).append(name)
        proc["capabilities"] = caps
    return proc


def cmd_exec(root: str, opts: Opts, pos: list[str]) -> int:
    from dockyard.runtime.exec import exec_process
    from dockyard.sys.linux import set_child_subreaper

    cid = _id(pos, "exec")
    proc = _process_from_cli(root, cid, opts, pos)
    detach = bool(opts.get("detach"))
    if not detach:
        set_child_subreaper()
    pid = exec_process(root, cid, proc, console_socket=opts.get("console-socket"), pid_file=opts.get("pid-file"))
    if detach:
        return 0
    return _wait_exit(pid)
