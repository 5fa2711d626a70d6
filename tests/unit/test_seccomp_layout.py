"""The binary-tree filter dockyard installs gives every syscall the verdict of libseccomp's default layout.

``runtime.seccomp`` asks libseccomp for its binary-tree layout (it installs ~3x faster: the kernel evaluates a
new filter for every syscall number to fill its cache). Both programs come from libseccomp; this test runs them
side by side through a classic-BPF interpreter, for docker's default profile and a profile with argument
rules, over every syscall number of each architecture the filter names (x86_64, i386, x32), a foreign
architecture, and, wherever a program looks at the arguments, each constant it compares them with.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import struct

import pytest

from dockyard.runtime import caps, seccomp

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_BIT = 0x40000000


def _program(oci: dict, optimize: int | None) -> list[tuple[int, int, int, int]]:
    lib = seccomp._lib()
    ctx = seccomp._build(oci)
    try:
        if optimize is not None and lib.seccomp_attr_set(ctx, seccomp._ATTR_CTL_OPTIMIZE, optimize) != 0:
            pytest.skip("this libseccomp (< 2.5) has no binary-tree layout: the default one is installed")
        fd = os.memfd_create("bpf")
        try:
            assert lib.seccomp_export_bpf(ctx, fd) == 0
            os.lseek(fd, 0, os.SEEK_SET)
            data = b""
            while chunk := os.read(fd, 65536):
                data += chunk
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    return list(struct.iter_unpack("=HBBI", data))


class Run:
    """One evaluation: the verdict, and whether the program read any argument word."""

    def __init__(self, prog: list[tuple[int, int, int, int]], data: bytes) -> None:
        self.read_args = False
        self.arg_consts: set[int] = set()  # what was compared with, or masked into, an argument word
        self._on_arg = False
        self.verdict = self._run(prog, data)

    def _run(self, prog: list[tuple[int, int, int, int]], data: bytes) -> int:
        a = x = 0
        mem = [0] * 16
        pc = 0
        for _ in range(100_000):
            code, jt, jf, k = prog[pc]
            cls = code & 0x07
            pc += 1
            if cls == 0x00:  # LD
                mode = code & 0xE0
                self._on_arg = mode == 0x20 and k >= 16
                if mode == 0x20:  # ABS, word
                    self.read_args = self.read_args or self._on_arg
                    a = struct.unpack_from("<I", data, k)[0]
                elif mode == 0x00:
                    a = k
                elif mode == 0x60:
                    a = mem[k]
                elif mode == 0x80:
                    a = len(data)
                else:
                    raise AssertionError(f"ld mode {mode:#x}")
            elif cls == 0x01:  # LDX
                x = mem[k] if code & 0xE0 == 0x60 else k
            elif cls == 0x02:
                mem[k] = a
            elif cls == 0x03:
                mem[k] = x
            elif cls == 0x04:  # ALU
                op, src = code & 0xF0, (x if code & 0x08 else k)
                if self._on_arg and op == 0x50:
                    self.arg_consts.add(src)
                a = _alu(op, a, src)
            elif cls == 0x05:  # JMP
                op, src = code & 0xF0, (x if code & 0x08 else k)
                if op == 0x00:
                    pc += k
                    continue
                if self._on_arg:
                    self.arg_consts.add(src)
                taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
                pc += jt if taken else jf
            elif cls == 0x06:  # RET
                return a if code & 0x18 == 0x10 else k
            elif cls == 0x07:
                self._on_arg = False
                if code & 0xF8 == 0x00:
                    x = a
                else:
                    a = x
        raise AssertionError("program did not return")


def _alu(op: int, a: int, src: int) -> int:
    if op == 0x00:
        r = a + src
    elif op == 0x10:
        r = a - src
    elif op == 0x20:
        r = a * src
    elif op == 0x40:
        r = a | src
    elif op == 0x50:
        r = a & src
    elif op == 0x60:
        r = a << (src & 31)
    elif op == 0x70:
        r = a >> (src & 31)
    elif op == 0x80:
        r = -a
    elif op == 0xA0:
        r = a ^ src
    else:
        raise AssertionError(f"alu op {op:#x}")
    return r & 0xFFFFFFFF


def _data(arch: int, nr: int, args: tuple[int, ...] = (0,) * 6) -> bytes:
    return struct.pack("<iIQ6Q", nr, arch, 0x1000, *args)


def _compare_arguments(default: list[tuple[int, int, int, int]], tree: list[tuple[int, int, int, int]], arch: int,
                       nr: int, consts: set[int]) -> int:
    """Each argument word set to each constant a program compares arguments with (and its neighbours), until
    the runs show no new constant; returns the number of argument vectors compared."""
    tried: set[int] = set()
    checked = 0
    while consts - tried:
        fresh = consts - tried
        tried |= fresh
        values = {c for k in fresh for c in (k, (k - 1) & 0xFFFFFFFF, (k + 1) & 0xFFFFFFFF)} | {0, 0xFFFFFFFF}
        for index, value in itertools.product(range(6), sorted(values)):
            for word in (value, value << 32, value | (value << 32)):
                args = tuple(word if i == index else 0 for i in range(6))
                a, b = Run(default, _data(arch, nr, args)), Run(tree, _data(arch, nr, args))
                assert a.verdict == b.verdict, (hex(arch), nr, index, hex(word))
                consts |= a.arg_consts | b.arg_consts
                checked += 1
    return checked


def _compare(oci: dict) -> int:
    default, tree = _program(oci, 1), _program(oci, 2)
    assert default != tree  # the layouts differ: the test compares two programs, not one with itself
    checked = 0
    arches = [(AUDIT_ARCH_X86_64, range(0, 600)), (AUDIT_ARCH_X86_64, range(X32_BIT, X32_BIT + 600)),
              (AUDIT_ARCH_I386, range(0, 600)), (AUDIT_ARCH_AARCH64, range(0, 40))]
    for arch, numbers in arches:
        for nr in itertools.chain(numbers, [-1, 0x7FFFFFFF]):
            a, b = Run(default, _data(arch, nr)), Run(tree, _data(arch, nr))
            assert a.verdict == b.verdict, (hex(arch), nr)
            checked += 1
            if not (a.read_args or b.read_args):
                continue
            checked += _compare_arguments(default, tree, arch, nr, a.arg_consts | b.arg_consts)
    return checked


@pytest.fixture(scope="module")
def default_profile() -> dict:
    return seccomp.default_profile(caps.DEFAULT_DOCKER_CAPS)


def test_tree_layout_agrees_with_default_layout_on_docker_profile(default_profile: dict) -> None:
    assert _compare(default_profile) > 1800


def test_tree_layout_agrees_on_argument_rules() -> None:
    oci = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_GE"}]},
            {"names": ["keyctl", "add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        ],
    }
    assert _compare(oci) > 1800


def test_the_installed_program_is_the_tree_layout(default_profile: dict) -> None:
    assert list(struct.iter_unpack("=HBBI", seccomp.compile_filter(default_profile))) == _program(default_profile, 2)


@pytest.mark.skipif(os.geteuid() != 0, reason="installs a filter in a child")
def test_tree_program_loads_and_filters(default_profile: dict) -> None:
    program = seccomp.compile_filter(default_profile)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            seccomp.load_bpf(program, 0)
            keyctl = libc.syscall(ctypes.c_long(250), 0, ctypes.c_long(-1), 0)
            result = {"keyctl_errno": ctypes.get_errno() if keyctl == -1 else 0, "getpid": libc.syscall(39)}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = {"error": repr(exc)}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        result = json.loads(pipe.read() or b"{}")
    os.waitpid(pid, 0)
    assert result.get("keyctl_errno") == 1 and result.get("getpid", 0) > 0, result
