"""Who caused the events published while a request is served: the API sets it, the bus records it.

Set per request by the API's access-control hook (the token's client id, or None); each connection is served
on its own thread, so a context variable keeps concurrent requests apart.
"""

from __future__ import annotations

from contextvars import ContextVar

CLIENT_ATTRIBUTE = "dockyard.client"
request_client: ContextVar[str | None] = ContextVar("request_client", default=None)
