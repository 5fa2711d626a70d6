"""The live progress display on a terminal, as Compose v2 draws it.

    [+] Running 2/3
     ✔ Network proj_default  Created                                   0.1s
     ⠹ Container proj-web-1  Starting                                  0.4s

One line per object (network, volume, image, container) with its state and the time since its first
event, redrawn in place (cursor up, erase line) on every event and ten times a second while something is
in progress; a done object keeps its final time. Other messages print above the block. ``close()`` draws
the final state once more and leaves it on the screen.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO

from dockyard.compose.progress import DONE, Progress

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_GREEN, _RED, _BLUE, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[34m", "\x1b[0m"


class _Line:
    def __init__(self, kind: str, name: str, status: str, now: float) -> None:
        self.kind = kind
        self.name = name
        self.status = status
        self.started = now
        self.ended: float | None = None


class TTYProgress(Progress):
    def __init__(self, err: IO[str], quiet: bool = False, title: str = "Running") -> None:
        super().__init__(err, quiet)
        self.title = title
        self._lines: dict[tuple[str, str], _Line] = {}
        self._drawn = 0  # lines of the block on the screen now
        self._frame = 0
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    def event(self, kind: str, name: str, status: str) -> None:
        if status in DONE:
            self.done.append((kind, name, status))
        if self.quiet:
            return
        now = time.monotonic()
        with self.lock:
            line = self._lines.get((kind, name))
            if line is None:
                line = self._lines[(kind, name)] = _Line(kind, name, status, now)
            line.status = status
            line.ended = now if status in DONE or status == "Error" else None
            self._draw()
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, daemon=True, name="progress")
                self._ticker.start()

    def message(self, text: str) -> None:
        with self.lock:
            self._erase()
            self.err.write(text + "\n")
            self._draw()

    def close(self) -> None:
        self._closed.set()
        with self.lock:
            if self._lines and not self.quiet:
                self._draw()
            self._lines.clear()
            self._drawn = 0

    def _tick(self) -> None:
        while not self._closed.wait(0.1):
            with self.lock:
                if any(ln.ended is None for ln in self._lines.values()):
                    self._frame += 1
                    self._draw()

    def _erase(self) -> None:
        if self._drawn:
            self.err.write(f"\x1b[{self._drawn}A" + "\x1b[2K\n" * self._drawn + f"\x1b[{self._drawn}A")
            self._drawn = 0

    def _draw(self) -> None:
        if not self._lines:
            return
        try:
            width = os.get_terminal_size(self.err.fileno()).columns
        except (OSError, ValueError):
            width = 80
        now = time.monotonic()
        lines = list(self._lines.values())
        finished = sum(1 for ln in lines if ln.ended is not None)
        out = [f"\x1b[{self._drawn}A" if self._drawn else ""]
        head = f"[+] {self.title} {finished}/{len(lines)}"
        out.append("\x1b[2K" + (f"{_BLUE}{head}{_RESET}" if finished == len(lines) else head) + "\n")
        for ln in lines:
            if ln.status == "Error":
                icon = f"{_RED}✘{_RESET}"
            elif ln.ended is not None:
                icon = f"{_GREEN}✔{_RESET}"
            else:
                icon = _SPINNER[self._frame % len(_SPINNER)]
            elapsed = f"{(ln.ended or now) - ln.started:.1f}s"
            text = f" {ln.kind} {ln.name}  {ln.status}"
            pad = max(1, width - len(text) - len(elapsed) - 4)
            out.append(f"\x1b[2K {icon}{text}{' ' * pad}{elapsed}\n")
        self.err.write("".join(out))
        self.err.flush()
        self._drawn = len(lines) + 1
