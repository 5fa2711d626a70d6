"""Request bounds and JSON body types, checked once at the API boundary for every endpoint.

Every JSON request body is checked against the JSON types the Engine API's swagger document gives it
(``data/body_schemas.json``, made by ``scripts/gen_body_schemas.py``), so a value of the wrong type is a 400 in
moby's wording (``json: cannot unmarshal string into Go struct field …``) before any handler sees it, on every
route the spec describes, also routes added later. Properties the spec does not name, and ``null`` anywhere,
pass, as with Go's decoder.

The bounds keep one request from taking the daemon's memory: the size of a JSON body (413), the size of the
request's headers (431, Go's answer), the nesting depth of a JSON body and the count and size of ``Labels``
(400). They are daemon.json settings (``max-json-body``, ``max-header-bytes``, ``max-json-depth``,
``max-labels``, ``max-label-bytes``). Streamed bodies (a build context, an image load, a ``cp`` archive) are not
JSON bodies and stay unlimited.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "body_schemas.json")


@dataclass(frozen=True)
class RequestLimits:
    max_json_body: int = 1 << 20
    max_header_bytes: int = 64 << 10
    max_json_depth: int = 100
    max_labels: int = 1000
    max_label_bytes: int = 64 << 10


class BodyRejected(Exception):
    """A request refused at the boundary; ``status`` is the HTTP answer, the message docker-style."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@lru_cache(maxsize=1)
def _table() -> tuple[list[tuple[str, re.Pattern[str], dict[str, Any]]], dict[str, Any]]:
    with open(_DATA) as f:
        data = json.load(f)
    bodies = []
    for key, node in data["bodies"].items():
        method, _, pattern = key.partition(" ")
        bodies.append((method, re.compile(pattern), node))
    return bodies, data["defs"]


def schema_for(method: str, path: str) -> dict[str, Any] | None:
    """The body schema of ``method path`` (a path without the /vX.Y prefix), or None if the spec has none."""
    bodies, _defs = _table()
    for m, rx, node in bodies:
        if m == method and rx.match(path):
            return node
    return None


_BRACKETS = re.compile(rb"[\[\]{}]")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def check_depth(data: bytes, limit: int) -> None:
    """Refuse a body nested deeper than ``limit`` (before parsing: Python's parser would recurse into it)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b'""', data)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise BodyRejected(400, f"invalid JSON: nesting depth exceeds the limit of {limit}")
        else:
            depth -= 1


def parse(data: bytes, method: str, path: str, limits: RequestLimits) -> Any:
    """Parse a JSON body and check its types and label bounds; raises BodyRejected (400)."""
    check_depth(data, limits.max_json_depth)
    try:
        value = json.loads(data)
    except RecursionError:
        raise BodyRejected(400, f"invalid JSON: nesting depth exceeds the limit of {limits.max_json_depth}") from None
    except ValueError as e:
        raise BodyRejected(400, f"invalid JSON: {e}") from None
    node = schema_for(method, path)
    if node is not None:
        _Checker(limits).check(value, node, "", _name(node))
    return value


_JSON_WORD = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}


def _name(node: dict[str, Any]) -> str:
    ref = node.get("$")
    if ref:
        return str(ref)
    return str(node.get("n") or "")


class _Checker:
    def __init__(self, limits: RequestLimits) -> None:
        self.limits = limits
        self.defs = _table()[1]

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$" in node:
            node = self.defs[node["$"]]
        return node

    def _go_type(self, node: dict[str, Any], depth: int = 0) -> str:
        ref = node.get("$")
        node = self._resolve(node)
        t = node.get("t")
        if isinstance(t, list):
            t = t[0]
        if t == "array":
            item = node.get("i")
            return "[]" + (self._go_type(item, depth + 1) if item and depth < 5 else "interface {}")
        if t == "object":
            if "p" in node:
                return str(ref or node.get("n") or "struct")
            value = node.get("a")
            return "map[string]" + (self._go_type(value, depth + 1) if value and depth < 5 else "interface {}")
        return {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool"}.get(str(t),
                                                                                                   "interface {}")

    @staticmethod
    def _fits(value: Any, t: str) -> bool:
        if t == "string":
            return isinstance(value, str)
        if t == "boolean":
            return isinstance(value, bool)
        if t == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if t == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if t == "array":
            return isinstance(value, list)
        if t == "object":
            return isinstance(value, dict)
        return True

    def _fail(self, value: Any, node: dict[str, Any], field: str, top: str) -> BodyRejected:
        got = _JSON_WORD.get(type(value), "value")
        where = f"Go struct field {top}.{field}" if field else "Go value"
        return BodyRejected(400, f"json: cannot unmarshal {got} into {where} of type {self._go_type(node)}")

    def check(self, value: Any, node: dict[str, Any], field: str, top: str) -> None:
        if value is None:
            return
        full = self._resolve(node)
        t = full.get("t")
        if t is not None:
            types = t if isinstance(t, list) else [t]
            if not any(self._fits(value, x) for x in types):
                raise self._fail(value, node, field, top)
        if isinstance(value, dict):
            if field.rsplit(".", 1)[-1] == "Labels" and "p" not in full:
                self._check_labels(value)
            props = full.get("p")
            extra = full.get("a")
            for key, sub in value.items():
                child = props.get(key) if props else None
                if child is None and props:
                    low = key.lower()  # Go matches field names case-insensitively
                    child = next((v for k, v in props.items() if k.lower() == low), None)
                if child is not None:
                    self.check(sub, child, f"{field}.{key}" if field else key, top)
                elif extra is not None:  # a map's value: Go names the map's field, not the key
                    self.check(sub, extra, field, top)
        elif isinstance(value, list) and "i" in full:
            for item in value:
                self.check(item, full["i"], field, top)

    def _check_labels(self, labels: dict[str, Any]) -> None:
        lim = self.limits
        if len(labels) > lim.max_labels:
            raise BodyRejected(400, f"too many labels: {len(labels)} (the limit is {lim.max_labels})")
        for k, v in labels.items():
            size = len(k.encode()) + (len(v.encode()) if isinstance(v, str) else 0)
            if size > lim.max_label_bytes:
                raise BodyRejected(400, f"label {k[:64]!r} is too large: {size} bytes "
                                        f"(the limit is {lim.max_label_bytes})")
