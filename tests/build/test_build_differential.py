"""Differential test: dockyard's image configs against those a real dockerd 20.10 (classic builder) produced for
the same Dockerfiles (recorded once by record_dockerd_fixtures.py into fixtures/dockerd/).

Compared: every config field a Dockerfile sets (Cmd, Entrypoint, Env, WorkingDir, User, ExposedPorts, Volumes,
Labels, Healthcheck, StopSignal, OnBuild, Shell) and the whole history (created_by, empty_layer), with only the
content hashes of COPY lines (docker's tarsum of the sources) left out.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from dockerd_cases import CASES, CONFIG_KEYS

from helpers.daemon import TestDaemon

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "dockerd")
_HASH = re.compile(r"((?:COPY|ADD) (?:file|dir|multi)):[0-9a-f]{64} in ")


def _norm_history(hist: list[dict]) -> list[tuple[str, bool]]:
    return [(_HASH.sub(r"\1:<hash> in ", h.get("created_by", "")), bool(h.get("empty_layer"))) for h in hist]


def _image_config(dy: TestDaemon, ref: str) -> dict:
    """The stored image config (with history) as `docker save` hands it out."""
    import io
    import tarfile

    status, _h, body = dy.api("GET", f"/images/get?names={ref}", timeout=120)
    assert status == 200
    tf = tarfile.open(fileobj=io.BytesIO(body))
    manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    return json.load(tf.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_matches_dockerd(dy: TestDaemon, case: str, tmp_path: object) -> None:
    root = str(tmp_path)
    for rel, text in CASES[case].items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    r = dy.cli("build", "-t", f"case/{case}", root)
    assert r.returncode == 0, (r.stdout, r.stderr)
    with open(os.path.join(FIXTURES, f"{case}.json")) as f:
        want = json.load(f)
    got_cfg = dy.api_json("GET", f"/images/case/{case}/json")[1]["Config"]
    for key in CONFIG_KEYS:
        assert (got_cfg.get(key) or None) == (want["Config"].get(key) or None), key
    got_hist = _image_config(dy, f"case/{case}")["history"]
    assert _norm_history(got_hist) == _norm_history(want["history"])
