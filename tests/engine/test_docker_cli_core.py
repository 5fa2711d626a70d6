"""The official docker CLI (v28) against our daemon: the container commands ENGINE-CORE serves."""

from __future__ import annotations

import json

import pytest

from helpers.daemon import TestDaemon, wait_for

pytestmark = pytest.mark.docker_cli


@pytest.fixture(scope="module")
def dk(daemon: TestDaemon, busybox_image: str) -> TestDaemon:
    return daemon


def _ok(r: object) -> str:
    assert r.returncode == 0, (r.stdout, r.stderr)  # type: ignore[attr-defined]
    return r.stdout  # type: ignore[attr-defined]


def test_run_detached_stop_start_rm(dk: TestDaemon) -> None:
    cid = _ok(dk.docker("run", "-d", "--name", "cli1", "--label", "a=b", "busybox", "sleep", "300")).strip()
    assert len(cid) == 64
    out = _ok(dk.docker("ps", "--format", "{{.Names}}|{{.Status}}|{{.Command}}|{{.Labels}}"))
    assert out.startswith("cli1|Up ") and '"sleep 300"' in out and "a=b" in out
    _ok(dk.docker("stop", "-t", "1", "cli1"))
    out = _ok(dk.docker("ps", "-a", "--filter", "name=cli1", "--format", "{{.Status}}"))
    assert out.startswith("Exited (137) ")
    _ok(dk.docker("start", "cli1"))
    _ok(dk.docker("restart", "-t", "0", "cli1"))
    top = _ok(dk.docker("top", "cli1"))
    assert "sleep 300" in top and top.splitlines()[0].split()[:2] == ["UID", "PID"]
    _ok(dk.docker("pause", "cli1"))
    assert "(Paused)" in _ok(dk.docker("ps", "--format", "{{.Status}}"))
    _ok(dk.docker("unpause", "cli1"))
    _ok(dk.docker("rename", "cli1", "cli2"))
    _ok(dk.docker("update", "--memory", "32m", "--memory-swap", "64m", "--restart", "on-failure:3", "cli2"))
    hc = json.loads(_ok(dk.docker("inspect", "-f", "{{json .HostConfig}}", "cli2")))
    assert hc["Memory"] == 32 * 1024 * 1024 and hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    r = dk.docker("rm", "cli2")
    assert r.returncode == 1 and "You cannot remove a running container" in r.stderr
    _ok(dk.docker("update", "--restart", "no", "cli2"))
    _ok(dk.docker("kill", "-s", "KILL", "cli2"))
    assert _ok(dk.docker("wait", "cli2")).strip() == "137"
    _ok(dk.docker("rm", "cli2"))
    r = dk.docker("inspect", "cli2")
    assert r.returncode == 1 and "No such object: cli2" in r.stderr


def test_errors_match_docker(dk: TestDaemon) -> None:
    _ok(dk.docker("create", "--name", "dup1", "busybox", "true"))
    r = dk.docker("create", "--name", "dup1", "busybox", "true")
    assert r.returncode != 0 and 'Conflict. The container name "/dup1" is already in use' in r.stderr
    r = dk.docker("kill", "dup1")
    assert r.returncode == 1 and "is not running" in r.stderr
    r = dk.docker("create", "--pull", "never", "nosuchimage:1")
    assert r.returncode != 0 and "No such image: nosuchimage:1" in r.stderr
    _ok(dk.docker("rm", "dup1"))


def test_restart_policy_and_exit_codes(dk: TestDaemon) -> None:
    _ok(dk.docker("run", "-d", "--name", "pol", "--restart", "on-failure:1", "busybox", "sh", "-c", "exit 9"))
    wait_for(lambda: _ok(dk.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "pol")).strip()
             == "1 exited", 15)
    _ok(dk.docker("rm", "pol"))


def test_prune_and_df(dk: TestDaemon) -> None:
    _ok(dk.docker("create", "--name", "prunable", "busybox", "true"))
    out = _ok(dk.docker("container", "prune", "-f"))
    assert "Deleted Containers:" in out
    assert "Images" in _ok(dk.docker("system", "df"))


def test_info_and_version(dk: TestDaemon) -> None:
    out = _ok(dk.docker("info", "--format", "{{.ServerVersion}} {{.Driver}} {{.CgroupDriver}}"))
    assert out.split()[1:] == ["overlay2", "cgroupfs"]
    assert _ok(dk.docker("version", "--format", "{{.Server.Os}}")).strip() == "linux"
