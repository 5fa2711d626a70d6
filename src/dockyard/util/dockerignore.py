""".dockerignore: docker's pattern rules (moby/patternmatcher).

Each line is a pattern cleaned like a path (a leading ``/`` is dropped), ``#`` starts a comment, ``!`` makes an
exception; the last pattern that matches decides. ``*`` and ``?`` stay inside one path component, ``**``
crosses any number of them, and a pattern that matches a directory also excludes everything under it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _clean(p: str) -> str:
    p = posixpath.normpath(p) if p else p
    return "" if p == "." else p


def _to_regex(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                    out.append("(.*/)?")  # `**/` matches zero or more directories
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                if body.startswith("!") or body.startswith("^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def read_patterns(text: str) -> list[str]:
    pats = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pats.append(line)
    return pats


class IgnoreMatcher:
    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for raw in patterns:
            excl = raw.startswith("!")
            p = raw[1:].strip() if excl else raw
            p = _clean(p.lstrip("/")) if p.strip("/") else ""
            if not p:
                continue
            self.patterns.append(_Pattern(p, excl, _to_regex(p)))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, rel: str) -> bool:
        """Whether a context path (relative, ``/``-separated) is left out of the build context."""
        rel = _clean(rel.lstrip("/"))
        if not rel:
            return False
        parents = []
        parts = rel.split("/")
        for k in range(1, len(parts)):
            parents.append("/".join(parts[:k]))
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue  # only a pattern of the other kind can change the answer
            hit = bool(p.regex.match(rel)) or any(p.regex.match(par) for par in parents)
            if hit:
                matched = not p.exclusion
        return matched

    def may_include_under(self, rel_dir: str) -> bool:
        """Whether an excluded directory can still hold included paths (an exception pattern below it)."""
        if not self.has_exclusions:
            return False
        prefix = _clean(rel_dir) + "/"
        for p in self.patterns:
            if p.exclusion and (p.text.startswith(prefix) or "*" in p.text or "?" in p.text):
                return True
        return False
