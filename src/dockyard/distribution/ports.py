"""What the registry client needs from the image and layer stores, declared by this consumer.

The daemon's composition root passes the real stores (``images/store.py``, ``storage/layers.py``,
``storage/blobs.py``); tests may pass anything with these methods.
"""

from __future__ import annotations

from typing import IO, Protocol

from ..images.reference import Reference


class LayerInfo(Protocol):
    @property
    def chain_id(self) -> str: ...

    @property
    def diff_id(self) -> str: ...

    @property
    def size(self) -> int: ...


class LayerTars(Protocol):
    """A layer's uncompressed tar by diff ID, byte for byte as it was pulled, loaded or built (push reads it)."""

    def open_tar(self, diff_id: str) -> IO[bytes]: ...

    def tar_size(self, diff_id: str) -> int: ...


class Layers(LayerTars, Protocol):
    """Unpacked layers by chain ID, held by owners; an unheld layer goes at the next ``gc``."""

    def exists(self, chain_id: str) -> bool: ...

    def register(self, stream: IO[bytes], parent: str | None, holder: str,
                 blob_file: str | None = None, keep_tar: bool = True) -> LayerInfo: ...

    def hold(self, owner: str, chains: list[str]) -> None: ...

    def release(self, owner: str) -> None: ...

    def gc(self) -> list[str]: ...


class Blobs(Protocol):
    """Content by digest: image configs (and some layers' uncompressed tars: read those through LayerTars)."""

    def path(self, digest: str) -> str: ...

    def has(self, digest: str) -> bool: ...

    def read_bytes(self, digest: str) -> bytes: ...


class ImageRecord(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def diff_ids(self) -> list[str]: ...

    @property
    def refs(self) -> list[Reference]: ...


class ImageRecords(Protocol):
    """Image records (ID = config digest) and the references naming them."""

    def create(self, config_bytes: bytes, parent: str = "") -> ImageRecord: ...

    def get(self, image_id: str) -> ImageRecord: ...

    def exists(self, image_id: str) -> bool: ...

    def ref_target(self, ref: Reference) -> str | None: ...

    def set_ref(self, ref: Reference, image_id: str) -> str | None: ...

    def tags_of(self, name: str) -> list[str]: ...


class ImageResolver(Protocol):
    """docker's ``GetImage``: a name, ``name@digest`` or (short) ID to its image; NotFound otherwise."""

    def resolve(self, ref: str) -> ImageRecord: ...


class EventSink(Protocol):
    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None,
                scope: str = "local") -> object: ...
