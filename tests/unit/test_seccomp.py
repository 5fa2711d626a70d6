"""Docker profile → OCI conversion (includes/excludes by caps, arch, kernel) and action encoding."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime import caps, seccomp

DOCKER_CAPS = caps.DEFAULT_DOCKER_CAPS


def allowed_names(oci: dict[str, Any]) -> set[str]:
    """Syscalls allowed without argument conditions."""
    return {
        name
        for call in oci["syscalls"]
        if call["action"] == "SCMP_ACT_ALLOW" and not call.get("args")
        for name in call["names"]
    }


def rules_for(oci: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [call for call in oci["syscalls"] if name in call["names"]]


def test_default_profile_without_sys_admin_denies_namespace_calls() -> None:
    oci = seccomp.default_profile(DOCKER_CAPS)
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO"
    assert oci["defaultErrnoRet"] == errno.EPERM
    allowed = allowed_names(oci)
    for name in ("mount", "umount2", "unshare", "setns", "keyctl", "bpf", "pivot_root", "syslog", "reboot"):
        assert name not in allowed, name
    assert {"read", "write", "getpid", "execve", "chroot"} <= allowed  # chroot: CAP_SYS_CHROOT is default
    clone = rules_for(oci, "clone")
    assert len(clone) == 1 and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    clone3 = rules_for(oci, "clone3")
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}]


def test_default_profile_with_sys_admin_allows_mount_and_unshare() -> None:
    oci = seccomp.default_profile([*DOCKER_CAPS, "sys_admin"])
    allowed = allowed_names(oci)
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "fanotify_init"} <= allowed
    # the clone rule with flag mask is excluded when CAP_SYS_ADMIN is held, clone3's ENOSYS too
    assert all(not call.get("args") for call in rules_for(oci, "clone"))
    assert all(call["action"] == "SCMP_ACT_ALLOW" for call in rules_for(oci, "clone3"))


def test_all_capabilities_include_every_cap_gated_group() -> None:
    oci = seccomp.default_profile(["ALL"])
    allowed = allowed_names(oci)
    assert {"reboot", "init_module", "acct", "settimeofday", "syslog", "perf_event_open", "iopl"} <= allowed


def test_arch_selection_amd64() -> None:
    oci = seccomp.default_profile(DOCKER_CAPS, "x86_64")
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = allowed_names(oci)
    assert {"arch_prctl", "modify_ldt"} <= allowed
    assert "arm_fadvise64_64" not in allowed and "riscv_flush_icache" not in allowed


def test_arch_selection_arm64() -> None:
    oci = seccomp.default_profile(DOCKER_CAPS, "aarch64")
    assert oci["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    allowed = allowed_names(oci)
    assert "arm_fadvise64_64" in allowed
    assert "arch_prctl" not in allowed and "modify_ldt" not in allowed


def test_min_kernel_includes_and_excludes() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
            {"names": ["old_call"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
        ],
    }
    old = seccomp.docker_profile_to_oci(profile, [], kernel_release="4.19.0-21-amd64")
    new = seccomp.docker_profile_to_oci(profile, [], kernel_release="6.1.0")
    assert allowed_names(old) == {"old_call"}
    assert allowed_names(new) == {"new_call"}


def test_excludes_any_cap_includes_all_caps() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {
                "names": ["both"],
                "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_NET_ADMIN", "CAP_SYS_TIME"]},
            },
            {
                "names": ["neither"],
                "action": "SCMP_ACT_ALLOW",
                "excludes": {"caps": ["CAP_NET_ADMIN", "CAP_SYS_TIME"]},
            },
        ],
    }
    assert allowed_names(seccomp.docker_profile_to_oci(profile, ["NET_ADMIN"])) == set()
    assert allowed_names(seccomp.docker_profile_to_oci(profile, [])) == {"neither"}
    assert allowed_names(seccomp.docker_profile_to_oci(profile, ["net_admin", "sys_time"])) == {"both"}


def test_name_and_architectures_forms() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"name": "uname", "action": "SCMP_ACT_ERRNO", "errnoRet": 99}],
    }
    oci = seccomp.docker_profile_to_oci(profile, [])
    assert oci["architectures"] == ["SCMP_ARCH_X86_64"]
    assert oci["flags"] == ["SECCOMP_FILTER_FLAG_LOG"]
    assert oci["syscalls"] == [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}]
    with pytest.raises(seccomp.SeccompError, match="both 'name' and 'names'"):
        seccomp.docker_profile_to_oci(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}],
            },
            [],
        )
    with pytest.raises(seccomp.SeccompError, match="both 'architectures' and 'archMap'"):
        seccomp.docker_profile_to_oci(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86"],
                "archMap": [{"architecture": "x"}],
            },
            [],
        )


def test_default_profile_is_cached_and_not_mutated() -> None:
    first = seccomp.default_profile(DOCKER_CAPS)
    first["syscalls"].clear()
    second = seccomp.default_profile(DOCKER_CAPS)
    assert len(second["syscalls"]) > 10


def test_action_values() -> None:
    assert seccomp.action_value("SCMP_ACT_ALLOW", None) == 0x7FFF0000
    assert seccomp.action_value("SCMP_ACT_ERRNO", None) == 0x00050000 | errno.EPERM
    assert seccomp.action_value("SCMP_ACT_ERRNO", 38) == 0x00050000 | 38
    assert seccomp.action_value("SCMP_ACT_KILL", None) == 0
    assert seccomp.action_value("SCMP_ACT_KILL_PROCESS", None) == 0x80000000
    assert seccomp.action_value("SCMP_ACT_LOG", None) == 0x7FFC0000
    with pytest.raises(seccomp.SeccompError, match="NOTIFY"):
        seccomp.action_value("SCMP_ACT_NOTIFY", None)
    with pytest.raises(seccomp.SeccompError, match="unknown seccomp action"):
        seccomp.action_value("SCMP_ACT_BOGUS", None)


def test_compile_filter_gives_bpf_and_caches() -> None:
    oci = seccomp.default_profile(DOCKER_CAPS)
    program = seccomp.compile_filter(oci)
    assert program and len(program) % 8 == 0
    assert seccomp.compile_filter(json.loads(json.dumps(oci))) is program


def test_compile_rejects_bad_profiles() -> None:
    with pytest.raises(seccomp.SeccompError, match="comparison operator"):
        seccomp.compile_filter(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}],
                    }
                ],
            }  # fmt: skip
        )
    with pytest.raises(seccomp.SeccompError, match="architecture"):
        seccomp.compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]})
    with pytest.raises(seccomp.SeccompError, match="flag"):
        seccomp.compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]})


def test_unknown_syscall_names_are_skipped() -> None:
    program = seccomp.compile_filter(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_call", "uname"], "action": "SCMP_ACT_ERRNO"}],
        }
    )
    assert len(program) % 8 == 0


def test_compile_filter_disk_cache(tmp_path: Path) -> None:
    oci = seccomp.default_profile(DOCKER_CAPS)
    program = seccomp.compile_filter(oci, cache_dir=str(tmp_path / "cache"))
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == program
    assert seccomp.compile_filter(oci, cache_dir=str(tmp_path / "cache")) == program
    files[0].write_bytes(b"\0" * 8)  # a cached program is used as is
    assert seccomp.compile_filter(oci, cache_dir=str(tmp_path / "cache")) == b"\0" * 8


def test_empty_profile_means_no_filter() -> None:
    assert seccomp.docker_profile_to_oci({}, DOCKER_CAPS) == {}
