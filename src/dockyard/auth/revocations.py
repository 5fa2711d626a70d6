"""Revoked tokens: single tokens by jti (kept until they would have expired) and every token a client held.

Revoking a client invalidates each of its tokens issued up to and including that second; new tokens it
obtains afterwards are valid (remove the client from the clients file to stop that too). The list is one
JSON file under the data root, replaced whole on each change.
"""

from __future__ import annotations

import threading
import time

from dockyard.storage.atomic import read_json, write_json_atomic


class Revocations:
    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        data = read_json(path, {}) or {}
        self._jtis: dict[str, int] = {str(k): int(v) for k, v in (data.get("jti") or {}).items()}
        self._clients: dict[str, int] = {str(k): int(v) for k, v in (data.get("client") or {}).items()}

    def _save(self) -> None:
        write_json_atomic(self._path, {"jti": self._jtis, "client": self._clients}, mode=0o600)

    def revoke_jti(self, jti: str, exp: int) -> None:
        now = int(time.time())
        with self._lock:
            self._jtis = {j: e for j, e in self._jtis.items() if e >= now}  # expired ones need no entry
            self._jtis[jti] = exp
            self._save()

    def revoke_client(self, client_id: str) -> int:
        now = int(time.time())
        with self._lock:
            self._clients[client_id] = now
            self._save()
        return now

    def is_revoked(self, jti: str, sub: str, iat: int) -> bool:
        if jti in self._jtis:
            return True
        before = self._clients.get(sub)
        return before is not None and iat <= before
