"""The index of an uploaded context's directory: every path with its type and mode, size, and content digest
or link target, exactly as the upload left it on disk. The build's cache checksums read it instead of walking
and statting the directory again (see upload.py, which makes it, and BuildContext.checksum, which reads it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One path of the context as it is on disk: ``mode`` is the full ``st_mode`` (type bits included);
    ``extra`` the content's sha256 for a file, the target for a symlink, "" for a directory."""

    mode: int
    size: int
    extra: str


class ContextIndex:
    """Every path an upload left in its directory ("" is the directory itself), in the order the context
    walk visits them: depth first, names sorted at each level (sorting by path components gives exactly
    that order)."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self._keys: list[tuple[str, ...]] | None = None  # sorted on first use

    def get(self, rel: str) -> Entry | None:
        return self.entries.get(rel)

    def below(self, rel: str) -> list[tuple[str, Entry]]:
        """(path relative to ``rel``, entry) for everything under directory ``rel``, in walk order."""
        prefix = tuple(rel.split("/")) if rel else ()
        n = len(prefix)
        if self._keys is None:
            self._keys = sorted(tuple(k.split("/")) for k in self.entries if k)
        keys = self._keys
        i = bisect.bisect_right(keys, prefix)
        out: list[tuple[str, Entry]] = []
        while i < len(keys) and keys[i][:n] == prefix:
            k = keys[i]
            out.append(("/".join(k[n:]), self.entries["/".join(k)]))
            i += 1
        return out
