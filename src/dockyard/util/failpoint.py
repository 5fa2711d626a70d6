"""Failpoints: named steps at which the daemon kills itself, so tests reach every crash point on purpose.

``DOCKYARD_FAILPOINTS=container.start.shim-launched`` (a comma-separated list) makes the daemon ``SIGKILL``
itself when it reaches that step, exactly as a ``kill -9`` landing there would: no ``finally`` runs, no file is
closed, the shims and containers it started live on. Each step is named ``<object>.<operation>.<point>`` at
the place it is hit; a name with a trailing ``*`` matches every step it prefixes. Unset, a failpoint costs one
frozenset lookup.

Recovery from each point (what restart makes of it) is documented where the step is and in
docs/architecture.md ("Crash points").
"""

from __future__ import annotations

import os
import signal

ENV = "DOCKYARD_FAILPOINTS"

_names = frozenset(n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip())
_prefixes = tuple(n[:-1] for n in _names if n.endswith("*"))


def hit(name: str) -> None:
    """Die here, the hard way, if the environment names this step."""
    if not _names:
        return
    if name in _names or (_prefixes and name.startswith(_prefixes)):
        os.write(2, f"failpoint {name}: killing the daemon\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)
