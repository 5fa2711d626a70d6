"""COPY and ADD: sources from the context, another stage or image, heredocs, URLs and local archives, written
as one deterministic layer with docker's rules for directories, trailing slashes and several sources."""

from __future__ import annotations

import copy
import json
import os
import posixpath
import shutil
import stat
import tarfile
from typing import TYPE_CHECKING

from ..errors import DockyardError
from .cache import cache_key
from .context import Source, SourceError, file_digest
from .dockerfile import Node
from .imageconfig import empty_container_config
from .imagefs import ImageFS, parse_chown
from .instructions import flag_map, split_words_raw
from .layertar import Entry, LayerBuilder, entry_from_stat
from .link_layer import layer_from_dir, link_key
from .options import BuildError
from .treewalk import walk_tree

if TYPE_CHECKING:
    from .executor import StageBuilder
    from .stage_state import State


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


class CopyStep:
    def __init__(self, builder: StageBuilder) -> None:
        self.b = builder

    def run(self, st: State, node: Node, add: bool) -> None:
        what = "ADD" if add else "COPY"
        flags = flag_map(node)
        args = list(node.exec_form) if node.exec_form is not None else split_words_raw(node.args, self.b.escape)
        args = [self.b.word(a, st, node.line) for a in args]
        dest = args[-1]
        raw_srcs = args[:-1]
        heredocs = {h.name: h for h in node.heredocs}
        chown = self.b.word(flags["chown"][-1], st, node.line) if "chown" in flags else ""
        chmod: int | None = None
        if "chmod" in flags:
            try:
                chmod = int(flags["chmod"][-1], 8)
            except ValueError:
                raise BuildError(f"invalid chmod parameter: {flags['chmod'][-1]}") from None
        from_ref = self.b.word(flags["from"][-1], st, node.line) if "from" in flags else ""
        excludes = [self.b.word(x, st, node.line) for x in flags.get("exclude", [])]
        parents = "parents" in flags and flags["parents"][-1] != "false"
        checksum = flags.get("checksum", [""])[-1]
        link = "link" in flags and flags["link"][-1] != "false"
        base_fs = ImageFS(st.layer_dirs)
        fs = ImageFS([]) if link else base_fs  # a linked layer is written as if onto nothing
        owner: tuple[int, int] | None = None
        if chown:
            try:
                owner = parse_chown(chown, base_fs)
            except LookupError as e:
                raise BuildError(str(e)) from None
        wd = st.cc.get("WorkingDir") or "/"
        dest_abs = dest if dest.startswith("/") else posixpath.join(wd, dest)
        dest_is_dir = dest.endswith("/") or dest.endswith("/.") or dest in (".", "")
        src_fs: ImageFS | None = None
        if from_ref:
            src_fs = self.b.from_fs(from_ref)
        tmp_dirs: list[str] = []
        try:
            items: list[tuple[str, Source | None, bytes | None]] = []  # (name, source, heredoc bytes)
            kept: dict[str, str] = {}  # --parents: a context source's path under the destination
            digest_parts: list[str] = []
            for s in raw_srcs:
                name = s[2:] if s.startswith("<<") else s
                name = name.lstrip("-").strip("\"'")
                if s.startswith("<<") and name in heredocs:
                    h = heredocs[name]
                    body = (self.b.lexer.expand(h.content, self.b.env(st)) if h.expand else h.content).encode()
                    items.append((name, None, body))
                    digest_parts.append("heredoc:" + _sha(body))
                    continue
                if add and (s.startswith("http://") or s.startswith("https://")):
                    path, fname = self._download(s, checksum)
                    tmp_dirs.append(os.path.dirname(path))
                    items.append((fname, Source(fname, path, False), None))
                    digest_parts.append("url:" + s + ":" + file_digest(path, os.stat(path)))
                    continue
                if src_fs is not None:
                    found = self._image_sources(src_fs, s, what)
                    for f in found:
                        items.append((posixpath.basename(f.rel.rstrip("/")) or "", f, None))
                    digest_parts.append("from:" + from_ref + ":" + s)
                    continue
                pivot = ""
                if parents:
                    pivot, s = parents_pivot(s)
                try:
                    found = self.b.ctx.sources(s, what, double_star=parents)
                except SourceError as e:
                    raise BuildError(str(e)) from None
                for f in found:
                    items.append((posixpath.basename(f.rel) or "", f, None))
                    if parents:
                        kept[f.rel] = kept_path(f.rel, pivot)
            if parents and kept:
                dest_is_dir = True  # BuildKit: the parents are kept under the destination directory
            if len(items) > 1 and not dest_is_dir:
                raise BuildError(f"When using {what} with more than one source file, the destination must be a "
                                 "directory and end with a /")
            if src_fs is None:
                ctx_srcs = [src for _, src, data in items if src is not None and not src.path.startswith(
                    self.b.fetch_dir)]
                digest_parts.append(self.b.ctx.checksum(ctx_srcs) if ctx_srcs else "")
            else:
                digest_parts.append(self._image_checksum([src for _, src, _d in items if src is not None]))
            summary_kind = "multi" if len(items) > 1 else \
                ("dir" if any(src is not None and src.is_dir for _, src, _d in items) else "file")
            key_parts = [what, raw_srcs, dest_abs, chown, flags.get("chmod"), from_ref, excludes, parents,
                         digest_parts, checksum]
            key = cache_key(st.image_id or "scratch", "copy", key_parts + ([True] if link else []))
            description = f"{what} {summary_kind}:{_sha(json.dumps(digest_parts).encode())} in {dest} "
            if self.b.try_cache(st, key, f"{' '.join(st.shell)} #(nop) {description}"):
                return
            lkey = link_key(key_parts) if link else ""
            if link and self._restack_linked(st, lkey, key, description):
                return
            lb = LayerBuilder()
            dest_res = fs.resolve(dest_abs).lstrip("/")
            dest_exists_dir = fs.is_dir(dest_abs)
            for name, src, data in items:
                if data is not None:
                    target = posixpath.join(dest_res, name) if (dest_is_dir or dest_exists_dir) else dest_res
                    self.b.ancestors(lb, fs, target, owner)
                    lb.add(Entry(target, "bytes", chmod if chmod is not None else 0o644,
                                 *(owner or (0, 0)), data=data))
                    continue
                assert src is not None
                if add and src_fs is None and not src.is_dir and not src.path.startswith(self.b.fetch_dir) \
                        and _is_archive(src.path):
                    root = dest_res
                    self.b.ancestors(lb, fs, posixpath.join(root, "x"), owner)
                    tmp = self._extract_archive(src.path)
                    tmp_dirs.append(tmp)
                    self._add_tree(lb, fs, tmp, root, None, None, keep_mtime=True, excludes=[])
                    continue
                keep = kept.get(src.rel, "") if src_fs is None else ""
                if keep:
                    self._parent_dirs(lb, fs, dest_res, src.rel, keep, owner)
                if src.is_dir:
                    root = dest_res
                    if keep:
                        root = posixpath.join(dest_res, keep)
                    self.b.ancestors(lb, fs, posixpath.join(root, "x") if root else "x", owner)
                    if root:
                        st_dir = os.stat(src.path)
                        mode = chmod if chmod is not None else stat.S_IMODE(st_dir.st_mode)
                        existing = fs.stat("/" + root)
                        if existing is not None and stat.S_ISDIR(existing.st_mode) and owner is None \
                                and chmod is None:
                            mode = stat.S_IMODE(existing.st_mode)
                        lb.add_dir(root, mode, *(owner or (0, 0)))
                    self._add_tree(lb, fs, src.path, root, owner, chmod, keep_mtime=False, excludes=excludes,
                                   ctx_rel=src.rel)
                else:
                    if keep:
                        target = posixpath.join(dest_res, keep)
                    elif dest_is_dir or dest_exists_dir:
                        target = posixpath.join(dest_res, name)
                    else:
                        target = dest_res
                    if self._excluded(excludes, src.rel, name):
                        continue
                    self.b.ancestors(lb, fs, target, owner)
                    st_file = os.lstat(src.path)
                    ent = entry_from_stat(target, src.path, st_file, owner, chmod)
                    if ent is not None:
                        if src.path.startswith(self.b.fetch_dir) and add:
                            ent.mode = chmod if chmod is not None else 0o600
                        lb.add(ent)
            cfg = copy.deepcopy(st.config)
            cc = cfg.setdefault("config", empty_container_config())
            cc["Image"] = st.image_id
            ccc = copy.deepcopy(cc)
            ccc["Cmd"] = [*st.shell, f"#(nop) {description}"]
            self.b.finish(st, cfg, ccc, f"{' '.join(st.shell)} #(nop) {description}", lb, key, "copy",
                          description, empty=False)
            if link:
                self.b.cache.put(lkey, st.image_id, "", "copy", description, 0)
        finally:
            for d in tmp_dirs:
                shutil.rmtree(d, ignore_errors=True)

    def _restack_linked(self, st: State, lkey: str, key: str, description: str) -> bool:
        """A linked layer cached on another parent: the same layer stacked on this one (``Using cache``)."""
        if self.b.opts.nocache:
            return False
        hit = self.b.cache.get(lkey)
        if hit is None or not self.b.images.exists(hit) or not self.b._cache_allowed(hit):
            return False
        try:
            layer_dir = self.b.images.lookup(hit).layer_dirs[-1]
        except (DockyardError, IndexError):
            return False
        self.b.emit(" ---> Using cache\n")
        self.b.used_keys.append(lkey)
        cfg = copy.deepcopy(st.config)
        cc = cfg.setdefault("config", empty_container_config())
        cc["Image"] = st.image_id
        ccc = copy.deepcopy(cc)
        ccc["Cmd"] = [*st.shell, f"#(nop) {description}"]
        self.b.finish(st, cfg, ccc, f"{' '.join(st.shell)} #(nop) {description}", layer_from_dir(layer_dir),
                      key, "copy", description, empty=False)
        return True

    def _parent_dirs(self, lb: LayerBuilder, fs: ImageFS, dest_res: str, rel: str, keep: str,
                     owner: tuple[int, int] | None) -> None:
        """``--parents``: the kept parent directories come from the context, with its modes (the destination's
        own ancestors as in the image)."""
        kept_dirs = keep.split("/")[:-1]
        if not kept_dirs:
            return
        self.b.ancestors(lb, fs, posixpath.join(dest_res, "x") if dest_res else "x", owner)
        base = rel[:len(rel) - len(keep)].rstrip("/")
        for k in range(1, len(kept_dirs) + 1):
            sub_rel = "/".join(kept_dirs[:k])
            try:
                mode = stat.S_IMODE(os.stat(os.path.join(self.b.ctx.root, base, sub_rel)).st_mode)
            except OSError:
                mode = 0o755
            lb.add_dir(posixpath.join(dest_res, sub_rel) if dest_res else sub_rel, mode, *(owner or (0, 0)))

    @staticmethod
    def _excluded(excludes: list[str], *names: str) -> bool:
        if not excludes:
            return False
        from ..util.dockerignore import IgnoreMatcher

        m = IgnoreMatcher(excludes)
        return any(n and (m.excluded(n) or m.excluded(posixpath.basename(n))) for n in names)

    def _add_tree(self, lb: LayerBuilder, fs: ImageFS, root_disk: str, root: str, owner: tuple[int, int] | None,
                  chmod: int | None, keep_mtime: bool, excludes: list[str], ctx_rel: str | None = None) -> None:
        if ctx_rel is not None and not root_disk.startswith(self.b.fetch_dir):
            walker = self.b.ctx.walk(Source(ctx_rel, root_disk, True))
        else:
            walker = walk_tree(root_disk)
        for rel, disk, st_ in walker:
            if not rel:
                continue
            if self._excluded(excludes, rel):
                continue
            path = posixpath.join(root, rel) if root else rel
            if owner is None and keep_mtime:
                e = entry_from_stat(path, disk, st_, (st_.st_uid, st_.st_gid), chmod, keep_mtime=True)
            else:
                e = entry_from_stat(path, disk, st_, owner, chmod, keep_mtime=keep_mtime)
            if e is not None:
                lb.add(e)

    def _image_sources(self, fs: ImageFS, pattern: str, what: str) -> list[Source]:
        """Sources in another stage or image (for ``COPY --from``), materialised under the work dir."""
        import fnmatch

        path = posixpath.normpath("/" + pattern)
        cands: list[str]
        if any(c in path for c in "*?["):
            parent = posixpath.dirname(path)
            cands = [posixpath.join(parent, n) for n in fs.list_dir(parent)
                     if fnmatch.fnmatchcase(n, posixpath.basename(path))]
        else:
            cands = [path]
        out: list[Source] = []
        for c in cands:
            if fs.stat(c) is None and fs.disk_path(c) is None:
                continue
            out.append(self.b.materialise(fs, c))
        if not out:
            raise BuildError(f"{what} failed: stat {path}: file does not exist" if not any(
                ch in path for ch in "*?[") else f"{what} failed: no source files were specified")
        return out

    def _image_checksum(self, srcs: list[Source]) -> str:
        import hashlib

        h = hashlib.sha256()
        for src in srcs:
            for rel, disk, st_ in walk_tree(src.path) if src.is_dir else [("", src.path, os.lstat(src.path))]:
                extra = ""
                if stat.S_ISREG(st_.st_mode):
                    extra = file_digest(disk, st_)
                elif stat.S_ISLNK(st_.st_mode):
                    extra = os.readlink(disk)
                h.update(f"{src.rel}/{rel}\0{st_.st_mode:o}\0{st_.st_uid}:{st_.st_gid}\0{extra}\n".encode())
        return h.hexdigest()

    def _download(self, url: str, checksum: str) -> tuple[str, str]:
        import hashlib
        import secrets
        import urllib.parse
        import urllib.request

        d = os.path.join(self.b.fetch_dir, "url-" + secrets.token_hex(6))
        os.makedirs(d)
        name = posixpath.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
        path = os.path.join(d, name)
        h = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(path, "wb") as f:  # noqa: S310
                if resp.status >= 400:
                    raise BuildError(f"failed to GET {url} with status {resp.status}")
                while chunk := resp.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
        except OSError as e:
            code = getattr(e, "code", None)
            reason = f"status {code} {getattr(e, 'reason', '')}".strip() if code else str(e)
            raise BuildError(f"failed to GET {url} with {reason}") from None
        if checksum:
            want = checksum if ":" in checksum else "sha256:" + checksum
            got = "sha256:" + h.hexdigest()
            if got != want:
                raise BuildError(f"digest mismatch {got}: {want}")
        return path, name

    def _extract_archive(self, path: str) -> str:
        import secrets

        dest = os.path.join(self.b.fetch_dir, "archive-" + secrets.token_hex(6))
        os.makedirs(dest)
        from .context import unpack_tar

        with open(path, "rb") as f:
            unpack_tar(f, dest, preserve=True)
        return dest



def parents_pivot(src: str) -> tuple[str, str]:
    """``COPY --parents a/./b/c``: (the part whose directories are not kept, the source to match). As rsync's
    ``--relative``, only the directories after a ``/./`` are kept; without one, all of them."""
    body = src
    while body.startswith("./"):
        body = body[2:]
    idx = body.find("/./")
    if idx < 0:
        return "", src
    pivot = posixpath.normpath(body[:idx]).lstrip("/")
    return ("" if pivot == "." else pivot), body[:idx] + "/" + body[idx + 3:]


def kept_path(rel: str, pivot: str) -> str:
    """A matched source's path under the destination: its context path less the pivot."""
    if not pivot:
        return rel
    if rel == pivot:
        return ""
    return rel[len(pivot) + 1:] if rel.startswith(pivot + "/") else rel


def _is_archive(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00"):
        return tarfile.is_tarfile(path)
    return len(head) >= 262 and head[257:262] == b"ustar"


def copy_out(fs: ImageFS, path: str, target: str, top: bool = True) -> None:
    """Copy ``path`` of an image (merged view, symlinks inside kept) to ``target`` on the host, with owners.
    The source itself is followed when it is a symlink (as docker does); what lies below it is not."""
    disk = fs.disk_path(path) if top else fs.entry_path(path)
    if disk is None:
        raise BuildError(f"stat {path}: file does not exist")
    st = os.lstat(disk)
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(target, exist_ok=True)
        for name in fs.list_dir(path):
            copy_out(fs, posixpath.join(path, name), os.path.join(target, name), top=False)
        os.chmod(target, stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(disk), target)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(disk, target)
        os.chmod(target, stat.S_IMODE(st.st_mode))
    else:
        return
    os.lchown(target, st.st_uid, st.st_gid)


