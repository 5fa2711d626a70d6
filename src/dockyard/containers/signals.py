"""docker's signal syntax for kill/stop: "SIGKILL", "KILL", "kill", "9", "RTMIN+3"."""

from __future__ import annotations

import signal as signal_mod

from dockyard.errors import InvalidParameter

_SIGNALS = {name[3:]: int(getattr(signal_mod, name)) for name in dir(signal_mod)
            if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(getattr(signal_mod, name), int)}


def parse_signal(value: str | int | None, default: int = signal_mod.SIGKILL) -> int:
    """docker's signal syntax: "SIGKILL", "KILL", "kill", "9"."""
    if value is None or value == "":
        return default
    text = str(value).upper()
    if text.isdigit():
        n = int(text)
        if not 0 < n <= 64:
            raise InvalidParameter(f"Invalid signal: {value}")
        return n
    text = text.removeprefix("SIG")
    if text.startswith("RTMIN+") and text[6:].isdigit():
        return int(signal_mod.SIGRTMIN) + int(text[6:])
    if text not in _SIGNALS:
        raise InvalidParameter(f"Invalid signal: {value}")
    return _SIGNALS[text]
