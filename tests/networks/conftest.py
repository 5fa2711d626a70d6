"""Fixtures for network tests: a started NetworkService torn down with a host-clean assertion."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from nethelp import Env


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
