"""Shared fixtures: a real daemon per test module, busybox in it, and a host-clean check for the session.

Import the helpers as ``from helpers.daemon import TestDaemon, wait_for, start_daemon, finish_daemon`` (pytest puts
tests/ on sys.path); not ``from conftest import …``, which names another directory's conftest in a full run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from helpers.daemon import STARTED, TestDaemon, finish_daemon, start_daemon


@pytest.fixture(scope="session")
def session_tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dys", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_tar(session_tmp: str) -> str:
    """Where the session caches busybox:latest as a `docker save` archive (filled by the first daemon)."""
    return os.path.join(session_tmp, "busybox.tar")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--target", choices=("dockyard", "dockerd"), default="dockyard",
                     help="what the tests drive: dockyard, or the reference, a private real dockerd for the "
                          "`daemon` fixture and runc for the runtime tests' `dockyard_rt` (a test that fails "
                          "there is a broken test); tests marked dockyard_only are skipped there")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dockyard_only(reason): checks something only dockyard has (its internals, state db, monitor, "
                   "failpoints, resource prefix, API > 1.41, a scope-ledger difference); skipped on "
                   "--target=dockerd with the reason")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the reference, skip what only dockyard has, each test with the reason its marker gives."""
    on_reference = config.getoption("--target") == "dockerd"
    for item in items:
        for mark in item.iter_markers("dockyard_only"):
            reason = mark.args[0] if mark.args else mark.kwargs.get("reason")
            if not reason:
                raise pytest.UsageError(f"{item.nodeid}: dockyard_only needs a reason")
            if on_reference:
                item.add_marker(pytest.mark.skip(reason=f"dockyard-only: {reason}"))
                break


@pytest.fixture(scope="module")
def daemon(request: pytest.FixtureRequest) -> Iterator[TestDaemon]:
    """One daemon per test module; torn down with a host-clean assertion."""
    if request.config.getoption("--target") == "dockerd":
        from helpers.dockerd import DockerdTarget

        d: TestDaemon = DockerdTarget().start()
    else:
        d = start_daemon()
    try:
        yield d
    finally:
        finish_daemon(d)


@pytest.fixture(scope="module")
def busybox_image(daemon: TestDaemon, busybox_tar: str) -> str:
    """busybox:latest present in the module's daemon."""
    daemon.load_busybox(busybox_tar)
    return "busybox:latest"


@pytest.fixture(scope="session", autouse=True)
def host_clean() -> Iterator[None]:
    """After the whole session: nothing of any daemon this session started is left (mounts, cgroups, links,
    iptables lines, processes)."""
    yield
    left = []
    for d in STARTED:
        left += d.leftovers()
    assert not left, f"host not clean after the session: {left}"
