"""Bad bundles fail with a clear message, exit non-zero, and leave nothing behind."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from helpers.runtime import Runtime, cgroup_dirs


def _no_traces(rt: Runtime, cid: str) -> None:
    assert not os.path.exists(os.path.join(rt.root, cid)), "state dir left"
    assert not cgroup_dirs(cid), "cgroup left"
    with open("/proc/self/mountinfo") as fh:
        assert cid not in fh.read(), "mount left"


def _rewrite(bundle: str, edit: Any) -> None:
    path = os.path.join(bundle, "config.json")
    with open(path) as fh:
        config = json.load(fh)
    edit(config)
    with open(path, "w") as fh:
        json.dump(config, fh)


@pytest.mark.dockyard_only("dockyard runtime's own words for a bad bundle; runc 1.1.5 words it differently (not aligned yet)")
def test_missing_rootfs(make_bundle: Any, dockyard_rt: Runtime) -> None:
    bundle = make_bundle(["true"], lambda c: c["root"].update(path="/nonexistent/rootfs"), name="bad-root")
    res = dockyard_rt.run("bad-root", bundle)
    assert res.returncode == 1
    assert "rootfs (/nonexistent/rootfs) does not exist" in res.stderr
    _no_traces(dockyard_rt, "bad-root")


@pytest.mark.dockyard_only("dockyard runtime's own words for a bad bundle; runc 1.1.5 words it differently (not aligned yet)")
def test_invalid_json(make_bundle: Any, dockyard_rt: Runtime) -> None:
    bundle = make_bundle(["true"], name="bad-json")
    with open(os.path.join(bundle, "config.json"), "a") as fh:
        fh.write("{{{")
    res = dockyard_rt.run("bad-json", bundle)
    assert res.returncode == 1
    assert "invalid JSON" in res.stderr
    _no_traces(dockyard_rt, "bad-json")


@pytest.mark.dockyard_only("dockyard runtime's own words for a bad bundle; runc 1.1.5 words it differently (not aligned yet)")
def test_unknown_namespace(make_bundle: Any, dockyard_rt: Runtime) -> None:
    bundle = make_bundle(["true"], lambda c: c["linux"]["namespaces"].append({"type": "time-travel"}), name="bad-ns")
    res = dockyard_rt.run("bad-ns", bundle)
    assert res.returncode == 1
    assert "unknown namespace type 'time-travel'" in res.stderr
    _no_traces(dockyard_rt, "bad-ns")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], 'exec: "nosuch": executable file not found in $PATH'),
        (["/nosuch"], 'exec: "/nosuch": stat /nosuch: no such file or directory'),
        (["/etc/notexec"], 'exec: "/etc/notexec": permission denied'),
    ],
)
def test_exec_errors_like_runc(args: list[str], message: str, make_bundle: Any, dockyard_rt: Runtime,
                               runc_rt: Runtime) -> None:
    cid = "bad-exec-" + args[0].strip("/").replace("/", "-")
    bundle = make_bundle(args, name=cid)
    ours = dockyard_rt.run(cid, bundle)
    theirs = runc_rt.run(cid, bundle)
    assert message in theirs.stderr.replace('\\"', '"')
    assert message in ours.stderr.replace('\\"', '"')  # runc itself on the reference: logrus escapes quotes
    assert ours.returncode == theirs.returncode == 1
    _no_traces(dockyard_rt, cid)


def test_exec_error_kind_for_the_engine(make_bundle: Any, tmp_path: Any) -> None:
    from dockyard.runtime.api import get_runtime
    from dockyard.runtime.errors import OCIRuntimeError

    rt = get_runtime("dockyard", str(tmp_path / "api-root"))
    for args, kind in ((["nosuch"], "not_found"), (["/etc/notexec"], "permission")):
        with pytest.raises(OCIRuntimeError) as info:
            rt.create("kind-" + kind, make_bundle(args, name="kind-" + kind))
        assert info.value.kind == kind
        assert not os.path.exists(str(tmp_path / "api-root" / ("kind-" + kind)))
        assert not cgroup_dirs("kind-" + kind)


@pytest.mark.dockyard_only("dockyard runtime's own words for a bad bundle; runc 1.1.5 words it differently (not aligned yet)")
def test_failing_mount_reports_and_cleans_up(make_bundle: Any, dockyard_rt: Runtime) -> None:
    def bad_mount(config: dict[str, Any]) -> None:
        config["mounts"].append({"destination": "/data", "type": "bind", "source": "/nonexistent/src",
                                 "options": ["rbind"]})

    res = dockyard_rt.run("bad-mount", make_bundle(["true"], bad_mount, name="bad-mount"))
    assert res.returncode == 1
    assert 'error mounting "/nonexistent/src" to rootfs at "/data": no such file or directory' in res.stderr
    _no_traces(dockyard_rt, "bad-mount")
