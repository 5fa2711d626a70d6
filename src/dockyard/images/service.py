"""The image service: lookup, listing, inspect, history, tag, remove, prune, import, commit.

Save/load live in ``archive.py`` and bootstrap in ``bootstrap.py``; they build on this class.
"""

from __future__ import annotations

import fnmatch
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from ..errors import Conflict, InvalidParameter, NotFound
from ..storage.db import StateDB
from ..storage.layers import LayerStore
from ..storage.tarsafe import ChunkReader
from ..util import filtermatch
from .config import apply_changes, canonical_json, default_container_config, new_image_config, now_rfc3339
from .reference import (
    Reference,
    ReferenceError_,
    is_full_digest,
    looks_like_id,
    parse_normalized,
    parse_tagged,
)
from .store import Image, ImageStore

if TYPE_CHECKING:
    from ..events.bus import EventBus
    from .ports import ContainerUsage

# sha256 of 1024 zero bytes: the tar of an empty directory tree, which docker never stores as a layer
EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

# docker's image delete conflict kinds: hard ones even --force cannot override
_CHILD, _RUNNING, _ACTIVE_REF, _STOPPED = 1, 2, 4, 8
_HARD = _CHILD | _RUNNING
_SOFT = _ACTIVE_REF | _STOPPED


def _single_reference(refs: list[Reference]) -> bool:
    """docker's ``isSingleReference``: one tag (digest references of that repository aside)."""
    tags = [r for r in refs if not r.digest]
    if len(refs) <= 1:
        return len(refs) == 1
    if len(tags) != 1:
        return False
    return all(r.name == tags[0].name for r in refs if r.digest)


Progress = Callable[[dict[str, Any]], None]


def _created_unix(img: Image) -> int:
    created = img.config.get("created")
    if not created:
        return int(img.created_ts)
    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return int(img.created_ts)


def _parse_until(value: str) -> float:
    """``until``/``since`` timestamps: unix seconds, RFC 3339, or a Go duration like ``10m``."""
    try:
        return float(value)
    except ValueError:
        pass
    units = {"s": 1, "m": 60, "h": 3600}
    if value and value[-1] in units:
        try:
            return time.time() - float(value[:-1]) * units[value[-1]]
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameter(f"invalid filter 'until={value}'") from None


class ImageService:
    def __init__(self, db: StateDB, data_root: str, events: EventBus | None, layers: LayerStore,
                 containers: ContainerUsage) -> None:
        self.db = db
        self.data_root = data_root
        self.events = events
        self.layers = layers  # built by the composition root, shared with the snapshotter
        self.blobs = layers.blobs
        self.containers = containers
        self.store = ImageStore(db, self.blobs, self.layers)
        self.tmp_dir = os.path.join(data_root, "tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """What a crash mid-import/load left: staging dirs, half-written blobs and layers, unheld layers."""
        for name in os.listdir(self.tmp_dir):
            shutil.rmtree(os.path.join(self.tmp_dir, name), ignore_errors=True)
        for name in os.listdir(self.blobs.dir):
            if name.startswith(".tmp-"):
                os.unlink(os.path.join(self.blobs.dir, name))
        for name in os.listdir(self.layers.dir):
            if name.startswith(".tmp-"):
                shutil.rmtree(os.path.join(self.layers.dir, name), ignore_errors=True)
        with self.db.tx() as c:
            c.execute("DELETE FROM layer_refs WHERE owner LIKE 'tmp:%'")
        self.layers.gc()
        # a blob is an image's config or a layer's tar: one that is neither was written by an operation a crash
        # cut short before its record (a layer's tar before the layer's row); nothing else runs yet
        known = {r["id"] for r in self.db.query("SELECT id FROM images")}
        known |= {r["diff_id"] for r in self.db.query("SELECT diff_id FROM layers")}
        known_hex = {d.split(":", 1)[1] for d in known if ":" in d}
        for name in os.listdir(self.blobs.dir):
            if not name.startswith(".") and name not in known_hex:
                os.unlink(os.path.join(self.blobs.dir, name))

    def _event(self, action: str, actor: str, name: str = "") -> None:
        if self.events is not None:
            self.events.publish("image", action, actor, {"name": name or actor})

    def _users(self, image_id: str) -> list[tuple[str, bool]]:
        return self.containers.image_users(image_id)

    # ---------------------------------------------------------------- lookup
    def get_by_id(self, image_id: str) -> Image:
        return self.store.get(image_id)

    def resolve(self, ref: str) -> Image:
        """An image by name[:tag], name@digest, full ID or unique ID prefix (docker's ``GetImage``)."""
        if is_full_digest(ref) or (len(ref) == 64 and looks_like_id(ref)):
            iid = ref if ref.startswith("sha256:") else "sha256:" + ref
            if self.store.exists(iid):
                return self.store.get(iid)
            raise NotFound(f"No such image: {ref}")
        named: Reference | None = None
        try:
            named = parse_normalized(ref)
        except ReferenceError_:
            if not looks_like_id(ref):
                raise
        if named is not None:
            target = self.store.ref_target(named.with_default_tag())
            if target is not None:
                return self.store.get(target)
        if looks_like_id(ref):
            matches = self.store.search_prefix(ref)
            if len(matches) == 1:
                return self.store.get(matches[0])
        raise NotFound(f"No such image: {named.with_default_tag().familiar() if named else ref}")

    # ---------------------------------------------------------------- listing
    def summary(self, img: Image, users: int = -1) -> dict[str, Any]:
        cfg = img.config.get("config") or {}
        return {
            "Id": img.id,
            "ParentId": img.parent,
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Created": _created_unix(img),
            "Size": img.size,
            "SharedSize": -1,
            "VirtualSize": img.size,
            "Labels": cfg.get("Labels") or {},
            "Containers": users,
        }

    def list_images(self, all_: bool = False, filters: dict[str, list[str]] | None = None,
                    shared_size: bool = False) -> list[dict[str, Any]]:
        filters = filters or {}
        for key in filters:
            if key not in ("dangling", "label", "before", "since", "reference", "until"):
                raise InvalidParameter(f"invalid filter '{key}'")
        images = self.store.all()
        parents = {img.parent for img in images if img.parent}
        before = min((_created_unix(self.resolve(r)) for r in filters.get("before", [])), default=None)
        since = max((_created_unix(self.resolve(r)) for r in filters.get("since", [])), default=None)
        dangling = filters.get("dangling")
        want_dangling = filtermatch.bool_value("dangling", dangling) if dangling is not None else False
        out = []
        for img in images:
            tags = img.repo_tags
            created = _created_unix(img)
            if dangling is not None and want_dangling != (not tags):
                continue
            if before is not None and created >= before:
                continue
            if since is not None and created <= since:
                continue
            if "until" in filters and created > _parse_until(filters["until"][0]):
                continue
            if not self._labels_match(img, filters.get("label", [])):
                continue
            refs = filters.get("reference")
            if refs:
                tags = [t for t in tags if self._ref_match(t, refs)]
                if not tags:
                    continue
            if not all_ and not tags and img.id in parents and dangling is None:
                continue  # an intermediate image (docker images -a shows those)
            s = self.summary(img, len(self._users(img.id)) if shared_size else -1)
            s["RepoTags"] = tags
            if shared_size:
                s["SharedSize"] = self._shared_size(img, images)
            out.append(s)
        return out

    @staticmethod
    def _ref_match(tag: str, patterns: list[str]) -> bool:
        name = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
        for pat in patterns:
            for cand in (tag, name):
                if fnmatch.fnmatchcase(cand, pat) and cand.count("/") == pat.count("/"):
                    return True
        return False

    @staticmethod
    def _labels_match(img: Image, wanted: list[str]) -> bool:
        labels = (img.config.get("config") or {}).get("Labels") or {}
        for w in wanted:
            k, sep, v = w.partition("=")
            if k not in labels or (sep and labels[k] != v):
                return False
        return True

    def _shared_size(self, img: Image, images: list[Image]) -> int:
        others: set[str] = set()
        for o in images:
            if o.id != img.id:
                others.update(o.chain_ids)
        return sum(self.layers.get(ch).size for ch in img.chain_ids if ch in others)

    def df_images(self) -> list[dict[str, Any]]:
        """ImageSummary list with SharedSize and Containers filled, for ``/system/df``."""
        return self.list_images(all_=True, shared_size=True)

    def layers_size(self) -> int:
        """Bytes of every unpacked layer, each counted once (``/system/df`` LayersSize)."""
        return self._disk_usage()

    # ---------------------------------------------------------------- inspect / history
    def inspect(self, ref: str) -> dict[str, Any]:
        img = self.resolve(ref)
        cfg = img.config
        chains = img.chain_ids
        graph: dict[str, str] = {}
        if chains:
            top = os.path.dirname(self.layers.diff_dir(chains[-1]))
            graph = {"MergedDir": os.path.join(top, "merged"), "UpperDir": os.path.join(top, "diff"),
                     "WorkDir": os.path.join(top, "work")}
            if len(chains) > 1:
                graph["LowerDir"] = ":".join(self.layers.diff_dir(ch) for ch in reversed(chains[:-1]))
        return {
            "Id": img.id,
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": img.parent,
            "Comment": cfg.get("comment", ""),
            "Created": cfg.get("created", ""),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": cfg.get("config") or {},
            "Architecture": cfg.get("architecture", "amd64"),
            "Os": cfg.get("os", "linux"),
            "Size": img.size,
            "VirtualSize": img.size,
            "GraphDriver": {"Name": "overlay2", "Data": graph},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": img.last_tag_time or "0001-01-01T00:00:00Z"},
            **({"Container": cfg.get("container", ""), "ContainerConfig": cfg["container_config"]}
               if cfg.get("container_config") else {}),
        }

    def history(self, ref: str) -> list[dict[str, Any]]:
        img = self.resolve(ref)
        entries: list[dict[str, Any]] = []
        layer_idx = 0
        chains = img.chain_ids
        for h in img.config.get("history") or []:
            size = 0
            if not h.get("empty_layer") and layer_idx < len(chains):
                size = self.layers.get(chains[layer_idx]).size
                layer_idx += 1
            created = h.get("created") or img.config.get("created") or ""
            try:
                ts = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()) if created else 0
            except ValueError:
                ts = 0
            entries.insert(0, {"Id": "<missing>", "Created": ts, "CreatedBy": h.get("created_by", ""),
                               "Tags": None, "Size": size, "Comment": h.get("comment", "")})
        cur: Image | None = img
        for entry in entries:
            if cur is None:
                break
            entry["Id"] = cur.id
            entry["Tags"] = cur.repo_tags or None
            cur = self.store.get(cur.parent) if cur.parent and self.store.exists(cur.parent) else None
        return entries

    # ---------------------------------------------------------------- tag / remove
    def tag(self, source: str, repo: str, tag: str | None) -> Reference:
        img = self.resolve(source)
        ref = parse_normalized(repo)
        if ref.tag or ref.digest:
            if tag:
                raise InvalidParameter("invalid reference format")
        if tag:
            ref = parse_tagged(f"{ref.familiar_name}:{tag}")
        ref = ref.with_default_tag()
        if ref.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        self.store.set_ref(ref, img.id)
        self._event("tag", img.id, ref.familiar())
        return ref

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """docker's ``ImageDelete``: untag by name, delete by ID, refuse while containers use it."""
        img = self.resolve(ref)
        records: list[dict[str, str]] = []
        by_id = looks_like_id(ref) and img.id.split(":", 1)[1].startswith(ref.removeprefix("sha256:"))
        removed_repo_ref = False
        if not by_id:
            named = parse_normalized(ref).with_default_tag()
            if not force and _single_reference(img.refs):
                users = self._users(img.id)
                if users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" (must force) - container '
                        f"{users[0][0][:12]} is using its referenced image {img.short_id}")
            self.store.delete_ref(named)
            records.append({"Untagged": named.familiar()})
            self._event("untag", img.id, named.familiar())
            if self.store.get(img.id).refs:
                return records
            removed_repo_ref = True
        elif _single_reference(img.refs):
            mask = _HARD if force else _HARD | (_SOFT & ~_ACTIVE_REF)
            conflict = self._conflict(img, mask)
            if conflict is not None:
                raise Conflict(conflict[0])
            for r in img.refs:
                self.store.delete_ref(r)
                records.append({"Untagged": r.familiar()})
                self._event("untag", img.id, r.familiar())
        self._delete_helper(img.id, records, force, prune, quiet=removed_repo_ref)
        return records

    def _conflict(self, img: Image, mask: int) -> tuple[str, bool] | None:
        """docker's ``checkImageDeleteConflict``: (message, caused by a container) or None."""
        short = img.short_id
        if mask & _CHILD and self.store.children(img.id):
            return f"conflict: unable to delete {short} (cannot be forced) - image has dependent child images", False
        users = self._users(img.id)
        running = [c for c, r in users if r]
        if mask & _RUNNING and running:
            return (f"conflict: unable to delete {short} (cannot be forced) - image is being used by running "
                    f"container {running[0][:12]}", True)
        if mask & _ACTIVE_REF and self.store.get(img.id).refs:
            return (f"conflict: unable to delete {short} (must be forced) - image is referenced in multiple "
                    "repositories", False)
        stopped = [c for c, r in users if not r]
        if mask & _STOPPED and stopped:
            return (f"conflict: unable to delete {short} (must be forced) - image is being used by stopped "
                    f"container {stopped[0][:12]}", True)
        return None

    def _is_dangling(self, image_id: str) -> bool:
        return not self.store.get(image_id).refs and not self.store.children(image_id)

    def _delete_helper(self, image_id: str, records: list[dict[str, str]], force: bool, prune: bool,
                       quiet: bool) -> None:
        img = self.store.get(image_id)
        conflict = self._conflict(img, _HARD if force else _HARD | _SOFT)
        if conflict is not None:
            if quiet and (not self._is_dangling(image_id) or conflict[1]):
                return  # an untag that leaves the image in use (or named) is not an error
            raise Conflict(conflict[0])
        for r in img.refs:
            records.append({"Untagged": r.familiar()})
            self._event("untag", image_id, r.familiar())
        parent = img.parent
        self.store.delete(image_id)
        records.append({"Deleted": image_id})
        self._event("delete", image_id)
        if prune and parent and self.store.exists(parent):
            self._delete_helper(parent, records, False, True, quiet=True)

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """``image prune``: dangling images (or, with ``dangling=false``, every unused one)."""
        filters = filters or {}
        for key in filters:
            if key not in ("dangling", "until", "label", "label!"):
                raise InvalidParameter(f"invalid filter '{key}'")
        only_dangling = (filters.get("dangling") or ["true"])[0] in ("true", "1")
        until = _parse_until(filters["until"][0]) if filters.get("until") else None
        deleted: list[dict[str, str]] = []
        before = self._disk_usage()
        for img in self.store.all():
            if not self.store.exists(img.id):
                continue
            img = self.store.get(img.id)
            if only_dangling and img.refs:
                continue
            if self._users(img.id) or self.store.children(img.id):
                continue
            if until is not None and _created_unix(img) >= until:
                continue
            if not self._labels_match(img, filters.get("label", [])):
                continue
            if filters.get("label!") and any(self._labels_match(img, [lb]) for lb in filters["label!"]):
                continue
            recs: list[dict[str, str]] = []
            for r in img.refs:
                self.store.delete_ref(r)
                recs.append({"Untagged": r.familiar()})
            try:
                self._delete_helper(img.id, recs, False, True, quiet=True)
            except Conflict:
                continue
            deleted.extend(recs)
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": max(0, before - self._disk_usage())}

    def _disk_usage(self) -> int:
        row = self.db.query_one("SELECT COALESCE(SUM(size),0) AS s FROM layers")
        return int(row["s"]) if row else 0

    # ---------------------------------------------------------------- creating images
    def new_holder(self) -> str:
        return f"tmp:{secrets.token_hex(8)}"

    def create_from_config(self, cfg: dict[str, Any], parent: str = "", tags: list[Reference] | None = None,
                           holder: str | None = None) -> Image:
        img = self.store.create(canonical_json(cfg), parent)
        if holder:
            self.layers.release(holder)
        for ref in tags or []:
            self.store.set_ref(ref, img.id)
        return self.store.get(img.id)

    def import_tar(self, stream: IO[bytes], repo: str = "", tag: str = "", changes: list[str] | None = None,
                   message: str = "", source: str = "-") -> Image:
        """``docker import``: one layer from a (compressed) tar, tagged ``repo:tag`` if given."""
        ref = None
        if repo:
            ref = parse_tagged(f"{repo}:{tag}" if tag else repo)
        holder = self.new_holder()
        try:
            layer = self.layers.register(stream, None, holder)
            created = now_rfc3339()
            comment = message or f"Imported from {source}"
            cc = apply_changes(default_container_config(), changes or [])
            cfg = new_image_config(cc, [layer.diff_id], [{"created": created, "comment": comment}], created,
                                   comment=comment)
            img = self.create_from_config(cfg, tags=[ref] if ref else [], holder=holder)
        finally:
            self.layers.release(holder)
            self.layers.gc()
        self._event("import", img.id, ref.familiar() if ref else img.id)
        return img

    def commit(self, cid: str, image_id: str, ccfg: dict[str, Any], diff_tar: Iterator[bytes], repo: str = "",
               tag: str = "", comment: str = "", author: str = "", changes: list[str] | None = None,
               config: dict[str, Any] | None = None) -> Image:
        """``docker commit``: a container's writable layer (``diff_tar``) on top of its image, as a new image.

        The container service calls this with the container's id, image and Config (it owns them).
        """
        ref = parse_tagged(f"{repo}:{tag}" if tag else repo) if repo else None
        parent = self.store.get(image_id) if self.store.exists(image_id) else None
        base_cfg: dict[str, Any] = parent.config if parent else {"rootfs": {"diff_ids": []}, "history": []}
        merged = dict(ccfg)
        for k, v in (config or {}).items():
            if v not in (None, "", [], {}):
                merged[k] = v
        for k in ("Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                  "StdinOnce", "Image"):
            merged.pop(k, None)
        merged = apply_changes(merged, changes or [])
        holder = self.new_holder()
        try:
            parent_chain = parent.chain_ids[-1] if parent and parent.chain_ids else None
            if parent_chain:
                self.layers.hold(holder, [parent_chain])
            diff = ChunkReader(diff_tar)
            layer = self.layers.register(diff, parent_chain, holder)  # type: ignore[arg-type]
            empty = layer.diff_id == EMPTY_LAYER_DIFF_ID
            diff_ids = list(base_cfg.get("rootfs", {}).get("diff_ids") or [])
            if not empty:
                diff_ids.append(layer.diff_id)
            created = now_rfc3339()
            cmd = ccfg.get("Cmd") or []
            hist = list(base_cfg.get("history") or [])
            entry: dict[str, Any] = {"created": created, "created_by": " ".join(cmd) if isinstance(cmd, list)
                                     else str(cmd)}
            if author:
                entry["author"] = author
            if comment:
                entry["comment"] = comment
            if empty:
                entry["empty_layer"] = True
            hist.append(entry)
            cfg = new_image_config(merged, diff_ids, hist, created, author, comment)
            cfg["container"] = cid
            cfg["container_config"] = dict(ccfg)  # docker's legacy field: the config the container ran with
            img = self.create_from_config(cfg, parent=parent.id if parent else "", tags=[ref] if ref else [],
                                          holder=holder)
        finally:
            self.layers.release(holder)
            self.layers.gc()
        if ref:
            self._event("tag", img.id, ref.familiar())
        return img

