"""Progress lines on stderr, as Compose v2 prints them when its output is not a terminal (on one, see
compose/ttyprogress.py).

`` Container proj-web-1  Creating`` then `` Container proj-web-1  Created``; one line per event, written
whole under a lock so that parallel work never interleaves within a line.
"""

from __future__ import annotations

import threading
from typing import IO

DONE = frozenset({"Created", "Started", "Recreated", "Removed", "Stopped", "Running", "Healthy", "Exited",
                  "Killed", "Paused", "Unpaused", "Restarted", "Pulled", "Built"})  # an object's final states


class Progress:
    def __init__(self, err: IO[str], quiet: bool = False) -> None:
        self.err = err
        self.quiet = quiet
        self.lock = threading.Lock()
        self.done: list[tuple[str, str, str]] = []  # (kind, name, final status): what this command made/changed

    def event(self, kind: str, name: str, status: str) -> None:
        if status in DONE:
            self.done.append((kind, name, status))
        if self.quiet:
            return
        with self.lock:
            self.err.write(f" {kind} {name}  {status}\n")
            self.err.flush()

    def message(self, text: str) -> None:
        with self.lock:
            self.err.write(text + "\n")
            self.err.flush()

    def close(self) -> None:
        """The command's steps are over (the terminal display draws its final state)."""

    def created(self) -> list[str]:
        return [f"{k} {n}" for k, n, s in self.done if s == "Created"]
