"""Capability names, masks, the host bounding set, and the prctl/capset wrappers (in a forked child)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.runtime import caps


def run_in_child(body: Callable[[], Any]) -> Any:
    """Run ``body`` in a forked child (capability changes must not touch the test process)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            payload = {"ok": body()}
        except BaseException as exc:  # report every failure to the parent
            payload = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(payload).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result = json.loads(data)
    assert "error" not in result, result.get("error")
    return result["ok"]


def test_all_caps_numbering() -> None:
    assert len(caps.ALL_CAPS) == 41
    assert caps.ALL_CAPS[0] == "CAP_CHOWN"
    assert caps.cap_number("CAP_SYS_ADMIN") == 21
    assert caps.cap_number("sys_resource") == 24
    assert caps.cap_number("CAP_CHECKPOINT_RESTORE") == 40
    assert caps.cap_name(13) == "CAP_NET_RAW"
    with pytest.raises(ValueError):
        caps.cap_name(41)


@pytest.mark.parametrize(
    "spelling", ["net_admin", "NET_ADMIN", "CAP_NET_ADMIN", "cap_net_admin", " Net_Admin "]
)
def test_normalize_spellings(spelling: str) -> None:
    assert caps.normalize(spelling) == "CAP_NET_ADMIN"


def test_normalize_all_and_unknown() -> None:
    assert caps.normalize("all") == "ALL"
    assert caps.normalize("ALL") == "ALL"
    with pytest.raises(ValueError, match='unknown capability: "CAP_FOO"'):
        caps.normalize("foo")
    with pytest.raises(ValueError):
        caps.cap_number("ALL")


def test_default_docker_caps() -> None:
    assert len(caps.DEFAULT_DOCKER_CAPS) == 14
    assert set(caps.DEFAULT_DOCKER_CAPS) == {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    }  # fmt: skip


def test_masks_round_trip() -> None:
    names = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_CHECKPOINT_RESTORE"]
    mask = caps.names_to_mask(names)
    assert mask == 1 | 1 << 13 | 1 << 40
    assert caps.mask_to_names(mask, 40) == names
    assert caps.names_to_mask(["ALL"]) == (1 << 41) - 1


def test_parse_status_bounding_set_without_sys_resource() -> None:
    status = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n"
    masks = caps.parse_status_caps(status)
    assert masks["CapInh"] == 0
    bounding = caps.mask_to_names(masks["CapBnd"], 40)
    assert "CAP_SYS_RESOURCE" not in bounding
    assert len(bounding) == 40
    assert bounding[-1] == "CAP_CHECKPOINT_RESTORE"


def test_host_bounding_set_matches_proc() -> None:
    with open("/proc/self/status") as f:
        mask = caps.parse_status_caps(f.read())["CapBnd"]
    host = caps.host_bounding_set()
    assert host == caps.mask_to_names(mask, caps.last_cap())
    assert caps.names_to_mask(host) == mask & ((1 << (caps.last_cap() + 1)) - 1)


def _status_masks() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return caps.parse_status_caps(f.read())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_drop_bounding_and_set_caps_in_child() -> None:
    keep = ["CAP_CHOWN", "CAP_KILL", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"]

    def body() -> dict[str, int]:
        caps.drop_bounding(keep)
        caps.set_caps(effective=keep, permitted=keep, inheritable=["CAP_NET_BIND_SERVICE"])
        caps.clear_ambient()
        caps.raise_ambient(["net_bind_service"])
        return _status_masks()

    masks = run_in_child(body)
    host = caps.names_to_mask(caps.host_bounding_set())
    assert masks["CapBnd"] == caps.names_to_mask(keep) & host
    assert masks["CapEff"] == caps.names_to_mask(keep)
    assert masks["CapPrm"] == caps.names_to_mask(keep)
    assert masks["CapInh"] == caps.names_to_mask(["CAP_NET_BIND_SERVICE"])
    assert masks["CapAmb"] == caps.names_to_mask(["CAP_NET_BIND_SERVICE"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_keepcaps_survives_setuid_in_child() -> None:
    def body() -> dict[str, int]:
        caps.set_keepcaps(True)
        os.setresuid(65534, 65534, 65534)
        return _status_masks()

    masks = run_in_child(body)
    assert masks["CapEff"] == 0  # setuid clears effective even with keepcaps
    assert masks["CapPrm"] != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_ambient_needs_inheritable_in_child() -> None:
    def body() -> str:
        caps.set_caps(effective=["CAP_CHOWN"], permitted=["CAP_CHOWN"], inheritable=[])
        try:
            caps.raise_ambient(["CAP_CHOWN"])
        except OSError as exc:
            return str(exc.errno)
        return "raised"

    assert run_in_child(body) == str(1)  # EPERM
