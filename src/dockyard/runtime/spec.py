"""Load a bundle's config.json and check the fields the runtime honours.

Validation is hand-written on purpose: importing jsonschema costs more than
a whole container start.  Each check names the offending field, the way
runc's messages do, so a bad bundle is diagnosed without reading code.
"""

from __future__ import annotations

import json
import os

from dockyard.runtime.errors import OCIRuntimeError
from dockyard.sys.linux import (
    MS_BIND,
    MS_DIRSYNC,
    MS_LAZYTIME,
    MS_MANDLOCK,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_SLAVE,
    MS_STRICTATIME,
    MS_SYNCHRONOUS,
    MS_UNBINDABLE,
    NAMESPACES,
)

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

    Spec = dict[str, Any]


# option -> (clear?, flag)
MOUNT_FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID),
    "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV),
    "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC),
    "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS),
    "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "atime": (True, MS_NOATIME),
    "noatime": (False, MS_NOATIME),
    "diratime": (True, MS_NODIRATIME),
    "nodiratime": (False, MS_NODIRATIME),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "lazytime": (False, MS_LAZYTIME),
    "nolazytime": (True, MS_LAZYTIME),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "symfollow": (True, MS_NOSYMFOLLOW),
}

PROPAGATION_FLAGS: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# options runc accepts and handles elsewhere or ignores
IGNORED_OPTIONS = frozenset({"tmpcopyup", "defaults", "rro", "rrw", "nocopyup", "copyup"})

HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def parse_mount_options(options: list[str]) -> tuple[int, list[int], str]:
    """Split OCI mount options into MS_* flags, propagation flags and fs data."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in MOUNT_FLAGS:
            clear, bit = MOUNT_FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in PROPAGATION_FLAGS:
            propagation.append(PROPAGATION_FLAGS[opt])
        elif opt in IGNORED_OPTIONS:
            continue
        else:
            data.append(opt)
    return flags, propagation, ",".join(data)


def _fail(msg: str) -> OCIRuntimeError:
    return OCIRuntimeError(msg, "invalid")


def _want(value: object, typ: type | tuple[type, ...], field: str) -> None:
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise _fail(f"invalid config: {field} must be a {getattr(typ, '__name__', typ)}")


def load_bundle(bundle: str) -> Spec:
    """Read and validate ``<bundle>/config.json``; resolve root.path to an absolute path."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise _fail(f"JSON specification file {path} not found") from None
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from None
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise _fail(f"invalid JSON in {path}: {exc}") from None
    if not isinstance(spec, dict):
        raise _fail(f"invalid config: {path} must hold a JSON object")
    validate(spec)
    root = spec["root"]["path"]
    rootfs = root if os.path.isabs(root) else os.path.join(os.path.abspath(bundle), root)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise _fail(f"rootfs ({rootfs}) does not exist")
    spec["root"]["path"] = rootfs
    return spec


def validate(spec: Spec) -> None:
    """Check structure and values of every field the runtime acts on."""
    if not isinstance(spec.get("ociVersion"), str):
        raise _fail("invalid config: ociVersion must be a string")
    root = spec.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str) or not root["path"]:
        raise _fail("invalid config: root.path is required")
    proc = spec.get("process")
    if proc is not None:
        validate_process(proc, "process")
    for i, m in enumerate(spec.get("mounts") or []):
        field = f"mounts[{i}]"
        _want(m, dict, field)
        dest = m.get("destination")
        if not isinstance(dest, str) or not dest.startswith("/"):
            raise _fail(f"invalid config: {field}.destination must be an absolute path")
        _want(m.get("options", []), list, f"{field}.options")
    if "hostname" in spec:
        _want(spec["hostname"], str, "hostname")
    linux = spec.get("linux") or {}
    _want(linux, dict, "linux")
    seen: set[str] = set()
    for i, ns in enumerate(linux.get("namespaces") or []):
        typ = ns.get("type") if isinstance(ns, dict) else None
        if typ not in NAMESPACES:
            raise _fail(f"invalid config: linux.namespaces[{i}]: unknown namespace type {typ!r}")
        if typ == "user":
            raise OCIRuntimeError("user namespaces are not supported by this runtime", "invalid")
        if typ in seen:
            raise _fail(f"invalid config: duplicate namespace {typ!r}")
        seen.add(typ)
        if "path" in ns:
            _want(ns["path"], str, f"linux.namespaces[{i}].path")
    if spec.get("hostname") and "uts" not in seen:
        raise _fail("invalid config: unable to set hostname without a private UTS namespace")
    for i, dev in enumerate(linux.get("devices") or []):
        if dev.get("type") not in ("c", "b", "u", "p") or not str(dev.get("path", "")).startswith("/"):
            raise _fail(f"invalid config: linux.devices[{i}] needs a type (c, b, u, p) and an absolute path")
    for key in ("maskedPaths", "readonlyPaths"):
        _want(linux.get(key, []), list, f"linux.{key}")
    _want(linux.get("sysctl", {}), dict, "linux.sysctl")
    _want(linux.get("resources", {}), dict, "linux.resources")
    hooks = spec.get("hooks") or {}
    _want(hooks, dict, "hooks")
    for name, entries in hooks.items():
        if name not in HOOK_NAMES:
            continue
        for j, h in enumerate(entries or []):
            if not isinstance(h, dict) or not isinstance(h.get("path"), str) or not os.path.isabs(h["path"]):
                raise _fail(f"invalid config: hooks.{name}[{j}].path must be an absolute path")


def validate_process(proc: object, field: str = "process") -> None:
    """Validate a process object (config.json's, or one given to exec)."""
    _want(proc, dict, field)
    assert isinstance(proc, dict)
    args = proc.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise _fail(f"invalid config: {field}.args must be a non-empty list of strings")
    cwd = proc.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise _fail(f"invalid config: {field}.cwd must be an absolute path")
    env = proc.get("env", [])
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise _fail(f"invalid config: {field}.env must be a list of strings")
    user = proc.get("user", {})
    _want(user, dict, f"{field}.user")
    for key in ("uid", "gid"):
        if key in user:
            _want(user[key], int, f"{field}.user.{key}")
    for g in user.get("additionalGids") or []:
        _want(g, int, f"{field}.user.additionalGids[]")
    for i, rl in enumerate(proc.get("rlimits") or []):
        if not isinstance(rl, dict) or not str(rl.get("type", "")).startswith("RLIMIT_"):
            raise _fail(f"invalid config: {field}.rlimits[{i}].type must name an RLIMIT_*")
    caps = proc.get("capabilities") or {}
    _want(caps, dict, f"{field}.capabilities")


def resolve_in_root(root: str, path: str) -> str:
    """Join ``path`` under ``root`` following symlinks without escaping ``root``."""
    parts = [p for p in path.split("/") if p and p != "."]
    current = root
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = os.path.dirname(current) if current != root else root
            if not current.startswith(root):
                current = root
            continue
        candidate = os.path.join(current, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            current = candidate
            continue
        hops += 1
        if hops > 255:
            raise OSError(40, "too many levels of symbolic links", path)
        if target.startswith("/"):
            current = root
        parts = [p for p in target.split("/") if p and p != "."] + parts
    return current


def env_to_dict(env: list[str]) -> dict[str, str]:
    """OCI's "K=V" list to a mapping (later entries win, like execve callers)."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out
