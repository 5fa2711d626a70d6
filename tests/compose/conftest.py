"""What the end-to-end compose tests share: a project directory driven by `dockyard compose` (a subprocess, as a
user runs it) against the module's daemon, removed with everything it made; a loopback registry."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.daemon import TestDaemon

DOCKYARD = os.path.join(os.path.dirname(sys.executable), "dockyard")


class Proj:
    """A compose project directory with a unique name, driven by `dockyard compose` against the daemon."""

    def __init__(self, daemon: TestDaemon, root: Path, text: str) -> None:
        self.daemon = daemon
        self.dir = root
        self.name = "dyc" + secrets.token_hex(3)
        self.write(text)

    def write(self, text: str) -> None:
        (self.dir / "compose.yaml").write_text(textwrap.dedent(text))

    def run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKYARD, "compose", "-p", self.name, *args], cwd=self.dir, capture_output=True,
                              text=True, env={**self.daemon.env, **(env or {})}, timeout=timeout, input=input)

    def ok(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"compose {' '.join(args)} → {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def containers(self, all_: bool = True) -> list[dict[str, Any]]:
        flt = urllib.parse.quote(json.dumps({"label": [f"com.docker.compose.project={self.name}"]}))
        status, body = self.daemon.api_json("GET", f"/containers/json?all={int(all_)}&filters={flt}")
        assert status == 200
        return sorted(body, key=lambda c: c["Names"][0])

    def ids(self) -> dict[str, str]:
        return {c["Names"][0].lstrip("/"): c["Id"] for c in self.containers()}

    def leftovers(self) -> list[str]:
        flt = urllib.parse.quote(json.dumps({"label": [f"com.docker.compose.project={self.name}"]}))
        left = [c["Names"][0] for c in self.containers()]
        left += [n["Name"] for n in self.daemon.api_json("GET", f"/networks?filters={flt}")[1]]
        left += [v["Name"] for v in self.daemon.api_json("GET", f"/volumes?filters={flt}")[1]["Volumes"] or []]
        return left


@pytest.fixture()
def project(daemon: TestDaemon, busybox_image: str, tmp_path: Path) -> Iterator[Any]:
    """make(compose_text) -> Proj; every project made is brought down (-v, orphans too) afterwards."""
    made: list[Proj] = []

    def make(text: str) -> Proj:
        d = tmp_path / f"p{len(made)}"
        d.mkdir()
        p = Proj(daemon, d, text)
        made.append(p)
        return p

    yield make
    for p in made:
        p.run("down", "-v", "-t", "1", "--remove-orphans")


@pytest.fixture()
def registry(tmp_path: Path) -> Iterator[Any]:
    if not os.path.exists("/usr/bin/docker-registry"):
        pytest.skip("docker-registry is not installed")
    from helpers.registry import running_registry

    with running_registry(str(tmp_path), "http") as reg:
        yield reg
