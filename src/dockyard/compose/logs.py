"""Container output prefixed by the container's name, coloured per container, as Compose v2 prints it.

``proj-web-1  | line``: names padded to the longest, a colour per container taken in turn from v2's
palette (only on a terminal, unless --no-color); one thread per followed container, whole lines written
under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO, Any

from dockyard.client.api_client import iter_multiplexed
from dockyard.compose.engine import Engine

# v2's rainbow: cyan, yellow, green, magenta, blue, then their bright variants
_COLORS = ["36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1"]


class LogPrinter:
    def __init__(self, out: IO[str], names: list[str], color: bool, prefix: bool = True,
                 timestamps: bool = False) -> None:
        self.out = out
        self.width = max([len(n) for n in names] or [0])
        self.color = color
        self.prefix = prefix
        self.timestamps = timestamps
        self.lock = threading.Lock()
        self._colors: dict[str, str] = {}

    def _color_of(self, name: str) -> str:
        if name not in self._colors:
            self._colors[name] = _COLORS[len(self._colors) % len(_COLORS)]
        return self._colors[name]

    def head(self, name: str) -> str:
        if not self.prefix:
            return ""
        text = f"{name.ljust(self.width)}  | "
        if self.color:
            return f"\x1b[{self._color_of(name)}m{text}\x1b[0m"
        return text

    def line(self, name: str, text: str) -> None:
        with self.lock:
            self.out.write(self.head(name) + text + "\n")
            self.out.flush()

    def note(self, name: str, text: str) -> None:
        """A line about the container (``exited with code 0``), in its colour, without the bar."""
        with self.lock:
            if self.color:
                self.out.write(f"\x1b[{self._color_of(name)}m{name} {text}\x1b[0m\n")
            else:
                self.out.write(f"{name} {text}\n")
            self.out.flush()

    def follow(self, engine: Engine, cid: str, name: str, tty: bool, follow: bool = True,
               tail: str | None = None, since: str | None = None, until: str | None = None,
               on_end: Callable[[], None] | None = None) -> threading.Thread:
        def run() -> None:
            try:
                self.copy(engine, cid, name, tty, follow, tail, since, until)
            finally:
                if on_end:
                    on_end()

        t = threading.Thread(target=run, daemon=True, name=f"logs-{name}")
        t.start()
        return t

    def copy(self, engine: Engine, cid: str, name: str, tty: bool, follow: bool = False,
             tail: str | None = None, since: str | None = None, until: str | None = None) -> None:
        try:
            resp = engine.logs(cid, follow=follow, tail=tail, timestamps=self.timestamps, since=since, until=until)
        except Exception:  # noqa: BLE001 - a container removed meanwhile has no more output
            return
        pending: dict[int, bytes] = {1: b"", 2: b""}
        chunks: Any = resp.iter_raw()
        stream = ((1, c) for c in chunks) if tty else iter_multiplexed(chunks)
        try:
            for fd, data in stream:
                buf = pending.get(fd, b"") + data
                *lines, rest = buf.split(b"\n")
                pending[fd] = rest
                for ln in lines:
                    self.line(name, ln.rstrip(b"\r").decode("utf-8", "replace"))
        except OSError:
            pass
        for rest in pending.values():
            if rest:
                self.line(name, rest.decode("utf-8", "replace"))
