"""`volume` commands: the dockyard CLI and the docker CLI against one daemon give the same stdout, stderr and
exit status (create, ls with -q/--format/--filter, inspect, rm, prune, and their error cases)."""

from __future__ import annotations

import subprocess

import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> TestDaemon:
    return daemon


def _both(d: TestDaemon, *args: str, input: str | None = None) -> tuple[subprocess.CompletedProcess[str], ...]:
    return d.docker(*args, input=input), d.cli(*args, input=input)


def _same(d: TestDaemon, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    theirs, ours = _both(d, *args, input=input)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
    return theirs


def test_volume_commands_match_the_docker_cli(d: TestDaemon) -> None:
    assert d.docker("volume", "create", "--label", "k=v", "dv-a").stdout == "dv-a\n"
    assert d.cli("volume", "create", "dv-b").stdout == "dv-b\n"
    try:
        assert _same(d, "volume", "ls").stdout.startswith("DRIVER    VOLUME NAME\n")
        _same(d, "volume", "ls", "-q")
        _same(d, "volume", "ls", "--filter", "label=k=v", "--format", "{{.Name}} {{.Driver}} {{.Labels}}")
        _same(d, "volume", "ls", "--format", "json")
        _same(d, "volume", "ls", "--format", "table {{.Name}}\t{{.Mountpoint}}")
        _same(d, "volume", "inspect", "dv-a")
        _same(d, "volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}}", "dv-a", "dv-b")
        r = _same(d, "volume", "inspect", "dv-a", "no-such-vol")
        assert r.returncode == 1 and "no such volume" in r.stderr
        r = _same(d, "volume", "rm", "no-such-vol")
        assert r.returncode == 1
        _same(d, "volume", "prune", "-f", "--filter", "label=nothing-has-this")
        _same(d, "volume", "prune", input="n\n")
    finally:
        d.docker("volume", "rm", "dv-a", "dv-b")
    for name in ("dv-c", "dv-d"):
        assert d.cli("volume", "create", name).returncode == 0
    assert d.cli("volume", "rm", "dv-c").stdout == "dv-c\n"
    assert d.docker("volume", "rm", "dv-d").stdout == "dv-d\n"
    r = d.cli("volume", "prune", "-a", "-f")
    assert r.returncode == 0 and r.stdout.endswith("Total reclaimed space: 0B\n")
