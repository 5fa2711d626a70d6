"""Seccomp: Docker profile → OCI ``linux.seccomp``, and loading it through libseccomp.

``load_filter`` is what a container init calls right before execve.  Building
a filter from the Docker default profile with libseccomp takes milliseconds,
so ``compile_filter`` keeps the BPF program of each distinct profile and
``load_bpf`` installs it with one seccomp(2) call; the result is the same
filter libseccomp itself would load.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dockyard.runtime import caps as _caps
from dockyard.sys.linux import SyscallError, seccomp_set_filter


class SeccompError(Exception):
    """A profile libseccomp or the kernel cannot turn into a filter."""


# libseccomp action values (seccomp.h).
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL_THREAD = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000

_CMP_OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# scmp_filter_attr values, and the kernel's SECCOMP_FILTER_FLAG_* bits they stand for.
_ATTR_ACT_DEFAULT = 1
_ATTR_CTL_NNP = 3
_ATTR_CTL_TSYNC = 4
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7
_ATTR_CTL_OPTIMIZE = 8
_ATTR_API_SYSRAWRC = 9
_OPTIMIZE_BINARY_TREE = 2
_FILTER_FLAGS: dict[str, tuple[int, int]] = {
    "SECCOMP_FILTER_FLAG_TSYNC": (_ATTR_CTL_TSYNC, 1),
    "SECCOMP_FILTER_FLAG_LOG": (_ATTR_CTL_LOG, 2),
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": (_ATTR_CTL_SSB, 4),
}

_MAX_SYSCALL_ARGS = 6

# Docker profiles name arches the Go way in includes/excludes and the libseccomp way in archMap.
_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "386": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "mips64le": "mips64le",
}
_SECCOMP_ARCH = {
    "amd64": "SCMP_ARCH_X86_64",
    "386": "SCMP_ARCH_X86",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64le": "SCMP_ARCH_MIPSEL64",
}


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@functools.cache
def _lib() -> ctypes.CDLL:
    """libseccomp.so.2 with argument types declared (loaded on first use)."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise SeccompError(f"libseccomp.so.2 is not installed: {exc}") from exc
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.restype = None
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_add.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_attr_set.restype = ctypes.c_int
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    return lib


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise SeccompError(f"{what}: {os.strerror(-rc)}")


def action_value(name: str, errno_ret: int | None) -> int:
    """libseccomp value of an OCI action name; ERRNO/TRACE default to EPERM like runc."""
    ret = errno.EPERM if errno_ret is None else int(errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return _ACT_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return _ACT_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return _ACT_TRAP
    if name == "SCMP_ACT_ERRNO":
        return _ACT_ERRNO | (ret & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return _ACT_TRACE | (ret & 0xFFFF)
    if name == "SCMP_ACT_LOG":
        return _ACT_LOG
    if name == "SCMP_ACT_ALLOW":
        return _ACT_ALLOW
    if name == "SCMP_ACT_NOTIFY":
        raise SeccompError("seccomp action SCMP_ACT_NOTIFY is not supported (no seccomp listener)")
    raise SeccompError(f"unknown seccomp action {name!r}")


def _arg_conditions(args: list[Mapping[str, Any]]) -> list[_ArgCmp]:
    conditions = []
    for arg in args:
        index = int(arg["index"])
        if not 0 <= index < _MAX_SYSCALL_ARGS:
            raise SeccompError(f"seccomp argument index {index} out of range")
        op = _CMP_OPS.get(arg.get("op", ""))
        if op is None:
            raise SeccompError(f"unknown seccomp comparison operator {arg.get('op')!r}")
        conditions.append(
            _ArgCmp(
                index,
                op,
                int(arg.get("value", 0)) & 0xFFFFFFFFFFFFFFFF,
                int(arg.get("valueTwo", 0)) & 0xFFFFFFFFFFFFFFFF,
            )
        )
    return conditions


def _add_rule(ctx: int, action: int, number: int, name: str, args: list[Mapping[str, Any]]) -> None:
    lib = _lib()
    conditions = _arg_conditions(args)
    indexes = [c.arg for c in conditions]
    if len(set(indexes)) != len(indexes):
        # Several conditions on one argument mean "any of them" (runc's rule): one rule each.
        groups = [[c] for c in conditions]
    else:
        groups = [conditions]
    for group in groups:
        array = (_ArgCmp * len(group))(*group) if group else None
        rc = lib.seccomp_rule_add_array(ctx, action, number, len(group), array)
        _check(rc, f"adding seccomp rule for syscall {name}")


def _build(oci: Mapping[str, Any]) -> int:
    """A libseccomp context holding the whole OCI profile; the caller releases it."""
    lib = _lib()
    default_action = action_value(oci.get("defaultAction", ""), oci.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise SeccompError("seccomp_init failed")
    try:
        # The runtime decides about no_new_privs itself (process.noNewPrivileges).
        _check(lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0), "disabling libseccomp's no_new_privs")
        lib.seccomp_attr_set(ctx, _ATTR_API_SYSRAWRC, 1)  # kernel errno instead of ECANCELED (2.5+)
        # The same verdicts as libseccomp's default layout (a test compares the two), with the syscall numbers
        # sorted into a binary tree (2.5+; older libraries keep the default): the kernel runs a filter for
        # every syscall number and arch when it is installed, to cache the always-allowed ones, so docker's
        # profile (3 arches, ~1000 instructions) installs in ~0.5 ms instead of ~1.4 ms, on every container
        # start and exec; calls outside that cache walk a tree instead of a list.
        lib.seccomp_attr_set(ctx, _ATTR_CTL_OPTIMIZE, _OPTIMIZE_BINARY_TREE)
        for flag in oci.get("flags") or ():
            attr = _FILTER_FLAGS.get(flag)
            if attr is None:
                raise SeccompError(f"seccomp flag {flag!r} is not supported")
            _check(lib.seccomp_attr_set(ctx, attr[0], 1), f"setting seccomp flag {flag}")
        for arch in oci.get("architectures") or ():
            token = lib.seccomp_arch_resolve_name(_arch_name(arch).encode())
            if token == 0:
                raise SeccompError(f"unknown seccomp architecture {arch!r}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -errno.EEXIST:
                _check(rc, f"adding seccomp architecture {arch}")
        for call in oci.get("syscalls") or ():
            action = action_value(call.get("action", ""), call.get("errnoRet"))
            if action == default_action:
                continue  # libseccomp refuses rules that repeat the default; they change nothing
            for name in call.get("names") or ():
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number == -1:  # __NR_SCMP_ERROR: a name this libseccomp does not know
                    continue
                _add_rule(ctx, action, number, name, list(call.get("args") or ()))
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return int(ctx)


def _arch_name(arch: str) -> str:
    """``SCMP_ARCH_X86_64`` → ``x86_64``, the spelling seccomp_arch_resolve_name wants."""
    return arch.removeprefix("SCMP_ARCH_").lower()


def load_filter(oci_seccomp: Mapping[str, Any]) -> None:
    """Build and install the OCI ``linux.seccomp`` filter on the calling process.

    Needs no_new_privs set or CAP_SYS_ADMIN (the kernel's rule), so a runtime
    without noNewPrivileges loads it before dropping capabilities.
    """
    lib = _lib()
    ctx = _build(oci_seccomp)
    try:
        _check(lib.seccomp_load(ctx), "loading seccomp filter")
    finally:
        lib.seccomp_release(ctx)


def _canonical(oci: Mapping[str, Any]) -> str:
    return json.dumps(oci, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=32)
def _compile_cached(canonical_json: str) -> bytes:
    lib = _lib()
    ctx = _build(json.loads(canonical_json))
    try:
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "exporting seccomp filter")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def compile_filter(oci_seccomp: Mapping[str, Any], cache_dir: str | None = None) -> bytes:
    """The BPF program (struct sock_filter array) libseccomp builds for the profile.

    Kept in memory per profile; with ``cache_dir`` also on disk, so short-lived
    runtime processes skip libseccomp's ~10 ms build for a profile seen before.
    """
    canonical = _canonical(oci_seccomp)
    if cache_dir is None:
        return _compile_cached(canonical)
    import hashlib  # only here: OpenSSL's load time is not worth paying on every start

    key = hashlib.sha256(f"{_cache_salt()}\n{canonical}".encode()).hexdigest()
    path = os.path.join(cache_dir, key + ".bpf")
    try:
        with open(path, "rb") as f:
            program = f.read()
        if program and len(program) % 8 == 0:
            return program
    except OSError:
        pass
    program = _compile_cached(canonical)
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as f:
            f.write(program)
        os.replace(temporary, path)
    except OSError:
        pass  # the cache is an optimisation only
    return program


@functools.cache
def _cache_salt() -> str:
    """What else the program depends on: libseccomp's syscall tables and the machine."""

    class _Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    lib = _lib()
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    version = lib.seccomp_version().contents
    return f"v2 libseccomp {version.major}.{version.minor}.{version.micro} {os.uname().machine} binary-tree"


def filter_flags(oci_seccomp: Mapping[str, Any]) -> int:
    """Kernel SECCOMP_FILTER_FLAG_* bits for the profile's ``flags``."""
    bits = 0
    for flag in oci_seccomp.get("flags") or ():
        if flag not in _FILTER_FLAGS:
            raise SeccompError(f"seccomp flag {flag!r} is not supported")
        bits |= _FILTER_FLAGS[flag][1]
    return bits


def load_bpf(program: bytes, flags: int = 0) -> None:
    """Install a program from ``compile_filter`` with seccomp(SECCOMP_SET_MODE_FILTER)."""
    if not program or len(program) % 8:
        raise SeccompError("seccomp program must be a non-empty array of 8-byte instructions")
    try:
        seccomp_set_filter(program, flags)
    except SyscallError as exc:
        raise SeccompError(f"loading seccomp filter: {exc.reason}") from None


# ---------------------------------------------------------------- Docker profile form


def _kernel_at_least(minimum: str, release: str) -> bool:
    def parts(version: str) -> tuple[int, int]:
        match = re.match(r"(\d+)\.(\d+)", version)
        if not match:
            raise SeccompError(f"invalid kernel version {version!r}")
        return int(match.group(1)), int(match.group(2))

    return parts(release) >= parts(minimum)


def docker_profile_to_oci(
    profile: Mapping[str, Any],
    capabilities: Iterable[str],
    arch: str = "x86_64",
    *,
    kernel_release: str | None = None,
) -> dict[str, Any]:
    """Convert Docker's profile form to OCI ``linux.seccomp`` for one bounding set and arch.

    Same selection as moby: ``archMap`` entry for the arch (plus its sub-arches);
    a syscall group is dropped if any ``excludes.caps`` is held, the arch is
    excluded or the kernel is at least ``excludes.minKernel``, and kept only if
    every ``includes`` condition holds.  An empty profile gives ``{}``: no filter at all.
    """
    go_arch = _GO_ARCH.get(arch, arch)
    seccomp_arch = _SECCOMP_ARCH.get(go_arch, "")
    release = kernel_release if kernel_release is not None else os.uname().release
    held = set()
    for cap in capabilities:
        name = _caps.normalize(cap)
        held.update(_caps.ALL_CAPS if name == "ALL" else [name])

    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return {}  # moby's rule: nothing to enforce means seccomp stays off
    if profile.get("architectures") and profile.get("archMap"):
        raise SeccompError(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    oci: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "")}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    architectures: list[str] = list(profile.get("architectures") or ())
    for entry in profile.get("archMap") or ():
        if entry.get("architecture") == seccomp_arch:
            architectures.append(entry["architecture"])
            architectures.extend(entry.get("subArchitectures") or ())
    if architectures:
        oci["architectures"] = architectures
    if profile.get("flags"):
        oci["flags"] = list(profile["flags"])

    syscalls: list[dict[str, Any]] = []
    for call in profile.get("syscalls") or ():
        names = list(call.get("names") or ())
        if call.get("name"):
            if names:
                raise SeccompError(
                    "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
                )
            names = [call["name"]]
        excludes = call.get("excludes") or {}
        if go_arch in (excludes.get("arches") or ()):
            continue
        if any(_caps.normalize(c) in held for c in excludes.get("caps") or ()):
            continue
        if excludes.get("minKernel") and _kernel_at_least(excludes["minKernel"], release):
            continue
        includes = call.get("includes") or {}
        if includes.get("arches") and go_arch not in includes["arches"]:
            continue
        if not all(_caps.normalize(c) in held for c in includes.get("caps") or ()):
            continue
        if includes.get("minKernel") and not _kernel_at_least(includes["minKernel"], release):
            continue
        converted: dict[str, Any] = {"names": names, "action": call.get("action", "")}
        if call.get("errnoRet") is not None:
            converted["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            converted["args"] = [dict(a) for a in call["args"]]
        syscalls.append(converted)
    oci["syscalls"] = syscalls
    return oci


@functools.cache
def _default_profile_json() -> dict[str, Any]:
    import importlib.resources  # ~10 ms to import; the runtime's hot path never needs it

    text = importlib.resources.files("dockyard.runtime").joinpath("data/seccomp-default.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def default_profile(capabilities: Iterable[str], arch: str = "x86_64") -> dict[str, Any]:
    """Docker's default profile in OCI form for the given bounding set (packaged copy, parsed once)."""
    return docker_profile_to_oci(_default_profile_json(), capabilities, arch)
