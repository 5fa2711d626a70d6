"""The docker CLI's context store, shared with it: ~/.docker/contexts/meta/<sha256(name)>/meta.json and the
``currentContext`` of ~/.docker/config.json (or $DOCKER_CONFIG / --config). A context names a daemon endpoint;
"default" is built in and means the -H / DOCKER_HOST based configuration."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

DEFAULT = "default"
DEFAULT_DESCRIPTION = "Current DOCKER_HOST based configuration"


class ContextError(Exception):
    pass


def config_dir(config_flag: str | None = None) -> str:
    return config_flag or os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _meta_dir(cfg_dir: str, name: str) -> str:
    return os.path.join(cfg_dir, "contexts", "meta", hashlib.sha256(name.encode()).hexdigest())


def _read_config(cfg_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(cfg_dir, "config.json")) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: str, data: Any, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent="\t")
    os.chmod(tmp, mode)
    os.replace(tmp, path)  # write-then-rename: the docker CLI never reads half a file


def current_name(cfg_dir: str, flag: str | None = None) -> str:
    """docker's resolveContextName: --context, then (unless DOCKER_HOST is set) DOCKER_CONTEXT, then
    config.json's currentContext, else "default"."""
    if flag:
        return flag
    if os.environ.get("DOCKER_HOST") or os.environ.get("DOCKYARD_HOST"):
        return DEFAULT
    return os.environ.get("DOCKER_CONTEXT") or str(_read_config(cfg_dir).get("currentContext") or DEFAULT)


def load(cfg_dir: str, name: str) -> dict[str, Any]:
    try:
        with open(os.path.join(_meta_dir(cfg_dir, name), "meta.json")) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise ContextError(f"context \"{name}\" does not exist") from None
    except (OSError, ValueError) as e:
        raise ContextError(f"context \"{name}\": {e}") from None
    return meta if isinstance(meta, dict) else {}


def host_of(meta: dict[str, Any]) -> str:
    return str(((meta.get("Endpoints") or {}).get("docker") or {}).get("Host") or "")


def names(cfg_dir: str) -> list[str]:
    out = []
    base = os.path.join(cfg_dir, "contexts", "meta")
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, entry, "meta.json")) as f:
                out.append(str(json.load(f).get("Name")))
        except (OSError, ValueError, AttributeError):
            continue
    return sorted(out)


def create(cfg_dir: str, name: str, description: str, host: str, skip_tls_verify: bool = False) -> None:
    if name == DEFAULT:
        raise ContextError('"default" is a reserved context name')
    if not name or not (name[0].isalnum() and all(c.isalnum() or c in "_.+-" for c in name)):
        raise ContextError(f'context name "{name}" is invalid, names are validated against regexp '
                           '"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"')
    if name in names(cfg_dir):
        raise ContextError(f"context \"{name}\" already exists")
    meta = {"Name": name, "Metadata": {"Description": description} if description else {},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_tls_verify}}}
    _write_json(os.path.join(_meta_dir(cfg_dir, name), "meta.json"), meta)


def remove(cfg_dir: str, name: str) -> None:
    path = _meta_dir(cfg_dir, name)
    if not os.path.exists(os.path.join(path, "meta.json")):
        raise ContextError(f"context \"{name}\" does not exist")
    for root, dirs, files in os.walk(path, topdown=False):
        for f in files:
            os.unlink(os.path.join(root, f))
        for d in dirs:
            os.rmdir(os.path.join(root, d))
    os.rmdir(path)


def set_current(cfg_dir: str, name: str) -> None:
    """config.json's currentContext (other keys kept; "default" removes it, as the docker CLI does)."""
    data = _read_config(cfg_dir)
    if name == DEFAULT:
        data.pop("currentContext", None)
    else:
        data["currentContext"] = name
    _write_json(os.path.join(cfg_dir, "config.json"), data, 0o600)


def storage(cfg_dir: str, name: str) -> dict[str, str]:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {"MetadataPath": os.path.join(cfg_dir, "contexts", "meta", digest) if name != DEFAULT else "<IN MEMORY>",
            "TLSPath": os.path.join(cfg_dir, "contexts", "tls", digest) if name != DEFAULT else "<IN MEMORY>"}
