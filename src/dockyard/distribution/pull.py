"""Pull: manifest (or index, then the platform's manifest), config, then every missing layer downloaded AND
unpacked in parallel (docker unpacks one layer at a time, moby#21814).

A layer's place in the chain is known from the config's diff IDs before any byte arrives, so each layer is
unpacked straight from the network into the layer store under its chain ID, in any order; the image record
is written only once every layer is there and verified (compressed digest as the bytes stream, diff ID after
unpacking). Layers are held by a temporary owner meanwhile; on any failure the owner is released and the
layer store's gc removes what this pull unpacked, so a failed pull leaves no half image behind.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter, NotFound
from ..images.reference import Reference
from ..storage.layers import chain_ids
from ..storage.tarsplit import SplitConflict
from ..util import failpoint
from . import spec
from .blobstream import BlobStream, Cancelled
from .ports import Blobs, EventSink, ImageRecords, LayerInfo, Layers
from .progress import Emit, Meter, message, short_id
from .session import RegistryError, RepoSession
from .spec import Descriptor, Platform


class PullNotFound(NotFound):
    """docker's ``notFoundError``: the registry said the repository or tag is not there (HTTP 404)."""


def translate_pull_error(err: RegistryError, ref: Reference) -> Exception:
    """moby's ``translatePullError``: DENIED, MANIFEST_UNKNOWN and NAME_UNKNOWN become not-found errors
    with docker's wording; anything else keeps the registry's text."""
    if err.code == "DENIED":
        return PullNotFound(f"pull access denied for {ref.familiar_name}, repository does not exist or may "
                            f"require 'docker login': {err}")
    if err.code == "MANIFEST_UNKNOWN":
        return PullNotFound(f"manifest for {ref.familiar()} not found: {err}")
    if err.code == "NAME_UNKNOWN":
        return PullNotFound(f"repository {ref.familiar_name} not found: {err}")
    return err


@dataclass
class Fetched:
    raw: bytes
    media_type: str
    digest: str


def fetch_manifest(sess: RepoSession, reference: str) -> Fetched:
    """GET a manifest by tag or digest; a digest reference is verified against the bytes."""
    resp = sess.request("GET", f"/v2/{sess.repo}/manifests/{reference}", {"Accept": spec.MANIFEST_ACCEPT})
    if resp.status != 200:
        raise_for(resp)
    raw = resp.read_all(spec.MAX_MANIFEST_SIZE)
    digest = spec.digest_of(raw)
    if spec.is_digest(reference) and digest != reference:
        raise spec.DigestMismatch(f"manifest verification failed for digest {reference}")
    mt = spec.manifest_kind(raw, resp.headers.get("content-type", ""))
    return Fetched(raw, mt, digest)


def raise_for(resp: Any) -> None:
    from .session import parse_errors

    body = resp.read_all()
    raise parse_errors(resp.status, body, resp.headers.get("www-authenticate", ""))


def fetch_blob_bytes(sess: RepoSession, desc: Descriptor, limit: int = 64 << 20) -> bytes:
    if desc.size > limit:
        raise InvalidParameter(f"blob {desc.digest} too large ({desc.size} bytes)")
    stream = BlobStream(sess, desc)
    chunks = []
    while True:
        data = stream.read(1 << 20)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


@dataclass
class Resolved:
    """What a reference names at the registry: the top manifest's digest and the platform's image manifest."""

    digest: str  # what RepoDigests record: the index's digest for a multi-platform image
    manifest: spec.ImageManifest
    manifest_digest: str
    top: Fetched


def resolve(sess: RepoSession, ref: Reference, platform: Platform | None) -> Resolved:
    top = fetch_manifest(sess, ref.digest or ref.tag or "latest")
    fetched = top
    if top.media_type in spec.SCHEMA1:
        raise InvalidParameter(spec.SCHEMA1_REFUSED.format(ref=str(ref)))
    if top.media_type in spec.INDEXES:
        index = spec.parse_index(top.raw, top.media_type)
        want = platform or spec.host_platform()
        chosen = spec.select_platform(index, want)
        if chosen is None:
            raise PullNotFound(f"no matching manifest for {want} in the manifest list entries")
        fetched = fetch_manifest(sess, chosen.digest)
        if fetched.media_type in spec.SCHEMA1:
            raise InvalidParameter(spec.SCHEMA1_REFUSED.format(ref=str(ref)))
    if fetched.media_type not in spec.IMAGE_MANIFESTS:
        raise InvalidParameter(f"unsupported media type {fetched.media_type or 'unknown'}")
    return Resolved(top.digest, spec.parse_manifest(fetched.raw, fetched.media_type), fetched.digest, top)


class LayerPuller:
    """Downloads and unpacks one image's missing layers, ``concurrency`` at a time."""

    def __init__(self, layers: Layers, emit: Emit, concurrency: int, attempts: int) -> None:
        self.layers = layers
        self.emit = emit
        self.concurrency = concurrency
        self.attempts = attempts

    def pull(self, sess: RepoSession, manifest: spec.ImageManifest, diff_ids: list[str], holder: str) -> None:
        chains = chain_ids(diff_ids)
        todo: list[int] = []
        for i, desc in enumerate(manifest.layers):
            if self.layers.exists(chains[i]):
                self.layers.hold(holder, [chains[i]])
                self.emit(message("Already exists", short_id(desc.digest), {}))
            else:
                todo.append(i)
        for i in todo:
            self.emit(message("Pulling fs layer", short_id(manifest.layers[i].digest), {}))
        for n, i in enumerate(todo):
            if n >= self.concurrency:
                self.emit(message("Waiting", short_id(manifest.layers[i].digest), {}))
        if not todo:
            return
        cancel = threading.Event()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo)), thread_name_prefix="pull") as pool:
            futures: list[Future[None]] = [
                pool.submit(self._one, sess, manifest.layers[i], diff_ids[i], chains[i - 1] if i else None,
                            holder, cancel) for i in todo]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                cancel.set()
                wait(pending)
                errs = [f.exception() for f in futures if f.done() and f.exception() is not None]
                first = next((e for e in errs if not isinstance(e, Cancelled)), errs[0])
                assert first is not None
                raise first

    def _one(self, sess: RepoSession, desc: Descriptor, diff_id: str, parent: str | None, holder: str,
             cancel: threading.Event) -> None:
        ident = short_id(desc.digest)
        try:
            layer, stream = self._fetch(sess, desc, parent, holder, cancel, keep_tar=False)
        except SplitConflict:  # the tar cannot be rebuilt from its files: fetch it again and keep it whole
            layer, stream = self._fetch(sess, desc, parent, holder, cancel, keep_tar=True)
        if not stream.verified:
            raise spec.DigestMismatch(f"filesystem layer verification failed for digest {desc.digest}")
        self.emit(message("Verifying Checksum", ident, {}))
        self.emit(message("Download complete", ident, {}))
        if layer.diff_id != diff_id:
            raise spec.DigestMismatch(f"layer {desc.digest} unpacked to {layer.diff_id}, the image config says "
                                      f"{diff_id}")
        Meter(self.emit, ident, "Extracting", desc.size).update(desc.size, force=True)
        self.emit(message("Pull complete", ident, {}))

    def _fetch(self, sess: RepoSession, desc: Descriptor, parent: str | None, holder: str,
               cancel: threading.Event, keep_tar: bool) -> tuple[LayerInfo, BlobStream]:
        """Download the layer while unpacking it into the layer store (the tar kept as tar-split metadata
        unless ``keep_tar``)."""
        meter = Meter(self.emit, short_id(desc.digest), "Downloading", desc.size)
        urls = desc.urls if desc.media_type in spec.FOREIGN_LAYER_TYPES and desc.urls else ()
        stream = BlobStream(sess, desc, meter.update, cancel, self.attempts, urls)
        done_download = threading.Event()

        def on_bytes(n: int) -> None:
            meter.update(n, force=n >= desc.size)
            if n >= desc.size and not done_download.is_set():
                done_download.set()

        stream.on_bytes = on_bytes
        stream.start_prefetch()
        try:
            layer = self.layers.register(stream, parent, holder, keep_tar=keep_tar)  # type: ignore[arg-type]
        finally:
            stream.close()
        failpoint.hit("image.pull.layer-unpacked")  # held by the pull's tmp: holder only: restart drops it
        return layer, stream


@dataclass
class PullResult:
    image_id: str
    digest: str
    new: bool  # the reference pointed elsewhere (or nowhere) before


def pull_image(sess: RepoSession, ref: Reference, platform: Platform | None, images: ImageRecords,
               layers: Layers, blobs: Blobs, emit: Emit, concurrency: int, attempts: int,
               new_holder: Callable[[], str], events: EventSink | None = None,
               remember: Callable[[Reference, Resolved, list[str]], None] | None = None) -> PullResult:
    """Pull one tag or digest of ``ref`` through ``sess`` into the stores, emitting docker's progress."""
    try:
        res = resolve(sess, ref, platform)
    except RegistryError as e:
        raise translate_pull_error(e, ref) from e
    emit(message(f"Pulling from {ref.path}", ref.tag or ref.digest or "latest"))
    cfg_raw = fetch_blob_bytes(sess, res.manifest.config)
    try:
        cfg = json.loads(cfg_raw)
    except ValueError:
        raise InvalidParameter(f"invalid image configuration {res.manifest.config.digest}") from None
    if platform is not None:
        actual = spec.normalize_platform(str(cfg.get("os", "")), str(cfg.get("architecture", "")),
                                         str(cfg.get("variant", "")))
        if (actual.os, actual.architecture) != (platform.os, platform.architecture):
            raise NotFound(f"image with reference {ref.familiar()} was found but does not match the specified "
                           f"platform: wanted {platform}, actual: {actual}")
    diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(res.manifest.layers):
        raise InvalidParameter("image config's diff IDs do not match the manifest's layers")
    target = ref if ref.digest else ref.with_default_tag()
    before = images.ref_target(target)
    holder = new_holder()
    try:
        LayerPuller(layers, emit, concurrency, attempts).pull(sess, res.manifest, diff_ids, holder)
        img = images.create(cfg_raw)
        failpoint.hit("image.pull.committed")  # a whole image, untagged: the retried pull tags it
    finally:
        layers.release(holder)
        layers.gc()
    digest_ref = Reference(ref.domain, ref.path, None, res.digest)
    images.set_ref(digest_ref, img.id)
    failpoint.hit("image.pull.digest-set")
    if not ref.digest:
        images.set_ref(target, img.id)
    if remember is not None:
        remember(ref, res, diff_ids)
    emit(message(f"Digest: {res.digest}"))
    if events is not None:
        events.publish("image", "pull", target.familiar(), {"name": target.familiar()})
    return PullResult(img.id, res.digest, before != img.id)
