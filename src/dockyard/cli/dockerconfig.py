"""``~/.docker/config.json`` (or ``$DOCKER_CONFIG/config.json``) as the docker CLI keeps it: ``auths`` with
base64 ``user:password`` (or an ``identitytoken``), ``credsStore`` / ``credHelpers`` naming
``docker-credential-<name>`` programs (protocol: ``get``/``store``/``erase`` over stdin/stdout).

Other keys in the file are kept as they are; the file is replaced atomically with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from typing import Any

INDEX_SERVER = "https://index.docker.io/v1/"


class ConfigFileError(Exception):
    pass


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def load() -> dict[str, Any]:
    try:
        with open(config_path()) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ConfigFileError(f"loading config file: {config_path()}: {e}") from None
    return data if isinstance(data, dict) else {}


def save(cfg: dict[str, Any]) -> None:
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent="\t")
    os.replace(tmp, path)


def server_key(domain: str) -> str:
    """The key credentials are stored under: docker.io's index URL, else the registry's host[:port]."""
    if domain in ("docker.io", "index.docker.io", "registry-1.docker.io", INDEX_SERVER):
        return INDEX_SERVER
    return domain.removeprefix("https://").removeprefix("http://").rstrip("/")


def _helper_for(cfg: dict[str, Any], key: str) -> str:
    helpers = cfg.get("credHelpers") or {}
    return str(helpers.get(key) or cfg.get("credsStore") or "")


def _run_helper(helper: str, action: str, payload: str) -> str:
    prog = f"docker-credential-{helper}"
    try:
        proc = subprocess.run([prog, action], input=payload, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ConfigFileError(f"error getting credentials - err: exec: \"{prog}\": executable file not found in "
                              "$PATH, out: ``") from None
    if proc.returncode != 0:
        out = (proc.stdout or proc.stderr).strip()
        if action == "get" and "credentials not found" in out.lower():
            return ""
        raise ConfigFileError(f"error {'getting' if action == 'get' else 'storing'} credentials - err: exit status "
                              f"{proc.returncode}, out: `{out}`")
    return proc.stdout


def get_auth(key: str) -> dict[str, str]:
    """The AuthConfig for ``key`` (username/password or identitytoken, serveraddress); {} when none."""
    cfg = load()
    helper = _helper_for(cfg, key)
    if helper:
        out = _run_helper(helper, "get", key)
        if not out.strip():
            return {}
        data = json.loads(out)
        user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
        if user == "<token>":
            return {"identitytoken": secret, "serveraddress": key}
        return {"username": user, "password": secret, "serveraddress": key}
    entry = (cfg.get("auths") or {}).get(key) or {}
    out2: dict[str, str] = {"serveraddress": key}
    if entry.get("auth"):
        user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
        out2.update(username=user, password=pw)
    if entry.get("identitytoken"):
        out2["identitytoken"] = entry["identitytoken"]
    return out2 if len(out2) > 1 else {}


def store_auth(key: str, username: str, password: str, identity_token: str = "") -> None:
    cfg = load()
    helper = _helper_for(cfg, key)
    auths = cfg.setdefault("auths", {})
    if helper:
        user, secret = ("<token>", identity_token) if identity_token else (username, password)
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}))
        auths[key] = {}
    elif identity_token:
        auths[key] = {"auth": base64.b64encode(f"{username}:".encode()).decode(), "identitytoken": identity_token}
    else:
        auths[key] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    save(cfg)


def erase_auth(key: str) -> bool:
    """Remove the credentials for ``key``; False when there were none."""
    cfg = load()
    auths = cfg.get("auths") or {}
    helper = _helper_for(cfg, key)
    found = key in auths
    if helper:
        try:
            _run_helper(helper, "erase", key)
            found = True
        except ConfigFileError:
            pass
    if key in auths:
        del auths[key]
        save(cfg)
    return found


def encoded_auth(key: str) -> str:
    """``X-Registry-Auth`` for ``key``: base64url(JSON AuthConfig), empty JSON object when none."""
    auth = get_auth(key)
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
