"""Commands outside the engine's scope (swarm, node, service, stack, secret, config, plugin) answer exactly as
the docker CLI does against this daemon: same stdout, stderr and exit status."""

from __future__ import annotations

import pytest

from helpers.daemon import TestDaemon

SWARM = pytest.mark.dockyard_only("scope ledger: the dockyard CLI has no swarm commands; dockerd 20.10 has swarm, "
                                   "so the docker CLI's answers there are a working swarm's")
COMMANDS = [*(pytest.param(a, marks=SWARM) for a in (
    ["swarm", "init"], ["swarm", "leave"], ["node", "ls"], ["node", "inspect", "self"], ["service", "ls"],
    ["service", "ps", "x"], ["stack", "ls"], ["secret", "ls"], ["config", "ls"])),
    ["plugin", "ls"], ["plugin", "ls", "-q"], ["plugin", "inspect", "nope"]]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_answers_like_the_docker_cli(daemon: TestDaemon, args: list[str]) -> None:
    theirs, ours = daemon.docker(*args), daemon.cli(*args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
