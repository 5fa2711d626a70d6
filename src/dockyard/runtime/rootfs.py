"""Build the container's filesystem view inside its new mount namespace.

Order follows runc: make the host's mounts private to us, bind the rootfs
onto itself (pivot_root needs a mount point), mount the spec's mounts in
order, populate /dev, pivot, then mask and write-protect paths and finally
make / read-only if asked.  Runs in the container init between fork and
exec, so it only makes syscalls.
"""

from __future__ import annotations

import os

from dockyard.runtime import devices
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.spec import PROPAGATION_FLAGS, parse_mount_options, resolve_in_root
from dockyard.sys.linux import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SLAVE,
    mount,
    pivot_root,
    statvfs_mount_flags,
    umount2,
)

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

# cgroup bind sources given by the cgroup manager: (host directory, name under /sys/fs/cgroup)
CgroupBinds = list[tuple[str, str]]


def prepare_root(rootfs: str, propagation: str | None) -> None:
    """Stop our mounts leaking to the host and make the rootfs a mount point."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    if propagation:
        mount(None, rootfs, None, PROPAGATION_FLAGS[propagation])


def _is_bind(m: dict[str, Any]) -> bool:
    opts = m.get("options") or []
    return m.get("type") == "bind" or "bind" in opts or "rbind" in opts


def _make_target(dest: str, source_is_file: bool) -> None:
    if os.path.lexists(dest):
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if source_is_file:
        with open(dest, "ab"):
            pass
    else:
        os.mkdir(dest, 0o755)


def _remount_bind(dest: str, flags: int) -> None:
    """Apply ro/nosuid/... to a bind: the kernel ignores them on the first bind call."""
    keep = statvfs_mount_flags(dest)
    mount(None, dest, None, MS_BIND | MS_REMOUNT | keep | (flags & ~(MS_BIND | MS_REC | MS_REMOUNT)))


def mount_one(rootfs: str, m: dict[str, Any], cgroup_binds: CgroupBinds, cgroupns: bool = False) -> None:
    """Mount one spec entry under ``rootfs``."""
    dest = resolve_in_root(rootfs, m["destination"])
    flags, propagation, data = parse_mount_options(m.get("options") or [])
    typ = m.get("type") or ""
    source = m.get("source") or typ
    if _is_bind(m):
        flags |= MS_BIND
        _make_target(dest, not os.path.isdir(source))
        mount(source, dest, None, flags & (MS_BIND | MS_REC))
        if flags & ~(MS_BIND | MS_REC):
            _remount_bind(dest, flags)
    elif typ == "cgroup":
        _mount_cgroup(dest, flags, cgroup_binds, cgroupns)
    else:
        _make_target(dest, False)
        mount(source, dest, typ, flags, data or None)
        if typ == "devpts":
            ptmx = resolve_in_root(rootfs, "/dev/ptmx")
            if os.path.lexists(ptmx):
                os.unlink(ptmx)
            os.symlink("pts/ptmx", ptmx)
    for prop in propagation:
        mount(None, dest, None, prop)


_V1_CONTROLLERS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                             "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"})


def _mount_cgroup(dest: str, flags: int, cgroup_binds: CgroupBinds, cgroupns: bool) -> None:
    """A tmpfs holding the container's own cgroup directories, read-only.

    Without a cgroup namespace these are binds of the host directories; inside
    one, fresh cgroup mounts already root at the container's cgroup (runc's way).
    """
    os.makedirs(dest, exist_ok=True)
    base = MS_NOSUID | MS_NODEV | MS_NOEXEC
    mount_flags = (flags & ~(MS_BIND | MS_REC)) | base
    if len(cgroup_binds) == 1 and cgroup_binds[0][1] == "cgroup2":  # unified host: one filesystem
        if cgroupns:
            mount("cgroup2", dest, "cgroup2", mount_flags)
        else:
            mount(cgroup_binds[0][0], dest, None, MS_BIND | MS_REC)
            mount(None, dest, None, MS_BIND | MS_REMOUNT | mount_flags)
        return
    mount("tmpfs", dest, "tmpfs", base | MS_RELATIME, "mode=755")
    for host_dir, name in cgroup_binds:
        sub = os.path.join(dest, name)
        os.makedirs(sub, exist_ok=True)
        if cgroupns:
            parts = name.split(",")
            data = ",".join(p if p in _V1_CONTROLLERS else "name=" + p for p in parts)
            source = "cgroup" if all(p in _V1_CONTROLLERS for p in parts) else name
            mount(source, sub, "cgroup", (flags & ~(MS_BIND | MS_REC)) | base | MS_RDONLY, data)
            continue
        mount(host_dir, sub, None, MS_BIND | MS_REC)
        mount(None, sub, None, MS_BIND | MS_REMOUNT | (flags & ~(MS_BIND | MS_REC)) | base | MS_RDONLY)
        if "," in name:  # cpu,cpuacct -> cpu and cpuacct links, as on the host
            for part in name.split(","):
                link = os.path.join(dest, part)
                if not os.path.lexists(link):
                    os.symlink(name, link)


def mount_all(rootfs: str, spec: dict[str, Any], cgroup_binds: CgroupBinds) -> None:
    """The spec's mounts in order, then /dev's nodes and links if /dev is ours."""
    mounts = spec.get("mounts") or []
    namespaces = (spec.get("linux") or {}).get("namespaces") or []
    cgroupns = any(ns["type"] == "cgroup" for ns in namespaces)
    for m in mounts:
        try:
            mount_one(rootfs, m, cgroup_binds, cgroupns)
        except OSError as exc:
            source = m.get("source") or m.get("type") or ""
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OCIRuntimeError(
                f'error mounting "{source}" to rootfs at "{m["destination"]}": {reason.lower()}', "other"
            ) from None
    dev_bound = any(m["destination"].rstrip("/") == "/dev" and _is_bind(m) for m in mounts)
    if not dev_bound:
        os.makedirs(os.path.join(rootfs, "dev"), exist_ok=True)
        devices.create_default_devices(rootfs, resolve_in_root)
        ptmx = resolve_in_root(rootfs, "/dev/ptmx")
        if not os.path.lexists(ptmx):
            os.symlink("pts/ptmx", ptmx)
    devices.create_spec_devices(rootfs, spec, resolve_in_root)


def bind_console(rootfs: str, slave_path: str) -> None:
    """/dev/console is a bind of the pty slave, as runc does."""
    dest = resolve_in_root(rootfs, "/dev/console")
    if os.path.lexists(dest):
        os.unlink(dest)
    with open(dest, "ab"):
        pass
    os.chmod(dest, 0o600)
    mount(slave_path, dest, None, MS_BIND)


def do_pivot(rootfs: str) -> None:
    """pivot_root(".", ".") then lazily detach the old root, leaving no host mounts visible."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY)
    try:
        os.fchdir(new_root)
        pivot_root(".", ".")
        os.fchdir(old_root)
        mount(None, ".", None, MS_SLAVE | MS_REC)
        umount2(".", MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)


def mask_paths(paths: list[str]) -> None:
    """Hide files behind /dev/null and directories behind an empty read-only tmpfs."""
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                mount("tmpfs", path, "tmpfs", MS_RDONLY)
            else:
                mount("/dev/null", path, None, MS_BIND)
        except FileNotFoundError:
            continue


def readonly_paths(paths: list[str]) -> None:
    """Bind each path onto itself and remount the bind read-only."""
    for path in paths:
        try:
            mount(path, path, None, MS_BIND | MS_REC)
        except FileNotFoundError:
            continue
        keep = statvfs_mount_flags(path)
        mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep)


def readonly_root() -> None:
    """root.readonly: remount / read-only, keeping its other flags."""
    keep = statvfs_mount_flags("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | keep)
