"""The one table from domain errors to HTTP: status and message, as dockerd answers them.

Services raise the classes of ``dockyard/errors.py`` and the runtime raises ``OCIRuntimeError`` with a
``kind``; neither knows HTTP.  The server asks :func:`http_status` for every error a handler lets out, so a
new error class gets its status here or nowhere.  Subclasses (``ReferenceError_``, ``UnsafeArchive``) inherit
their base's status through the class's MRO.
"""

from __future__ import annotations

import sqlite3

from dockyard import errors
from dockyard.runtime.errors import OCIRuntimeError

STATUS_OF_ERROR: dict[type[errors.DockyardError], int] = {
    errors.InvalidParameter: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.NotModified: 304,
    errors.NotImplementedByEngine: 501,
    errors.Unavailable: 503,
    errors.SystemError_: 500,
    errors.DockyardError: 500,
}

# the runtime's kinds: a missing or non-executable command is the caller's mistake (docker: 400), an object
# that is absent or already there is 404/409, a wrong state is a conflict, the rest is the engine's failure
STATUS_OF_RUNTIME_KIND: dict[str, int] = {
    "not_found": 400,
    "permission": 400,
    "invalid": 400,
    "not_exist": 404,
    "exists": 409,
    "state": 409,
    "other": 500,
}


def http_status(exc: BaseException) -> int | None:
    """The status an error answers with, or None when it is no domain error (an engine bug: 500, logged)."""
    if isinstance(exc, OCIRuntimeError):
        return STATUS_OF_RUNTIME_KIND.get(exc.kind, 500)
    if isinstance(exc, errors.DockyardError):
        for cls in type(exc).__mro__:
            status = STATUS_OF_ERROR.get(cls)  # type: ignore[call-overload]
            if status is not None:
                return status
    return None


def host_error_message(exc: BaseException) -> str | None:
    """The host refusing a write (a full disk, a quota, a permission) in Go's words, as dockerd's messages carry
    them (``<path>: no space left on device``); None for anything else. SQLite's "database or disk is full" is
    the same full disk."""
    if isinstance(exc, OSError) and exc.errno is not None:
        text = exc.strerror or str(exc)
        text = text[:1].lower() + text[1:]
        return f"{exc.filename}: {text}" if exc.filename else text
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return "state.db: no space left on device"
    return None


def error_message(exc: BaseException) -> str:
    """The body's ``message``: the error's own text (docker's wording), empty for 304."""
    if isinstance(exc, errors.NotModified):
        return ""
    return str(exc)
