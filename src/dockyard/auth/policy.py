"""The authorization policy: what a non-admin client may ask for in a request body, whatever its scope.

A policy is a list of named rules, each on one field of one kind of request body. A rule denies the request
when the field holds a listed value (`deny`), holds anything at all (`deny_set`), matches a pattern
(`deny_match`), or names a host path outside the listed ones (`allow_paths`). The first rule that denies
names itself in the 403. Field paths are dotted (`HostConfig.Privileged`); `[]` walks a list and
`[Type=bind]` walks only the list's items whose `Type` is `bind`. Keys match case-insensitively, as the
Engine API's JSON decoding does. A build's fields are its query parameters (`networkmode`), never its context.

    rules:
      - name: privileged
        request: container-create       # container-create (default), container-update, exec-create, build
        field: HostConfig.Privileged
        deny: [true]
      - name: host-bind
        field: HostConfig.Binds[]
        value: bind-source              # the host side of "SRC:DST[:OPTS]"; named volumes are not host paths
        allow_paths: [/srv/ci]
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

KINDS = ("container-create", "container-update", "exec-create", "build")
_OPS = ("deny", "deny_set", "deny_match", "allow_paths")
_STEP = re.compile(r"^([^.\[\]]+)(\[(?:([^=\]]+)=([^\]]*))?\])?$")

DEFAULT_POLICY = """\
rules:
  - {name: privileged, field: HostConfig.Privileged, deny: [true]}
  - {name: cap-add, field: HostConfig.CapAdd, deny_set: true}
  - {name: host-bind, field: "HostConfig.Binds[]", value: bind-source, allow_paths: []}
  - {name: host-mount, field: "HostConfig.Mounts[Type=bind].Source", allow_paths: []}
  - {name: network-host, field: HostConfig.NetworkMode, deny: [host]}
  - {name: pid-host, field: HostConfig.PidMode, deny: [host]}
  - {name: ipc-host, field: HostConfig.IpcMode, deny: [host]}
  - {name: uts-host, field: HostConfig.UTSMode, deny: [host]}
  - {name: userns-host, field: HostConfig.UsernsMode, deny: [host]}
  - {name: cgroup-parent, field: HostConfig.CgroupParent, deny_set: true}
  - {name: devices, field: HostConfig.Devices, deny_set: true}
  - {name: device-requests, field: HostConfig.DeviceRequests, deny_set: true}
  - {name: device-cgroup-rules, field: HostConfig.DeviceCgroupRules, deny_set: true}
  - name: security-opt-unconfined
    field: "HostConfig.SecurityOpt[]"
    deny_match: ['(seccomp|apparmor)[=:]unconfined', 'label[=:]disable', 'systempaths=unconfined']
  - {name: update-devices, request: container-update, field: Devices, deny_set: true}
  - {name: update-device-cgroup-rules, request: container-update, field: DeviceCgroupRules, deny_set: true}
  - {name: exec-privileged, request: exec-create, field: Privileged, deny: [true]}
  - {name: build-network-host, request: build, field: networkmode, deny: [host]}
"""


class PolicyError(Exception):
    """A policy file that cannot be used."""


class PolicyDenied(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Rule:
    name: str
    on: str
    field: str
    steps: tuple[tuple[str, bool, str | None, str | None], ...]
    deny: tuple[Any, ...] = ()
    deny_set: bool = False
    deny_match: tuple[re.Pattern[str], ...] = ()
    allow_paths: tuple[str, ...] | None = None
    value: str | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def values(self, body: Any) -> Iterator[Any]:
        nodes: list[Any] = [body]
        for key, is_list, fkey, fval in self.steps:
            nxt: list[Any] = []
            for n in nodes:
                if not isinstance(n, dict):
                    continue
                for k, v in n.items():
                    if isinstance(k, str) and k.lower() == key.lower():
                        if not is_list:
                            nxt.append(v)
                        elif isinstance(v, list):
                            nxt += [i for i in v if fkey is None or _item_matches(i, fkey, fval or "")]
            nodes = nxt
        for n in nodes:
            if self.value == "bind-source":
                if not isinstance(n, str):
                    continue
                src = n.split(":", 1)[0]
                if src.startswith("/"):
                    yield src
            else:
                yield n

    def check(self, body: Any) -> None:
        for v in self.values(body):
            shown = _show(v)
            if self.deny_set and v not in (None, False, "", [], {}, 0):
                raise PolicyDenied(self.name, f"{self.field} is not allowed")
            if self.deny and any(_same(v, d) for d in self.deny):
                raise PolicyDenied(self.name, f"{self.field}={shown} is not allowed")
            if self.deny_match:
                for item in v if isinstance(v, list) else [v]:
                    if isinstance(item, str) and any(p.fullmatch(item) for p in self.deny_match):
                        raise PolicyDenied(self.name, f"{self.field}={_show(item)} is not allowed")
            if self.allow_paths is not None:
                for item in v if isinstance(v, list) else [v]:
                    if isinstance(item, str) and item and not _under(item, self.allow_paths):
                        allowed = ", ".join(self.allow_paths) or "none"
                        raise PolicyDenied(self.name, f"host path {item} is outside the allowed paths ({allowed})")


def _item_matches(item: Any, key: str, want: str) -> bool:
    if not isinstance(item, dict):
        return False
    return any(isinstance(k, str) and k.lower() == key.lower() and str(v).lower() == want.lower()
               for k, v in item.items())


def _same(value: Any, denied: Any) -> bool:
    if isinstance(denied, bool) or isinstance(value, bool):
        return value is denied or (isinstance(value, str) and value.lower() == str(denied).lower())
    if isinstance(denied, str) and isinstance(value, str):
        return value.lower() == denied.lower()
    return bool(value == denied)


def _show(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _under(path: str, allowed: tuple[str, ...]) -> bool:
    """``path`` (symlinks resolved, as the mount would) is one of ``allowed`` or beneath one."""
    real = os.path.realpath(path)
    for a in allowed:
        base = os.path.realpath(a)
        if real == base or real.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _rule(entry: Any, source: str) -> Rule:
    if not isinstance(entry, dict):
        raise PolicyError(f"{source}: each rule must be a mapping")
    name, fpath, on = entry.get("name"), entry.get("field"), entry.get("request", "container-create")
    if not isinstance(name, str) or not name or not isinstance(fpath, str) or not fpath:
        raise PolicyError(f"{source}: each rule needs a 'name' and a 'field'")
    if on not in KINDS:
        raise PolicyError(f"{source}: rule {name!r}: 'request' must be one of {', '.join(KINDS)}")
    unknown = set(entry) - {"name", "field", "request", "value", *_OPS}
    if unknown:
        raise PolicyError(f"{source}: rule {name!r}: unknown key {sorted(unknown)[0]!r}")
    if not any(k in entry for k in _OPS):
        raise PolicyError(f"{source}: rule {name!r} needs one of {', '.join(_OPS)}")
    if entry.get("value") not in (None, "bind-source"):
        raise PolicyError(f"{source}: rule {name!r}: 'value' can only be bind-source")
    steps = []
    for part in fpath.split("."):
        m = _STEP.match(part)
        if not m:
            raise PolicyError(f"{source}: rule {name!r}: bad field path {fpath!r}")
        steps.append((m.group(1), m.group(2) is not None, m.group(3), m.group(4)))
    try:
        patterns = tuple(re.compile(str(p)) for p in entry.get("deny_match") or [])
    except re.error as e:
        raise PolicyError(f"{source}: rule {name!r}: bad pattern: {e}") from None
    deny = entry.get("deny") or []
    paths = entry.get("allow_paths")
    if not isinstance(deny, list) or (paths is not None and not isinstance(paths, list)):
        raise PolicyError(f"{source}: rule {name!r}: 'deny' and 'allow_paths' are lists")
    if paths is not None and any(not isinstance(p, str) or not p.startswith("/") for p in paths):
        raise PolicyError(f"{source}: rule {name!r}: 'allow_paths' holds absolute paths")
    return Rule(name=name, on=on, field=fpath, steps=tuple(steps), deny=tuple(deny),
                deny_set=bool(entry.get("deny_set")), deny_match=patterns,
                allow_paths=tuple(paths) if paths is not None else None, value=entry.get("value"), raw=dict(entry))


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    source: str

    def check(self, kind: str, body: Any) -> None:
        for r in self.rules:
            if r.on == kind:
                r.check(body)

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "request": r.on, **{k: v for k, v in r.raw.items() if k not in ("name", "request")}}
                for r in self.rules]


def parse(text: str, source: str) -> Policy:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise PolicyError(f"{source}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
        raise PolicyError(f"{source}: expected a mapping with a 'rules' list")
    rules = tuple(_rule(e, source) for e in data.get("rules") or [])
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise PolicyError(f"{source}: rule names must be unique")
    return Policy(rules, source)


def load(path: str | None) -> Policy:
    if not path:
        return parse(DEFAULT_POLICY, "default policy")
    try:
        with open(path) as f:
            return parse(f.read(), path)
    except OSError as e:
        raise PolicyError(f"{path}: {e.strerror}") from None


def kind_of(method: str, path: str) -> str | None:
    """Which requests the policy reads: container create and update, exec create (bodies), build (query)."""
    if method != "POST":
        return None
    if path == "/containers/create":
        return "container-create"
    if path == "/build":
        return "build"
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "containers":
        return {"update": "container-update", "exec": "exec-create"}.get(parts[2])
    return None
