"""The shim driven directly through ShimClient: real containers from a busybox bundle, both runtimes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dockyard.containers import shim_client
from dockyard.containers.shim_client import ExitStatus, ShimClient, ShimConfig
from dockyard.runtime.errors import OCIRuntimeError

CGROUP_PARENT = f"dockyard-shimtest-{uuid.uuid4().hex[:6]}"
RUNTIMES = ["dockyard", "runc"]


def _config(rootfs: str, args: list[str], cid: str, tty: bool) -> dict[str, Any]:
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "shimbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
            "cgroupsPath": f"/{CGROUP_PARENT}/{cid}",
        },
    }


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("shimfs") / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    for d in ("proc", "dev", "tmp", "etc"):
        (root / d).mkdir()
    return str(root)


class Harness:
    """Launches containers under one fake data root and removes every trace afterwards."""

    def __init__(self, data_root: str, rootfs: str, runtime: str) -> None:
        self.data_root = data_root
        self.rootfs = rootfs
        self.runtime = runtime
        self.cfgs: list[ShimConfig] = []

    def config(
        self, args: list[str], tty: bool = False, open_stdin: bool = False, stdin_once: bool = False, **log: Any
    ) -> ShimConfig:
        cid = uuid.uuid4().hex
        state = os.path.join(self.data_root, "containers", cid)
        os.makedirs(state)
        with open(os.path.join(state, "config.json"), "w") as fh:
            json.dump(_config(self.rootfs, args, cid, tty), fh)
        cfg = ShimConfig(
            container_id=cid,
            bundle=state,
            state_dir=state,
            runtime=self.runtime,
            runtime_root=os.path.join(self.data_root, "runtime", self.runtime),
            tty=tty,
            open_stdin=open_stdin,
            stdin_once=stdin_once,
            log_driver=log.get("driver", "json-file"),
            log_opts=log.get("opts", {}),
            log_path=os.path.join(state, "log.json"),
        )
        self.cfgs.append(cfg)
        return cfg

    def cleanup(self) -> None:
        for cfg in self.cfgs:
            pid = shim_client.shim_pid(cfg.state_dir)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            from dockyard.runtime.api import get_runtime

            try:
                get_runtime(self.runtime, cfg.runtime_root).delete(cfg.container_id, force=True)
            except OCIRuntimeError:
                pass
        shim_client.stop_launchers()
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            parent = os.path.join("/sys/fs/cgroup", hierarchy, CGROUP_PARENT)
            if os.path.isdir(parent):
                for sub in os.listdir(parent):
                    if os.path.isdir(os.path.join(parent, sub)):
                        os.rmdir(os.path.join(parent, sub))
                os.rmdir(parent)


@pytest.fixture(params=RUNTIMES)
def harness(request: pytest.FixtureRequest, tmp_path: Any, rootfs: str) -> Iterator[Harness]:
    h = Harness(str(tmp_path / "root"), rootfs, request.param)
    try:
        yield h
    finally:
        h.cleanup()
    assert wait_for(lambda: not _procs_of(h.data_root)), _procs_of(h.data_root)


def _procs_of(data_root: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if data_root.encode() in fh.read():
                        out.append(int(pid))
            except OSError:
                pass
    return out


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def demux(data: bytes) -> tuple[bytes, bytes]:
    out = {1: b"", 2: b""}
    while data:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        out[stream] += data[8 : 8 + size]
        data = data[8 + size :]
    return out[1], out[2]


def exit_of(client: ShimClient, timeout: float = 10.0) -> ExitStatus:
    got: list[ExitStatus] = []
    done = threading.Event()
    client.on_exit(lambda st: (got.append(st), done.set()))
    assert done.wait(timeout), "container did not exit"
    return got[0]


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_output_reaches_log_and_early_attach(harness: Harness) -> None:
    cfg = harness.config(["sh", "-c", "echo out; echo err >&2; exit 3"])
    pending = shim_client.register_attach(cfg.container_id, False, True, True)
    client = ShimClient.launch(cfg)
    assert client.pid > 0
    sock = pending.wait(5)
    assert sock is not None
    out, err = demux(read_all(sock))
    assert (out, err) == (b"out\n", b"err\n")
    status = exit_of(client)
    assert status.exit_code == 3 and not status.oom_killed
    assert status.finished_at.endswith("Z")
    lines = [json.loads(line) for line in open(cfg.log_path)]
    assert sorted((rec["stream"], rec["log"]) for rec in lines) == [("stderr", "err\n"), ("stdout", "out\n")]
    with open(os.path.join(cfg.state_dir, "exit.json")) as fh:
        assert json.load(fh)["exit_code"] == 3
    assert wait_for(lambda: not os.path.exists(os.path.join(cfg.state_dir, "shim.sock")))


def test_stdin_once_closes_on_detach(harness: Harness) -> None:
    cfg = harness.config(["sh", "-c", "cat; echo done"], open_stdin=True, stdin_once=True)
    client = ShimClient.launch(cfg)
    sock = client.attach(True, True, True)
    sock.sendall(b"hello\n")
    sock.shutdown(socket.SHUT_WR)
    out, _ = demux(read_all(sock))
    assert out == b"hello\ndone\n"
    assert exit_of(client).exit_code == 0


def test_signal_exit_codes(harness: Harness) -> None:
    cfg = harness.config(["sleep", "60"])
    client = ShimClient.launch(cfg)
    client.signal(signal.SIGKILL)
    assert exit_of(client).exit_code == 137
    cfg = harness.config(["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 0.05; done"])
    client = ShimClient.launch(cfg)
    time.sleep(0.2)
    client.signal(signal.SIGTERM)
    assert exit_of(client).exit_code == 143


def test_tty_resize_and_exec(harness: Harness) -> None:
    cfg = harness.config(["sh"], tty=True, open_stdin=True)
    pending = shim_client.register_attach(cfg.container_id, True, True, True)
    client = ShimClient.launch(cfg)
    sock = pending.wait(5)
    assert sock is not None
    client.resize(33, 111)
    sock.sendall(b"stty size\n")
    buf = b""
    sock.settimeout(5)
    while b"33 111" not in buf:
        buf += sock.recv(4096)
    proc = {"args": ["sh", "-c", "echo x; hostname >&2; exit 4"], "env": ["PATH=/bin"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}}
    pid, stream = client.exec("e1", proc, tty=False, stdin=False, stdout=True, stderr=True)
    assert pid > 0
    assert demux(read_all(stream)) == (b"x\n", b"shimbox\n")
    assert client.wait_exec("e1", 5) == 4
    proc["args"] = ["cat"]
    _, stream = client.exec("e2", proc, tty=False, stdin=True, stdout=True, stderr=True)
    stream.sendall(b"abc")
    stream.shutdown(socket.SHUT_WR)
    assert demux(read_all(stream)) == (b"abc", b"")
    assert client.wait_exec("e2", 5) == 0
    proc["args"] = ["tty"]
    _, stream = client.exec("e3", proc, tty=True, stdin=False, stdout=True, stderr=True)
    assert read_all(stream).startswith(b"/dev/pts/")
    client.signal(signal.SIGKILL)
    assert exit_of(client).exit_code == 137


def test_launch_failure_leaves_nothing(harness: Harness) -> None:
    cfg = harness.config(["no-such-binary"])
    with pytest.raises(OCIRuntimeError) as info:
        ShimClient.launch(cfg)
    assert info.value.kind == "not_found"
    assert "no-such-binary" in str(info.value)
    assert not os.path.exists(os.path.join(cfg.state_dir, "shim.sock"))
    assert not os.listdir(cfg.runtime_root) or cfg.container_id not in os.listdir(cfg.runtime_root)


def test_survives_daemon_loss_and_reconnects(harness: Harness) -> None:
    cfg = harness.config(["sh", "-c", "while true; do sleep 0.05; done"])
    client = ShimClient.launch(cfg)
    pid = client.pid
    shim_client.stop_launchers()  # what a kill -9 of the daemon does to the launcher
    time.sleep(0.1)
    os.kill(pid, 0)
    again = ShimClient.connect(cfg)
    assert again is not None and again.pid == pid
    again.signal(signal.SIGKILL)
    assert exit_of(again).exit_code == 137
    # an exit nobody was listening to is found in exit.json
    cfg2 = harness.config(["sh", "-c", "sleep 0.2; exit 7"])
    ShimClient.launch(cfg2)
    assert wait_for(lambda: os.path.exists(os.path.join(cfg2.state_dir, "exit.json")), 10)
    assert wait_for(lambda: shim_client.shim_pid(cfg2.state_dir) is None)
    late = ShimClient.connect(cfg2)
    assert late is not None
    assert exit_of(late).exit_code == 7
    shutil.rmtree(cfg2.state_dir)
    assert ShimClient.connect(cfg2) is None


def test_log_rotation(harness: Harness) -> None:
    cfg = harness.config(
        ["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"],
        opts={"max-size": "2k", "max-file": "3"},
    )
    client = ShimClient.launch(cfg)
    assert exit_of(client).exit_code == 0
    files = sorted(f for f in os.listdir(cfg.state_dir) if f.startswith("log.json"))
    assert files == ["log.json", "log.json.1", "log.json.2"]
    for name in files:
        assert os.path.getsize(os.path.join(cfg.state_dir, name)) <= 2048
    last = [json.loads(x)["log"] for x in open(cfg.log_path)]
    assert last[-1] == "line-299\n"


def test_container_starts_with_default_signal_dispositions(harness: Harness) -> None:
    cfg = harness.config(["sh", "-c", "exec grep -E '^Sig(Ign|Blk)' /proc/self/status"])
    pending = shim_client.register_attach(cfg.container_id, False, True, True)
    client = ShimClient.launch(cfg)
    sock = pending.wait(5)
    assert sock is not None
    out, _ = demux(read_all(sock))
    assert exit_of(client).exit_code == 0
    fields = dict(line.split(":") for line in out.decode().splitlines())
    assert int(fields["SigIgn"], 16) == 0 and int(fields["SigBlk"], 16) == 0, fields


def test_lost_shim_is_reported_and_its_container_removed(harness: Harness) -> None:
    cfg = harness.config(["sleep", "60"])
    client = ShimClient.launch(cfg)
    pid = shim_client.shim_pid(cfg.state_dir)
    assert pid
    os.kill(pid, signal.SIGKILL)
    assert exit_of(client).exit_code == 255
    assert wait_for(lambda: not os.path.exists(f"/proc/{client.pid}"))


def test_attach_with_logs_replays_first(harness: Harness) -> None:
    cfg = harness.config(["sh", "-c", "echo early; read x; echo got-$x"], open_stdin=True)
    client = ShimClient.launch(cfg)
    assert wait_for(lambda: os.path.exists(cfg.log_path) and os.path.getsize(cfg.log_path) > 0)
    sock = client.attach(True, True, True, logs=True)
    sock.sendall(b"late\n")
    out, _ = demux(read_all(sock))
    assert out == b"early\ngot-late\n"
    assert exit_of(client).exit_code == 0


def test_native_monitor_serves_the_init_and_exec_shims_the_execs(harness: Harness) -> None:
    cfg = harness.config(["sleep", "60"])
    client = ShimClient.launch(cfg)
    pid = shim_client.shim_pid(cfg.state_dir)
    assert pid
    # the shim that started the container has become the C monitor, same pid
    assert wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("/dockyard-monitor"))
    proc = {"args": ["sh", "-c", "echo $$; exit 5"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    exec_pid, stream = client.exec("late-waiter", proc, tty=False, stdin=False, stdout=True, stderr=True)
    assert exec_pid > 0
    out, _ = demux(read_all(stream))
    assert out.strip().isdigit()
    # the exec shim leaves with its process, and a wait that comes afterwards still gets the code
    sock = os.path.join(cfg.state_dir, "exec-late-waiter.sock")
    assert wait_for(lambda: not os.path.exists(sock))
    assert client.wait_exec("late-waiter", 5) == 5
    assert not [n for n in os.listdir(cfg.state_dir) if n.startswith("exec-")]  # nothing piles up per exec
    with pytest.raises(OCIRuntimeError):
        client.resize_exec("late-waiter", 10, 10)
    client.signal(signal.SIGKILL)
    assert exit_of(client).exit_code == 137
    with pytest.raises(OCIRuntimeError, match="not running"):
        client.signal(signal.SIGKILL)


@pytest.mark.parametrize("server", ["monitor", "exec"])
def test_protocol_commands_against_the_monitor_and_an_exec_shim(harness: Harness, server: str) -> None:
    """attach/wait/resize/status spoken raw (protocol.py's framing) to the C monitor and to an exec shim."""
    from dockyard.runtime.shim import protocol

    cfg = harness.config(["sh"], tty=True, open_stdin=True)
    pending = shim_client.register_attach(cfg.container_id, True, True, True)
    client = ShimClient.launch(cfg)
    init_stream = pending.wait(5)
    assert init_stream is not None
    if server == "monitor":
        sock_name, pid = protocol.SOCKET_NAME, client.pid
        stream = init_stream
    else:
        proc = {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "terminal": True}
        pid, stream = client.exec("proto1", proc, tty=True, stdin=True, stdout=True, stderr=True)
        sock_name = protocol.exec_names("proto1")[0]

    def call(cmd: dict[str, Any]) -> dict[str, Any] | None:
        s = protocol.connect(cfg.state_dir, sock_name)
        try:
            return protocol.request(s, cmd)
        finally:
            s.close()

    assert call({"cmd": protocol.STATUS}) == {"ok": True, "pid": pid, "running": True,
                                               **({"execs": {}} if server == "monitor" else {})}
    assert call({"cmd": protocol.RESIZE, "h": 21, "w": 77}) == {"ok": True}
    stream.sendall(b"stty size\n")
    seen, stream_deadline = b"", time.monotonic() + 10
    stream.settimeout(10)
    while b"21 77" not in seen and time.monotonic() < stream_deadline:
        seen += stream.recv(4096)
    assert b"21 77" in seen
    reply = call({"cmd": protocol.ATTACH, "stdin": False, "stdout": True, "stderr": True})
    if protocol.ATTACH in protocol.SERVED_BY[server]:
        assert reply is not None and reply["ok"] is True and reply["log_size"] >= 0
    else:
        assert reply == {"ok": False, "error": "unknown command 'attach'"}
    assert call({"cmd": "nonsense"}) == {"ok": False, "error": "unknown command 'nonsense'"}
    waiter = protocol.connect(cfg.state_dir, sock_name)
    waiter.sendall(protocol.encode({"cmd": protocol.WAIT}))  # answered only once the process exits
    stream.sendall(b"exit 7\n")
    done = json.loads(protocol.read_line(waiter))
    waiter.close()
    assert done["exit_code"] == 7
    if server == "monitor":
        assert done["oom_killed"] is False and done["finished_at"]
        assert exit_of(client).exit_code == 7
    else:
        assert client.wait_exec("proto1", 5) == 7
        client.signal(signal.SIGKILL)
        assert exit_of(client).exit_code == 137
