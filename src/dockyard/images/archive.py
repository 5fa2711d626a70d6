"""``docker save`` / ``docker load`` archives.

Save writes the layout docker 25+ writes: an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/…`` with uncompressed layers, configs and manifests) plus the legacy ``manifest.json``
and ``repositories`` files, so both old and new tools read it. Load reads that, the older
docker-archive layout (``<id>/layer.tar``, ``<id>.json``) and plain OCI image layouts (compressed
layers included); layers whose chain ID is already present are not unpacked again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..errors import InvalidParameter
from ..storage.layers import chain_ids
from ..storage.tarsafe import (
    UnsafeArchive,
    bytes_entry_chunks,
    compression_of,
    end_of_archive,
    extract_layer,
    file_entry_chunks,
    header_bytes,
)
from ..util.tario import file_entry_chunks as tar_entry_chunks
from .reference import Reference, ReferenceError_, parse_normalized, parse_tagged
from .service import ImageService
from .store import Image

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def _dir_entry(name: str) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    return header_bytes(ti)


def _file_info(name: str, size: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = 0o644
    ti.size = size
    return ti


def _manifest_for(svc: ImageService, img: Image) -> bytes:
    layers = [{"mediaType": MT_LAYER, "digest": d, "size": svc.layers.tar_size(d)} for d in img.diff_ids]
    cfg_size = svc.blobs.size(img.id)
    return json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                       "config": {"mediaType": MT_CONFIG, "digest": img.id, "size": cfg_size},
                       "layers": layers}, separators=(",", ":")).encode()


def _selected_tags(svc: ImageService, name: str, img: Image) -> list[Reference]:
    """Which tags of ``img`` a save of ``name`` carries: that tag, every tag of a bare repo, none for an ID."""
    try:
        ref = parse_normalized(name)
    except ReferenceError_:
        return []
    if ref.tag:
        return [ref] if ref in img.refs else []
    tagged = [r for r in img.refs if r.tag and r.name == ref.name]
    if not tagged and svc.store.ref_target(ref.with_default_tag()) is None:
        return []
    return tagged


def save(svc: ImageService, names: list[str]) -> Iterator[bytes]:
    """Stream the archive for ``names`` (resolved up front so a bad name fails before any byte)."""
    if not names:
        raise InvalidParameter("no images specified")
    order: list[Image] = []
    tags: dict[str, list[Reference]] = {}
    for name in names:
        img = svc.resolve(name)
        if img.id not in tags:
            order.append(img)
            tags[img.id] = []
        for r in _selected_tags(svc, name, img):
            if r not in tags[img.id]:
                tags[img.id].append(r)
    return _save_chunks(svc, order, tags)


def _save_chunks(svc: ImageService, order: list[Image], tags: dict[str, list[Reference]]) -> Iterator[bytes]:
    written: set[str] = set()
    index: list[dict[str, Any]] = []
    legacy: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    yield _dir_entry("blobs/")
    yield _dir_entry("blobs/sha256/")
    for img in order:
        for digest in img.diff_ids:  # a layer's tar: its blob, or rebuilt from the unpacked layer (pulled)
            if digest in written:
                continue
            written.add(digest)
            with svc.layers.open_tar(digest) as f:
                yield from tar_entry_chunks(_file_info(f"blobs/sha256/{digest[7:]}", svc.layers.tar_size(digest)),
                                            f.read)
        if img.id not in written:
            written.add(img.id)
            path = svc.blobs.path(img.id)
            yield from file_entry_chunks(_file_info(f"blobs/sha256/{img.id[7:]}", os.path.getsize(path)), path)
        manifest = _manifest_for(svc, img)
        mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        if mdigest not in written:
            written.add(mdigest)
            yield from bytes_entry_chunks(_file_info(f"blobs/sha256/{mdigest[7:]}"), manifest)
        desc = {"mediaType": MT_MANIFEST, "digest": mdigest, "size": len(manifest)}
        refs: list[Reference | None] = list(tags[img.id]) or [None]
        for ref in refs:
            if ref is None:
                index.append(dict(desc))
            else:
                index.append({**desc, "annotations": {"io.containerd.image.name": str(ref),
                                                      "org.opencontainers.image.ref.name": ref.tag}})
                if img.diff_ids:
                    repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = img.diff_ids[-1][7:]
        legacy.append({"Config": f"blobs/sha256/{img.id[7:]}",
                       "RepoTags": [r.familiar() for r in tags[img.id]] or None,
                       "Layers": [f"blobs/sha256/{d[7:]}" for d in img.diff_ids]})
        svc._event("save", img.id, tags[img.id][0].familiar() if tags[img.id] else img.id)
    idx = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": index}
    yield from bytes_entry_chunks(_file_info("index.json"), json.dumps(idx, separators=(",", ":")).encode())
    yield from bytes_entry_chunks(_file_info("manifest.json"), json.dumps(legacy, separators=(",", ":")).encode())
    yield from bytes_entry_chunks(_file_info("oci-layout"), b'{"imageLayoutVersion":"1.0.0"}')
    if repositories:
        yield from bytes_entry_chunks(_file_info("repositories"),
                                      json.dumps(repositories, separators=(",", ":")).encode())
    yield end_of_archive()


# ------------------------------------------------------------------------------------------- load


class _Staging:
    """The unpacked archive in a private temp dir; paths inside it are resolved without leaving it."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, rel: str) -> str:
        rel = rel.lstrip("/")
        full = os.path.realpath(os.path.join(self.root, rel))
        if not (full + "/").startswith(os.path.realpath(self.root) + "/"):
            raise InvalidParameter(f"invalid archive path {rel!r}")
        if not os.path.isfile(full):
            raise InvalidParameter(f"archive is missing {rel!r}")
        return full

    def has(self, rel: str) -> bool:
        return os.path.isfile(os.path.join(self.root, rel))

    def read_json(self, rel: str) -> Any:
        return _read_json(self.path(rel))

    def blob(self, digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        return self.path(f"blobs/{algo}/{hexd}")


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except ValueError:
        raise InvalidParameter(f"invalid JSON in archive member {os.path.basename(path)}") from None


def _oci_images(st: _Staging) -> list[tuple[str, list[str], list[str]]]:
    """(config path, layer paths, names) for each image of an OCI layout's index.json."""
    out: list[tuple[str, list[str], list[str]]] = []

    def visit(desc: dict[str, Any], names: list[str]) -> None:
        mt = desc.get("mediaType", "")
        data = _read_json(st.blob(desc["digest"]))
        if mt in (MT_INDEX, _DOCKER_LIST) or "manifests" in data:
            chosen = [m for m in data.get("manifests", [])
                      if (m.get("platform") or {}).get("architecture", "amd64") == "amd64"
                      and (m.get("platform") or {}).get("os", "linux") == "linux"]
            if chosen:
                visit(chosen[0], names)
            return
        cfg = st.blob(data["config"]["digest"])
        layers = [st.blob(layer["digest"]) for layer in data.get("layers", [])]
        out.append((cfg, layers, names))

    for desc in st.read_json("index.json").get("manifests", []):
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ""
        if not name:
            ref_name = ann.get("org.opencontainers.image.ref.name", "")
            if ref_name and ("/" in ref_name or ":" in ref_name):
                name = ref_name
        visit(desc, [name] if name else [])
    return out


LayerProgress = Callable[[str, int, int], None]


def load(svc: ImageService, stream: IO[bytes], progress: Callable[[str], None] | None = None,
         layer_progress: LayerProgress | None = None) -> list[str]:
    """Load every image of an archive; returns (and reports) docker's ``Loaded image…`` lines.

    ``layer_progress(short_id, done_bytes, total_bytes)`` is told as each new layer is unpacked.
    """
    tmp = os.path.join(svc.tmp_dir, f"load-{os.urandom(6).hex()}")
    os.makedirs(tmp)
    holder = svc.new_holder()
    lines: list[str] = []
    try:
        try:
            extract_layer(stream, tmp, whiteouts="keep", hashing=False)
        except UnsafeArchive as e:
            raise InvalidParameter(str(e)) from None
        st = _Staging(tmp)
        if st.has("manifest.json"):
            images = [(st.path(m["Config"]), [st.path(p) for p in m.get("Layers") or []], m.get("RepoTags") or [])
                      for m in st.read_json("manifest.json")]
        elif st.has("index.json"):
            images = _oci_images(st)
        else:
            raise InvalidParameter("invalid archive: neither manifest.json nor index.json found")
        for cfg_path, layer_paths, names in images:
            lines.extend(_load_one(svc, cfg_path, layer_paths, names, holder, progress, layer_progress))
    finally:
        svc.layers.release(holder)
        svc.layers.gc()
        shutil.rmtree(tmp, ignore_errors=True)
    return lines


def _load_one(svc: ImageService, cfg_path: str, layer_paths: list[str], names: list[str], holder: str,
              progress: Callable[[str], None] | None, layer_progress: LayerProgress | None) -> list[str]:
    with open(cfg_path, "rb") as f:
        raw = f.read()
    cfg = json.loads(raw)
    diff_ids: list[str] = (cfg.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layer_paths):
        raise InvalidParameter("invalid manifest, layers length mismatch: expected "
                               f"{len(diff_ids)}, got {len(layer_paths)}")
    chains = chain_ids(diff_ids)
    for i, path in enumerate(layer_paths):
        if svc.layers.exists(chains[i]):
            svc.layers.hold(holder, [chains[i]])
            continue
        if not os.path.exists(path):  # an earlier layer's blob was this very file, now in the store
            path = svc.blobs.path(diff_ids[i])
        total = os.path.getsize(path)
        if layer_progress:
            layer_progress(diff_ids[i][7:19], 0, total)
        with open(path, "rb") as f:
            plain = compression_of(f.read(4)) == "none"
            f.seek(0)
            layer = svc.layers.register(f, chains[i - 1] if i else None, holder,
                                        blob_file=path if plain and path.startswith(svc.tmp_dir) else None)
        if layer_progress:
            layer_progress(diff_ids[i][7:19], total, total)
        if layer.diff_id != diff_ids[i]:
            raise InvalidParameter(f"invalid diffID for layer {i}: expected {diff_ids[i]!r}, got {layer.diff_id!r}")
    img = svc.store.create(raw)
    lines: list[str] = []
    for name in names:
        ref = parse_tagged(name)
        old = svc.store.set_ref(ref, img.id)
        if old is not None:
            msg = (f"The image {ref.familiar()} already exists, renaming the old one with ID {old} "
                   "to empty string")
            lines.append(msg)
            if progress:
                progress(msg)
        msg = f"Loaded image: {ref.familiar()}"
        lines.append(msg)
        if progress:
            progress(msg)
        svc._event("load", img.id, ref.familiar())
    if not names:
        msg = f"Loaded image ID: {img.id}"
        lines.append(msg)
        if progress:
            progress(msg)
        svc._event("load", img.id, img.id)
    return lines
