"""Path-pattern routing: `/containers/{id}/json`, with `{name:path}` matching slashes (image names)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

_PARAM = re.compile(r"\{(\w+)(:path)?\}")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., object]]] = []

    def add(self, method: str, pattern: str, fn: Callable[..., object]) -> None:
        def repl(m: re.Match[str]) -> str:
            return f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"

        rx = re.compile("^" + _PARAM.sub(repl, re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}")) + "$")
        self._routes.append((method, rx, fn))

    def _decorator(self, method: str, pattern: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
        def deco(fn: Callable[..., object]) -> Callable[..., object]:
            self.add(method, pattern, fn)
            return fn

        return deco

    def get(self, pattern: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
        return self._decorator("GET", pattern)

    def post(self, pattern: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
        return self._decorator("POST", pattern)

    def put(self, pattern: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
        return self._decorator("PUT", pattern)

    def delete(self, pattern: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
        return self._decorator("DELETE", pattern)

    def head(self, pattern: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
        return self._decorator("HEAD", pattern)

    def match(self, method: str, path: str) -> tuple[Callable[..., object] | None, dict[str, str], bool]:
        """Return (handler, path params, path_exists_for_other_method)."""
        other = False
        for m, rx, fn in self._routes:
            mt = rx.match(path)
            if not mt:
                continue
            if m == method or (method == "HEAD" and m == "GET"):
                # path parameters arrive percent-encoded when a client quotes an image name
                # (``127.0.0.1%3A5000%2Fteam%2Fapp``); dockerd's router decodes them, so do we
                return fn, {k: unquote(v) if "%" in v else v for k, v in mt.groupdict().items()}, True
            other = True
        return None, {}, other
