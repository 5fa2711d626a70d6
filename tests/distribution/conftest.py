"""Fixtures for registry client tests: a scratch dir, a shared certs.d dir the daemon trusts, the daemon."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon, finish_daemon, start_daemon
from helpers.registry import REGISTRY_BIN, Registry


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not os.path.exists(REGISTRY_BIN):
        for item in items:
            item.add_marker(pytest.mark.skip(reason="docker-registry (Debian package) is not installed"))


@pytest.fixture(scope="module")
def reg_tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyreg", dir="/tmp")
    os.makedirs(os.path.join(d, "certs.d"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def certs_dir(reg_tmp: str) -> str:
    return os.path.join(reg_tmp, "certs.d")


@pytest.fixture(scope="module")
def daemon(certs_dir: str) -> Iterator[TestDaemon]:
    d = start_daemon(["--registry-certs-dir", certs_dir])
    try:
        yield d
    finally:
        finish_daemon(d)


def trust(reg: Registry, certs_dir: str) -> None:
    """Copy a TLS registry's certs.d entry (CA, client cert) into the daemon's certs.d dir."""
    src = os.path.join(reg.certs_dir, reg.host)
    shutil.copytree(src, os.path.join(certs_dir, reg.host), dirs_exist_ok=True)
