"""Docker's word processing for Dockerfile arguments: quotes, the escape token and ``$VAR`` substitution.

This is what the builder applies to the instructions docker expands (FROM, ADD, COPY, ENV, EXPOSE, LABEL,
STOPSIGNAL, USER, VOLUME, WORKDIR, ARG and the RUN/COPY flags); RUN, CMD and ENTRYPOINT are left to the shell.
Supported forms: ``$V``, ``${V}``, ``${V:-x}``, ``${V-x}``, ``${V:+x}``, ``${V+x}``, ``${V:?msg}``,
``${V?msg}``, ``${V#pat}``, ``${V##pat}``, ``${V%pat}``, ``${V%%pat}`` and ``${V/pat/repl}``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping


class ShellWordError(ValueError):
    """A malformed word (unterminated quote, bad substitution); the parser adds the line."""


_NAME_CHARS = re.compile(r"[A-Za-z0-9_]")


class Lexer:
    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def word(self, text: str, env: Mapping[str, str]) -> str:
        """One word: quotes removed, escapes resolved, variables substituted (no splitting)."""
        return "".join(self._run(text, env, split=False)[0])

    def words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Several words split on unquoted whitespace, as a shell would (``EXPOSE $A $B``)."""
        return self._run(text, env, split=True)[0]

    def expand(self, text: str, env: Mapping[str, str]) -> str:
        """Variables only (a heredoc body): quotes stay, an escaped ``$`` stays literal."""
        out: list[str] = []
        i = 0
        while i < len(text):
            c = text[i]
            if c == self.escape and i + 1 < len(text) and text[i + 1] == "$":
                out.append("$")
                i += 2
            elif c == "$":
                val, i = self._dollar(text, i + 1, env)
                out.append(val)
            else:
                out.append(c)
                i += 1
        return "".join(out)

    def _run(self, s: str, env: Mapping[str, str], split: bool, stop: str = "") -> tuple[list[str], int]:
        words: list[str] = []
        cur: list[str] = []
        have = False
        i = 0
        n = len(s)
        while i < n:
            c = s[i]
            if stop and c == stop:
                break
            if c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    raise ShellWordError("unexpected end of statement while looking for matching single-quote")
                cur.append(s[i + 1:j])
                have = True
                i = j + 1
            elif c == '"':
                i = self._double(s, i + 1, env, cur)
                have = True
            elif c == "$":
                val, i = self._dollar(s, i + 1, env)
                cur.append(val)
                if val:
                    have = True
            elif c == self.escape:
                if i + 1 < n:
                    cur.append(s[i + 1])
                    have = True
                i += 2
            elif split and c in " \t\r\n":
                if cur or have:
                    words.append("".join(cur))
                cur, have = [], False
                i += 1
            else:
                cur.append(c)
                have = True
                i += 1
        if split:
            if cur or have:
                words.append("".join(cur))
            return words, i
        return ["".join(cur)], i

    def _double(self, s: str, i: int, env: Mapping[str, str], out: list[str]) -> int:
        n = len(s)
        while i < n:
            c = s[i]
            if c == '"':
                return i + 1
            if c == "$":
                val, i = self._dollar(s, i + 1, env)
                out.append(val)
                continue
            if c == self.escape and i + 1 < n and s[i + 1] in ('"', "$", self.escape):
                out.append(s[i + 1])
                i += 2
                continue
            out.append(c)
            i += 1
        raise ShellWordError("unexpected end of statement while looking for matching double-quote")

    def _name(self, s: str, i: int) -> tuple[str, int]:
        j = i
        while j < len(s) and _NAME_CHARS.match(s[j]):
            j += 1
        return s[i:j], j

    def _dollar(self, s: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
        n = len(s)
        if i >= n:
            return "$", i
        if s[i] != "{":
            name, j = self._name(s, i)
            if not name:
                return "$", i
            return env.get(name, ""), j
        name, j = self._name(s, i + 1)
        if not name:
            raise ShellWordError(f"bad substitution: {s[i - 1:]}")
        if j >= n:
            raise ShellWordError("missing '}'")
        c = s[j]
        if c == "}":
            return env.get(name, ""), j + 1
        colon = c == ":"
        if colon:
            j += 1
            if j >= n:
                raise ShellWordError("missing '}'")
            c = s[j]
        if c in "-+?":
            word_parts, k = self._run(s[j + 1:], env, split=False, stop="}")
            end = j + 1 + k
            if end >= n or s[end] != "}":
                raise ShellWordError("missing '}'")
            word = "".join(word_parts)
            is_set = name in env
            value = env.get(name, "")
            present = bool(value) if colon else is_set
            if c == "-":
                return (value if present else word), end + 1
            if c == "+":
                return (word if present else ""), end + 1
            if not present:
                raise ShellWordError(f"{name}: {word or 'is not allowed to be unset'}")
            return value, end + 1
        if colon:
            raise ShellWordError(f"unsupported modifier ({c}) in substitution")
        if c in "#%/":
            k = s.find("}", j)
            if k < 0:
                raise ShellWordError("missing '}'")
            return _pattern_op(env.get(name, ""), s[j:k]), k + 1
        raise ShellWordError(f"unsupported modifier ({c}) in substitution")


def _pattern_op(value: str, op: str) -> str:
    """``#pat``/``##pat`` (prefix), ``%pat``/``%%pat`` (suffix), ``/pat/repl`` on a variable's value."""
    if op.startswith("/"):
        pat, _, repl = op[1:].partition("/")
        for a in range(len(value)):
            for b in range(len(value), a, -1):
                if fnmatch.fnmatchcase(value[a:b], pat):
                    return value[:a] + repl + value[b:]
        return value
    longest = op[:2] in ("##", "%%")
    pat = op[2:] if longest else op[1:]
    if op.startswith("#"):
        rng = range(len(value), -1, -1) if longest else range(len(value) + 1)
        for k in rng:
            if fnmatch.fnmatchcase(value[:k], pat):
                return value[k:]
        return value
    rng = range(len(value) + 1) if longest else range(len(value), -1, -1)
    for k in rng:
        if fnmatch.fnmatchcase(value[k:], pat):
            return value[:k]
    return value
