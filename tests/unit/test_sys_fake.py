"""Rootfs, snapshot, netns and capability logic through the recording syscall fake: no root, no mounts.

Each test checks the exact calls the logic makes (what runc would do for the same spec) and what it does
with the kernel's errors, against tmp directories; nothing is mounted on the host.
"""

from __future__ import annotations

import errno
import io
import os
import tarfile

import pytest

from dockyard.errors import SystemError_
from dockyard.networks import netns
from dockyard.runtime import caps, rootfs
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.spec import PROPAGATION_FLAGS
from dockyard.storage import snapshots
from dockyard.storage.blobs import BlobStore
from dockyard.storage.db import StateDB
from dockyard.storage.layers import LayerStore
from dockyard.sys import linux
from dockyard.sys.linux import (
    CLONE_NEWNET,
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
    statvfs_mount_flags,
)
from helpers.fakesys import RecordingSyscalls, fake_syscalls


@pytest.fixture
def sysc() -> RecordingSyscalls:
    with fake_syscalls() as fake:
        yield fake  # type: ignore[misc]


# -- rootfs -----------------------------------------------------------------------------------------
def test_prepare_root_makes_mounts_private_and_the_rootfs_a_mount_point(sysc: RecordingSyscalls) -> None:
    rootfs.prepare_root("/r", "rslave")
    assert sysc.mounts() == [
        (None, "/", None, MS_REC | MS_PRIVATE, None),
        ("/r", "/r", None, MS_BIND | MS_REC, None),
        (None, "/r", None, PROPAGATION_FLAGS["rslave"], None),
    ]


def test_read_only_bind_is_bound_then_remounted_keeping_the_source_flags(sysc: RecordingSyscalls,
                                                                         tmp_path: object) -> None:
    root, src = os.path.join(str(tmp_path), "root"), os.path.join(str(tmp_path), "data")
    os.makedirs(root)
    os.makedirs(src)
    rootfs.mount_one(root, {"destination": "/mnt/data", "type": "bind", "source": src,
                            "options": ["rbind", "ro", "nosuid", "rprivate"]}, [])
    dest = os.path.join(root, "mnt", "data")
    assert os.path.isdir(dest)  # the target was made, as a directory for a directory
    keep = statvfs_mount_flags(dest)
    assert sysc.mounts() == [
        (src, dest, None, MS_BIND | MS_REC, None),
        (None, dest, None, MS_BIND | MS_REMOUNT | keep | MS_RDONLY | MS_NOSUID, None),
        (None, dest, None, MS_PRIVATE | MS_REC, None),
    ]


def test_file_bind_gets_a_file_target_and_tmpfs_keeps_its_data(sysc: RecordingSyscalls, tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "root")
    os.makedirs(root)
    hosts = os.path.join(str(tmp_path), "hosts")
    open(hosts, "w").close()
    rootfs.mount_one(root, {"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind"]}, [])
    rootfs.mount_one(root, {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "mode=755", "size=65536k"]}, [])
    assert os.path.isfile(os.path.join(root, "etc", "hosts"))
    assert sysc.mounts() == [
        (hosts, os.path.join(root, "etc", "hosts"), None, MS_BIND | MS_REC, None),
        ("tmpfs", os.path.join(root, "run"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=65536k"),
    ]


def test_devpts_gets_the_ptmx_link(sysc: RecordingSyscalls, tmp_path: object) -> None:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "dev"))
    open(os.path.join(root, "dev", "ptmx"), "w").close()
    rootfs.mount_one(root, {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666"]}, [])
    assert os.readlink(os.path.join(root, "dev", "ptmx")) == "pts/ptmx"
    assert sysc.mounts() == [("devpts", os.path.join(root, "dev", "pts"), "devpts", MS_NOSUID | MS_NOEXEC,
                              "newinstance,ptmxmode=0666")]


def test_a_failed_mount_is_runc_s_message(sysc: RecordingSyscalls, tmp_path: object) -> None:
    root = str(tmp_path)
    sysc.fail("mount", os.path.join(root, "data"), errno.ENODEV)
    spec = {"mounts": [{"destination": "/data", "type": "nosuchfs", "source": "thing"}],
            "linux": {"namespaces": []}}
    with pytest.raises(OCIRuntimeError, match='error mounting "thing" to rootfs at "/data": no such device'):
        rootfs.mount_all(root, spec, [])


def test_cgroup_mounts_unified_host_with_and_without_a_cgroup_namespace(sysc: RecordingSyscalls,
                                                                        tmp_path: object) -> None:
    dest = os.path.join(str(tmp_path), "sys", "fs", "cgroup")
    base = MS_NOSUID | MS_NODEV | MS_NOEXEC
    rootfs._mount_cgroup(dest, MS_RDONLY, [("/sys/fs/cgroup/dockyard/c1", "cgroup2")], cgroupns=True)
    rootfs._mount_cgroup(dest, MS_RDONLY, [("/sys/fs/cgroup/dockyard/c1", "cgroup2")], cgroupns=False)
    assert sysc.mounts() == [
        ("cgroup2", dest, "cgroup2", MS_RDONLY | base, None),
        ("/sys/fs/cgroup/dockyard/c1", dest, None, MS_BIND | MS_REC, None),
        (None, dest, None, MS_BIND | MS_REMOUNT | MS_RDONLY | base, None),
    ]


def test_masked_and_read_only_paths(sysc: RecordingSyscalls, tmp_path: object) -> None:
    d = os.path.join(str(tmp_path), "acpi")
    f = os.path.join(str(tmp_path), "kcore")
    os.makedirs(d)
    open(f, "w").close()
    sysc.fail("mount", os.path.join(str(tmp_path), "gone"), errno.ENOENT)
    rootfs.mask_paths([d, f, os.path.join(str(tmp_path), "gone")])
    rootfs.readonly_paths([d])
    keep = statvfs_mount_flags(d)
    assert sysc.mounts() == [
        ("tmpfs", d, "tmpfs", MS_RDONLY, None),
        ("/dev/null", f, None, MS_BIND, None),
        ("/dev/null", os.path.join(str(tmp_path), "gone"), None, MS_BIND, None),  # missing: skipped
        (d, d, None, MS_BIND | MS_REC, None),
        (None, d, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep, None),
    ]


def test_pivot_detaches_the_old_root(sysc: RecordingSyscalls, tmp_path: object) -> None:
    cwd = os.getcwd()
    try:
        rootfs.do_pivot(str(tmp_path))
    finally:
        os.chdir(cwd)
    assert [c for c in sysc.calls] == [
        ("pivot_root", ".", "."),
        ("mount", ".", None, None, MS_SLAVE | MS_REC, None),
        ("umount2", ".", MNT_DETACH),
    ]


# -- snapshots --------------------------------------------------------------------------------------
def test_overlay_is_one_mount_call_with_absolute_lowers(sysc: RecordingSyscalls) -> None:
    snapshots.mount_overlay(["l/B", "l/A"], "/s/upper", "/s/work", "/s/merged", "/layers")
    assert sysc.mounts() == [("overlay", "/s/merged", "overlay", 0,
                              "lowerdir=/layers/l/B:/layers/l/A,upperdir=/s/upper,workdir=/s/work")]


def test_overlay_failure_is_the_engine_s_message(sysc: RecordingSyscalls) -> None:
    sysc.fail("mount", "/s/merged", errno.EACCES)
    with pytest.raises(SystemError_, match="error mounting the container's filesystem: mount overlay on "
                                           "/s/merged: Permission denied"):
        snapshots.mount_overlay(["l/A"], "/s/upper", "/s/work", "/s/merged", "/layers")


def test_unmount_detaches_a_busy_mount_and_ignores_one_already_gone(sysc: RecordingSyscalls) -> None:
    sysc.fail("umount2", "/busy", errno.EBUSY, times=1)  # the lazy detach that follows succeeds
    snapshots.unmount("/busy")
    sysc.fail("umount2", "/gone", errno.EINVAL)
    snapshots.unmount("/gone")
    sysc.fail("umount2", "/denied", errno.EPERM)
    with pytest.raises(SystemError_, match="unmount /denied: Operation not permitted"):
        snapshots.unmount("/denied")
    assert sysc.calls == [("umount2", "/busy", 0), ("umount2", "/busy", MNT_DETACH), ("umount2", "/gone", 0),
                          ("umount2", "/denied", 0)]


def _layer_tar() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("etc/motd")
        data = b"hello\n"
        ti.size = len(data)
        ti.uid, ti.gid = os.getuid(), os.getgid()  # unpackable without root
        tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_snapshotter_mounts_its_layers_and_holds_them(sysc: RecordingSyscalls, tmp_path: object) -> None:
    root = str(tmp_path)
    db = StateDB(os.path.join(root, "state.db"))
    try:
        layers = LayerStore(db, root, BlobStore(root))
        layer = layers.register(_layer_tar(), None, "tmp:test")
        snaps = snapshots.Snapshotter(db, root, layers)
        snaps.prepare("c1", "sha256:" + "1" * 64, [layer.chain_id])
        layers.release("tmp:test")
        layers.gc()
        assert layers.exists(layer.chain_id)  # the snapshot holds it
        merged = snaps.mount("c1")
        assert merged == snaps.merged_path("c1") and os.path.isdir(merged)
        [(source, target, fstype, flags, data)] = sysc.mounts()
        lower = os.path.join(layers.dir, layers.lower_links([layer.chain_id])[0])
        base = os.path.join(root, "snapshots", "c1")
        assert (source, target, fstype, flags) == ("overlay", merged, "overlay", 0)
        assert data == f"lowerdir={lower},upperdir={base}/upper,workdir={base}/work"
        assert snaps.image_of("c1") == "sha256:" + "1" * 64
        snaps.remove("c1")  # not mounted (the fake mounts nothing): no unmount call, layers released
        assert sysc.names() == ["mount"]
        assert not layers.exists(layer.chain_id)
    finally:
        db.close()


# -- netns and capabilities -------------------------------------------------------------------------
def test_netns_is_unshared_on_a_thread_and_pinned_by_a_bind(sysc: RecordingSyscalls, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "ns1")
    assert netns.create_with(path, lambda: 42) == 42
    (unshare, mount) = sysc.calls
    assert unshare == ("unshare", None, CLONE_NEWNET)
    assert mount[0:2] == ("mount", path) and mount[2].startswith("/proc/self/task/") and mount[4] == MS_BIND


def test_netns_that_cannot_be_pinned_leaves_no_file(sysc: RecordingSyscalls, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "ns2")
    sysc.fail("mount", path, errno.EPERM)
    with pytest.raises(linux.SyscallError) as exc:
        netns.create(path)
    assert exc.value.errno == errno.EPERM and exc.value.call == "mount" and exc.value.filename == path
    assert isinstance(exc.value, PermissionError)  # the errno's own OSError subclass too, as OSError(…) gives
    assert not os.path.exists(path)


def test_capabilities_are_one_capset_and_the_bounding_set_is_dropped_bit_by_bit(sysc: RecordingSyscalls) -> None:
    caps.set_caps(["CAP_CHOWN"], ["CAP_CHOWN", "CAP_KILL"], [])
    assert sysc.calls == [("capset", None, 1 << 0, 1 << 0 | 1 << 5, 0)]
    sysc.calls.clear()
    sysc.prctl_answers = {(linux.PR_CAPBSET_READ, n): 1 for n in range(caps.last_cap() + 1)}
    caps.drop_bounding(caps.ALL_CAPS[1:])  # keep all but CAP_CHOWN (number 0)
    drops = [c for c in sysc.calls if c[2] == linux.PR_CAPBSET_DROP]
    assert drops == [("prctl", None, linux.PR_CAPBSET_DROP, 0, 0)]
