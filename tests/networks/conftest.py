"""Fixtures for network tests: a started NetworkService torn down with a host-clean assertion."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from e2ehelp import clean
from nethelp import Env

from helpers.daemon import TestDaemon


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    try:
        e.svc.startup()
        yield e
    finally:
        e.close()
        left = e.leftovers()
        shutil.rmtree(e.tmp, ignore_errors=True)
        assert not left, f"left on the host: {left}"


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> Iterator[TestDaemon]:
    """The session's test daemon, with busybox, for the end-to-end network tests."""
    yield daemon


@pytest.fixture
def clean_after(d: TestDaemon) -> Iterator[None]:
    """Opted into by a module (``pytestmark = pytest.mark.usefixtures("clean_after")``): its containers and
    user networks are removed after each test."""
    yield
    clean(d)
