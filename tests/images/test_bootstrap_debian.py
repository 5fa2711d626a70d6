"""``image bootstrap debian``: a minbase Debian (with python3) as one layer, built by mmdebstrap."""

from __future__ import annotations

import shutil

import pytest

from helpers.daemon import TestDaemon


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is not installed")
def test_bootstrap_debian(daemon: TestDaemon) -> None:
    res = daemon.cli("image", "bootstrap", "debian:bookworm", timeout=1100)
    assert res.returncode == 0, res.stderr
    assert "Tagged debian:bookworm" in res.stdout
    info = daemon.api_json("GET", "/images/debian:bookworm/json")[1]
    assert info["Config"]["Cmd"] == ["bash"] and len(info["RootFS"]["Layers"]) == 1
    client = daemon.client()
    try:
        out = client.containers.run("debian:bookworm", ["python3", "-c", "print(6*7)"], remove=True)
        assert out.strip() == b"42"
    finally:
        client.close()
        daemon.docker("rmi", "debian:bookworm")
