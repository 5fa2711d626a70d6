"""docker exec against the daemon: streams, -i/-t/-d/-e/-w/-u, exit codes, inspect, events, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pexpect
import pytest
from io_helpers import demux, hijack, read_until, run_detached

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def box(daemon: TestDaemon, busybox_image: str) -> Iterator[str]:
    cid = run_detached(daemon, "--name", "execbox", "busybox", "sleep", "300")
    yield cid
    daemon.docker("rm", "-f", cid)


def test_exit_codes_and_streams(daemon: TestDaemon, box: str) -> None:
    r = daemon.docker("exec", box, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = daemon.docker("exec", box, "no-such-command")
    assert r.returncode == 126  # docker's exec: 126 for a command it cannot start (run says 127)
    # dockerd 20.10 sends the start error inside the attached stream, which the CLI prints on stdout; dockyard
    # answers it before the upgrade, so the CLI prints it on stderr
    assert "executable file not found" in (r.stdout if daemon.reference else r.stderr)


def test_env_workdir_user(daemon: TestDaemon, box: str) -> None:
    r = daemon.docker("exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", box,
                      "sh", "-c", 'echo "$FOO $(pwd) $(id -u):$(id -g)"')
    assert (r.returncode, r.stdout) == (0, "bar /tmp 1000:1000\n"), r.stderr


def test_stdin_tty_detach(daemon: TestDaemon, box: str) -> None:
    r = daemon.docker("exec", "-i", box, "sh", "-c", "cat; echo end", input="piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\nend\n"), r.stderr
    client = daemon.client()
    try:
        container = client.containers.get(box)
        code, out = container.exec_run(["sh", "-c", "tty; exit 3"], tty=True)
        assert code == 3 and out.startswith(b"/dev/pts/")
        code, out = container.exec_run(["sh", "-c", "echo $((6*7))"], environment={"A": "1"})
        assert (code, out) == (0, b"42\n")
    finally:
        client.close()
    r = daemon.docker("exec", "-d", box, "sh", "-c", "echo detached > /tmp/flag")
    assert r.returncode == 0 and r.stdout == ""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = daemon.docker("exec", box, "cat", "/tmp/flag")
        if r.stdout == "detached\n":
            break
        time.sleep(0.05)
    assert r.stdout == "detached\n"


def test_raw_api_inspect_and_events(daemon: TestDaemon, box: str) -> None:
    since = time.time()
    status, body = daemon.api_json("POST", f"/containers/{box}/exec",
                                   {"Cmd": ["sh", "-c", "read x; echo got-$x; exit 4"], "AttachStdin": True,
                                    "AttachStdout": True, "AttachStderr": True})
    assert status == 201, body
    eid = body["Id"]
    status, info = daemon.api_json("GET", f"/exec/{eid}/json")
    assert status == 200 and info["Running"] is False and info["ExitCode"] is None
    assert info["ContainerID"] == box and info["ProcessConfig"]["entrypoint"] == "sh"
    sock, head = hijack(daemon, f"/v{daemon.api_version}/exec/{eid}/start", {"Detach": False, "Tty": False})
    assert head.startswith(b"HTTP/1.1 101")
    # API 1.42 named the multiplexed stream; before it a non-tty stream is sent as raw-stream too
    kind = b"multiplexed-stream" if daemon.api_version >= "1.42" else b"raw-stream"
    assert b"Content-Type: application/vnd.docker." + kind + b"\r\n" in head
    sock.sendall(b"hello\n")
    data = read_until(sock, lambda b: False, timeout=10)
    sock.close()
    assert demux(data) == (b"got-hello\n", b"")
    status, info = daemon.api_json("GET", f"/exec/{eid}/json")
    assert info["ExitCode"] == 4 and info["Running"] is False and info["Pid"] > 0
    status, _, raw = daemon.api("GET", f"/events?since={since}&until={time.time() + 1}"
                                       '&filters={"type":["container"]}')
    events = [json.loads(line) for line in raw.splitlines() if line.strip()]
    actions = [e["Action"] for e in events if e["Actor"]["Attributes"].get("execID") == eid]
    assert actions[0].startswith("exec_create: sh -c") and actions[1].startswith("exec_start: sh -c")
    die = [e for e in events if e["Action"] == "exec_die" and e["Actor"]["Attributes"].get("execID") == eid]
    assert die and die[0]["Actor"]["Attributes"]["exitCode"] == "4"
    status, body = daemon.api_json("POST", f"/exec/{eid}/start", {"Detach": True})
    assert status == 409


def test_exec_errors(daemon: TestDaemon, busybox_image: str) -> None:
    status, body = daemon.api_json("POST", "/containers/create?name=stoppedexec", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 201
    cid = body["Id"]
    status, body = daemon.api_json("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert status == 409 and body["message"] == daemon.wording(f"container {cid} is not running")
    r = daemon.docker("exec", "stoppedexec", "true")
    assert r.returncode == 1 and "is not running" in r.stderr
    assert daemon.api_json("GET", "/exec/nope/json")[0] == 404
    assert daemon.docker("rm", cid).returncode == 0


@pytest.mark.dockyard_only("ConsoleSize on exec start is API 1.42; dockerd 20.10 speaks 1.41")
def test_tty_console_size(daemon: TestDaemon, box: str) -> None:
    status, body = daemon.api_json("POST", f"/containers/{box}/exec",
                                   {"Cmd": ["stty", "size"], "Tty": True, "AttachStdout": True})
    assert status == 201
    sock, head = hijack(daemon, f"/v{daemon.api_version}/exec/{body['Id']}/start",
                        {"Tty": True, "ConsoleSize": [30, 90]})
    assert b"application/vnd.docker.raw-stream" in head
    data = read_until(sock, lambda b: False)
    sock.close()
    assert data == b"30 90\r\n"


def test_tty_interactive(daemon: TestDaemon, box: str) -> None:
    child = pexpect.spawn("docker", ["exec", "-it", box, "sh"], env=daemon.env, timeout=15)
    child.expect("# ")
    child.sendline("hostname; echo $((5*5))")
    child.expect("25")
    child.sendline("exit 6")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 6
