"""The clients file: client ids, bcrypt-hashed secrets and the scopes each may ask for.

The daemon reads it at start and again on SIGHUP (a bad file keeps the last good one); `dockyard auth client`
edits it write-then-rename, so the daemon never reads half a file. YAML (JSON is YAML too):

    clients:
      ci:
        secret: $2b$12$...          # bcrypt hash, never the secret itself
        scopes: [read, containers]
        token_ttl: 3600             # optional, seconds
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt
import yaml

from dockyard.auth.scopes import SCOPES
from dockyard.storage.atomic import write_atomic

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
# checked when the client id is unknown, so a wrong id costs the same time as a wrong secret
_DUMMY_HASH = bcrypt.hashpw(b"dummy", bcrypt.gensalt(4))


class ClientsFileError(Exception):
    """The clients file cannot be read or holds an invalid entry."""


@dataclass(frozen=True)
class Client:
    id: str
    secret_hash: bytes
    scopes: frozenset[str]
    token_ttl: int | None = None


def valid_id(client_id: str) -> bool:
    return bool(_ID.match(client_id))


def hash_secret(secret: str, cost: int = 12) -> str:
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(cost)).decode()


def parse(text: str, source: str = "clients file") -> dict[str, Client]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ClientsFileError(f"{source}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("clients", {}) or {}, dict):
        raise ClientsFileError(f"{source}: expected a mapping with a 'clients' mapping")
    out: dict[str, Client] = {}
    for cid, entry in (data.get("clients") or {}).items():
        cid = str(cid)
        if not valid_id(cid):
            raise ClientsFileError(f"{source}: invalid client id {cid!r}")
        if not isinstance(entry, dict) or not isinstance(entry.get("secret"), str):
            raise ClientsFileError(f"{source}: client {cid!r} needs a bcrypt 'secret'")
        secret = entry["secret"].encode()
        if not secret.startswith((b"$2a$", b"$2b$", b"$2y$")):
            raise ClientsFileError(f"{source}: client {cid!r}: 'secret' is not a bcrypt hash")
        scopes = entry.get("scopes") or []
        if isinstance(scopes, str):
            scopes = scopes.split()
        bad = [s for s in scopes if s not in SCOPES]
        if bad:
            raise ClientsFileError(f"{source}: client {cid!r}: unknown scope {bad[0]!r} "
                                   f"(known: {', '.join(SCOPES)})")
        ttl = entry.get("token_ttl")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0):
            raise ClientsFileError(f"{source}: client {cid!r}: token_ttl must be a positive integer")
        out[cid] = Client(cid, secret, frozenset(scopes), ttl)
    return out


def read(path: str) -> dict[str, Client]:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ClientsFileError(f"{path}: {e.strerror}") from None
    return parse(text, path)


def write(path: str, clients: dict[str, Client]) -> None:
    doc = {"clients": {c.id: {"secret": c.secret_hash.decode(), "scopes": sorted(c.scopes),
                              **({"token_ttl": c.token_ttl} if c.token_ttl else {})}
                       for c in sorted(clients.values(), key=lambda c: c.id)}}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode(), mode=0o600)


class ClientRegistry:
    """The daemon's view of the clients file; `reload` swaps it whole or not at all."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = read(path) if path else {}

    def reload(self) -> int:
        if not self.path:
            return 0
        fresh = read(self.path)
        with self._lock:
            self._clients = fresh
        return len(fresh)

    def edit(self, change: Callable[[dict[str, Client]], None]) -> None:
        """Apply ``change`` to the file as it is now (hand edits not yet reloaded included), write it whole,
        and serve the result."""
        if not self.path:
            raise ClientsFileError("the daemon has no clients file (--auth-clients)")
        with self._lock:
            current = read(self.path)
            change(current)
            write(self.path, current)
            self._clients = current

    def all(self) -> list[Client]:
        return sorted(self._clients.values(), key=lambda c: c.id)

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def check(self, client_id: str, secret: str) -> Client | None:
        """The client if ``secret`` is its secret; the same bcrypt cost is paid for an unknown id."""
        client = self._clients.get(client_id)
        try:
            ok = bcrypt.checkpw(secret.encode(), client.secret_hash if client else _DUMMY_HASH)
        except ValueError:
            ok = False
        return client if ok and client is not None else None
