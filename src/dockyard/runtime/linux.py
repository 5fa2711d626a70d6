"""Thin ctypes wrappers for the Linux calls Python 3.11's ``os`` lacks.

Everything the container init needs from libc is resolved here at import
time, because after ``pivot_root`` the host's libraries are no longer
reachable and a lazy ``dlopen`` would fail.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI namespace type -> (clone flag, name of the link under /proc/PID/ns)
NAMESPACES: dict[str, tuple[int, str]] = {
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "mount": (CLONE_NEWNS, "mnt"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "user": (CLONE_NEWUSER, "user"),
}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

# statvfs f_flag bits that must be kept when remounting a bind read-only
ST_FLAGS_TO_MS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long
_SYS_PIVOT_ROOT = 155  # x86_64


def _check(ret: int, what: str, path: str | None = None) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); raises OSError naming the target."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount", target)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    ret = _libc.prctl(option, arg2, arg3, arg4, arg5)
    _check(ret, "prctl")
    return int(ret)


def set_child_subreaper() -> None:
    """Make orphaned descendants (the container init) our children to reap."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_SYS_SECCOMP = 317  # x86_64
_SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """Install a compiled BPF program (an array of 8-byte sock_filter) on the calling thread.

    Kept here so a cached program loads without importing the profile compiler.
    """
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    ret = _libc.syscall(ctypes.c_long(_SYS_SECCOMP), ctypes.c_long(_SECCOMP_SET_MODE_FILTER), ctypes.c_long(flags),
                        ctypes.byref(prog))
    _check(ret, "seccomp")


def statvfs_mount_flags(path: str) -> int:
    """MS_* flags of the mount holding ``path`` that a bind remount must keep."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in ST_FLAGS_TO_MS.items() if f_flag & st)
