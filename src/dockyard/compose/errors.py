"""Compose's user-facing errors, each with the exit code Compose v2 gives its category.

Compose v2 exits 14 when no file is found, 15 when a file does not parse or validate, 16 for a command
line it cannot read, 17 for a failed build and 18 for a failed pull; anything else exits 1.
"""

from __future__ import annotations

FILE_NOT_FOUND = 14
PARSE_FAILURE = 15
SYNTAX_FAILURE = 16
BUILD_FAILURE = 17
PULL_FAILURE = 18


class ComposeError(Exception):
    """A message for the user and the process's exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ProjectError(ComposeError):
    """The model is wrong: a file that does not parse, interpolate or validate."""

    def __init__(self, message: str) -> None:
        super().__init__(message, PARSE_FAILURE)
