"""Seccomp filters loaded for real in forked children: denied calls fail, allowed ones work."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.runtime import caps, seccomp

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

NR_KEYCTL = 250
NR_CLONE3 = 435
NR_PERSONALITY = 135
CLONE_NEWUTS = 0x04000000
PR_SET_NO_NEW_PRIVS = 38
KEYCTL_GET_KEYRING_ID = 0


def raw_syscall(number: int, *args: int) -> int:
    """Result of syscall(2), or minus errno (so a child can report exactly what the filter did)."""
    result = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return -ctypes.get_errno() if result == -1 else int(result)


def run_filtered(load: Callable[[], None], probe: Callable[[], Any]) -> tuple[int, Any]:
    """Fork, install a filter with ``load``, run ``probe``; return (exit status, probe's JSON result)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            load()
            payload = {"ok": probe()}
        except BaseException as exc:
            payload = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(payload).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if not data:
        return code, None
    result = json.loads(data)
    assert "error" not in result, result.get("error")
    return code, result["ok"]


def namespace_probe() -> dict[str, int]:
    mount = _libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)
    mount_errno = ctypes.get_errno() if mount else 0
    return {
        "unshare": -ctypes.get_errno() if _libc.unshare(CLONE_NEWUTS) else 0,
        "keyctl": raw_syscall(NR_KEYCTL, KEYCTL_GET_KEYRING_ID, -1, 0),
        "mount": -mount_errno,
        "getpid": raw_syscall(39),
        "clone3": raw_syscall(NR_CLONE3, 0, 0),
    }


@pytest.mark.parametrize("loader", ["libseccomp", "bpf"])
def test_default_profile_denies_namespace_and_key_calls(loader: str) -> None:
    oci = seccomp.default_profile(caps.DEFAULT_DOCKER_CAPS)

    def load() -> None:
        if loader == "libseccomp":
            seccomp.load_filter(oci)
        else:
            seccomp.load_bpf(seccomp.compile_filter(oci), seccomp.filter_flags(oci))

    code, result = run_filtered(load, namespace_probe)
    assert code == 0
    assert result["unshare"] == -errno.EPERM
    assert result["keyctl"] == -errno.EPERM
    assert result["mount"] == -errno.EPERM
    assert result["getpid"] > 0
    assert result["clone3"] == -errno.ENOSYS  # errnoRet 38 in the profile, so glibc falls back to clone


def test_default_profile_with_sys_admin_allows_unshare() -> None:
    oci = seccomp.default_profile([*caps.DEFAULT_DOCKER_CAPS, "CAP_SYS_ADMIN"])
    code, result = run_filtered(lambda: seccomp.load_filter(oci), namespace_probe)
    assert code == 0
    assert result["unshare"] == 0
    assert result["keyctl"] == -errno.EPERM  # keyctl is never allowed by the default profile
    assert result["clone3"] == -errno.EINVAL  # reaches the kernel, which rejects a zero-sized struct


def test_default_profile_argument_conditions() -> None:
    oci = seccomp.default_profile(caps.DEFAULT_DOCKER_CAPS)

    def probe() -> dict[str, int]:
        results = {
            "query": raw_syscall(NR_PERSONALITY, 0xFFFFFFFF),
            "linux32": raw_syscall(NR_PERSONALITY, 0x0008),
            "odd": raw_syscall(NR_PERSONALITY, 0x0001),
        }
        inet = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        inet.close()
        try:
            socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()  # family 40 is not allowed
            results["vsock"] = 0
        except OSError as exc:
            results["vsock"] = -(exc.errno or 0)
        return results

    code, result = run_filtered(lambda: seccomp.load_filter(oci), probe)
    assert code == 0
    assert result["query"] >= 0 and result["linux32"] >= 0
    assert result["odd"] == -errno.EPERM
    assert result["vsock"] == -errno.EPERM


def test_custom_profile_errno_ret_and_or_of_same_argument() -> None:
    oci = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {
                "names": ["uname", "not_a_syscall"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EADDRNOTAVAIL,
            },
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EACCES,
                "args": [
                    {"index": 0, "value": 0x0008, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 0x0400000, "valueTwo": 0x0400000, "op": "SCMP_CMP_MASKED_EQ"},
                ],
            },
            {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"},  # same as default: ignored
        ],
    }

    def probe() -> dict[str, int]:
        try:
            os.uname()
            uname = 0
        except OSError as exc:
            uname = -(exc.errno or 0)
        return {
            "uname": uname,
            "linux32": raw_syscall(NR_PERSONALITY, 0x0008),
            "no_randomize": raw_syscall(NR_PERSONALITY, 0x0400000),
            "plain": raw_syscall(NR_PERSONALITY, 0),
            "getppid": raw_syscall(110),
        }

    code, result = run_filtered(lambda: seccomp.load_filter(oci), probe)
    assert code == 0
    assert result["uname"] == -errno.EADDRNOTAVAIL
    assert result["linux32"] == -errno.EACCES
    assert result["no_randomize"] == -errno.EACCES
    assert result["plain"] >= 0
    assert result["getppid"] > 0


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"])
def test_killing_actions(action: str) -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": action}]}
    code, result = run_filtered(lambda: seccomp.load_filter(oci), lambda: raw_syscall(110))
    assert result is None
    assert code == -signal.SIGSYS


def test_notify_is_refused_clearly() -> None:
    with pytest.raises(seccomp.SeccompError, match="SCMP_ACT_NOTIFY"):
        seccomp.load_filter(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}],
            }
        )


def test_loading_needs_no_new_privs_or_sys_admin() -> None:
    oci = seccomp.default_profile(caps.DEFAULT_DOCKER_CAPS)

    def drop_caps_then_load() -> None:
        caps.set_caps(effective=["CAP_CHOWN"], permitted=["CAP_CHOWN"], inheritable=[])
        seccomp.load_filter(oci)

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            drop_caps_then_load()
            message = b"loaded"
        except seccomp.SeccompError as exc:
            message = str(exc).encode()
        os.write(write_end, message)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message_text = pipe.read().decode()
    os.waitpid(pid, 0)
    assert "Permission denied" in message_text

    def nnp_then_load() -> None:
        caps.set_caps(effective=["CAP_CHOWN"], permitted=["CAP_CHOWN"], inheritable=[])
        assert _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        seccomp.load_filter(oci)

    code, result = run_filtered(nnp_then_load, namespace_probe)
    assert code == 0 and result["unshare"] == -errno.EPERM
