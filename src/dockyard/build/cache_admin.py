"""The build cache as the API shows and trims it: ``/system/df``'s BuildCache rows, ``/build/prune`` (``all``,
``keep-storage``, ``filters``) and the automatic GC that keeps the cache under its daemon.json bound
(``builder.gc.defaultKeepStorage``, 20 GB by default as dockerd) after every build."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from ..errors import DockyardError, InvalidParameter
from .cache import BuildCache
from .context_slots import ContextSlots
from .ports import BuildImages

log = logging.getLogger("dockyard.build")
DEFAULT_KEEP_STORAGE = 20 * 1000 ** 3  # dockerd's builder GC default (20 GB)
_FILTERS = ("until", "id", "parent", "type", "description", "inuse", "shared", "private", "label", "label!")


class CacheAdmin:
    def __init__(self, cache: BuildCache, images: BuildImages, slots: ContextSlots,
                 keep_storage: int = DEFAULT_KEEP_STORAGE, gc_enabled: bool = True) -> None:
        self.cache = cache
        self.images = images
        self.slots = slots
        self.keep_storage = keep_storage
        self.gc_enabled = gc_enabled

    def df(self) -> list[dict[str, Any]]:
        out = []
        for r in self.cache.all():
            out.append({"ID": r.key.split(":", 1)[1][:25], "Parent": r.parent or "", "Parents": [r.parent] if
                        r.parent else [], "Type": "regular", "Description": r.description,
                        "InUse": False, "Shared": False, "Size": r.size,
                        "CreatedAt": _rfc3339(r.created), "LastUsedAt": _rfc3339(r.last_used),
                        "UsageCount": r.usage_count})
        return out

    def prune(self, all_: bool = False, keep_storage: int = 0, filters: dict[str, list[str]] | None = None) \
            -> dict[str, Any]:
        filters = filters or {}
        for k in filters:
            if k not in _FILTERS:
                raise InvalidParameter(f"invalid filter '{k}'")
        until = None
        if filters.get("until"):
            until = time.time() - _duration_seconds(filters["until"][0])
        records = self.cache.all()  # most recently used first
        kept = 0
        deleted: list[str] = []
        reclaimed = 0
        victims = []
        for r in records:
            if until is not None and r.last_used > until:
                continue
            if filters.get("id") and not any(r.key.split(":", 1)[1].startswith(i) for i in filters["id"]):
                continue
            if keep_storage and kept + r.size <= keep_storage:
                kept += r.size
                continue
            victims.append(r)
        for r in victims:
            self.cache.drop(r.key)
            deleted.append(r.key.split(":", 1)[1][:25])
        # drop the images no row and no tag needs any more, children first
        progress = True
        candidates = {r.image_id for r in victims}
        live = {r.image_id for r in self.cache.all()}
        while progress:
            progress = False
            for image_id in sorted(candidates):
                if image_id in live:
                    candidates.discard(image_id)
                    continue
                try:
                    freed = self.images.remove_unused(image_id)
                except DockyardError:
                    freed = -1
                if freed >= 0:
                    reclaimed += freed
                    candidates.discard(image_id)
                    progress = True
        if all_ or not filters:
            self.slots.evict(limit=0)  # the kept uploads go with the cache
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def gc(self) -> None:
        """Keep the cache under its bound, least recently used out first."""
        if not self.gc_enabled or self.keep_storage <= 0:
            return
        if self.cache.total_size() <= self.keep_storage:
            return
        try:
            self.prune(keep_storage=self.keep_storage)
        except DockyardError:
            log.exception("build cache gc failed")


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1e9):09d}Z"


def _duration_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)([smh])", text):
        total += float(num) * units[unit]
    if not total:
        try:
            return time.time() - float(text)
        except ValueError:
            raise InvalidParameter(f"invalid filter 'until={text}'") from None
    return total
