"""Content-addressed blobs under ``<data_root>/blobs/sha256/<hex>``.

A blob is written to a temp file beside its final place, fsynced, its digest verified, and only
then renamed into place, so a crash never leaves a blob whose name lies about its content.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import IO, BinaryIO

from ..errors import InvalidParameter, NotFound

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise InvalidParameter(f"invalid digest: {digest!r}")
    return digest


class BlobWriter:
    """A temp file that hashes what is written; ``commit()`` names it by its digest."""

    def __init__(self, store: BlobStore, hashing: bool = True) -> None:
        self.store = store
        self.hashing = hashing  # False: the caller hashes the very bytes it writes and names them in commit()
        self.sha = hashlib.sha256()
        self.size = 0
        self.tmp = os.path.join(store.dir, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        self.f: BinaryIO = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes) -> int:
        if self.hashing:
            self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)

    def commit(self, expected: str | None = None) -> str:
        if not self.hashing and expected is None:
            raise ValueError("a blob written without hashing needs the digest its writer computed")
        digest = "sha256:" + self.sha.hexdigest() if self.hashing else check_digest(expected or "")
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        if expected is not None and expected != digest:
            os.unlink(self.tmp)
            raise InvalidParameter(f"digest mismatch: expected {expected}, got {digest}")
        os.replace(self.tmp, self.store.path(digest))
        return digest

    def abort(self) -> None:
        if not self.f.closed:
            try:
                self.f.close()
            except OSError:  # the flush of a full disk fails again: the temp file goes all the same
                pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class BlobStore:
    def __init__(self, data_root: str) -> None:
        self.dir = os.path.join(data_root, "blobs", "sha256")
        os.makedirs(self.dir, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.dir, check_digest(digest).split(":", 1)[1])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.path.getsize(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def writer(self, hashing: bool = True) -> BlobWriter:
        return BlobWriter(self, hashing)

    def put_bytes(self, data: bytes) -> str:
        w = self.writer()
        try:
            w.write(data)
            return w.commit()
        except BaseException:
            w.abort()
            raise

    def put_stream(self, src: IO[bytes], expected: str | None = None) -> str:
        w = self.writer()
        try:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                w.write(chunk)
            return w.commit(expected)
        except BaseException:
            w.abort()
            raise

    def read_bytes(self, digest: str) -> bytes:
        try:
            with open(self.path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass
