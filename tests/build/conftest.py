"""Fixtures every build test module shares: the module's daemon with busybox loaded, and a fresh context dir."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def dy(daemon: TestDaemon, busybox_image: str) -> TestDaemon:
    return daemon


@pytest.fixture
def ctxdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield str(tmp_path_factory.mktemp("ctx"))
