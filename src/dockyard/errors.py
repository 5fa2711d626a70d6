"""Domain errors shared by every service.

Services raise these and know nothing of HTTP: which status each class answers with is decided once, by the
table in ``dockyard/api/errors.py``, which renders ``{"message": str(err)}`` exactly as dockerd does, so
clients that parse the wording (docker CLI, docker-py) keep working.
"""


class DockyardError(Exception):
    """Base class of every error a service raises on purpose."""


class InvalidParameter(DockyardError):
    """The request itself is wrong (a bad flag, name, reference or body)."""


class Unauthorized(DockyardError):
    """The caller did not prove who it is."""


class Forbidden(DockyardError):
    """The caller may not do this (a predefined network, a protected object)."""


class NotFound(DockyardError):
    """The object the request names does not exist."""


class Conflict(DockyardError):
    """The object exists but its state forbids the request (in use, running, name taken)."""


class NotModified(DockyardError):
    """Start of a running container, stop of a stopped one: nothing to do, and no message."""


class NotImplementedByEngine(DockyardError):
    """A Docker feature dockyard deliberately does not implement (see the scope ledger)."""


class Unavailable(DockyardError):
    """The engine cannot serve this now (shutting down, a backend missing on this host)."""


class SystemError_(DockyardError):
    """Anything the engine failed to do for reasons of its own."""
