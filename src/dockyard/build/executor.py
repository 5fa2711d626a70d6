"""One stage of a build: each instruction dispatched to its step module (metadata_steps, run_step, copy_step),
and what every step shares: variable expansion, the cache lookup, and committing a step as an image that the
cache remembers.

Messages follow the classic builder's stream: ``Step N/M : …``, `` ---> Using cache``, `` ---> Running in …``,
``Removing intermediate container …``, `` ---> <id>``.
"""

from __future__ import annotations

import copy
import os
import posixpath
import stat
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import DockyardError
from ..util import failpoint
from . import history_cache
from .cache import BuildCache, cache_key
from .context import BuildContext, Source
from .copy_step import CopyStep, copy_out
from .dockerfile import Node, ParseError
from .history_text import now_rfc3339
from .imageconfig import empty_container_config
from .imagefs import ImageFS
from .layertar import LayerBuilder
from .metadata_steps import STEPS
from .options import BuildCancelled, BuildError, BuildOptions
from .ports import BaseImage, BuildContainers, BuildImages, RunRequest
from .run_step import do_run
from .shell_words import Lexer, ShellWordError
from .stage_state import StageResult, State, base_state, env_dict

__all__ = ["StageBuilder", "StageResult", "State", "base_state"]

Emit = Callable[[str], None]


def _do_copy(b: StageBuilder, st: State, node: Node) -> None:
    CopyStep(b).run(st, node, add=False)


def _do_add(b: StageBuilder, st: State, node: Node) -> None:
    CopyStep(b).run(st, node, add=True)


_ALL_STEPS = {**STEPS, "run": do_run, "copy": _do_copy, "add": _do_add}


class StageBuilder:
    """Runs one stage's instructions (the caller resolved its base image)."""

    def __init__(self, *, images: BuildImages, containers: BuildContainers, cache: BuildCache,
                 ctx: BuildContext, opts: BuildOptions, escape: str, meta_args: dict[str, str | None],
                 used_args: set[str], stage_results: Callable[[str], StageResult | None],
                 emit: Emit, cancel: threading.Event, work_dir: str, cache_mount_root: str) -> None:
        self.images = images
        self.containers = containers
        self.cache = cache
        self.ctx = ctx
        self.opts = opts
        self.lexer = Lexer(escape)
        self.escape = escape
        self.meta_args = meta_args
        self.used_args = used_args
        self.stage_results = stage_results
        self.emit = emit
        self.cancel = cancel
        self.work_dir = work_dir
        self.fetch_dir = os.path.join(work_dir, "fetched")
        self.cache_mount_root = cache_mount_root
        self.cached_so_far = True  # docker stops probing the cache after the first miss
        self.cache_sources: set[str] | None = None  # images ``cachefrom`` allows (None: every cached step)
        self.used_keys: list[str] = []  # cache hits, recorded as used when the stage ends
        self.history_sources: list[BaseImage] = []  # ``cachefrom`` images, matched by their history too

    # ------------------------------------------------------------------ environment
    def arg_env(self, st: State) -> dict[str, str]:
        """Build args visible to a step: declared in the stage with a value (ENV wins over them)."""
        return {k: v for k, v in st.args.items() if v is not None}

    def env(self, st: State) -> dict[str, str]:
        env = self.arg_env(st)
        env.update(env_dict(st.cc.get("Env")))
        return env

    def word(self, text: str, st: State, line: int) -> str:
        try:
            return self.lexer.word(text, self.env(st))
        except ShellWordError as e:
            raise ParseError(line, str(e)) from None

    def words(self, text: str, st: State, line: int) -> list[str]:
        try:
            return self.lexer.words(text, self.env(st))
        except ShellWordError as e:
            raise ParseError(line, str(e)) from None

    # ------------------------------------------------------------------ steps
    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise BuildCancelled()

    def step(self, st: State, node: Node) -> None:
        self.check_cancel()
        _ALL_STEPS[node.cmd](self, st, node)

    def commit_meta(self, st: State, summary: str, mutate: Callable[[dict[str, Any]], None],
                    extra_key: Any = None) -> None:
        """A metadata-only step: same layers, new config, an ``empty_layer`` history entry."""
        prefix = " ".join(st.shell)
        created_by = f"{prefix} #(nop)  {summary}"
        key = cache_key(st.image_id or "scratch", "meta", summary, extra_key, st.shell)
        cfg = copy.deepcopy(st.config)
        cc = cfg.setdefault("config", empty_container_config())
        mutate(cc)
        cc["Image"] = st.image_id
        if self.try_cache(st, key, created_by, cc):
            return
        ccc = copy.deepcopy(cc)
        ccc["Cmd"] = [*st.shell, "#(nop) ", summary]
        self.committed_in_container(st, ccc, lambda cid: self.finish(
            st, cfg, ccc, created_by, None, key, "meta", summary, empty=True, container_id=cid, announce=False))

    def committed_in_container(self, st: State, ccc: dict[str, Any], commit: Callable[[str], str]) -> None:
        """docker's way with a metadata step (and WORKDIR): a container is created (never started) from the
        parent with the ``#(nop)`` command, the commit names it, and it is removed unless ``rm=false``."""
        cid = ""
        if st.image_id:
            req = RunRequest(image_id=st.image_id, cmd=list(ccc.get("Cmd") or []), env=list(ccc.get("Env") or []),
                             workdir="", user="", network_mode="none", binds=[], tmpfs={}, resources={},
                             extra_hosts=[], labels={})
            try:
                cid = self.containers.create(req)
            except DockyardError as e:
                raise BuildError(str(e)) from None
            self.emit(f" ---> Running in {cid[:12]}\n")
        try:
            new_id = commit(cid)
        except BaseException:
            if cid and self.opts.forcerm:
                self._remove_container(cid)
            raise
        if cid and (self.opts.rm or self.opts.forcerm):
            self._remove_container(cid)
            self.emit(f"Removing intermediate container {cid[:12]}\n")
        self.emit(f" ---> {new_id.split(':', 1)[1][:12]}\n")

    def _remove_container(self, cid: str) -> None:
        try:
            self.containers.remove(cid)
        except DockyardError:
            pass

    def finish(self, st: State, cfg: dict[str, Any], container_config: dict[str, Any], created_by: str,
               layer: Iterator[bytes] | LayerBuilder | None, key: str, kind: str, description: str, empty: bool,
               container_id: str = "", announce: bool = True) -> str:
        """Commit the step (history entry, layer, config) as an image, make it the stage's state, cache it.
        ``layer``: a RUN's diff tar, the entries of a COPY/ADD/WORKDIR layer, or None for a metadata step."""
        created = now_rfc3339()
        cfg["created"] = created
        cfg["container_config"] = container_config
        if container_id:
            cfg["container"] = container_id
        else:
            cfg.pop("container", None)
        hist = list(cfg.get("history") or [])
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if empty:
            entry["empty_layer"] = True
        hist.append(entry)
        cfg["history"] = hist
        cfg.setdefault("architecture", "amd64")
        cfg.setdefault("os", "linux")
        cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        parent_id = st.image_id
        try:
            if isinstance(layer, LayerBuilder):  # COPY/ADD/WORKDIR: written straight into the layer directory
                new_id = self.images.commit_written(st.image_id, cfg, layer.written)
            else:
                new_id = self.images.commit(st.image_id, cfg, layer)
        except DockyardError as e:
            raise BuildError(str(e)) from None
        failpoint.hit("build.step.committed")  # a whole untagged image; the retried build may reuse it as cache
        self._adopt(st, new_id)
        size = 0
        if not empty and st.layer_dirs:
            size = _tree_size(st.layer_dirs[-1])
        kept = self.cache.peek(key)
        if kept is None or kept == new_id or not self.images.exists(kept):
            self.cache.put(key, new_id, parent_id, kind, description, size)
        # else: an equivalent image is cached already (a --no-cache or --cache-from rebuild); it stays the one
        # later builds reuse, so the images it leads to keep working as cache sources
        if announce:
            self.emit(f" ---> {new_id.split(':', 1)[1][:12]}\n")
        return new_id

    def _adopt(self, st: State, image_id: str) -> None:
        img = self.images.lookup(image_id)
        st.image_id = img.id
        st.config = copy.deepcopy(img.config)
        st.layer_dirs = list(img.layer_dirs)

    def try_cache(self, st: State, key: str, created_by: str = "", step_config: dict[str, Any] | None = None) -> bool:
        """Reuse the image cached for ``key`` (the stage's state becomes it); False on a miss. With
        ``cachefrom``, a cache image whose history has the step next (``created_by``) is a hit too
        (``step_config`` is the config such an intermediate image gets)."""
        if self.opts.nocache or not self.cached_so_far:
            return False
        hit = self.cache.get(key)
        if hit is not None and self.images.exists(hit) and self._cache_allowed(hit):
            self.used_keys.append(key)
            self._adopt(st, hit)
            self.emit(" ---> Using cache\n")
            self.emit(f" ---> {hit.split(':', 1)[1][:12]}\n")
            return True
        if hit is not None and not self.images.exists(hit):
            self.cache.drop(key)
        if created_by and self.history_sources and self._history_hit(st, created_by, step_config):
            return True
        self.cached_so_far = False
        return False

    def _history_hit(self, st: State, created_by: str, step_config: dict[str, Any] | None) -> bool:
        found = history_cache.match(self.history_sources, st.config, created_by)
        if found is None:
            return False
        if found.is_last:
            image_id = found.image.id
        else:
            cc = copy.deepcopy(step_config if step_config is not None else st.config.get("config") or {})
            cc["Image"] = st.image_id
            try:
                image_id = self.images.restore(st.image_id, history_cache.restored_config(found, st.config, cc))
            except DockyardError:
                return False
        self._adopt(st, image_id)
        self.emit(" ---> Using cache\n")
        self.emit(f" ---> {image_id.split(':', 1)[1][:12]}\n")
        return True

    def _cache_allowed(self, image_id: str) -> bool:
        """With ``cachefrom``, only steps that lead to one of those images are reused (docker's rule)."""
        return self.cache_sources is None or image_id in self.cache_sources

    # ------------------------------------------------------------------ filesystem helpers for the steps
    def ancestors(self, lb: LayerBuilder, fs: ImageFS, target: str, owner: tuple[int, int] | None) -> None:
        """Directory entries for every ancestor of ``target``: as in the image, or new (0755)."""
        parts = [p for p in target.split("/") if p][:-1]
        for k in range(1, len(parts) + 1):
            path = "/".join(parts[:k])
            existing = fs.stat("/" + path)
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                lb.add_dir(path, stat.S_IMODE(existing.st_mode), existing.st_uid, existing.st_gid,
                           int(existing.st_mtime))
            else:
                lb.add_dir(path, 0o755, *(owner or (0, 0)))

    def from_fs(self, ref: str) -> ImageFS:
        """The filesystem of an earlier stage or an image (pulled when missing), for ``--from``."""
        res = self.stage_results(ref)
        if res is not None:
            return ImageFS(res.layer_dirs)
        try:
            img = self.images.lookup(ref)
        except DockyardError:
            try:
                self.images.pull(ref, self.opts.auth, lambda m: None)
                img = self.images.lookup(ref)
            except DockyardError as e:
                raise BuildError(str(e)) from None
        return ImageFS(img.layer_dirs)

    def materialise(self, fs: ImageFS, path: str) -> Source:
        """Copy ``path`` out of an image filesystem into the build's work directory, as a source."""
        import secrets

        dest = os.path.join(self.fetch_dir, "from-" + secrets.token_hex(6))
        os.makedirs(dest)
        name = posixpath.basename(path.rstrip("/")) or "root"
        target = os.path.join(dest, name)
        copy_out(fs, path, target)
        return Source(path.lstrip("/"), target, os.path.isdir(target) and not os.path.islink(target))


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
