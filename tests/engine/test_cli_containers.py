"""Container lifecycle driven end to end by the `dockyard` CLI and by the official docker CLI.

Each scenario runs twice against the same daemon: once with our CLI, once with docker's, so our
output and exit codes are checked against what the reference client sees from the same engine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable

import pytest

from helpers.daemon import DOCKYARD, TestDaemon, wait_for
from helpers.hostprobe import free_port

CLIS = ["dockyard", "docker"]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> TestDaemon:
    return daemon


def _runner(d: TestDaemon, cli: str) -> Run:
    return d.cli if cli == "dockyard" else d.docker


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


@pytest.mark.parametrize("cli", CLIS)
def test_detached_lifecycle(d: TestDaemon, cli: str) -> None:
    run = _runner(d, cli)
    name = f"life-{cli}"
    cid = _ok(run("run", "-d", "--name", name, "-l", "suite=cli", "busybox", "sleep", "300")).strip()
    assert len(cid) == 64
    try:
        assert _ok(run("ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.State}}")) == f"{name} running\n"
        assert _ok(run("inspect", "-f", "{{.State.Status}} {{.Name}} {{json .Config.Cmd}}", name)) == \
            f'running /{name} ["sleep","300"]\n'
        top = _ok(run("top", name))
        assert top.splitlines()[0].split()[:2] == ["UID", "PID"] and "sleep 300" in top
        assert _ok(run("pause", name)) == f"{name}\n"
        assert "(Paused)" in _ok(run("ps", "--filter", f"name={name}", "--format", "{{.Status}}"))
        assert _ok(run("unpause", name)) == f"{name}\n"
        _ok(run("rename", name, name + "2"))
        name += "2"
        # with the swap limit too: dockerd 20.10 on a cgroup-v1 host refuses a memory-only update here
        assert _ok(run("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "50", name)) == \
            f"{name}\n"
        assert _ok(run("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", name)) == \
            "67108864 50\n"
        assert _ok(run("stop", "-t", "1", name)) == f"{name}\n"
        # sleep as pid 1 ignores SIGTERM: the stop's SIGKILL after 1 s ends it
        assert _ok(run("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)) == "exited 137\n"
        assert _ok(run("start", name)) == f"{name}\n"
        assert _ok(run("restart", "-t", "1", name)) == f"{name}\n"
        assert _ok(run("kill", name)) == f"{name}\n"
        assert _ok(run("wait", name)) == "137\n"
        assert "Exited (137)" in _ok(run("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}"))
    finally:
        _ok(run("rm", "-f", name if name.endswith("2") else name))
    assert _ok(run("ps", "-a", "-q", "--filter", f"name={name}")) == ""


@pytest.mark.parametrize("cli", CLIS)
def test_foreground_run_exit_code_and_output(d: TestDaemon, cli: str) -> None:
    run = _runner(d, cli)
    r = run("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n" and r.stderr.endswith("err\n")


@pytest.mark.parametrize("cli", CLIS)
def test_stdin_pipe_reaches_process_and_eof_closes(d: TestDaemon, cli: str) -> None:
    r = _runner(d, cli)("run", "--rm", "-i", "busybox", "cat", input="hi\nthere\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\nthere\n"


@pytest.mark.parametrize("cli", CLIS)
def test_rm_removes_container(d: TestDaemon, cli: str) -> None:
    run = _runner(d, cli)
    _ok(run("run", "--rm", "--name", f"gone-{cli}", "busybox", "true"))
    assert _ok(run("ps", "-a", "-q", "--filter", f"name=gone-{cli}")) == ""


@pytest.mark.parametrize("cli", CLIS)
def test_logs_exec_and_stats(d: TestDaemon, cli: str) -> None:
    run = _runner(d, cli)
    name = f"io-{cli}"
    _ok(run("run", "-d", "--name", name, "busybox", "sh", "-c", "echo one; sleep 0.2; echo two >&2; sleep 300"))
    try:
        wait_for(lambda: "two" in run("logs", name).stderr, timeout=10)
        r = run("logs", name)
        assert r.stdout == "one\n" and r.stderr == "two\n"
        assert _ok(run("logs", "--tail", "1", name)) == "" and run("logs", "--tail", "1", name).stderr == "two\n"
        assert _ok(run("exec", name, "sh", "-c", "echo $((6*7))")) == "42\n"
        assert run("exec", name, "sh", "-c", "exit 4").returncode == 4
        assert _ok(run("exec", "-e", "X=y", "-w", "/tmp", name, "sh", "-c", "echo $X $PWD")) == "y /tmp\n"
        assert _ok(run("exec", "-i", name, "cat", input="piped\n")) == "piped\n"
        out = _ok(run("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name))
        assert out.split()[0] == name and int(out.split()[1]) >= 1
    finally:
        _ok(run("rm", "-f", name))


@pytest.mark.parametrize("cli", CLIS)
def test_events_since_until(d: TestDaemon, cli: str) -> None:
    run = _runner(d, cli)
    since = str(int(time.time()) - 1)
    name = f"ev-{cli}"
    _ok(run("run", "--name", name, "busybox", "true"))
    _ok(run("rm", name))
    until = str(int(time.time()) + 1)
    out = _ok(run("events", "--since", since, "--until", until, "--filter", f"container={name}",
                  "--format", "{{.Type}} {{.Action}}"))
    actions = [ln.split()[1] for ln in out.splitlines()]
    for action in ("create", "start", "die", "destroy"):
        assert action in actions, out


@pytest.mark.parametrize("cli", CLIS)
def test_ps_filters_and_formats(d: TestDaemon, cli: str) -> None:
    run = _runner(d, cli)
    a, b = f"fa-{cli}", f"fb-{cli}"
    _ok(run("run", "-d", "--name", a, "-l", f"grp={cli}", "busybox", "sleep", "300"))
    _ok(run("run", "--name", b, "-l", f"grp={cli}", "busybox", "true"))
    try:
        running = _ok(run("ps", "--filter", f"label=grp={cli}", "--format", "{{.Names}}")).split()
        assert running == [a]
        everything = sorted(_ok(run("ps", "-a", "--filter", f"label=grp={cli}", "--format", "{{.Names}}")).split())
        assert everything == sorted([a, b])
        exited = _ok(run("ps", "-a", "--filter", f"label=grp={cli}", "--filter", "status=exited",
                         "--format", "{{.Names}}")).split()
        assert exited == [b]
        rows = [json.loads(line) for line in
                _ok(run("ps", "-a", "--filter", f"name={a}", "--format", "{{json .}}")).splitlines()]
        assert rows[0]["Names"] == a and rows[0]["Labels"] == f"grp={cli}" and rows[0]["State"] == "running"
        table = _ok(run("ps", "--filter", f"name={a}", "--format", "table {{.Names}}\t{{.Label \"grp\"}}"))
        assert table.splitlines()[1].split() == [a, cli]
        full = _ok(run("ps", "-a", "--no-trunc", "-q", "--filter", f"name={a}")).strip()
        assert len(full) == 64
    finally:
        _ok(run("rm", "-f", a, b))


def test_default_ps_table_matches_docker(d: TestDaemon) -> None:
    """Same daemon, same moment: our default table has docker's headers and column layout."""
    port = free_port()
    _ok(d.cli("run", "-d", "--name", "tbl", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "300"))
    try:
        for _ in range(5):
            ours = _ok(d.cli("ps", "--filter", "name=tbl"))
            theirs = _ok(d.docker("ps", "--filter", "name=tbl"))
            # column widths follow the cells: compare only a pair taken within the same second of age
            if re.split(r"\s{2,}", ours.splitlines()[1])[3:5] == re.split(r"\s{2,}", theirs.splitlines()[1])[3:5]:
                break
        assert ours.splitlines()[0] == theirs.splitlines()[0]
        assert ours.splitlines()[1].split("   ")[0] == theirs.splitlines()[1].split("   ")[0]
        assert f"127.0.0.1:{port}->80/tcp" in ours
    finally:
        _ok(d.cli("rm", "-f", "tbl"))


def test_inspect_types(d: TestDaemon) -> None:
    out = json.loads(_ok(d.cli("inspect", "busybox")))
    assert out[0]["RepoTags"] == ["busybox:latest"]
    assert _ok(d.cli("inspect", "--type", "image", "-f", "{{index .RepoTags 0}}", "busybox")) == "busybox:latest\n"
    r = d.cli("inspect", "no-such-object")
    assert r.returncode == 1 and "No such object: no-such-object" in r.stderr


def test_unreachable_daemon_message() -> None:
    env = dict(os.environ, DOCKYARD_HOST="unix:///tmp/dy-no-such.sock")
    r = subprocess.run([DOCKYARD, "ps"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1
    assert r.stderr == ("Cannot connect to the dockyard daemon at unix:///tmp/dy-no-such.sock. "
                        "Is the dockyard daemon running?\n")


def test_system_commands(d: TestDaemon) -> None:
    assert "API version" in _ok(d.cli("version"))
    # the template sees docker's Go struct: APIVersion (the docker CLI refuses .Server.ApiVersion)
    assert _ok(d.cli("version", "--format", "{{.Server.APIVersion}}")).strip() == d.api_version
    assert "Containers:" in _ok(d.cli("info"))
    df = _ok(d.cli("system", "df"))
    assert df.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    _ok(d.cli("create", "--name", "prunable", "busybox"))
    out = _ok(d.cli("container", "prune", "-f"))
    assert "Total reclaimed space:" in out
    assert _ok(d.cli("ps", "-aq", "--filter", "name=prunable")) == ""


@pytest.mark.parametrize("cli", CLIS)
def test_create_then_start_attached_with_stdin(d: TestDaemon, cli: str) -> None:
    run = _runner(d, cli)
    name = f"sai-{cli}"
    cid = _ok(run("create", "-i", "--name", name, "busybox", "sh", "-c", "cat; exit 6")).strip()
    assert len(cid) == 64
    try:
        r = run("start", "-ai", name, input="through start\n")
        assert r.returncode == 6, r.stderr
        assert r.stdout == "through start\n"
    finally:
        _ok(run("rm", "-f", name))


def test_system_prune_removes_stopped_containers(d: TestDaemon) -> None:
    _ok(d.cli("run", "--name", "sp-dead", "busybox", "true"))
    _ok(d.cli("run", "-d", "--name", "sp-live", "busybox", "sleep", "300"))
    try:
        out = _ok(d.cli("system", "prune", "-f"))
        assert "Deleted Containers:" in out and "Total reclaimed space:" in out
        names = _ok(d.cli("ps", "-a", "--format", "{{.Names}}")).split()
        assert "sp-dead" not in names and "sp-live" in names
        assert _ok(d.cli("images", "-q"))  # busybox is tagged: not pruned without -a
    finally:
        _ok(d.cli("rm", "-f", "sp-live"))


def test_pull_never_and_missing_image(d: TestDaemon) -> None:
    r = d.cli("run", "--pull", "never", "--rm", "no-such-image-here")
    assert r.returncode == 125
    assert r.stderr.startswith("dockyard: Error response from daemon: No such image: no-such-image-here")
    r = d.cli("run", "--rm", "no-such-image-here")
    assert r.returncode == 125 and "Unable to find image 'no-such-image-here:latest' locally" in r.stderr


@pytest.mark.parametrize("cli", CLIS)
@pytest.mark.parametrize("args,code", [
    (["run", "--no-such-flag", "busybox"], 125),
    (["run", "--rm", "no-such-image-here"], 125),
    (["run", "--rm", "busybox", "/etc"], 126),
    (["run", "--rm", "busybox", "no-such-command"], 127),
])
def test_docker_exit_codes(d: TestDaemon, cli: str, args: list[str], code: int) -> None:
    """Flag errors and unknown images 125, a command that cannot be invoked 126, not found 127; with --rm
    nothing is left behind (docker's CLI waits for the daemon's auto-removal, so it must happen)."""
    before = d.cli("ps", "-aq").stdout
    r = _runner(d, cli)(*args, timeout=30)
    assert r.returncode == code, f"{r.stdout}\n{r.stderr}"
    assert r.stderr.strip()
    assert d.cli("ps", "-aq").stdout == before


@pytest.mark.parametrize("cli", CLIS)
def test_rm_missing_container_exit_status(d: TestDaemon, cli: str) -> None:
    """`rm -f` of a container that does not exist prints the daemon's error and exits 0; without -f it is
    an error (exit 1); the names that were removed are still printed."""
    run = _runner(d, cli)
    missing = f"no-such-{cli}"
    r = run("rm", "-f", missing)
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    assert r.stderr.startswith(f"Error response from daemon: No such container: {missing}\n"), r.stderr
    r = run("rm", missing)
    assert r.returncode == 1 and r.stdout == "", r.stderr
    assert f"No such container: {missing}" in r.stderr
    _ok(run("create", "--name", f"rmf-{cli}", "busybox", "true"))
    r = run("rm", "-f", missing, f"rmf-{cli}")
    assert (r.returncode, r.stdout) == (0, f"rmf-{cli}\n"), r.stderr
    assert d.cli("ps", "-aq", "--filter", f"name=rmf-{cli}").stdout == ""


@pytest.mark.parametrize("cli", CLIS)
def test_it_without_a_terminal_is_refused(d: TestDaemon, cli: str) -> None:
    r = _runner(d, cli)("run", "-it", "--rm", "busybox", "true", input="")
    assert r.returncode == 1 and r.stderr == "the input device is not a TTY\n"


def test_inspect_and_ps_json_identical_to_docker(d: TestDaemon) -> None:
    """Same daemon, same objects: our output is byte for byte docker's (time-relative fields aside)."""
    _ok(d.cli("run", "-d", "--name", "same", "-l", "x=é", "-p", "127.0.0.1:18091:80", "busybox", "sleep", "300"))
    try:
        assert _ok(d.cli("inspect", "same", "busybox")) == _ok(d.docker("inspect", "same", "busybox"))
        ours = json.loads(_ok(d.cli("ps", "--filter", "name=same", "--format", "{{json .}}")))
        theirs = json.loads(_ok(d.docker("ps", "--filter", "name=same", "--format", "{{json .}}")))
        for row in (ours, theirs):
            row.pop("RunningFor")
            row.pop("Status")
        assert ours == theirs
        raw = _ok(d.cli("ps", "--filter", "name=same", "--format", "{{json .}}"))
        assert "127.0.0.1:18091-\\u003e80/tcp" in raw  # Go's HTML escaping, as docker prints it
    finally:
        _ok(d.cli("rm", "-f", "same"))
