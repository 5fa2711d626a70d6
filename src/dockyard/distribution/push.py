"""Push: every layer the registry lacks is compressed once and uploaded; the rest are skipped.

For each layer the daemon remembers the compressed blobs it has seen for its diff ID (pulled or pushed) and
the repositories holding them; a blob the target repository has (HEAD) is "Layer already exists", one another
repository of the same registry has is mounted (``?mount=&from=``), and only then is the layer compressed and
uploaded: small blobs monolithically (POST then PUT), larger ones in chunks (PATCH with ``Content-Range``,
then PUT with the digest). Then the config blob and the manifest; RepoDigests gain ``name@digest``.
"""

from __future__ import annotations

import hashlib
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ..images.reference import Reference
from ..util import failpoint
from . import spec
from .compress import gzip_blocks
from .metadata import BlobMetadata
from .ports import Blobs, LayerTars
from .progress import Emit, Meter, message, short_id
from .pull import raise_for
from .session import RegistryError, RepoSession
from .spec import Descriptor

CHUNK = 16 << 20  # bytes per PATCH of a chunked upload
MONOLITHIC_MAX = 4 << 20  # blobs up to this size go in one PUT


@dataclass
class PushedLayer:
    desc: Descriptor
    status: str  # Pushed, Layer already exists, Mounted from …


def blob_exists(sess: RepoSession, digest: str) -> bool:
    resp = sess.request("HEAD", f"/v2/{sess.repo}/blobs/{digest}")
    resp.read_all()
    if resp.status == 200:
        return True
    if resp.status == 404:
        return False
    raise RegistryError("", f"unexpected status {resp.status} checking blob {digest}", resp.status)


def _location(sess: RepoSession, resp_headers: dict[str, str]) -> str:
    loc = resp_headers.get("location", "")
    if not loc:
        raise RegistryError("", "registry gave no upload location", 500)
    full = urllib.parse.urljoin(sess.url(f"/v2/{sess.repo}/blobs/uploads/"), loc)
    u = urllib.parse.urlsplit(full)
    return u.path + (f"?{u.query}" if u.query else "")


def _with_query(path: str, **params: str) -> str:
    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(params)


def try_mount(sess: RepoSession, digest: str, source_repo: str) -> bool:
    resp = sess.request("POST", _with_query(f"/v2/{sess.repo}/blobs/uploads/", mount=digest, **{"from": source_repo}))
    resp.read_all()
    if resp.status == 201:
        return True
    if resp.status == 202:  # the registry started an upload instead: cancel it
        try:
            sess.request("DELETE", _location(sess, resp.headers)).read_all()
        except RegistryError:
            pass
    return False


def start_upload(sess: RepoSession) -> str:
    resp = sess.request("POST", f"/v2/{sess.repo}/blobs/uploads/", {"Content-Length": "0"}, b"")
    if resp.status != 202:
        raise_for(resp)
    loc = _location(sess, resp.headers)
    resp.read_all()
    failpoint.hit("image.push.upload-started")  # the registry expires the upload; nothing local changed
    return loc


def upload_bytes(sess: RepoSession, data: bytes, digest: str) -> None:
    """Monolithic upload: POST for a session, PUT the whole blob with its digest."""
    loc = start_upload(sess)
    resp = sess.request("PUT", _with_query(loc, digest=digest),
                        {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}, data)
    if resp.status != 201:
        raise_for(resp)
    resp.read_all()


def upload_stream(sess: RepoSession, chunks: Iterator[bytes], first: bytes = b"") -> tuple[str, int]:
    """Chunked upload of a stream of unknown length; returns (digest, size)."""
    sha = hashlib.sha256()
    size = 0
    loc = start_upload(sess)
    buf = bytearray(first)

    def send(part: bytes) -> str:
        nonlocal size
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(len(part)),
                "Content-Range": f"{size}-{size + len(part) - 1}"}
        resp = sess.request("PATCH", loc, hdrs, part)
        if resp.status != 202:
            raise_for(resp)
        resp.read_all()
        size += len(part)
        return _location(sess, resp.headers)

    for piece in chunks:
        buf += piece
        while len(buf) >= CHUNK:
            part = bytes(buf[:CHUNK])
            del buf[:CHUNK]
            sha.update(part)
            loc = send(part)
    if buf:
        part = bytes(buf)
        sha.update(part)
        loc = send(part)
    digest = "sha256:" + sha.hexdigest()
    resp = sess.request("PUT", _with_query(loc, digest=digest), {"Content-Length": "0"}, b"")
    if resp.status != 201:
        raise_for(resp)
    resp.read_all()
    return digest, size


class LayerPusher:
    def __init__(self, sess: RepoSession, registry: str, tars: LayerTars, metadata: BlobMetadata, emit: Emit,
                 concurrency: int) -> None:
        self.sess = sess
        self.registry = registry
        self.tars = tars
        self.metadata = metadata
        self.emit = emit
        self.concurrency = concurrency

    def push(self, diff_ids: list[str]) -> list[PushedLayer]:
        for d in diff_ids:
            self.emit(message("Preparing", short_id(d), {}))
        for n, d in enumerate(diff_ids):
            if n >= self.concurrency:
                self.emit(message("Waiting", short_id(d), {}))
        if not diff_ids:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(diff_ids)), thread_name_prefix="push") as pool:
            futures: list[Future[PushedLayer]] = [pool.submit(self._one, d) for d in diff_ids]
            wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:
                if f.done() and f.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise f.exception()  # type: ignore[misc]
            return [f.result() for f in futures]

    def _one(self, diff_id: str) -> PushedLayer:
        ident = short_id(diff_id)
        repo = self.sess.repo
        for known in self.metadata.compressed(diff_id):
            if known.media_type in spec.FOREIGN_LAYER_TYPES:
                continue
            desc = Descriptor(known.media_type, known.digest, known.size)
            if blob_exists(self.sess, known.digest):
                self.metadata.add(diff_id, known.digest, known.size, known.media_type, self.registry, repo)
                self.emit(message("Layer already exists", ident, {}))
                return PushedLayer(desc, "Layer already exists")
            self.metadata.forget_repo(known.digest, self.registry, repo)
            for other in self.metadata.repos(known.digest, self.registry):
                if other != repo and try_mount(self.sess, known.digest, other):
                    self.metadata.add(diff_id, known.digest, known.size, known.media_type, self.registry, repo)
                    status = f"Mounted from {other}"
                    self.emit(message(status, ident, {}))
                    return PushedLayer(desc, status)
        total = self.tars.tar_size(diff_id)
        meter = Meter(self.emit, ident, "Pushing", total)
        with self.tars.open_tar(diff_id) as f:
            chunks = gzip_blocks(f, on_read=meter.update)
            first = next(chunks)
            more = next(chunks, None)
            if more is None and len(first) <= MONOLITHIC_MAX:
                digest, size = "sha256:" + hashlib.sha256(first).hexdigest(), len(first)
                upload_bytes(self.sess, first, digest)
            else:
                rest = chunks if more is None else _prepend(more, chunks)
                digest, size = upload_stream(self.sess, rest, first)
        meter.update(total, force=True)
        self.metadata.add(diff_id, digest, size, spec.DOCKER_LAYER, self.registry, repo)
        self.emit(message("Pushed", ident, {}))
        return PushedLayer(Descriptor(spec.DOCKER_LAYER, digest, size), "Pushed")


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def push_config(sess: RepoSession, config: bytes, digest: str) -> None:
    if not blob_exists(sess, digest):
        upload_bytes(sess, config, digest)


def manifest_for(config_digest: str, config_size: int, layers: list[Descriptor]) -> tuple[bytes, str]:
    """A docker schema 2 manifest when every layer has a docker media type, else an OCI manifest."""
    docker_types = (spec.DOCKER_LAYER, spec.DOCKER_FOREIGN_LAYER)
    if all(x.media_type in docker_types for x in layers):
        cfg = Descriptor(spec.DOCKER_CONFIG, config_digest, config_size)
        return spec.image_manifest_json(cfg, layers, spec.DOCKER_MANIFEST), spec.DOCKER_MANIFEST
    oci = [Descriptor(spec.OCI_LAYER_GZIP if x.media_type == spec.DOCKER_LAYER else x.media_type, x.digest, x.size)
           for x in layers]
    cfg = Descriptor(spec.OCI_CONFIG, config_digest, config_size)
    return spec.image_manifest_json(cfg, oci, spec.OCI_MANIFEST), spec.OCI_MANIFEST


def put_manifest(sess: RepoSession, tag: str, raw: bytes, media_type: str) -> str:
    resp = sess.request("PUT", f"/v2/{sess.repo}/manifests/{tag}",
                        {"Content-Type": media_type, "Content-Length": str(len(raw))}, raw)
    if resp.status not in (200, 201):
        raise_for(resp)
    resp.read_all()
    return resp.headers.get("docker-content-digest") or spec.digest_of(raw)


def push_tag(sess: RepoSession, registry: str, ref: Reference, image_id: str, diff_ids: list[str], blobs: Blobs,
             tars: LayerTars, metadata: BlobMetadata, emit: Emit, concurrency: int,
             set_digest: Callable[[Reference, str], None]) -> str:
    """Push one tag of an image; returns the manifest digest."""
    layers = LayerPusher(sess, registry, tars, metadata, emit, concurrency).push(diff_ids)
    config = blobs.read_bytes(image_id)
    push_config(sess, config, image_id)
    raw, mt = manifest_for(image_id, len(config), [x.desc for x in layers])
    failpoint.hit("image.push.blobs-pushed")
    digest = put_manifest(sess, ref.tag or "latest", raw, mt)
    failpoint.hit("image.push.manifest-put")  # the retried push finds every blob and puts it again
    set_digest(Reference(ref.domain, ref.path, None, digest), image_id)
    emit(message(f"{ref.tag}: digest: {digest} size: {len(raw)}"))
    emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(raw)}})
    return digest


_lock = threading.Lock()
