"""The variables a compose model refers to (``config --variables``), found as Compose v2 finds them.

compose-go's ExtractVariables walks the uninterpolated model: every string of a mapping, and every string
item of a sequence (mappings inside sequences are not looked into), and reads each ``$VAR`` / ``${VAR}``
expression: ``:-``/``-`` give a default value, ``:+``/``+`` an alternate (presence) value, ``:?``/``?`` make the
variable required; defaults and alternates are searched for variables in turn; ``$$`` is no variable. A name
runs while its characters may belong to a name (compose-go stops at the first digit, cutting ``VAR1`` to
``VAR``; the specification allows digits after the first character, and so does this).
"""

from __future__ import annotations

import re
from typing import Any

_PATTERN = re.compile(r"\$(?:(?P<escaped>\$)|(?P<named>[_a-zA-Z][_a-zA-Z0-9]*)|\{(?P<braced>[^}]*)\}?)")


class Variable:
    def __init__(self, name: str, default: str = "", presence: str = "", required: bool = False) -> None:
        self.name = name
        self.default = default
        self.presence = presence
        self.required = required

    def __repr__(self) -> str:
        return f"Variable({self.name!r}, {self.default!r}, {self.presence!r}, {self.required!r})"


def _closing(text: str) -> int:
    """Index of the ``}`` closing the ``${`` at the start of ``text`` (nesting counted), or -1."""
    depth = 0
    for i, c in enumerate(text):
        if text.startswith("${", i):
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _from_string(text: str) -> list[Variable]:
    out: list[Variable] = []
    i = 0
    while True:
        m = _PATTERN.search(text, i)
        if not m:
            return out
        if m.group("escaped"):
            i = m.end()
            continue
        if m.group("named"):
            out.append(Variable(m.group("named")))
            i = m.end()
            continue
        rest = text[m.start():]
        end = _closing(rest)
        if end < 0:
            return out
        expr = rest[2:end]
        j = 0
        while j < len(expr) and (expr[j].isalnum() or expr[j] == "_"):
            j += 1
        name, tail = expr[:j], expr[j:]
        var = Variable(name)
        for op, field in ((":?", "required"), ("?", "required"), (":-", "default"), ("-", "default"),
                          (":+", "presence"), ("+", "presence")):
            if tail.startswith(op):
                if field == "required":
                    var.required = True
                else:
                    setattr(var, field, tail[len(op):])
                break
        if name:
            out.append(var)
        for inner in (var.default, var.presence):
            if inner:
                out += _from_string(inner)
        i = m.start() + end + 1


def extract_variables(model: Any) -> dict[str, Variable]:
    """Every variable of ``model`` by name (a later mention of a name replaces an earlier one)."""
    found: dict[str, Variable] = {}
    if isinstance(model, str):
        for v in _from_string(model):
            found[v.name] = v
    elif isinstance(model, dict):
        for value in model.values():
            found.update(extract_variables(value))
    elif isinstance(model, list):
        for item in model:
            if isinstance(item, str):
                found.update(extract_variables(item))
    return found
