"""An access-controlled daemon per module, with busybox, torn down with the host-clean check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auth.authd import AuthDaemon
from helpers.daemon import finish_daemon


@pytest.fixture(scope="module")
def authd(busybox_tar: str) -> Iterator[AuthDaemon]:
    a = AuthDaemon()
    try:
        a.start()
        a.d.load_busybox(busybox_tar)
        yield a
    finally:
        finish_daemon(a.d)
