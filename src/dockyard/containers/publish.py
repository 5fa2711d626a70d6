"""A container's event: docker's attributes (its labels, image and name) plus the action's own."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.containers.state import Container
    from dockyard.events.bus import EventBus


def publish_container_event(events: EventBus, c: Container, action: str, **attrs: str) -> None:
    base = {**(c.config.get("Labels") or {}), "image": c.image, "name": c.name}
    base.update(attrs)
    events.publish("container", action, c.id, base)
