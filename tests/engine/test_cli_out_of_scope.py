"""Commands outside the engine's scope (swarm, node, service, stack, secret, config, plugin) answer exactly as
the docker CLI does against this daemon: same stdout, stderr and exit status."""

from __future__ import annotations

import pytest

from helpers.daemon import TestDaemon

COMMANDS = [["swarm", "init"], ["swarm", "leave"], ["node", "ls"], ["node", "inspect", "self"], ["service", "ls"],
            ["service", "ps", "x"], ["stack", "ls"], ["secret", "ls"], ["config", "ls"], ["plugin", "ls"],
            ["plugin", "ls", "-q"], ["plugin", "inspect", "nope"]]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_answers_like_the_docker_cli(daemon: TestDaemon, args: list[str]) -> None:
    theirs, ours = daemon.docker(*args), daemon.cli(*args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
