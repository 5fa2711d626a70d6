"""The differential test: the same read commands and error cases run with the docker CLI and the dockyard CLI
against one daemon give the same stdout, stderr and exit status.

Objects are made once (a running and a stopped container, a user network, a named volume); each case is one
argv. Output that names the CLI itself (usage lines) is compared with the program name replaced."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon

READS: list[tuple[str, ...]] = [
    ("ps", "--format", "table {{.Names}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.State}}"),
    ("ps", "-a", "-q"),
    ("ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.State}} {{.Labels}}"),
    ("ps", "-a", "--filter", "name=^dif-up$", "--format", "{{.Names}}"),
    ("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Image}}"),
    ("ps", "--format", "table {{.Names}}\t{{.Ports}}"),
    ("ps", "-a", "--format", "{{json .Names}}", "--filter", "label=dif=1"),
    ("port", "dif-up"),
    ("port", "dif-up", "80/tcp"),
    ("inspect", "-f", "{{.Name}} {{.State.Status}} {{.HostConfig.NetworkMode}}", "dif-up", "dif-down"),
    ("inspect", "--type", "network", "-f", "{{.Name}} {{.Driver}} {{.Internal}}", "dif-net"),
    ("inspect", "--type", "volume", "-f", "{{.Name}} {{.Driver}}", "dif-vol"),
    ("container", "inspect", "-f", "{{json .Config.Labels}}", "dif-up"),
    ("network", "ls", "--filter", "name=dif-net", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"),
    ("network", "ls", "-q", "--filter", "label=dif=1", "--no-trunc"),
    ("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "dif-net"),
    ("volume", "ls", "--filter", "name=dif-vol"),
    ("volume", "ls", "-q", "--filter", "label=dif=1"),
    ("volume", "inspect", "-f", "{{.Name}} {{.Labels}}", "dif-vol"),
    ("images", "--format", "{{.Repository}}:{{.Tag}}", "busybox"),
    ("image", "inspect", "-f", "{{.Os}} {{.Architecture}}", "busybox"),
    ("version", "--format", "{{.Server.APIVersion}}"),
    ("container", "ls", "-a", "--filter", "label=dif=1", "--format", "{{.Names}}"),
    ("logs", "dif-down"),
    ("top", "dif-up", "-o", "comm"),
]

ERRORS: list[tuple[str, ...]] = [
    ("inspect", "dif-missing"),
    ("inspect", "--type", "network", "dif-missing"),
    ("container", "inspect", "dif-missing"),
    ("network", "inspect", "dif-missing"),
    ("volume", "inspect", "dif-missing"),
    ("image", "inspect", "dif-missing:nope"),
    ("rm", "dif-missing"),
    ("rm", "-f", "dif-missing"),
    ("stop", "dif-missing"),
    ("start", "dif-missing"),
    ("kill", "dif-down"),
    ("logs", "dif-missing"),
    ("port", "dif-up", "81"),
    ("port", "dif-missing"),
    ("exec", "dif-down", "true"),
    ("network", "rm", "dif-missing"),
    ("volume", "rm", "dif-missing"),
    ("rm", "dif-up"),
    ("network", "create", "dif-net"),
    ("pause", "dif-down"),
    ("unpause", "dif-up"),
    ("wait", "dif-missing"),
    ("rename", "dif-missing", "x"),
    ("inspect", "-f", "{{.Nope}}", "dif-up"),
    ("ps", "--format", "{{.Names"),
    ("ps", "--filter", "bogus=1"),
    ("inspect", "--type", "container", "dif-missing"),
    ("inspect", "--type", "volume", "dif-missing"),
    ("inspect", "--type", "image", "dif-missing"),
    ("inspect", "--type", "bogus", "dif-up"),
    ("container", "inspect", "-f", "{{.Name}}", "dif-up", "dif-missing"),
    ("images", "--format", "{{.ID"),
    ("network", "ls", "--format", "{{.ID"),
    ("volume", "ls", "--format", "{{.Name"),
    ("port", "dif-up", "81/udp"),
    ("logs", "--tail", "x", "dif-down"),
    ("network", "connect", "dif-missing", "dif-up"),
    ("network", "disconnect", "dif-net", "dif-up"),
    ("volume", "create", "-d", "bogus", "dif-x"),
]


@pytest.fixture(scope="module")
def objects(daemon: TestDaemon, busybox_image: str) -> Iterator[TestDaemon]:
    d = daemon
    made = [
        ("run", "-d", "--name", "dif-up", "--label", "dif=1", "-p", "127.0.0.1::80", "busybox", "sleep", "600"),
        ("run", "--name", "dif-down", "--label", "dif=1", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"),
        ("network", "create", "--label", "dif=1", "dif-net"),
        ("volume", "create", "--label", "dif=1", "dif-vol"),
    ]
    for argv in made:
        p = d.docker(*argv)
        assert p.returncode in (0, 3), (argv, p.stderr)
    try:
        yield d
    finally:
        d.docker("rm", "-f", "dif-up", "dif-down")
        d.docker("network", "rm", "dif-net")
        d.docker("volume", "rm", "dif-vol")


def _same(text: str) -> str:
    """The CLI's own name and the container IDs docker prints differ by design; the rest must not."""
    return re.sub(r"\b(docker|dockyard)\b", "CLI", text)


def _compare(d: TestDaemon, argv: tuple[str, ...]) -> None:
    ref = d.docker(*argv)
    ours = d.cli(*argv)
    assert (ours.returncode, _same(ours.stdout), _same(ours.stderr)) == \
        (ref.returncode, _same(ref.stdout), _same(ref.stderr)), argv


@pytest.mark.parametrize("argv", READS, ids=[" ".join(a) for a in READS])
def test_read_commands_match_the_docker_cli(objects: TestDaemon, argv: tuple[str, ...]) -> None:
    _compare(objects, argv)


@pytest.mark.parametrize("argv", ERRORS, ids=[" ".join(a) for a in ERRORS])
def test_error_cases_match_the_docker_cli(objects: TestDaemon, argv: tuple[str, ...]) -> None:
    _compare(objects, argv)
