"""``COPY --link`` / ``ADD --link``: a layer made without looking at what lies below it, as BuildKit does.

The layer is written against an empty filesystem (the destination's parents are new 0755 directories, no
symlink of the base is followed), so its bytes depend only on the sources and flags. Its cache key therefore
leaves the parent out: when the base (or an earlier step) changes, the cached layer is stacked as it is on the
new parent (re-read from its unpacked directory, giving the same tar and diff ID) instead of copying the
sources again.
"""

from __future__ import annotations

from typing import Any

from .cache import cache_key
from .layertar import LayerBuilder, entry_from_stat
from .treewalk import walk_tree


def link_key(key_parts: list[Any]) -> str:
    """The cache key of a linked layer: the instruction and its sources' checksums, not the parent."""
    return cache_key("link", "copy", key_parts)


def layer_from_dir(layer_dir: str) -> LayerBuilder:
    """The deterministic tar of an unpacked linked layer, entry for entry as it was first written (owners and
    modes from the files, the normalised mtime)."""
    lb = LayerBuilder()
    for rel, disk, st in walk_tree(layer_dir):
        if not rel:
            continue
        e = entry_from_stat(rel, disk, st, (st.st_uid, st.st_gid), None, keep_mtime=True)
        if e is not None:
            lb.add(e)
    return lb
