"""Supplementary groups as docker sets them: the primary gid, the image's /etc/group memberships of the user
(implicit form only), then --group-add; for the init and for exec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> Iterator[TestDaemon]:
    yield daemon


def groups(d: TestDaemon, *args: str) -> str:
    p = d.docker("run", "--rm", *args, "busybox", "grep", "^Groups:", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    return " ".join(p.stdout.split()[1:])


def test_default_root_has_group_zero(d: TestDaemon) -> None:
    assert groups(d) == "0"


def test_group_add_and_user_forms(d: TestDaemon) -> None:
    assert groups(d, "--group-add", "10", "--group-add", "4242") == "0 10 4242"
    assert groups(d, "--user", "1000:1000") == "1000"
    assert groups(d, "--user", "4242") == "0"


def test_image_group_memberships(d: TestDaemon) -> None:
    p = d.docker("run", "--name", "grp", "busybox", "sh", "-c",
                 "echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && "
                 "echo 'app:x:1000:' >> /etc/group && echo 'staff2:x:2000:app' >> /etc/group")
    assert p.returncode == 0, p.stderr
    assert d.docker("commit", "grp", "grpimg").returncode == 0
    try:
        p = d.docker("run", "--rm", "--user", "app", "grpimg", "grep", "^Groups:", "/proc/self/status")
        assert p.stdout.split()[1:] == ["1000", "2000"], p.stdout
        p = d.docker("run", "--rm", "--user", "app:app", "grpimg", "grep", "^Groups:", "/proc/self/status")
        assert p.stdout.split()[1:] == ["1000"], p.stdout
        assert d.docker("run", "-d", "--name", "grp2", "grpimg", "sleep", "60").returncode == 0
        p = d.docker("exec", "-u", "app", "grp2", "grep", "^Groups:", "/proc/self/status")
        assert p.stdout.split()[1:] == ["1000", "2000"], p.stdout
    finally:
        d.docker("rm", "-f", "grp", "grp2")
        d.docker("rmi", "grpimg")
