"""Linux calls Python 3.11's ``os`` lacks, through one swappable backend.

Every symbol is resolved when this module is imported (``Libc()`` below), because after ``pivot_root`` the
host's libraries are no longer reachable and a lazy ``dlopen`` would fail; the container init imports this
module before it pivots.  The backend's methods return the call's result, or ``-errno`` on failure; the
wrappers here turn that into ``SyscallError``.  ``use(backend)`` swaps the backend (the recording fake of the
tests); production never calls it.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Protocol

    class Syscalls(Protocol):
        """What a backend implements: raw calls, result or ``-errno``."""

        def mount(self, source: bytes | None, target: bytes, fstype: bytes | None, flags: int,
                  data: bytes | None) -> int: ...

        def umount2(self, target: bytes, flags: int) -> int: ...

        def unshare(self, flags: int) -> int: ...

        def setns(self, fd: int, nstype: int) -> int: ...

        def pivot_root(self, new_root: bytes, put_old: bytes) -> int: ...

        def sethostname(self, name: bytes) -> int: ...

        def setdomainname(self, name: bytes) -> int: ...

        def prctl(self, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int: ...

        def capset(self, effective: int, permitted: int, inheritable: int) -> int: ...

        def seccomp_set_filter(self, program: bytes, flags: int) -> int: ...


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
PR_SET_KEEPCAPS = 8
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# statvfs f_flag bits that must be kept when remounting a bind read-only
ST_FLAGS_TO_MS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}

_SYS_PIVOT_ROOT = 155  # x86_64
_SYS_SECCOMP = 317  # x86_64
_SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class SyscallError(OSError):
    """A privileged call failed: ``errno``, ``call`` (its name) and ``filename`` (the path, if any).

    ``SyscallError.of`` also makes it the errno's own ``OSError`` subclass (``FileNotFoundError`` for ENOENT
    …), as ``OSError(errno, …)`` would, so callers may catch either.
    """

    def __init__(self, err: int, call: str, path: str | None = None) -> None:
        super().__init__(err, f"{call}: {os.strerror(err)}", path)
        self.call = call
        self.code = err  # ``errno`` without OSError's Optional

    @property
    def reason(self) -> str:
        """The errno's text, as the kernel's callers print it ("Device or resource busy")."""
        return os.strerror(self.code)

    @classmethod
    def of(cls, err: int, call: str, path: str | None = None) -> SyscallError:
        kind = _KINDS.get(err)
        if kind is None:
            return cls(err, call, path)
        sub = _SUBCLASSES.get(kind)
        if sub is None:
            sub = _SUBCLASSES[kind] = type(f"SyscallError_{kind.__name__}", (cls, kind), {})
        return sub(err, call, path)  # type: ignore[no-any-return]


# errno -> the OSError subclass Python itself maps it to
_KINDS: dict[int, type[OSError]] = {
    _errno.ENOENT: FileNotFoundError, _errno.EEXIST: FileExistsError, _errno.EPERM: PermissionError,
    _errno.EACCES: PermissionError, _errno.ENOTDIR: NotADirectoryError, _errno.EISDIR: IsADirectoryError,
    _errno.EINTR: InterruptedError, _errno.ESRCH: ProcessLookupError,
}
_SUBCLASSES: dict[type[OSError], type[SyscallError]] = {}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class Libc:
    """The real calls, with every symbol looked up now (see the module docstring)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.unshare.argtypes = [ctypes.c_int]
        lib.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        lib.prctl.restype = ctypes.c_int
        lib.capset.restype = ctypes.c_int
        lib.syscall.restype = ctypes.c_long
        self._mount, self._umount2, self._unshare, self._setns = lib.mount, lib.umount2, lib.unshare, lib.setns
        self._sethostname, self._setdomainname, self._prctl = lib.sethostname, lib.setdomainname, lib.prctl
        self._capset, self._syscall = lib.capset, lib.syscall

    @staticmethod
    def _rc(ret: int) -> int:
        return -ctypes.get_errno() if ret < 0 else int(ret)

    def mount(self, source: bytes | None, target: bytes, fstype: bytes | None, flags: int,
              data: bytes | None) -> int:
        return self._rc(self._mount(source, target, fstype, flags, data))

    def umount2(self, target: bytes, flags: int) -> int:
        return self._rc(self._umount2(target, flags))

    def unshare(self, flags: int) -> int:
        return self._rc(self._unshare(flags))

    def setns(self, fd: int, nstype: int) -> int:
        return self._rc(self._setns(fd, nstype))

    def pivot_root(self, new_root: bytes, put_old: bytes) -> int:
        return self._rc(self._syscall(_SYS_PIVOT_ROOT, new_root, put_old))

    def sethostname(self, name: bytes) -> int:
        return self._rc(self._sethostname(name, len(name)))

    def setdomainname(self, name: bytes) -> int:
        return self._rc(self._setdomainname(name, len(name)))

    def prctl(self, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
        return self._rc(self._prctl(option, arg2, arg3, arg4, arg5))

    def capset(self, effective: int, permitted: int, inheritable: int) -> int:
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        for word in range(2):
            shift = 32 * word
            data[word].effective = effective >> shift & 0xFFFFFFFF
            data[word].permitted = permitted >> shift & 0xFFFFFFFF
            data[word].inheritable = inheritable >> shift & 0xFFFFFFFF
        return self._rc(self._capset(ctypes.byref(header), data))

    def seccomp_set_filter(self, program: bytes, flags: int) -> int:
        buffer = ctypes.create_string_buffer(program, len(program))
        prog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
        return self._rc(self._syscall(ctypes.c_long(_SYS_SECCOMP), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                                      ctypes.c_long(flags), ctypes.byref(prog)))


_backend: Syscalls = Libc()


def use(backend: Syscalls) -> Syscalls:
    """Make ``backend`` answer every call from now on; returns the one it replaces (tests restore it)."""
    global _backend
    previous, _backend = _backend, backend
    return previous


def _check(rc: int, call: str, path: str | None = None) -> int:
    if rc < 0:
        raise SyscallError.of(-rc, call, path)
    return rc


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); raises SyscallError naming the target."""
    _check(_backend.mount(_b(source), os.fsencode(target), _b(fstype), flags, _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_backend.umount2(os.fsencode(target), flags), "umount", target)


def unshare(flags: int) -> None:
    _check(_backend.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_backend.setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_backend.pivot_root(os.fsencode(new_root), os.fsencode(put_old)), "pivot_root", new_root)


def sethostname(name: str) -> None:
    _check(_backend.sethostname(name.encode()), "sethostname")


def setdomainname(name: str) -> None:
    _check(_backend.setdomainname(name.encode()), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_backend.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """The calling thread's capability sets as 64-bit masks (capset(2), version 3)."""
    _check(_backend.capset(effective, permitted, inheritable), "capset")


def set_child_subreaper() -> None:
    """Make orphaned descendants (the container init) our children to reap."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """Install a compiled BPF program (an array of 8-byte sock_filter) on the calling thread.

    Kept here so a cached program loads without importing the profile compiler.
    """
    _check(_backend.seccomp_set_filter(program, flags), "seccomp")


def statvfs_mount_flags(path: str) -> int:
    """MS_* flags of the mount holding ``path`` that a bind remount must keep."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in ST_FLAGS_TO_MS.items() if f_flag & st)
