"""Engine API client: ``APIClient(host)``, ``APIError``."""

from dockyard.client.api_client import APIClient, APIError, DaemonUnreachable, HijackedSocket

__all__ = ["APIClient", "APIError", "DaemonUnreachable", "HijackedSocket"]
