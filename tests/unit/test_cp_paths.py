"""docker cp's path rules (client side) and the engine's in-container resolution and archive checks."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator

import pytest

from dockyard.cli.app import CLIError
from dockyard.cli.commands import cp
from dockyard.containers import archive, archive_extract
from dockyard.errors import InvalidParameter, NotFound
from helpers.tarballs import tar_bytes


def test_split_cp_arg() -> None:
    assert cp.split_cp_arg("box:/etc/passwd") == ("box", "/etc/passwd")
    assert cp.split_cp_arg("/abs/with:colon") == ("", "/abs/with:colon")
    assert cp.split_cp_arg("./rel:colon") == ("", "./rel:colon")
    assert cp.split_cp_arg("plain") == ("", "plain")
    assert cp.split_cp_arg("-") == ("", "-")
    assert cp.split_cp_arg("box:") == ("box", "")


def test_trailing_dot_and_separator_survive_cleaning() -> None:
    assert cp.preserve_trailing_dot_or_sep("/a/b", "a/b/.") == "/a/b/."
    assert cp.preserve_trailing_dot_or_sep("/a/b", "a/b/") == "/a/b/"
    assert cp.preserve_trailing_dot_or_sep("/a/b", "a/b") == "/a/b"
    assert cp.split_path_dir_entry("/a/b/.") == ("/a/b", ".")
    assert cp.split_path_dir_entry("/a/b/") == ("/a", "b")
    assert cp.split_path_dir_entry("/") == ("/", "/")


def test_prepare_copy_follows_docker_cases() -> None:
    # existing directory: extract into it unchanged
    assert cp.prepare_copy("/s/f", False, "", "/d", True, True) == ("/d", None)
    # new name for a file or a directory: extract into the parent, renaming the top entry
    assert cp.prepare_copy("/s/f", False, "", "/d/new", False, False) == ("/d", ("f", "new"))
    assert cp.prepare_copy("/s/dir/.", True, "", "/d/new", False, False) == ("/d", (".", "new"))
    assert cp.prepare_copy("/s/f", False, "", "/d/old", True, False) == ("/d", ("f", "old"))
    with pytest.raises(CLIError, match="cannot copy directory"):
        cp.prepare_copy("/s/dir", True, "", "/d/file", True, False)
    with pytest.raises(CLIError, match="no such directory"):
        cp.prepare_copy("/s/f", False, "", "/d/missing/", False, False)
    assert cp.rename_entry("./a/b", (".", "new")) == "new/a/b"
    assert cp.rename_entry("f", ("f", "g")) == "g"


def test_human_size_matches_go_units() -> None:
    assert cp.human_size(2048) == "2.05kB"
    assert cp.human_size(512) == "512B"
    assert cp.human_size(4608) == "4.61kB"
    assert cp.human_size(10_000_000) == "10MB"


def test_parse_container_path() -> None:
    p = archive.parse_container_path("etc/passwd")
    assert (p.abs_path, p.dir_parts, p.base, p.name) == ("/etc/passwd", ["etc"], "passwd", "passwd")
    p = archive.parse_container_path("/etc/")
    assert (p.abs_path, p.dir_parts, p.base, p.name) == ("/etc/", ["etc"], "", "etc")
    p = archive.parse_container_path("/etc/.")
    assert (p.abs_path, p.dir_parts, p.base, p.name) == ("/etc/.", ["etc"], ".", ".")
    p = archive.parse_container_path("/tmp/../etc")
    assert p.abs_path == "/etc"
    assert archive.parse_container_path("/").name == "/"
    p = archive.parse_container_path("../../etc/passwd")  # ".." at the root stays there, as in docker
    assert (p.abs_path, p.dir_parts, p.base) == ("/etc/passwd", ["etc"], "passwd")
    with pytest.raises(InvalidParameter):
        archive.parse_container_path("")


def test_go_file_mode_and_stat_header() -> None:
    assert archive.go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert archive.go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert archive.go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    h = archive.PathStat("f", 3, 0o644, "2024-01-01T00:00:00Z").header()
    assert json.loads(base64.urlsafe_b64decode(h)) == {"name": "f", "size": 3, "mode": 0o644,
                                                        "mtime": "2024-01-01T00:00:00Z", "linkTarget": ""}


@pytest.fixture
def rootfs(tmp_path: str) -> Iterator[tuple[str, str, archive.ContainerFS]]:
    """A fake container root beside a 'host' directory the container must never reach."""
    base = str(tmp_path)
    root, host = os.path.join(base, "root"), os.path.join(base, "host")
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "tmp"))
    os.makedirs(host)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("container\n")
    with open(os.path.join(host, "secret"), "w") as f:
        f.write("host\n")
    os.symlink(host, os.path.join(root, "tmp", "abs-out"))          # absolute: the container's own /<host>
    os.symlink("../../../../" + host.lstrip("/"), os.path.join(root, "tmp", "rel-out"))
    os.symlink("/etc", os.path.join(root, "tmp", "etc-link"))
    fs = archive.ContainerFS(root, {})
    yield root, host, fs
    fs.close()


def test_symlinks_resolve_inside_the_container(rootfs: tuple[str, str, archive.ContainerFS]) -> None:
    root, host, fs = rootfs
    assert fs.resolve(["tmp", "etc-link", "passwd"]) == ["etc", "passwd"]
    assert fs.resolve(["tmp", "abs-out", "secret"]) == host.strip("/").split("/") + ["secret"]
    assert fs.resolve(["tmp", "rel-out"]) == host.strip("/").split("/")
    cp_ = archive.parse_container_path("/tmp/abs-out/secret")
    with pytest.raises(NotFound, match="Could not find the file /tmp/abs-out/secret in container c1"):
        archive.locate(fs, cp_, "c1")
    parts, st = archive.stat_path(fs, archive.parse_container_path("/tmp/etc-link"), "c1")
    assert st.link_target == "/etc" and st.mode & archive.GO_MODE_SYMLINK


def _tar(*entries: tarfile.TarInfo | tuple[str, bytes]) -> io.BytesIO:
    return io.BytesIO(tar_bytes(*entries))


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.SYMTYPE, target
    return ti


@pytest.mark.parametrize("entries", [
    [("ok", b"1"), ("../escape", b"x")],
    [("ok", b"1"), ("/abs", b"x")],
    [("ok", b"1"), _symlink("evil", "/"), ("evil/secret", b"x")],
    [("ok", b"1"), ("abs-out/secret", b"x")],
])
def test_unsafe_archives_are_refused_before_writing(rootfs: tuple[str, str, archive.ContainerFS],
                                                    entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> None:
    root, host, fs = rootfs
    before = sorted(os.listdir(os.path.join(root, "tmp")))
    with pytest.raises(InvalidParameter, match="refusing"):
        archive_extract.extract(fs, ["tmp"], _tar(*entries), archive_extract.ExtractOptions())
    assert sorted(os.listdir(os.path.join(root, "tmp"))) == before
    assert os.listdir(host) == ["secret"]
    with open(os.path.join(host, "secret")) as f:
        assert f.read() == "host\n"


def test_extract_and_no_overwrite_dir_non_dir(rootfs: tuple[str, str, archive.ContainerFS]) -> None:
    root, _host, fs = rootfs
    archive_extract.extract(fs, ["tmp"], _tar(("new/file", b"data")), archive_extract.ExtractOptions())
    with open(os.path.join(root, "tmp", "new", "file"), "rb") as f:
        assert f.read() == b"data"
    with pytest.raises(InvalidParameter, match="cannot overwrite directory"):
        archive_extract.extract(fs, ["tmp"], _tar(("new", b"x")), archive_extract.ExtractOptions(no_overwrite_dir_non_dir=True))
    assert os.path.isdir(os.path.join(root, "tmp", "new"))
