"""The one error type the runtime raises, with a ``kind`` callers can map.

The engine maps ``kind`` to Docker's exit codes: ``not_found`` -> 127,
``permission`` -> 126; ``exists``/``not_exist``/``state`` help the API pick
HTTP statuses.  Messages follow runc's wording so logs read the same.
"""

from __future__ import annotations

KINDS = frozenset({"not_found", "permission", "other", "exists", "not_exist", "state", "invalid"})


class OCIRuntimeError(Exception):
    """A runtime operation failed; ``kind`` classifies why."""

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind if kind in KINDS else "other"

    def __str__(self) -> str:
        return self.message
