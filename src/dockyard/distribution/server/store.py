"""The registry's content on disk: blobs in dockyard's verified blob store, repositories as small link files.

Layout under the root (every file replaced atomically, every blob verified before it gets its name)::

    blobs/sha256/<hex>                                  content (storage.blobs: temp, fsync, verify, rename)
    repositories/<name>/_layers/<hex>                   the blob is part of <name> (mtime: last use, for gc)
    repositories/<name>/_manifests/revisions/<hex>      a manifest of <name>; holds its media type
    repositories/<name>/_manifests/tags/<tag>           holds the digest the tag points at
    repositories/<name>/_referrers/<subject>/<hex>      a manifest whose subject is <subject>: its descriptor
    uploads/<uuid>/data, uploads/<uuid>/repo            an unfinished upload (purged after a timeout)
    gc.lock                                             shared by writers that rely on a blob, exclusive in gc

A crash at any point leaves only whole blobs under their true names; links point at blobs written first.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from ...storage.atomic import fsync_dir, write_atomic
from ...storage.blobs import BlobStore
from . import protocol
from .errors import RegistryError

CHUNK = 1 << 20


def _hex(digest: str) -> str:
    if not protocol.DIGEST_RE.match(digest):
        if not digest.startswith("sha256:") and protocol.ANY_DIGEST_RE.match(digest):
            raise RegistryError("UNSUPPORTED", f"unsupported digest algorithm: {digest}")
        raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                            {"digest": digest})
    return digest[7:]


class _Hashers:
    """sha256 state of unfinished uploads this process has seen, so a chunk is hashed once as it arrives.

    Another worker process may have taken the previous chunk; then the state is rebuilt from the data file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, tuple[Any, int]] = {}

    def take(self, upload_id: str, path: str, size: int) -> Any:
        with self._lock:
            sha, offset = self._by_id.pop(upload_id, (None, -1))
        if sha is not None and offset == size:
            return sha
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            left = size
            while left > 0:
                b = f.read(min(CHUNK, left))
                if not b:
                    break
                sha.update(b)
                left -= len(b)
        return sha

    def put(self, upload_id: str, sha: Any, size: int) -> None:
        with self._lock:
            self._by_id[upload_id] = (sha, size)

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._by_id.pop(upload_id, None)


def _copy(src: IO[bytes], dst: IO[bytes], sha: Any, limit: int | None = None) -> int:
    n = 0
    while limit is None or n < limit:
        b = src.read(CHUNK if limit is None else min(CHUNK, limit - n))
        if not b:
            break
        sha.update(b)
        dst.write(b)
        n += len(b)
    return n


class RegistryStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.blobs = BlobStore(root)
        self.repos_dir = os.path.join(root, "repositories")
        self.uploads_dir = os.path.join(root, "uploads")
        os.makedirs(self.repos_dir, exist_ok=True)
        os.makedirs(self.uploads_dir, exist_ok=True)
        self._lock_path = os.path.join(root, "gc.lock")
        self._hashers = _Hashers()

    # -- locking against gc ---------------------------------------------------------------------------
    @contextmanager
    def gc_lock(self, exclusive: bool = False) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- paths ------------------------------------------------------------------------------------------
    def _repo(self, name: str) -> str:
        if not protocol.valid_name(name):
            raise RegistryError("NAME_INVALID", "invalid repository name", {"name": name})
        return os.path.join(self.repos_dir, name)

    def _link(self, name: str, digest: str) -> str:
        return os.path.join(self._repo(name), "_layers", _hex(digest))

    def _revision(self, name: str, digest: str) -> str:
        return os.path.join(self._repo(name), "_manifests", "revisions", _hex(digest))

    def _tag(self, name: str, tag: str) -> str:
        if not protocol.TAG_RE.match(tag):
            raise RegistryError("TAG_INVALID", "manifest tag did not match URI", {"tag": tag})
        return os.path.join(self._repo(name), "_manifests", "tags", tag)

    @staticmethod
    def _write(path: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, data)

    # -- blobs ------------------------------------------------------------------------------------------
    def blob_path(self, name: str, digest: str, touch: bool = False) -> str:
        """The file of a blob that is part of repository ``name`` (BLOB_UNKNOWN otherwise)."""
        link = self._link(name, digest)
        path = os.path.join(self.blobs.dir, _hex(digest))
        if not os.path.exists(link) or not os.path.exists(path):
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        if touch:
            try:
                os.utime(link)
            except FileNotFoundError:
                raise RegistryError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest}) from None
        return path

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(os.path.join(self.blobs.dir, _hex(digest)))

    def link_blob(self, name: str, digest: str) -> None:
        link = self._link(name, digest)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        with open(link, "wb"):
            pass
        os.utime(link)

    def unlink_blob(self, name: str, digest: str) -> None:
        try:
            os.unlink(self._link(name, digest))
        except FileNotFoundError:
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest}) from None

    def put_blob(self, name: str, digest: str, src: IO[bytes]) -> None:
        """A monolithic upload: verified as it streams in; a mismatch stores nothing."""
        _hex(digest)
        self._repo(name)
        w = self.blobs.writer()
        try:
            while True:
                b = src.read(CHUNK)
                if not b:
                    break
                w.write(b)
            got = "sha256:" + w.sha.hexdigest()
            if got != digest:
                raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                                    {"digest": digest, "computed": got})
            with self.gc_lock():
                w.commit(digest)
                self.link_blob(name, digest)
        except BaseException:
            w.abort()
            raise

    def mount_blob(self, name: str, source: str, digest: str) -> bool:
        """Cross-repository mount: link a blob ``source`` holds into ``name``."""
        with self.gc_lock():
            try:
                self.blob_path(source, digest, touch=True)
            except RegistryError:
                return False
            self.link_blob(name, digest)
        return True

    # -- uploads ----------------------------------------------------------------------------------------
    def _upload(self, name: str, upload_id: str) -> str:
        d = os.path.join(self.uploads_dir, upload_id)
        try:
            uuidlib.UUID(upload_id)
            with open(os.path.join(d, "repo")) as f:
                owner = f.read()
        except (ValueError, FileNotFoundError):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry",
                                {"uuid": upload_id}) from None
        if owner != name:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": upload_id})
        return d

    def start_upload(self, name: str) -> str:
        self._repo(name)
        upload_id = str(uuidlib.uuid4())
        d = os.path.join(self.uploads_dir, upload_id)
        os.makedirs(d)
        open(os.path.join(d, "data"), "wb").close()
        write_atomic(os.path.join(d, "repo"), name.encode(), durable=False)
        return upload_id

    @contextmanager
    def _locked_data(self, name: str, upload_id: str) -> Iterator[IO[bytes]]:
        d = self._upload(name, upload_id)
        try:
            f = open(os.path.join(d, "data"), "r+b")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry",
                                {"uuid": upload_id}) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            if not os.path.exists(os.path.join(d, "repo")):  # cancelled or finished meanwhile
                raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": upload_id})
            yield f
        finally:
            f.close()

    def upload_size(self, name: str, upload_id: str) -> int:
        d = self._upload(name, upload_id)
        return os.path.getsize(os.path.join(d, "data"))

    def append_upload(self, name: str, upload_id: str, src: IO[bytes], start: int | None,
                      length: int | None) -> int:
        """A chunk (PATCH): it must start where the upload stands (416 otherwise). Returns the new size."""
        with self._locked_data(name, upload_id) as f:
            size = os.fstat(f.fileno()).st_size
            if start is not None and start != size:
                raise RegistryError("RANGE_INVALID", "invalid content range", {"size": size, "start": start})
            sha = self._hashers.take(upload_id, f.name, size)
            f.seek(size)
            try:
                n = _copy(src, f, sha, length)
                f.flush()
            except BaseException:
                f.truncate(size)  # a broken chunk is dropped whole; the client resumes from ``size``
                self._hashers.drop(upload_id)
                raise
            self._hashers.put(upload_id, sha, size + n)
            return size + n

    def finish_upload(self, name: str, upload_id: str, digest: str, src: IO[bytes]) -> None:
        """The closing PUT: its body is the last chunk; the whole content must hash to ``digest``."""
        _hex(digest)
        with self._locked_data(name, upload_id) as f:
            size = os.fstat(f.fileno()).st_size
            sha = self._hashers.take(upload_id, f.name, size)
            f.seek(size)
            try:
                _copy(src, f, sha)
                f.flush()
            except BaseException:
                f.truncate(size)
                raise
            got = "sha256:" + sha.hexdigest()
            if got != digest:
                self._remove_upload(upload_id)
                raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                                    {"digest": digest, "computed": got})
            os.fsync(f.fileno())
            with self.gc_lock():
                os.replace(f.name, os.path.join(self.blobs.dir, _hex(digest)))
                fsync_dir(self.blobs.dir)
                self.link_blob(name, digest)
            self._remove_upload(upload_id)

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self._upload(name, upload_id)
        self._remove_upload(upload_id)

    def _remove_upload(self, upload_id: str) -> None:
        self._hashers.drop(upload_id)
        d = os.path.join(self.uploads_dir, upload_id)
        try:
            os.unlink(os.path.join(d, "repo"))
        except FileNotFoundError:
            pass
        shutil.rmtree(d, ignore_errors=True)

    def purge_uploads(self, max_age: float, now: float | None = None) -> list[str]:
        """Remove uploads untouched for ``max_age`` seconds, and temp blobs of processes that are gone."""
        now = time.time() if now is None else now
        gone = []
        for upload_id in os.listdir(self.uploads_dir):
            data = os.path.join(self.uploads_dir, upload_id, "data")
            try:
                age = now - os.stat(data).st_mtime
            except FileNotFoundError:
                # an upload being started has its directory before its data file: judge it by the directory
                try:
                    age = now - os.stat(os.path.dirname(data)).st_mtime
                except FileNotFoundError:
                    continue
            if age > max_age:
                self._remove_upload(upload_id)
                gone.append(upload_id)
        for tmp in os.listdir(self.blobs.dir):
            if tmp.startswith(".tmp-"):
                pid = tmp.split("-")[1]
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    try:
                        os.unlink(os.path.join(self.blobs.dir, tmp))
                    except FileNotFoundError:
                        pass
        return gone

    # -- manifests --------------------------------------------------------------------------------------
    def put_manifest(self, name: str, reference: str, media_type: str, body: bytes,
                     check_refs: bool = True) -> tuple[str, str | None]:
        """Store a manifest under its digest (and tag). Returns (digest, subject digest).

        ``check_refs=False`` is for a pull-through cache, which stores manifests before their blobs."""
        repo = self._repo(name)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if protocol.is_digest(reference):
            _hex(reference)
            if reference != digest:
                raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                                    {"digest": reference, "computed": digest})
        else:
            self._tag(name, reference)
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError("MANIFEST_INVALID", "manifest invalid", {"reason": "not JSON"}) from None
        if not isinstance(doc, dict):
            raise RegistryError("MANIFEST_INVALID", "manifest invalid", {"reason": "not a JSON object"})
        media_type = media_type.split(";")[0].strip()
        declared = doc.get("mediaType")
        if declared and media_type and declared != media_type:
            raise RegistryError("MANIFEST_INVALID", "manifest invalid",
                                {"reason": f"mediaType {declared} does not match Content-Type {media_type}"})
        media_type = declared or media_type or (protocol.OCI_INDEX if "manifests" in doc else protocol.OCI_MANIFEST)
        children, blobs = _references(doc, media_type)
        subject = doc.get("subject")
        subject_digest = subject.get("digest") if isinstance(subject, dict) else None
        if not check_refs:
            blobs, children = [], []
        with self.gc_lock():
            for d in blobs:
                try:
                    self.blob_path(name, d, touch=True)
                except RegistryError:
                    raise RegistryError("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": d}) from None
            for d in children:
                if not os.path.exists(self._revision(name, d)):
                    raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown", {"digest": d})
            if not self.blobs.has(digest):
                self.blobs.put_bytes(body)
            self._write(self._revision(name, digest), media_type.encode())
        if subject_digest:
            _hex(subject_digest)
            desc: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(body)}
            artifact = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if artifact:
                desc["artifactType"] = artifact
            if doc.get("annotations"):
                desc["annotations"] = doc["annotations"]
            self._write(os.path.join(repo, "_referrers", _hex(subject_digest), _hex(digest)),
                        json.dumps(desc).encode())
        if not protocol.is_digest(reference):
            self._write(self._tag(name, reference), digest.encode())
        return digest, subject_digest

    def resolve(self, name: str, reference: str) -> tuple[str, str]:
        """(digest, media type) of a manifest by tag or digest (MANIFEST_UNKNOWN otherwise)."""
        if protocol.is_digest(reference):
            digest = reference
            _hex(digest)
        else:
            try:
                with open(self._tag(name, reference), "rb") as f:
                    digest = f.read().decode()
            except FileNotFoundError:
                raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown", {"tag": reference}) from None
        try:
            with open(self._revision(name, digest), "rb") as f:
                media_type = f.read().decode()
        except FileNotFoundError:
            raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown", {"digest": digest}) from None
        return digest, media_type

    def manifest_path(self, digest: str) -> str:
        return os.path.join(self.blobs.dir, _hex(digest))

    def delete_manifest(self, name: str, reference: str) -> None:
        """By digest: the manifest and every tag on it. By tag: the tag alone."""
        if not protocol.is_digest(reference):
            try:
                os.unlink(self._tag(name, reference))
            except FileNotFoundError:
                raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown", {"tag": reference}) from None
            return
        rev = self._revision(name, reference)
        try:
            with open(self.manifest_path(reference), "rb") as f:
                doc = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            doc = {}
        try:
            os.unlink(rev)
        except FileNotFoundError:
            raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown", {"digest": reference}) from None
        for tag in self.tags(name):
            try:
                with open(self._tag(name, tag), "rb") as f:
                    if f.read().decode() == reference:
                        os.unlink(self._tag(name, tag))
            except FileNotFoundError:
                pass
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if isinstance(subject, dict) and protocol.DIGEST_RE.match(str(subject.get("digest", ""))):
            try:
                os.unlink(os.path.join(self._repo(name), "_referrers", subject["digest"][7:], reference[7:]))
            except FileNotFoundError:
                pass

    # -- discovery --------------------------------------------------------------------------------------
    def repo_exists(self, name: str) -> bool:
        return os.path.isdir(os.path.join(self._repo(name), "_manifests"))

    def tags(self, name: str) -> list[str]:
        try:
            return sorted(t for t in os.listdir(os.path.join(self._repo(name), "_manifests", "tags"))
                          if not t.startswith("."))
        except FileNotFoundError:
            return []

    def repositories(self) -> list[str]:
        out = []
        for dirpath, dirnames, _files in os.walk(self.repos_dir):
            if "_manifests" in dirnames:
                out.append(os.path.relpath(dirpath, self.repos_dir))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(out)

    def referrers(self, name: str, digest: str, artifact_type: str | None) -> list[dict[str, Any]]:
        d = os.path.join(self._repo(name), "_referrers", _hex(digest))
        out = []
        try:
            entries = sorted(os.listdir(d))
        except FileNotFoundError:
            return []
        for e in entries:
            if e.startswith("."):
                continue
            try:
                with open(os.path.join(d, e), "rb") as f:
                    desc = json.loads(f.read())
            except (FileNotFoundError, ValueError):
                continue
            if not os.path.exists(self._revision(name, desc["digest"])):
                continue
            if artifact_type and desc.get("artifactType") != artifact_type:
                continue
            out.append(desc)
        return out


def _references(doc: dict[str, Any], media_type: str) -> tuple[list[str], list[str]]:
    """(child manifests, blobs) a manifest names; MANIFEST_INVALID when the shape is wrong."""
    def digests(items: Any) -> list[str]:
        if not isinstance(items, list):
            raise RegistryError("MANIFEST_INVALID", "manifest invalid", {"reason": "descriptor list expected"})
        out = []
        for it in items:
            d = it.get("digest") if isinstance(it, dict) else None
            if not isinstance(d, str):
                raise RegistryError("MANIFEST_INVALID", "manifest invalid", {"reason": "descriptor without digest"})
            _hex(d)
            out.append(d)
        return out

    if media_type in protocol.INDEX_TYPES:
        return digests(doc.get("manifests", [])), []
    if media_type in (protocol.OCI_MANIFEST, protocol.DOCKER_MANIFEST) or "config" in doc:
        config = doc.get("config")
        if not isinstance(config, dict):
            raise RegistryError("MANIFEST_INVALID", "manifest invalid", {"reason": "config descriptor missing"})
        return [], digests([config]) + digests(doc.get("layers", []))
    raise RegistryError("MANIFEST_INVALID", "manifest invalid", {"reason": f"unsupported media type {media_type}"})


def manifest_references(body: bytes) -> list[str]:
    """Every digest a stored manifest names (for gc): config, layers, child manifests, subject."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    out = []
    for key in ("config", "subject"):
        if isinstance(doc.get(key), dict) and isinstance(doc[key].get("digest"), str):
            out.append(doc[key]["digest"])
    for key in ("layers", "manifests", "blobs"):
        for it in doc.get(key) or []:
            if isinstance(it, dict) and isinstance(it.get("digest"), str):
                out.append(it["digest"])
    return out
