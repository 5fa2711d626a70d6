"""The daemon's event bus: services publish, `/events` subscribers follow.

A bounded in-memory history serves `since`; live subscribers get a queue each.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from dockyard.events.origin import CLIENT_ATTRIBUTE, request_client

_HISTORY = 1024


def _match(ev: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    actor = ev["Actor"]
    attrs = actor.get("Attributes", {})
    for key, values in filters.items():
        if not values:
            continue
        if key == "type" and ev["Type"] not in values:
            return False
        if key == "event" and ev["Action"] not in values and ev["Action"].split(":")[0] not in values:
            return False
        if key in ("container", "image", "network", "volume"):
            if ev["Type"] != key:
                return False
            names = {actor["ID"], actor["ID"][:12], attrs.get("name", "")}
            if key == "image":
                names.add(attrs.get("name", ""))
            if not any(v in names or actor["ID"].startswith(v) for v in values):
                return False
        if key == "label":
            for v in values:
                k, _, want = v.partition("=")
                if k not in attrs or (want and attrs[k] != want):
                    return False
    return True


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._history: deque[dict[str, Any]] = deque(maxlen=_HISTORY)
        self._subs: list[queue.SimpleQueue[dict[str, Any] | None]] = []

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None,
                scope: str = "local") -> dict[str, Any]:
        now = time.time_ns()
        ev: dict[str, Any] = {
            "Type": type_,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
            "scope": scope,
            "time": now // 1_000_000_000,
            "timeNano": now,
        }
        client = request_client.get()
        if client is not None:  # a token client's request caused it (audit)
            ev["Actor"]["Attributes"][CLIENT_ATTRIBUTE] = client
        if type_ == "container":  # legacy fields old clients read
            ev["status"] = action
            ev["id"] = actor_id
            ev["from"] = (attributes or {}).get("image", "")
        with self._lock:
            self._history.append(ev)
            subs = list(self._subs)
        for q in subs:
            q.put(ev)
        return ev

    def subscribe(self, since: float | None = None, until: float | None = None,
                  filters: dict[str, list[str]] | None = None) -> Iterator[dict[str, Any]]:
        """Yield past events from `since`, then live ones until `until` (or forever)."""
        filters = filters or {}
        q: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        with self._lock:
            past = list(self._history) if since is not None else []
            self._subs.append(q)
        try:
            for ev in past:
                t = ev["timeNano"] / 1e9
                if t >= (since or 0) and (until is None or t <= until) and _match(ev, filters):
                    yield ev
            while True:
                timeout = None if until is None else until - time.time()
                if timeout is not None and timeout <= 0:
                    return
                try:
                    item = q.get(timeout=1.0 if timeout is None else min(timeout, 1.0))
                except queue.Empty:
                    yield {}  # heartbeat: lets the caller notice a closed connection
                    continue
                if item is None:
                    return
                ev = item
                if until is not None and ev["timeNano"] / 1e9 > until:
                    return
                if _match(ev, filters):
                    yield ev
        finally:
            with self._lock:
                if q in self._subs:
                    self._subs.remove(q)

    def close(self) -> None:
        with self._lock:
            for q in self._subs:
                q.put(None)
