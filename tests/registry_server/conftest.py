"""Fixtures for the registry server's tests: a fresh server per test (own root, free port), stopped after."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator

import pytest
from regserver import RegistryProcess


@pytest.fixture
def registry_factory() -> Iterator[Callable[..., RegistryProcess]]:
    made: list[RegistryProcess] = []
    tmp = tempfile.mkdtemp(prefix="dyreg", dir="/tmp")

    def make(*args: str, root: str | None = None, start: bool = True) -> RegistryProcess:
        r = RegistryProcess(root or os.path.join(tmp, f"root{len(made)}"), list(args))
        made.append(r)
        return r.start() if start else r

    yield make
    for r in made:
        r.kill()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def registry(registry_factory: Callable[..., RegistryProcess]) -> RegistryProcess:
    return registry_factory("--delete-enabled")


@pytest.fixture
def work_dir() -> Iterator[str]:
    import shutil

    d = tempfile.mkdtemp(prefix="dyregw", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)
