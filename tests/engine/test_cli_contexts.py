"""Contexts shared with the docker CLI: one ~/.docker/contexts store, created and used by either CLI, with
DOCKER_CONTEXT / --context / currentContext picking the daemon, and the same inspect/ls answers."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from helpers.daemon import DOCKER, DOCKYARD, TestDaemon


@pytest.fixture()
def env(daemon: TestDaemon) -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="dyctx") as cfg:
        e = {k: v for k, v in daemon.env.items() if k not in ("DOCKER_HOST", "DOCKYARD_HOST", "DOCKER_CONTEXT")}
        e["DOCKER_CONFIG"] = cfg
        yield e


def _run(cli: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKYARD if cli == "dockyard" else DOCKER, *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_contexts_shared_with_the_docker_cli(daemon: TestDaemon, env: dict[str, str]) -> None:
    r = _run("dockyard", env, "context", "create", "dy", "--description", "ours", "--docker", f"host={daemon.host}")
    assert (r.returncode, r.stdout, r.stderr) == (0, "dy\n", 'Successfully created context "dy"\n')
    r = _run("docker", env, "context", "create", "dk", "--docker", f"host={daemon.host}")
    assert r.returncode == 0, r.stderr
    # either CLI reaches the daemon through either context
    for cli in ("dockyard", "docker"):
        for name in ("dy", "dk"):
            r = _run(cli, env, "--context", name, "version", "--format", "{{.Server.APIVersion}}")
            assert r.returncode == 0 and r.stdout.strip(), (cli, name, r.stderr)
            r = _run(cli, {**env, "DOCKER_CONTEXT": name}, "ps", "-q")
            assert r.returncode == 0, (cli, name, r.stderr)
    # the same inspect and listing (the default row's endpoint is each CLI's own default socket)
    theirs, ours = _run("docker", env, "context", "inspect", "dy", "dk"), _run("dockyard", env, "context",
                                                                               "inspect", "dy", "dk")
    assert json.loads(ours.stdout) == json.loads(theirs.stdout)
    fmt = "{{.Name}}|{{.Description}}|{{.DockerEndpoint}}|{{.Current}}"
    lines = [[ln for ln in _run(cli, env, "context", "ls", "--format", fmt).stdout.splitlines()
              if not ln.startswith("default")] for cli in ("docker", "dockyard")]
    assert lines[0] == lines[1] == [f"dk||{daemon.host}|false", f"dy|ours|{daemon.host}|false"]
    # use with one CLI, the other follows; the context in use is not removed without -f
    r = _run("dockyard", env, "context", "use", "dk")
    assert (r.returncode, r.stdout) == (0, "dk\n")
    assert _run("docker", env, "context", "show").stdout == "dk\n"
    assert _run("dockyard", env, "ps", "-q").returncode == 0  # through currentContext
    r = _run("dockyard", env, "context", "rm", "dk")
    assert r.returncode == 1 and 'context "dk" is in use' in r.stderr
    assert _run("docker", env, "context", "use", "default").returncode == 0
    assert _run("dockyard", env, "context", "show").stdout == "default\n"
    for cli, name in (("dockyard", "dk"), ("docker", "dy")):
        r = _run(cli, env, "context", "rm", name)
        assert (r.returncode, r.stdout) == (0, f"{name}\n"), r.stderr
    assert not os.listdir(os.path.join(env["DOCKER_CONFIG"], "contexts", "meta"))
    r = _run("dockyard", {**env, "DOCKER_CONTEXT": "gone"}, "ps")
    assert r.returncode == 1 and "gone" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("group", ["container", "image", "network", "volume", "system", "context"])
def test_group_words_list_their_commands(group: str) -> None:
    for args in ([group], [group, "--help"]):
        r = subprocess.run([DOCKYARD, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.startswith(f"Usage:  dockyard {group} COMMAND\n"), r
        assert "Commands:\n  " in r.stdout
    r = subprocess.run([DOCKYARD, group, "no-such-sub"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "unknown command" in r.stderr
