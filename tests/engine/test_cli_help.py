"""``--help`` everywhere: every command, alias and group word of the dockyard CLI answers it with its usage and
exit 0, without a daemon and never with a traceback (the command tree is walked from cli/registry.py, so a
command added later is covered too). trust and manifest, outside the scope ledger, say so on use."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from dockyard.cli.registry import ALIASES, COMMANDS, GROUPS

DOCKYARD = os.path.join(os.path.dirname(sys.executable), "dockyard")
WORDS = sorted({*COMMANDS, *ALIASES, *GROUPS, "compose"})


def _help(words: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/dockyard-help.sock"}  # help never dials
    return words, subprocess.run([DOCKYARD, *words.split(), "--help"], capture_output=True, text=True,
                                 timeout=60, env=env)


def test_every_command_answers_help() -> None:
    assert len(WORDS) > 150
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(_help, WORDS))
    bad = [(w, p.returncode, (p.stdout + p.stderr)[-300:]) for w, p in results
           if p.returncode != 0 or "Traceback" in p.stderr or "sage:" not in p.stdout + p.stderr]
    assert not bad, bad


@pytest.mark.parametrize("words", ["trust inspect busybox", "manifest inspect busybox", "manifest rm x",
                                   "trust key generate me"])
def test_out_of_scope_client_features_say_so(words: str) -> None:
    p = subprocess.run([DOCKYARD, *words.split()], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "which dockyard does not provide" in p.stderr and "Traceback" not in p.stderr
