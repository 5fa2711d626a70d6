"""Named and anonymous volumes with the `local` driver: a directory <data_root>/volumes/<name>/_data.

Records live in the state database; which containers use a volume is asked of the containers (``VolumeUsers``
of ``volumes/ports.py``, a constructor argument) so `rm` and `prune` refuse or skip volumes in use, as docker
does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.storage.db import StateDB
from dockyard.util import filtermatch

if TYPE_CHECKING:
    from dockyard.events.bus import EventBus
    from dockyard.volumes.ports import VolumeUsers

_DDL = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    labels TEXT NOT NULL,
    options TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
"""
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def _now() -> str:
    return datetime.now().astimezone().replace(microsecond=0).isoformat()


def _dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class VolumeService:
    def __init__(self, db: StateDB, data_root: str, events: EventBus | None, users: VolumeUsers) -> None:
        self.db = db
        self.events = events
        self.users = users
        self.dir = os.path.join(data_root, "volumes")
        os.makedirs(self.dir, 0o701, exist_ok=True)
        db.ensure_schema(_DDL)

    def _publish(self, action: str, name: str, **attrs: str) -> None:
        if self.events is not None:
            self.events.publish("volume", action, name, {"driver": "local", **attrs})

    def mountpoint(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    def _row(self, name: str) -> sqlite3.Row | None:
        return self.db.query_one("SELECT * FROM volumes WHERE name=?", (name,))

    def _view(self, row: sqlite3.Row) -> dict[str, Any]:
        # dockerd's key order (its Volume type's fields), which clients that print the JSON show as is
        return {"CreatedAt": row["created"], "Driver": "local", "Labels": json.loads(row["labels"]) or None,
                "Mountpoint": self.mountpoint(row["name"]), "Name": row["name"],
                "Options": json.loads(row["options"]) or None, "Scope": "local"}

    def create(self, name: str = "", driver: str = "local", labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, anonymous: bool = False) -> dict[str, Any]:
        """Create (or return the existing) volume; an empty name makes an anonymous one."""
        if driver and driver != "local":
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        if options:
            raise InvalidParameter("create: the local driver of this engine takes no options")
        if not name:
            name, anonymous = os.urandom(32).hex(), True
        if not _NAME.match(name):
            raise InvalidParameter(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                                   'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                                   "directory, use absolute path")
        row = self._row(name)
        if row is not None:
            return self._view(row)
        os.makedirs(self.mountpoint(name), 0o755, exist_ok=True)
        with self.db.tx() as c:
            c.execute("INSERT OR IGNORE INTO volumes VALUES (?,?,?,?,?)",
                      (name, _now(), json.dumps(labels or {}), json.dumps(options or {}), int(anonymous)))
        self._publish("create", name)
        row = self._row(name)
        assert row is not None
        return self._view(row)

    def ensure(self, name: str, anonymous: bool = False) -> None:
        if self._row(name) is None:
            self.create(name, anonymous=anonymous)

    def resolve_for(self, name: str, container_id: str) -> str:
        """Host path to bind for a container's `-v name:/path` (created on first use, like docker)."""
        self.ensure(name)
        path = self.mountpoint(name)
        os.makedirs(path, 0o755, exist_ok=True)
        return path

    def inspect(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        if row is None:
            raise NotFound(f"get {name}: no such volume")
        return self._view(row)

    def list_volumes(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """GET /volumes with docker's filters: name (regex or exact, ORed), driver (exact, ORed), label (all
        of them), dangling (true/1, false/0); another key is docker's 400 and the keys are ANDed."""
        filters = filters or {}
        for key in filters:
            if key not in ("dangling", "name", "label", "driver"):
                raise InvalidParameter(f"invalid filter '{key}'")
        dangling = filtermatch.bool_value("dangling", filters["dangling"]) if "dangling" in filters else None
        out = []
        for row in self.db.query("SELECT * FROM volumes ORDER BY name"):
            v = self._view(row)
            if filters.get("name") and not filtermatch.match(filters["name"], v["Name"]):
                continue
            if filters.get("driver") and v["Driver"] not in filters["driver"]:
                continue
            labels = v["Labels"] or {}
            if filters.get("label") and not all(filtermatch.label_match(labels, x) for x in filters["label"]):
                continue
            if dangling is not None and bool(self.users.volume_users(v["Name"])) == dangling:
                continue
            out.append(v)
        return {"Volumes": out, "Warnings": []}

    def remove(self, name: str, force: bool = False) -> None:
        if self._row(name) is None:
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        users = self.users.volume_users(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        with self.db.tx() as c:
            c.execute("DELETE FROM volumes WHERE name=?", (name,))
        shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
        self._publish("destroy", name)

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """Unused volumes; only anonymous ones unless the `all=true` filter is given (docker 23+)."""
        filters = dict(filters or {})
        everything = (filters.pop("all", ["false"]) or ["false"])[0] in ("1", "true")
        for key in filters:
            if key not in ("label", "label!"):
                raise InvalidParameter(f"invalid filter '{key}'")
        deleted, reclaimed = [], 0
        for row in self.db.query("SELECT * FROM volumes"):
            if not everything and not row["anonymous"]:
                continue
            labels = json.loads(row["labels"]) or {}
            if filters.get("label") and not all(filtermatch.label_match(labels, x) for x in filters["label"]):
                continue
            if filters.get("label!") and any(filtermatch.label_match(labels, x) for x in filters["label!"]):
                continue
            if self.users.volume_users(row["name"]):
                continue
            size = _dir_size(os.path.join(self.dir, row["name"]))
            self.remove(row["name"])
            deleted.append(row["name"])
            reclaimed += size
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def df_volumes(self) -> list[dict[str, Any]]:
        out = []
        for row in self.db.query("SELECT * FROM volumes ORDER BY name"):
            v = self._view(row)
            v["UsageData"] = {"Size": _dir_size(v["Mountpoint"]), "RefCount": len(self.users.volume_users(v["Name"]))}
            out.append(v)
        return out
