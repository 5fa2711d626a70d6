"""run/create flags → the create body: compared with what the official docker CLI sends for the same flags."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.cli.app import CLIError, make_parser
from dockyard.cli.commands.runflags import build_create_body, parse_duration_ns, parse_publish, ram_in_bytes

from .docker_capture import CaptureServer

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"

# Flag sets the docker CLI and ours must turn into the same JSON.
FLAG_SETS: list[list[str]] = [
    ["busybox"],
    ["busybox", "sh", "-c", "echo hi; ls -la"],
    ["-i", "busybox", "cat"],
    ["-it", "busybox"],
    ["-t", "busybox"],
    ["--name", "web", "-e", "A=1", "-e", "B=two words", "-l", "x=y", "-l", "flag", "busybox"],
    ["-p", "8080:80", "-p", "127.0.0.1:9000:90/udp", "-p", "53", "--expose", "7000-7002", "busybox"],
    ["-P", "--expose", "81", "busybox"],
    ["-v", "/tmp:/data:ro", "-v", "/anon", "-v", "named:/named", "busybox"],
    ["--mount", "type=bind,source=/tmp,target=/mnt,readonly", "--tmpfs", "/run:size=64m", "busybox"],
    ["--memory", "512m", "--memory-swap", "1g", "--memory-reservation", "256m", "--cpus", "1.5",
     "--cpu-shares", "512", "--cpu-quota", "50000", "--cpu-period", "100000", "--cpuset-cpus", "0",
     "--pids-limit", "100", "busybox"],
    ["--restart", "on-failure:3", "busybox"],
    ["--rm", "busybox"],
    ["--restart", "unless-stopped", "busybox"],
    ["--hostname", "h1", "--domainname", "example.org", "-w", "/tmp", "-u", "nobody", "busybox"],
    ["--entrypoint", "/bin/sh", "busybox", "-c", "true"],
    ["--entrypoint", "", "busybox"],
    ["--dns", "1.1.1.1", "--dns-search", "example.org", "--dns-option", "ndots:2",
     "--add-host", "db:10.0.0.2", "busybox"],
    ["--network", "mynet", "--network-alias", "web", "--ip", "10.9.0.5", "busybox"],
    ["--network", "host", "busybox"],
    ["--network", "none", "busybox"],
    ["--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--privileged", "--read-only", "--init", "busybox"],
    ["--security-opt", "no-new-privileges", "--sysctl", "net.ipv4.ip_forward=1",
     "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=64", "--shm-size", "128m", "busybox"],
    ["--oom-kill-disable", "--oom-score-adj", "500", "busybox"],
    ["--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2", "busybox"],
    ["--runtime", "runc", "--stop-signal", "SIGINT", "--stop-timeout", "3", "busybox"],
    ["--health-cmd", "true", "--health-interval", "5s", "--health-timeout", "2s", "--health-retries", "3",
     "--health-start-period", "1m30s", "busybox"],
    ["--no-healthcheck", "busybox"],
    ["-a", "stdout", "busybox"],
    ["-a", "stdin", "-a", "stderr", "-i", "busybox"],
    ["--pid", "host", "--ipc", "private", "--uts", "host", "--group-add", "audio", "busybox"],
    ["-p", "8000-8002:80-82/udp", "-p", "[::1]:9090:90", "--expose", "53/udp", "busybox"],
    ["--mount", "type=volume,source=data,target=/data,volume-nocopy", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
     "busybox"],
    ["--cgroup-parent", "mine", "--cgroupns", "private", "--memory-swappiness", "10", "--cpuset-mems", "0",
     "--mac-address", "02:42:ac:11:00:02", "--volumes-from", "other", "--link", "db:db", "busybox"],
    ["--env-file", "{envfile}", "--label-file", "{labelfile}", "-e", "FROM_HOST", "busybox"],
]


@pytest.fixture(scope="module")
def capture() -> Iterator[CaptureServer]:
    d = tempfile.mkdtemp(prefix="dycap")
    srv = CaptureServer(os.path.join(d, "c.sock"))
    yield srv
    srv.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def files() -> Iterator[dict[str, str]]:
    d = tempfile.mkdtemp(prefix="dyfl")
    paths = {"envfile": os.path.join(d, "env"), "labelfile": os.path.join(d, "labels")}
    with open(paths["envfile"], "w") as f:
        f.write("# comment\nA=1\n\nB=with spaces\nFROM_HOST\n")
    with open(paths["labelfile"], "w") as f:
        f.write("tier=web\nbare\n")
    yield paths
    shutil.rmtree(d, ignore_errors=True)


def _docker_body(capture: CaptureServer, args: list[str], command: str = "create") -> dict[str, Any]:
    before = len(capture.bodies)
    cfg = tempfile.mkdtemp(prefix="dycfg")
    try:
        r = subprocess.run([DOCKER, command, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           env={"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": capture.host,
                                "DOCKER_CONFIG": cfg, "HOME": cfg, "FROM_HOST": os.environ.get("FROM_HOST", "")},
                           timeout=30)
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
    assert len(capture.bodies) == before + 1, r.stderr
    return capture.bodies[-1]


def _our_body(args: list[str]) -> dict[str, Any]:
    ns = make_parser("create").parse_args(args)
    return build_create_body(ns)


@pytest.mark.skipif(not os.path.exists(DOCKER), reason="docker CLI not installed")
@pytest.mark.parametrize("args", FLAG_SETS, ids=[" ".join(a)[:60] for a in FLAG_SETS])
def test_same_body_as_docker(capture: CaptureServer, files: dict[str, str], args: list[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    args = [a.format(**files) for a in args]
    monkeypatch.setenv("FROM_HOST", "host value")
    ours, theirs = _our_body(args), _docker_body(capture, args)
    # docker builds Binds by iterating a Go map: its order changes from run to run
    # and so does its Env when -e and --env-file are merged: compare both as sets of entries
    for body in (ours, theirs):
        if body["HostConfig"].get("Binds"):
            body["HostConfig"]["Binds"].sort()
        if body.get("Env"):
            body["Env"].sort()
    assert ours == theirs


@pytest.mark.skipif(not os.path.exists(DOCKER), reason="docker CLI not installed")
@pytest.mark.parametrize("args", [["-d", "busybox"], ["-d", "-i", "-t", "--rm", "busybox"], ["-i", "busybox"]])
def test_run_detach_body_as_docker(capture: CaptureServer, args: list[str]) -> None:
    """`run` (captured at its create call; the fake daemon refuses the start) sets the attach fields like docker."""
    ns = make_parser("run").parse_args(args)
    assert build_create_body(ns, detach=ns.detach) == _docker_body(capture, args, "run")


@pytest.mark.skipif(not os.path.exists(DOCKER), reason="docker CLI not installed")
@pytest.mark.parametrize("args", [
    ["-d", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "--privileged", "box", "ls", "-l"],
    ["-i", "box", "cat"],
    ["box", "sh", "-c", "echo $HOME"],
])
def test_exec_body_as_docker(capture: CaptureServer, args: list[str]) -> None:
    from dockyard.cli.commands.io import exec_body

    before = len(capture.exec_bodies)
    cfg = tempfile.mkdtemp(prefix="dycfg")
    try:
        subprocess.run([DOCKER, "exec", *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
                       env={"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": capture.host,
                            "DOCKER_CONFIG": cfg, "HOME": cfg})
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
    assert len(capture.exec_bodies) == before + 1
    assert exec_body(make_parser("exec").parse_args(args), None) == capture.exec_bodies[-1]


def test_ram_in_bytes() -> None:
    assert ram_in_bytes("512m") == 512 * 1024**2
    assert ram_in_bytes("1g") == 1024**3
    assert ram_in_bytes("1GB") == 1024**3
    assert ram_in_bytes("100") == 100
    assert ram_in_bytes("1.5k") == 1536
    assert ram_in_bytes("-1") == -1
    with pytest.raises(CLIError):
        ram_in_bytes("lots")


def test_durations() -> None:
    assert parse_duration_ns("1m30s") == 90 * 10**9
    assert parse_duration_ns("500ms") == 5 * 10**8
    with pytest.raises(CLIError):
        parse_duration_ns("5 parsecs")


def test_publish_forms() -> None:
    assert parse_publish("80") == [("80/tcp", "", "")]
    assert parse_publish("8080:80/udp") == [("80/udp", "", "8080")]
    assert parse_publish("127.0.0.1::80") == [("80/tcp", "127.0.0.1", "")]
    assert parse_publish("8000-8001:80-81") == [("80/tcp", "", "8000"), ("81/tcp", "", "8001")]


def test_restart_conflicts_with_rm() -> None:
    with pytest.raises(CLIError) as e:
        _our_body(["--restart", "always", "--rm", "busybox"])
    assert e.value.code == 125
    assert "cannot specify both --restart and --rm" in e.value.message


def test_bad_restart_policy_is_a_flag_error() -> None:
    with pytest.raises(CLIError) as e:
        _our_body(["--restart", "sometimes", "busybox"])
    assert e.value.code == 125


def test_boolean_flags_take_values_like_docker() -> None:
    from dockyard.cli.app import _bool_values

    p = make_parser("run")
    args = _bool_values(p, ["--rm=false", "-d=true", "-e", "A=1", "--init=true", "busybox", "sh", "--rm=true"])
    assert args == ["-d", "-e", "A=1", "--init", "busybox", "sh", "--rm=true"]
    ns = p.parse_args(args)
    assert ns.detach and not ns.rm and ns.init and ns.command == ["sh", "--rm=true"]


def test_command_after_image_keeps_its_flags() -> None:
    ns = make_parser("run").parse_args(["-d", "busybox", "ls", "-la", "-d"])
    assert ns.image == "busybox" and ns.command == ["ls", "-la", "-d"] and ns.detach


def test_since_until_values() -> None:
    from dockyard.cli.commands.io import docker_timestamp

    assert docker_timestamp("1700000000") == "1700000000"
    assert float(docker_timestamp("10m", now=1000.0)) == pytest.approx(400.0)
    assert float(docker_timestamp("2023-11-14T22:13:20Z")) == pytest.approx(1700000000.0)
    with pytest.raises(CLIError):
        docker_timestamp("yesterday-ish")
