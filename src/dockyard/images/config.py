"""OCI image configs: building them, and applying Dockerfile-style ``--change`` instructions.

``import -c`` and ``commit -c`` accept the instructions docker accepts there (CMD, ENTRYPOINT, ENV,
EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), in JSON or shell form.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidParameter

ALLOWED_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
                   "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(obj: Any) -> bytes:
    """The bytes an image config is stored (and hence identified) by."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _json_or_shell(arg: str, shell: bool = True) -> list[str]:
    arg = arg.strip()
    if arg.startswith("["):
        try:
            val = json.loads(arg)
            if isinstance(val, list) and all(isinstance(x, str) for x in val):
                return val
        except ValueError:
            pass
    return ["/bin/sh", "-c", arg] if shell else shlex.split(arg)


def _pairs(arg: str, what: str) -> list[tuple[str, str]]:
    words = shlex.split(arg)
    if not words:
        raise InvalidParameter(f"{what} requires at least one argument")
    if "=" not in words[0]:
        # legacy form: ENV key value with spaces
        key, _, value = arg.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        k, sep, v = w.partition("=")
        if not sep:
            raise InvalidParameter(f"{what} names can not be blank" if not k else f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        out.append((k, v))
    return out


def apply_changes(cfg: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply Dockerfile instructions to a container config (the image config's ``config``)."""
    cfg = dict(cfg)
    for change in changes:
        change = change.strip()
        if not change:
            continue
        instr, _, arg = change.partition(" ")
        if not arg and "\t" in instr:
            instr, _, arg = change.partition("\t")
        key = instr.upper()
        if key not in ALLOWED_CHANGES:
            raise InvalidParameter(f"{instr} is not a valid change command")
        if key == "CMD":
            cfg["Cmd"] = _json_or_shell(arg)
        elif key == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(arg)
        elif key == "ENV":
            env = [e for e in (cfg.get("Env") or [])]
            for k, v in _pairs(arg, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif key == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            for k, v in _pairs(arg, "LABEL"):
                labels[k] = v
            cfg["Labels"] = labels
        elif key == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in arg.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif key == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            paths = _json_or_shell(arg, shell=False)
            for v in paths:
                vols[v] = {}
            cfg["Volumes"] = vols
        elif key == "USER":
            cfg["User"] = arg.strip()
        elif key == "WORKDIR":
            wd = arg.strip()
            if not wd.startswith("/"):
                wd = (cfg.get("WorkingDir") or "/").rstrip("/") + "/" + wd
            cfg["WorkingDir"] = wd
        elif key == "STOPSIGNAL":
            cfg["StopSignal"] = arg.strip()
        elif key == "ONBUILD":
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [arg.strip()]
        elif key == "HEALTHCHECK":
            words = arg.strip().split(None, 1)
            if words and words[0].upper() == "NONE":
                cfg["Healthcheck"] = {"Test": ["NONE"]}
            elif words and words[0].upper() == "CMD":
                test = _json_or_shell(words[1] if len(words) > 1 else "")
                cfg["Healthcheck"] = {"Test": ["CMD", *test] if test[:2] != ["/bin/sh", "-c"]
                                      else ["CMD-SHELL", test[2]]}
            else:
                raise InvalidParameter("HEALTHCHECK: unknown type; only CMD and NONE are supported here")
    return cfg


def default_container_config() -> dict[str, Any]:
    return {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": None,
            "WorkingDir": "", "Entrypoint": None, "Labels": None, "User": "", "OnBuild": None}


def new_image_config(container_config: dict[str, Any], diff_ids: list[str], history: list[dict[str, Any]],
                     created: str, author: str = "", comment: str = "") -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {k: v for k, v in container_config.items() if v not in (None, "", [], {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if author:
        cfg["author"] = author
    if comment:
        cfg["comment"] = comment
    return cfg
