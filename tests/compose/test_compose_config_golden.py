"""`compose config` against golden files (tests/compose/golden/config).

The expected outputs were written from a reading of compose-go v2.2.0's types (struct field order, yaml/json
tags, the MarshalYAML/MarshalJSON methods) and of Compose 2.29.7's `config` command (the release `compose
version` reports), as that Compose v2 prints the project;
Compose v2 itself cannot be installed here to record them. `@DIR@` stands for the project directory. The
hash file pins Compose v2's ServiceHash of db and cache (derived by hand in test_compose_hash.py's way; a change
to it recreates every container of every project).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dockyard.compose.canonical import go_duration
from helpers.compose_run import run_compose as run
from helpers.daemon import DOCKYARD

GOLDEN = Path(__file__).parent / "golden" / "config"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TAG", "UNSET_VAR", "COMPOSE_PROFILES", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME"):
        monkeypatch.delenv(var, raising=False)
    dest = tmp_path / "golden"
    shutil.copytree(GOLDEN, dest, ignore=shutil.ignore_patterns("expected*"))
    return dest


def expected(name: str, project: Path) -> str:
    return (GOLDEN / name).read_text().replace("@DIR@", str(project))


@pytest.mark.parametrize(("args", "golden"), [
    (["--profile", "app", "config"], "expected.yaml"),
    (["--profile", "app", "config", "--format", "yaml"], "expected.yaml"),
    (["--profile", "app", "config", "--services"], "expected-services.txt"),
    (["--profile", "app", "config", "--volumes"], "expected-volumes.txt"),
    (["--profile", "app", "config", "--networks"], "expected-networks.txt"),
    (["--profile", "app", "config", "--images"], "expected-images.txt"),
    (["config", "--profiles"], "expected-profiles.txt"),
    (["--profile", "app", "config", "--hash", "db,cache"], "expected-hash.txt"),
])
def test_config_output_matches_golden(project: Path, args: list[str], golden: str) -> None:
    code, out, err = run(project, *args)
    assert code == 0, err
    assert out == expected(golden, project)


def test_config_json_matches_golden(project: Path) -> None:
    code, out, err = run(project, "--profile", "app", "config", "--format", "json")
    assert code == 0, err
    golden = expected("expected.json", project)
    assert out == golden.rstrip("\n")  # Go's MarshalIndent ends without a newline, and so does v2's output
    doc = json.loads(out)
    assert list(doc) == sorted(doc)  # the top level is a Go map
    assert doc["services"]["db"]["command"] is None  # never left out of the JSON form
    assert "\\u003ca\\u0026b\\u003e" in out  # Go's HTML-safe escaping


def test_config_round_trips_and_quiet(project: Path) -> None:
    """The canonical YAML is itself a valid compose file that renders to the same text."""
    code, out, _ = run(project, "--profile", "app", "config")
    assert code == 0
    again = project / "again"
    again.mkdir()
    (again / "compose.yaml").write_text(out)
    code2, out2, err2 = run(again, "--profile", "app", "config")
    assert code2 == 0, err2
    assert out2 == out
    assert run(project, "--profile", "app", "config", "-q") == (0, "", "")
    r = subprocess.run([DOCKYARD, "compose", "--profile", "app", "config", "--format", "xml"], cwd=project,
                       capture_output=True, text=True)
    assert r.returncode != 0 and r.stdout == ""


def test_go_duration() -> None:
    ns = 1_000_000_000
    assert [go_duration(x) for x in (0, 500_000_000, 90 * ns, 60 * ns, 3600 * ns, 1_500_000_000, 1500, 7)] == [
        "0s", "500ms", "1m30s", "1m0s", "1h0m0s", "1.5s", "1.5µs", "7ns"]
