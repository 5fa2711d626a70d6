"""Pure logic of the runtime: mount options, config validation, path resolution, signals, CLI parsing."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from dockyard.runtime.cli import UsageError, parse_args
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.lifecycle import parse_signal
from dockyard.runtime.spec import load_bundle, parse_mount_options, resolve_in_root, validate
from dockyard.sys import linux


def test_mount_options_split_into_flags_propagation_and_data() -> None:
    flags, prop, data = parse_mount_options(["nosuid", "noexec", "ro", "rbind", "rslave", "mode=755", "size=1k"])
    assert flags == linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_RDONLY | linux.MS_BIND | linux.MS_REC
    assert prop == [linux.MS_SLAVE | linux.MS_REC]
    assert data == "mode=755,size=1k"
    assert parse_mount_options(["ro", "rw"])[0] == 0


def _spec(**linux_cfg: Any) -> dict[str, Any]:
    return {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["sh"], "cwd": "/"},
            "linux": linux_cfg}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_spec(namespaces=[{"type": "bogus"}]), "unknown namespace type 'bogus'"),
        (_spec(namespaces=[{"type": "user"}]), "user namespaces are not supported"),
        (_spec(namespaces=[{"type": "pid"}, {"type": "pid"}]), "duplicate namespace"),
        ({"ociVersion": "1", "root": {}}, "root.path is required"),
        ({"ociVersion": "1", "root": {"path": "r"}, "process": {"args": []}}, "process.args must be"),
        ({"ociVersion": "1", "root": {"path": "r"}, "process": {"args": ["x"], "cwd": "rel"}}, "cwd must be"),
        ({"ociVersion": "1", "root": {"path": "r"}, "hostname": "h", "linux": {"namespaces": []}}, "UTS"),
    ],
)
def test_validate_names_the_problem(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(OCIRuntimeError) as info:
        validate(spec)
    assert message in str(info.value)


def test_load_bundle_errors(tmp_path: Any) -> None:
    with pytest.raises(OCIRuntimeError, match="not found"):
        load_bundle(str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(OCIRuntimeError, match="invalid JSON"):
        load_bundle(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(_spec()))
    with pytest.raises(OCIRuntimeError, match="does not exist"):
        load_bundle(str(tmp_path))
    (tmp_path / "rootfs").mkdir()
    assert load_bundle(str(tmp_path))["root"]["path"] == os.path.realpath(tmp_path / "rootfs")


def test_resolve_in_root_stays_inside(tmp_path: Any) -> None:
    root = str(tmp_path)
    os.symlink("/etc", tmp_path / "abs")
    os.symlink("../../..", tmp_path / "up")
    assert resolve_in_root(root, "/abs/passwd") == os.path.join(root, "etc/passwd")
    assert resolve_in_root(root, "/up/x") == os.path.join(root, "x")
    assert resolve_in_root(root, "/../../a/./b") == os.path.join(root, "a/b")


def test_signals() -> None:
    assert parse_signal("KILL") == 9 and parse_signal("SIGTERM") == 15 and parse_signal("2") == 2
    with pytest.raises(OCIRuntimeError):
        parse_signal("NOPE")


def test_exec_argument_parsing_stops_at_the_command() -> None:
    opts, pos = parse_args("exec", ["-e", "A=1", "--env=B=2", "-u", "1:2", "cid", "ls", "-l", "--", "-x"])
    assert opts == {"env": ["A=1", "B=2"], "user": "1:2"}
    assert pos == ["cid", "ls", "-l", "--", "-x"]
    assert parse_args("exec", ["cid", "--", "sh", "-c", "x"])[1] == ["cid", "sh", "-c", "x"]
    with pytest.raises(UsageError):
        parse_args("delete", ["--bogus", "x"])
