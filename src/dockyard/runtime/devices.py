"""Device nodes in the container's /dev and the cgroup rules that allow them.

runc creates the same six nodes in every container with a private /dev and
allows them in the device cgroup even when the spec denies everything, so a
config that says only ``deny all`` still gets a working /dev/null.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

# path, major, minor
DEFAULT_DEVICES: list[tuple[str, int, int]] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
]

DEFAULT_LINKS: list[tuple[str, str]] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
]

# device-cgroup rules every container gets (runc's AllowedDevices)
DEFAULT_ALLOW_RULES: list[dict[str, Any]] = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def device_rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's device rules followed by the defaults and the spec's own devices."""
    linux = spec.get("linux") or {}
    rules = list((linux.get("resources") or {}).get("devices") or [])
    rules += DEFAULT_ALLOW_RULES
    for dev in linux.get("devices") or []:
        rules.append(
            {
                "allow": True,
                "type": "c" if dev["type"] == "u" else dev["type"],
                "major": dev.get("major"),
                "minor": dev.get("minor"),
                "access": "rwm",
            }
        )
    return rules


def make_node(path: str, typ: str, major: int, minor: int, mode: int, uid: int, gid: int) -> None:
    """mknod a device (replacing whatever is there) and set its owner."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mknod(path, (mode & 0o7777) | _TYPES[typ], os.makedev(major, minor))
    os.chmod(path, mode & 0o7777)
    os.chown(path, uid, gid)


def create_default_devices(rootfs: str, resolve: Any) -> None:
    """The standard nodes and /dev symlinks, as runc makes them."""
    old = os.umask(0)
    try:
        for path, major, minor in DEFAULT_DEVICES:
            make_node(resolve(rootfs, path), "c", major, minor, 0o666, 0, 0)
    finally:
        os.umask(old)
    for target, link in DEFAULT_LINKS:
        dest = resolve(rootfs, link)
        if not os.path.lexists(dest):
            os.symlink(target, dest)


def create_spec_devices(rootfs: str, spec: dict[str, Any], resolve: Any) -> None:
    """linux.devices: mknod each with its mode and owner."""
    old = os.umask(0)
    try:
        for dev in (spec.get("linux") or {}).get("devices") or []:
            dest = resolve(rootfs, dev["path"])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            mode = dev.get("fileMode", 0o666)
            make_node(
                dest, dev["type"], dev.get("major", 0), dev.get("minor", 0), mode, dev.get("uid", 0), dev.get("gid", 0)
            )
    finally:
        os.umask(old)
