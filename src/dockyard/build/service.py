"""The build service: a context and options in, an image (and a docker-style message stream) out.

It prepares the context (read in place, an upload unpacked into its kept slot, or a remote), parses the
Dockerfile whole before anything runs, resolves which stages the target needs, has them built side by side
(stage_scheduler), tags the result and keeps the cache within its size bound (cache_admin). Cancelling
(``/build/cancel`` or the client going away) kills the running step; a failed or cancelled build tags nothing
and leaves no layer behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable
from typing import IO, Any

from ..errors import DockyardError, InvalidParameter, NotFound
from ..storage.db import StateDB
from ..util import failpoint
from . import outputs, platforms
from .base_image import stage_base
from .build_args import meta_args
from .cache import BuildCache
from .cache_admin import DEFAULT_KEEP_STORAGE, CacheAdmin
from .context import BuildContext, unpack_tar
from .context_index import ContextIndex
from .context_slots import ContextSlots
from .digest_store import DigestStore
from .dockerfile import ParseError, parse
from .executor import StageBuilder
from .instructions import PLATFORM_ARGS, Stage, plan
from .options import BuildError, BuildOptions
from .ports import BuildContainers, BuildImages
from .remote_context import fetch_remote
from .shell_words import Lexer, ShellWordError
from .stage_graph import needed_stages, stage_index, step_numbers
from .stage_scheduler import StageScheduler
from .stage_state import StageResult, State
from .upload import receive_context

__all__ = ["DEFAULT_KEEP_STORAGE", "BuildService"]

Emit = Callable[[dict[str, Any]], None]
Out = Callable[[str], None]


class BuildService:
    def __init__(self, db: StateDB, data_root: str, images: BuildImages, containers: BuildContainers,
                 keep_storage: int = DEFAULT_KEEP_STORAGE, gc_enabled: bool = True) -> None:
        self.images = images
        self.containers = containers
        self.cache = BuildCache(db)
        self.root = os.path.join(data_root, "build")
        self.tmp_root = os.path.join(self.root, "tmp")
        self.cache_mount_root = os.path.join(self.root, "cache-mounts")
        self.slots = ContextSlots(os.path.join(self.root, "contexts"))
        os.makedirs(self.tmp_root, exist_ok=True)
        os.makedirs(self.cache_mount_root, exist_ok=True)
        for name in os.listdir(self.tmp_root):  # what a crash mid-build left
            shutil.rmtree(os.path.join(self.tmp_root, name), ignore_errors=True)
        self.admin = CacheAdmin(self.cache, images, self.slots, keep_storage, gc_enabled)
        self.digests = DigestStore(db)
        self._digests_loaded = False
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def recover(self) -> None:
        """At start-up, after the containers' restore: what builds a daemon crash cut short left running."""
        self.containers.remove_left()

    # ------------------------------------------------------------------ cache: df, prune, gc
    def df(self) -> list[dict[str, Any]]:
        return self.admin.df()

    def prune(self, all_: bool = False, keep_storage: int = 0, filters: dict[str, list[str]] | None = None) \
            -> dict[str, Any]:
        return self.admin.prune(all_=all_, keep_storage=keep_storage, filters=filters)

    def gc(self) -> None:
        self.admin.gc()

    # ------------------------------------------------------------------ cancel
    def cancel(self, build_id: str) -> None:
        with self._lock:
            ev = self._cancels.get(build_id)
        if ev is None:
            raise NotFound(f"no such build: {build_id}")
        ev.set()

    # ------------------------------------------------------------------ build
    def new_work_dir(self) -> str:
        d = os.path.join(self.tmp_root, secrets.token_hex(8))
        os.makedirs(d)
        return d

    @staticmethod
    def _context_in(work: str) -> str:
        d = os.path.join(work, "context")
        os.makedirs(d)
        return d

    def build(self, opts: BuildOptions, emit: Emit, *, tar: IO[bytes] | None = None, context_dir: str = "",
              remote: str = "", cancel: threading.Event | None = None) -> str:
        """Run a whole build; returns the image ID. Errors are raised (the route puts them in the stream)."""
        cancel = cancel or threading.Event()
        build_id = opts.build_id or secrets.token_hex(16)
        with self._lock:
            self._cancels[build_id] = cancel
        work = self.new_work_dir()
        locks: list[int] = []
        self._load_digests()
        try:
            root = context_dir
            index: ContextIndex | None = None
            if not root and tar is not None and not remote:
                # a slot another build holds: a context dir inside this build's work dir (removed with it)
                root, slot_lock = self.slots.claim(opts.tags, opts.dockerfile, lambda: self._context_in(work))
                if slot_lock is not None:
                    locks.append(slot_lock)
                    index = receive_context(tar, root, self.slots.take_index(root), self.slots.stream_path(root))
                    self.slots.keep_index(root, index)
                else:
                    index = receive_context(tar, root, None)
            elif not root:
                root = os.path.join(work, "context")
                os.makedirs(root)
                if remote:
                    fetch_remote(remote, root, opts.dockerfile)
                elif tar is not None:
                    unpack_tar(tar, root)
            elif not os.path.isdir(root):
                raise InvalidParameter(f"unable to prepare context: path \"{root}\" not found")
            return self._build(opts, emit, root, work, cancel, index)
        finally:
            with self._lock:
                self._cancels.pop(build_id, None)
            for fd in locks:
                os.close(fd)  # releases the context slot's lock
            shutil.rmtree(work, ignore_errors=True)
            self.digests.save()

    def _load_digests(self) -> None:
        """The persisted context digests, read on the first build (not at daemon start)."""
        with self._lock:
            if not self._digests_loaded:
                self.digests.load()
                self._digests_loaded = True

    def _read_dockerfile(self, root: str, name: str) -> str:
        rel = name or "Dockerfile"
        path = os.path.join(root, rel.lstrip("/"))
        if not os.path.exists(path) and not name:
            alt = os.path.join(root, "dockerfile")
            if os.path.exists(alt):
                path = alt
        real = os.path.realpath(path)
        if not (real + "/").startswith(os.path.realpath(root) + "/") and not os.path.isabs(name):
            raise BuildError(f"Cannot locate specified Dockerfile: {rel}")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BuildError(f"Cannot locate specified Dockerfile: {rel}") from None

    def _build(self, opts: BuildOptions, emit: Emit, root: str, work: str, cancel: threading.Event,
               index: ContextIndex | None = None) -> str:
        text = self._read_dockerfile(root, opts.dockerfile)
        df = parse(text)
        p = plan(df, opts.dockerfile or "Dockerfile")
        ctx = BuildContext(root, opts.dockerfile or "Dockerfile", index)
        lexer = Lexer(df.escape)
        meta, used = meta_args(p, opts, lexer, df.escape)
        meta_env = {k: v for k, v in meta.items() if v is not None}
        bases: list[str] = []
        stage_platforms: list[platforms.Platform | None] = []
        default_platform = platforms.parse(opts.platform) if opts.platform else None
        output = outputs.parse(opts.outputs)
        for stage in p.stages:
            try:
                bases.append(lexer.word(stage.base, meta_env))
                plat = lexer.word(stage.platform, meta_env) if stage.platform else ""
            except ShellWordError as e:
                raise ParseError(stage.line, str(e)) from None
            stage_platforms.append(platforms.parse(plat) if plat else default_platform)
        target = len(p.stages) - 1
        if opts.target:
            names = [s.name for s in p.stages]
            if opts.target.lower() not in names:
                raise BuildError(f"failed to reach build target {opts.target} in Dockerfile")
            target = names.index(opts.target.lower())
        runs = needed_stages(p, bases, target, lexer, meta_env)
        first_step, total = step_numbers(runs, 1 if opts.labels else 0)
        base_of: dict[int, int | None] = {}
        for i in runs:
            idx = stage_index(p, bases[i])
            base_of[i] = idx if idx is not None and idx < i else None
        sched = StageScheduler(runs, lambda ref: stage_index(p, ref), cancel)

        def build_one(i: int, out: Out) -> StageResult:
            b = base_of[i]
            return self._run_stage(runs[i].stage, bases[i], first_step[i], total, opts, ctx, df.escape, meta, used,
                                   sched.lookup, out, cancel, work, labels_step=(i == target and bool(opts.labels)),
                                   base_stage=sched.results.get(b) if b is not None else None,
                                   platform=stage_platforms[i])

        def stream(msg: str) -> None:
            if not opts.quiet:
                emit({"stream": msg})

        results = sched.run(build_one, stream)
        final = results[target]
        if output is not None:
            try:
                outputs.export(output, final.layer_dirs)
            except OSError as e:
                raise BuildError(f"failed to export to {output.dest}: {e.strerror or e}") from None
        unused = sorted(k for k, v in opts.buildargs.items() if k not in used and k not in PLATFORM_ARGS)
        if unused and not opts.quiet:
            emit({"stream": f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n"})
        emit({"aux": {"ID": final.image_id}})
        short = final.image_id.split(":", 1)[1][:12]
        if opts.quiet:
            emit({"stream": f"{final.image_id}\n"})
        else:
            emit({"stream": f"Successfully built {short}\n"})
        for tag in opts.tags if output is None or output.tags_image else []:
            self.images.tag(final.image_id, tag)
            failpoint.hit("build.image.tagged")
            if not opts.quiet:
                emit({"stream": f"Successfully tagged {_familiar(tag)}\n"})
        self.gc()
        return final.image_id

    def _run_stage(self, stage: Stage, base: str, first_step: int, total: int, opts: BuildOptions,
                   ctx: BuildContext, escape: str, meta: dict[str, str | None], used: set[str],
                   lookup_stage: Callable[[str], StageResult | None], out: Out,
                   cancel: threading.Event, work: str, labels_step: bool,
                   base_stage: StageResult | None, platform: platforms.Platform | None = None) -> StageResult:
        step = first_step
        out(f"Step {step}/{total} : {stage.original}\n")
        st = stage_base(self.images, base, base_stage, opts, out, platform)
        if st.image_id:
            out(f" ---> {st.image_id.split(':', 1)[1][:12]}\n")
        sb = StageBuilder(images=self.images, containers=self.containers, cache=self.cache, ctx=ctx, opts=opts,
                          escape=escape, meta_args=meta, used_args=used, stage_results=lookup_stage, emit=out,
                          cancel=cancel, work_dir=work, cache_mount_root=self.cache_mount_root)
        if opts.cachefrom:
            allowed: set[str] = set()
            for ref in opts.cachefrom:
                try:
                    img = self.images.lookup(ref)
                except DockyardError:
                    continue  # docker ignores a cache source it cannot find
                allowed |= self.cache.lineage(img.id)
                sb.history_sources.append(img)  # a pulled image has no cache rows: its history is matched
            sb.cache_sources = allowed
        triggers = list(st.cc.get("OnBuild") or [])
        if triggers:
            self._onbuild(sb, st, triggers, out)
        for node in stage.nodes:
            step += 1
            out(f"Step {step}/{total} : {node.original}\n")
            sb.step(st, node)
        if labels_step:
            step += 1
            line = "LABEL " + " ".join(f'"{k}"=\'{v}\'' for k, v in sorted(opts.labels.items()))
            out(f"Step {step}/{total} : {line}\n")
            sb.step(st, parse(line).nodes[0])
        self.cache.touch(sb.used_keys)
        if not st.image_id:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        return StageResult(st.image_id, st.config, st.layer_dirs)

    def _onbuild(self, sb: StageBuilder, st: State, triggers: list[str], out: Out) -> None:
        out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) != 1 else ''}\n")
        from .instructions import check

        st.cc["OnBuild"] = None  # triggers run once, in the child (not inherited further)
        for trig in triggers:
            df = parse(trig)
            for node in df.nodes:
                check(node, df.escape)
                sb.step(st, node)


def _familiar(tag: str) -> str:
    from ..images.reference import parse_normalized

    try:
        return parse_normalized(tag).with_default_tag().familiar()
    except Exception:  # noqa: BLE001 - the tag step itself reports bad names
        return tag
