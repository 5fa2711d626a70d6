"""Engine API client: ``APIClient(host)``, ``APIError`` and its per-status subclasses (``NotFound`` …)."""

from dockyard.client.api_client import (
    APIClient,
    APIError,
    BadRequest,
    Conflict,
    DaemonUnreachable,
    Forbidden,
    HijackedSocket,
    NotFound,
    NotImplementedByDaemon,
    ServerError,
    Unauthorized,
    Unavailable,
    error_for,
)

__all__ = ["APIClient", "APIError", "BadRequest", "Conflict", "DaemonUnreachable", "Forbidden", "HijackedSocket",
           "NotFound", "NotImplementedByDaemon", "ServerError", "Unauthorized", "Unavailable", "error_for"]
