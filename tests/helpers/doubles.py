"""Test doubles for the services' constructor arguments (production code has none of these)."""

from __future__ import annotations

from dockyard.images.service import ImageService
from dockyard.storage.blobs import BlobStore
from dockyard.storage.db import StateDB
from dockyard.storage.layers import LayerStore


class NoContainers:
    """The containers as images and volumes ask about them, when a test has none: nothing uses anything."""

    def image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return []

    def volume_users(self, name: str) -> list[str]:
        return []


def image_service(db: StateDB, root: str) -> ImageService:
    """An image service over its own layer store, wired as daemon/main.py does, without containers."""
    return ImageService(db, root, None, LayerStore(db, root, BlobStore(root)), NoContainers())
