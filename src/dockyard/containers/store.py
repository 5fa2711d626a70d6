"""Container records in the state database: one row per container, JSON columns, unique names.

Every change is one committed transaction; the in-memory cache in the service is rebuilt from here at start-up.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from dockyard.containers.state import Container, State
from dockyard.errors import Conflict
from dockyard.storage.db import StateDB

_DDL = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    image_id TEXT NOT NULL,
    image TEXT NOT NULL,
    config TEXT NOT NULL,
    host_config TEXT NOT NULL,
    state TEXT NOT NULL,
    extra TEXT NOT NULL
);
"""

_EXTRA = ("network_settings", "restart_count", "runtime", "manually_stopped", "has_been_started", "mounts",
          "path", "args", "networking_config", "anon_volumes", "cgroup_path", "volumes_from")


def name_conflict(name: str, other_id: str) -> Conflict:
    return Conflict(f'Conflict. The container name "/{name}" is already in use by container "{other_id}". '
                    "You have to remove (or rename) that container to be able to reuse that name.")


class ContainerStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        db.ensure_schema(_DDL)

    @staticmethod
    def _row(c: Container) -> tuple[Any, ...]:
        extra = {k: getattr(c, k) for k in _EXTRA}
        return (c.id, c.name, c.created, c.image_id, c.image, json.dumps(c.config), json.dumps(c.host_config),
                json.dumps(c.state.to_dict()), json.dumps(extra))

    def insert(self, c: Container) -> None:
        """Add a new record; a taken name is docker's 409 conflict."""
        try:
            with self.db.tx() as conn:
                conn.execute("INSERT INTO containers VALUES (?,?,?,?,?,?,?,?,?)", self._row(c))
        except sqlite3.IntegrityError:
            row = self.db.query_one("SELECT id FROM containers WHERE name=?", (c.name,))
            raise name_conflict(c.name, row["id"] if row else "") from None

    def save(self, c: Container) -> None:
        with self.db.tx() as conn:
            conn.execute("UPDATE containers SET name=?, created=?, image_id=?, image=?, config=?, host_config=?, "
                         "state=?, extra=? WHERE id=?", self._row(c)[1:] + (c.id,))

    def rename(self, cid: str, new_name: str) -> None:
        try:
            with self.db.tx() as conn:
                conn.execute("UPDATE containers SET name=? WHERE id=?", (new_name, cid))
        except sqlite3.IntegrityError:
            row = self.db.query_one("SELECT id FROM containers WHERE name=?", (new_name,))
            err = name_conflict(new_name, row["id"] if row else "")
            raise type(err)(f"Error when allocating new name: {err}") from None

    def delete(self, cid: str) -> None:
        with self.db.tx() as conn:
            conn.execute("DELETE FROM containers WHERE id=?", (cid,))

    def load_all(self) -> list[Container]:
        out = []
        for row in self.db.query("SELECT * FROM containers ORDER BY created"):
            extra = json.loads(row["extra"])
            c = Container(id=row["id"], name=row["name"], created=row["created"], image_id=row["image_id"],
                          image=row["image"], config=json.loads(row["config"]),
                          host_config=json.loads(row["host_config"]), state=State.from_dict(json.loads(row["state"])))
            for k in _EXTRA:
                if k in extra:
                    setattr(c, k, extra[k])
            out.append(c)
        return out
