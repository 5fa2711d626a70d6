"""Fixtures for real containers: a busybox rootfs, bundles, and runtimes that clean up after themselves."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helpers.runtime import CGROUP_PARENT, Runtime, cgroup_dirs

BUSYBOX = "/bin/busybox"

BASE_CONFIG: dict[str, Any] = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for k in ("bounding", "effective", "permitted", "ambient")
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "", "readonly": True},
    "hostname": "box",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A minimal rootfs: static busybox, its applet links, /etc/passwd and group, mount points."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    bindir = root / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(BUSYBOX, bindir / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", bindir / applet)
    for d in ("proc", "sys", "dev", "tmp", "etc", "root", "home/user"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nwheel:x:10:\nuser:x:1000:\n")
    (root / "etc/notexec").write_text("#!/bin/sh\necho no\n")
    (root / "etc/notexec").chmod(0o644)
    return str(root)


Bundle = Callable[..., str]


@pytest.fixture
def make_bundle(tmp_path: Any, busybox_rootfs: str) -> Bundle:
    """make_bundle(args, mutate=None, name=None) -> bundle dir with config.json (rootfs shared, read-only)."""

    def make(args: list[str], mutate: Callable[[dict[str, Any]], None] | None = None,
             name: str | None = None) -> str:
        bundle = tmp_path / (name or f"b-{uuid.uuid4().hex[:8]}")
        bundle.mkdir()
        config = copy.deepcopy(BASE_CONFIG)
        config["root"]["path"] = busybox_rootfs
        config["process"]["args"] = args
        config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{bundle.name}"
        if mutate:
            mutate(config)
        (bundle / "config.json").write_text(json.dumps(config))
        return str(bundle)

    return make


def _make_runtime(name: str, tmp_path: Any) -> Iterator[Runtime]:
    if name == "runc":
        if not shutil.which("runc"):
            pytest.skip("runc is not installed")
        argv = ["runc"]
    else:
        argv = [sys.executable, "-m", "dockyard.runtime.cli"]
    rt = Runtime(name, argv, str(tmp_path / f"state-{name}"))
    yield rt
    problems = rt.cleanup()
    for cid in rt.ids:
        problems += [f"cgroup left: {d}" for d in cgroup_dirs(cid)]
    assert not problems, problems


@pytest.fixture
def dockyard_rt(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Runtime]:
    """The runtime under test: dockyard's, or runc on the reference (``--target=dockerd``), where a failing
    lifecycle test is a broken test."""
    reference = request.config.getoption("--target") == "dockerd"
    yield from _make_runtime("runc" if reference else "dockyard", tmp_path)


@pytest.fixture
def runc_rt(tmp_path: Any) -> Iterator[Runtime]:
    yield from _make_runtime("runc", tmp_path)


@pytest.fixture(scope="session", autouse=True)
def _remove_test_cgroup_parent() -> Iterator[None]:
    """runc leaves the parent of a cgroupsPath behind; remove the (empty) test parent at the end."""
    yield
    base = "/sys/fs/cgroup"
    for hierarchy in os.listdir(base):
        path = os.path.join(base, hierarchy, CGROUP_PARENT)
        if os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError:
                pass
