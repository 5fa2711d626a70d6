"""Build output on the client: plain lines (the classic stream as is), or on a terminal a compact live view of
the steps — each with its elapsed time and the last lines of its output — redrawn in place, as BuildKit's tty
display does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO

_TAIL = 6


@dataclass
class _Step:
    title: str
    started: float
    ended: float = 0.0
    cached: bool = False
    lines: list[str] = field(default_factory=list)


class Display:
    def __init__(self, out: IO[str], err: IO[str], mode: str, quiet: bool) -> None:
        self.out = out
        self.err = err
        self.quiet = quiet
        tty = out.isatty() if hasattr(out, "isatty") else False
        self.tty = not quiet and (mode == "tty" or (mode == "auto" and tty))
        self.steps: list[_Step] = []
        self.drawn = 0
        self.start = time.monotonic()
        self.tail: list[str] = []  # lines after the last step (Successfully built …)
        self.last_draw = 0.0

    def feed(self, text: str) -> None:
        if self.quiet:
            return
        if not self.tty:
            self.out.write(text)
            self.out.flush()
            return
        now = time.monotonic()
        for line in text.splitlines():
            if line.startswith("Step ") and " : " in line:
                if self.steps and not self.steps[-1].ended:
                    self.steps[-1].ended = now
                self.steps.append(_Step(line.split(" : ", 1)[1], now))
            elif line.startswith("Successfully ") or line.startswith("[Warning]"):
                if self.steps and not self.steps[-1].ended:
                    self.steps[-1].ended = now
                self.tail.append(line)
            elif self.steps:
                st = self.steps[-1]
                if line.strip() == "---> Using cache":
                    st.cached = True
                elif line.startswith(" ---> ") or line.startswith("Removing intermediate container"):
                    continue
                else:
                    st.lines.append(line)
        if now - self.last_draw > 0.05:
            self.draw()

    def draw(self, final: bool = False) -> None:
        now = time.monotonic()
        self.last_draw = now
        rows = [f"[+] Building {now - self.start:.1f}s ({sum(1 for s in self.steps if s.ended)}/"
                f"{len(self.steps)}){' FINISHED' if final else ''}"]
        for i, st in enumerate(self.steps, 1):
            took = (st.ended or now) - st.started
            state = "CACHED" if st.cached else f"{took:.1f}s"
            rows.append(f" => [{i}] {st.title[:70]:<70} {state}")
            if not st.ended or (final and not st.cached and st is self.steps[-1] and False):
                rows += [f" => => {ln[:90]}" for ln in st.lines[-_TAIL:]]
        if final:
            rows += self.tail
        buf = ""
        if self.drawn:
            buf += f"\x1b[{self.drawn}F"
        buf += "".join(f"\x1b[2K{r}\n" for r in rows)
        self.out.write(buf)
        self.out.flush()
        self.drawn = len(rows) if not final else 0

    def close(self) -> None:
        if self.tty and not self.quiet:
            now = time.monotonic()
            if self.steps and not self.steps[-1].ended:
                self.steps[-1].ended = now
            self.draw(final=True)
