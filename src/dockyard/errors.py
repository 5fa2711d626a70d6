"""Domain errors shared by every service.

Services raise these; the API layer maps each class to its HTTP status and
renders ``{"message": str(err)}`` exactly as dockerd does, so clients that
parse the wording (docker CLI, docker-py) keep working.
"""


class DockyardError(Exception):
    """Base class; ``status`` is the HTTP status the API answers with."""

    status = 500


class InvalidParameter(DockyardError):
    status = 400


class Unauthorized(DockyardError):
    status = 401


class Forbidden(DockyardError):
    status = 403


class NotFound(DockyardError):
    status = 404


class Conflict(DockyardError):
    status = 409


class NotModified(DockyardError):
    """Start of a running container, stop of a stopped one: HTTP 304, empty body."""

    status = 304


class NotImplementedByEngine(DockyardError):
    status = 501


class Unavailable(DockyardError):
    status = 503


class SystemError_(DockyardError):
    """Anything the engine failed to do for reasons of its own (HTTP 500)."""

    status = 500
