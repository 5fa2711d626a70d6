"""Variable interpolation as the compose specification defines it.

``$VAR`` and ``${VAR}``; ``${VAR:-default}`` / ``${VAR-default}`` (unset-or-empty / unset);
``${VAR:?error}`` / ``${VAR?error}`` (fail); ``${VAR:+alt}`` / ``${VAR+alt}`` (replacement);
``$$`` for a literal ``$``. Defaults and replacements may themselves hold interpolations.
Only string values are interpolated (keys are not), and an error names the key's path, as Compose v2 does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dockyard.compose.errors import ProjectError

_NAME_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_NAME_CHARS = _NAME_START + "0123456789"


class InterpolationError(Exception):
    """A bad ``${...}`` or a required variable without a value; the caller adds the key's path."""


def _find_close(text: str, start: int) -> int:
    """Index of the ``}`` closing the brace expression opened just before ``start`` (nesting counted)."""
    depth = 1
    i = start
    while i < len(text):
        c = text[i]
        if c == "$" and i + 1 < len(text) and text[i + 1] == "$":
            i += 2
            continue
        if c == "$" and i + 1 < len(text) and text[i + 1] == "{":
            depth += 1
            i += 2
            continue
        if c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def substitute(text: str, lookup: Callable[[str], str | None], warn: Callable[[str], None] | None = None) -> str:
    """``text`` with every interpolation resolved through ``lookup`` (None: the variable is unset)."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "$":
            j = text.find("$", i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            i = j
            continue
        if i + 1 >= n:
            out.append("$")
            break
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = _find_close(text, i + 2)
            if end < 0:
                raise InterpolationError(f"invalid interpolation format for {{path}}.\n"
                                         f"You may need to escape any $ with another $.\n{text}")
            out.append(_expression(text[i + 2:end], text, lookup, warn))
            i = end + 1
            continue
        if nxt in _NAME_START:
            j = i + 1
            while j < n and text[j] in _NAME_CHARS:
                j += 1
            name = text[i + 1:j]
            value = lookup(name)
            if value is None:
                if warn:
                    warn(name)
                value = ""
            out.append(value)
            i = j
            continue
        raise InterpolationError(f"invalid interpolation format for {{path}}.\n"
                                 f"You may need to escape any $ with another $.\n{text}")
    return "".join(out)


def _expression(expr: str, whole: str, lookup: Callable[[str], str | None],
                warn: Callable[[str], None] | None) -> str:
    j = 0
    while j < len(expr) and expr[j] in _NAME_CHARS:
        j += 1
    name, rest = expr[:j], expr[j:]
    if not name or name[0] not in _NAME_START:
        raise InterpolationError(f"invalid interpolation format for {{path}}.\n"
                                 f"You may need to escape any $ with another $.\n{whole}")
    value = lookup(name)
    if not rest:
        if value is None:
            if warn:
                warn(name)
            return ""
        return value
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        raise InterpolationError(f"invalid interpolation format for {{path}}.\n"
                                 f"You may need to escape any $ with another $.\n{whole}")
    empty_counts = op.startswith(":")
    missing = value is None or (empty_counts and value == "")
    kind = op[-1]
    if kind == "-":
        return substitute(arg, lookup, warn) if missing else str(value)
    if kind == "+":
        return "" if missing else substitute(arg, lookup, warn)
    if missing:  # "?"
        message = substitute(arg, lookup, warn)
        raise InterpolationError(f"required variable {name} is missing a value: {message}"
                                 if message else f"required variable {name} is missing a value")
    return str(value)


def interpolate(value: Any, env: Mapping[str, str], source: str, warn: Callable[[str], None] | None = None,
                path: str = "") -> Any:
    """A copy of the parsed YAML ``value`` with every string interpolated; errors name ``source`` and the key."""
    lookup = env.get
    if isinstance(value, str):
        try:
            return substitute(value, lookup, warn)
        except InterpolationError as e:
            message = str(e)
            if "{path}" in message:
                raise ProjectError(f"{source}: " + message.replace("{path}", path or "(root)")) from None
            raise ProjectError(f"{source}: error while interpolating {path}: {message}") from None
    if isinstance(value, dict):
        return {k: interpolate(v, env, source, warn, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, source, warn, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
