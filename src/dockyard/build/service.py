"""The build service: a context and options in, an image (and a docker-style message stream) out.

It parses the Dockerfile whole before anything runs, resolves which stages the target needs (unused stages are
skipped), builds independent stages at the same time, streams each stage's messages in order, tags the result,
and keeps the cache within its size bound. Cancelling (``/build/cancel`` or the client going away) kills the
running step; a failed or cancelled build tags nothing and leaves no layer behind.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import DockyardError, InvalidParameter, NotFound
from ..storage.db import StateDB
from .cache import BuildCache
from .context import BuildContext, unpack_tar
from .dockerfile import ParseError, parse
from .executor import StageBuilder, StageResult, State, base_state
from .instructions import PLATFORM_ARGS, PROXY_ARGS, Plan, Stage, plan, split_words_raw
from .options import BuildCancelled, BuildError, BuildOptions
from .ports import BuildContainers, BuildImages
from .shell_words import Lexer, ShellWordError

log = logging.getLogger("dockyard.build")
Emit = Callable[[dict[str, Any]], None]
DEFAULT_KEEP_STORAGE = 20 * 1000 ** 3  # dockerd's builder GC default (20 GB)
_SLOTS = 4  # uploaded contexts kept for the next upload of the same build


def _platform_args(platform: str) -> dict[str, str | None]:
    import platform as platform_mod

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform_mod.machine(), platform_mod.machine())
    build = f"linux/{arch}"
    target = platform or build
    t_os, _, rest = target.partition("/")
    t_arch, _, t_var = rest.partition("/")
    return {"BUILDPLATFORM": build, "BUILDOS": "linux", "BUILDARCH": arch, "BUILDVARIANT": "",
            "TARGETPLATFORM": target, "TARGETOS": t_os, "TARGETARCH": t_arch or arch, "TARGETVARIANT": t_var}


@dataclass
class _StageRun:
    stage: Stage
    deps: set[int] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    result: StageResult | None = None


class BuildService:
    def __init__(self, db: StateDB, data_root: str, images: BuildImages, containers: BuildContainers,
                 keep_storage: int = DEFAULT_KEEP_STORAGE, gc_enabled: bool = True) -> None:
        self.images = images
        self.containers = containers
        self.cache = BuildCache(db)
        self.root = os.path.join(data_root, "build")
        self.tmp_root = os.path.join(self.root, "tmp")
        self.cache_mount_root = os.path.join(self.root, "cache-mounts")
        self.contexts_root = os.path.join(self.root, "contexts")
        os.makedirs(self.contexts_root, exist_ok=True)
        os.makedirs(self.tmp_root, exist_ok=True)
        os.makedirs(self.cache_mount_root, exist_ok=True)
        for name in os.listdir(self.tmp_root):  # what a crash mid-build left
            shutil.rmtree(os.path.join(self.tmp_root, name), ignore_errors=True)
        self.keep_storage = keep_storage
        self.gc_enabled = gc_enabled
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

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

    def build(self, opts: BuildOptions, emit: Emit, *, tar: IO[bytes] | None = None, context_dir: str = "",
              remote: str = "", cancel: threading.Event | None = None) -> str:
        """Run a whole build; returns the image ID. Errors are raised (the route puts them in the stream)."""
        cancel = cancel or threading.Event()
        build_id = opts.build_id or secrets.token_hex(16)
        with self._lock:
            self._cancels[build_id] = cancel
        work = self.new_work_dir()
        locks: list[int] = []
        try:
            root = context_dir
            if not root and tar is not None and not remote:
                root, slot_lock = self._context_slot(opts)
                if slot_lock is not None:
                    locks.append(slot_lock)
                    unpack_tar(tar, root, reuse=True)
                else:
                    unpack_tar(tar, root)
            elif not root:
                root = os.path.join(work, "context")
                os.makedirs(root)
                if remote:
                    self._fetch_remote(remote, root, opts)
                elif tar is not None:
                    unpack_tar(tar, root)
            elif not os.path.isdir(root):
                raise InvalidParameter(f"unable to prepare context: path \"{root}\" not found")
            return self._build(opts, emit, root, work, cancel)
        finally:
            with self._lock:
                self._cancels.pop(build_id, None)
            for fd in locks:
                os.close(fd)  # releases the context slot's lock
            shutil.rmtree(work, ignore_errors=True)

    def _context_slot(self, opts: BuildOptions) -> tuple[str, int | None]:
        """Where an uploaded context is unpacked: the slot of the last upload with the same tags and Dockerfile
        (kept between builds, so unchanged files are not written again), or a fresh directory when that slot is
        busy. At most ``_SLOTS`` slots are kept, the least recently used go first."""
        import fcntl
        import hashlib
        import json

        df = "" if (opts.dockerfile or "").startswith(".dockerfile.") else opts.dockerfile
        key = hashlib.sha256(json.dumps([sorted(opts.tags), df]).encode()).hexdigest()[:24]
        root = os.path.join(self.contexts_root, key)
        fd = os.open(root + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            fresh = os.path.join(self.new_work_dir(), "context")
            os.makedirs(fresh)
            return fresh, None
        os.makedirs(root, exist_ok=True)
        os.utime(root + ".lock")
        self._evict_slots(keep=key)
        return root, fd

    def _evict_slots(self, keep: str = "", limit: int | None = None) -> None:
        import fcntl

        limit = _SLOTS if limit is None else limit
        locks = sorted((n for n in os.listdir(self.contexts_root) if n.endswith(".lock")),
                       key=lambda n: os.stat(os.path.join(self.contexts_root, n)).st_mtime, reverse=True)
        for name in locks[limit:]:
            key = name[:-5]
            if key == keep:
                continue
            path = os.path.join(self.contexts_root, name)
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # in use by a running build
            try:
                shutil.rmtree(os.path.join(self.contexts_root, key), ignore_errors=True)
                os.unlink(path)
            finally:
                os.close(fd)

    def _fetch_remote(self, remote: str, root: str, opts: BuildOptions) -> None:
        """A git repository (cloned) or a URL of a tar or a Dockerfile (downloaded)."""
        import subprocess
        import urllib.request

        is_git = remote.startswith("git@") or remote.startswith("git://") or ".git" in remote.split("#")[0] \
            or remote.startswith("github.com/")
        if is_git:
            url, _, frag = remote.partition("#")
            ref, _, sub = frag.partition(":")
            clone = os.path.join(os.path.dirname(root), "git")
            cmd = ["git", "clone", "-q", "--recurse-submodules"]
            if ref:
                cmd += ["--branch", ref]
            r = subprocess.run([*cmd, "--depth", "1", url, clone], capture_output=True, text=True)
            if r.returncode != 0:  # a server without shallow fetches (dumb http): a full clone, as docker retries
                shutil.rmtree(clone, ignore_errors=True)
                r = subprocess.run([*cmd, url, clone], capture_output=True, text=True)
            if r.returncode != 0:
                raise BuildError(f"unable to prepare context: unable to 'git clone' to temporary context "
                                 f"directory: error fetching: {r.stderr.strip()}")
            src = os.path.join(clone, sub) if sub else clone
            os.rmdir(root)
            shutil.move(src, root)
            return
        path = os.path.join(os.path.dirname(root), "remote")
        try:
            with urllib.request.urlopen(remote, timeout=60) as resp, open(path, "wb") as f:  # noqa: S310
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
        except OSError as e:
            raise BuildError(f"unable to prepare context: unable to download remote context {remote}: {e}") \
                from None
        import tarfile

        if tarfile.is_tarfile(path):
            with open(path, "rb") as f:
                unpack_tar(f, root)
        else:
            shutil.move(path, os.path.join(root, opts.dockerfile or "Dockerfile"))

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

    def _build(self, opts: BuildOptions, emit: Emit, root: str, work: str, cancel: threading.Event) -> str:
        text = self._read_dockerfile(root, opts.dockerfile)
        df = parse(text)
        p = plan(df, opts.dockerfile or "Dockerfile")
        ctx = BuildContext(root, opts.dockerfile or "Dockerfile")
        lexer = Lexer(df.escape)
        used: set[str] = set()
        meta: dict[str, str | None] = dict(_platform_args(opts.platform))
        for node in p.meta_args:
            for word in split_words_raw(node.args, df.escape):
                name, sep, default = word.partition("=")
                used.add(name)
                if opts.buildargs.get(name) is not None:
                    meta[name] = opts.buildargs[name]
                elif sep:
                    try:
                        meta[name] = lexer.word(default, {k: v for k, v in meta.items() if v is not None})
                    except ShellWordError as e:
                        raise ParseError(node.line, str(e)) from None
                else:
                    meta[name] = None
        meta_env = {k: v for k, v in meta.items() if v is not None}
        for k in PROXY_ARGS:
            if opts.buildargs.get(k) is not None:
                used.add(k)
        bases: list[str] = []
        for stage in p.stages:
            try:
                bases.append(lexer.word(stage.base, meta_env))
            except ShellWordError as e:
                raise ParseError(stage.line, str(e)) from None
        target = len(p.stages) - 1
        if opts.target:
            names = [s.name for s in p.stages]
            if opts.target.lower() not in names:
                raise BuildError(f"failed to reach build target {opts.target} in Dockerfile")
            target = names.index(opts.target.lower())
        runs = self._needed(p, bases, target, lexer, meta_env)
        order = sorted(runs)
        total = sum(1 + len(runs[i].stage.nodes) for i in order) + (1 if opts.labels else 0)
        step_of: dict[int, int] = {}
        n = 1
        for i in order:
            step_of[i] = n
            n += 1 + len(runs[i].stage.nodes)

        results: dict[int, StageResult] = {}
        base_of: dict[int, int | None] = {}
        for i in order:
            idx = self._stage_index(p, bases[i])
            base_of[i] = idx if idx is not None and idx < i else None
        cv = threading.Condition()

        def lookup_stage(ref: str) -> StageResult | None:
            idx = self._stage_index(p, ref)
            if idx is None:
                return None
            with cv:
                while idx not in results:
                    run = runs.get(idx)
                    if run is None or run.error is not None or cancel.is_set():
                        raise BuildError(f"stage {ref} did not complete")
                    cv.wait(0.5)
                return results[idx]

        def run_stage(i: int) -> None:
            run = runs[i]

            def out(msg: str) -> None:
                with cv:
                    run.messages.append(msg)
                    cv.notify_all()

            try:
                for d in run.deps:
                    with cv:
                        while not runs[d].done:
                            cv.wait(0.5)
                        if runs[d].error is not None:
                            raise BuildCancelled()
                res = self._run_stage(run.stage, bases[run.stage.index], step_of[i], total, opts, ctx, df.escape,
                                      meta, used, lookup_stage, out, cancel, work, runs, results,
                                      labels_step=(i == target and bool(opts.labels)),
                                      base_stage=_result_of(results, base_of[i]))
                with cv:
                    results[i] = res
                    run.result = res
            except BaseException as e:  # noqa: BLE001 - handed to the streaming thread
                run.error = e
                cancel.set()
            finally:
                with cv:
                    run.done = True
                    cv.notify_all()

        threads = []
        for i in order:
            t = threading.Thread(target=run_stage, args=(i,), name=f"build-stage-{i}", daemon=True)
            threads.append(t)
            t.start()
        first_error: BaseException | None = None
        try:
            for i in order:
                run = runs[i]
                sent = 0
                while True:
                    with cv:
                        while sent >= len(run.messages) and not run.done:
                            cv.wait(0.5)
                        pending = run.messages[sent:]
                        sent = len(run.messages)
                        finished = run.done
                    for msg in pending:
                        if not opts.quiet:
                            emit({"stream": msg})
                    if finished and sent >= len(run.messages):
                        break
                if run.error is not None and not isinstance(run.error, BuildCancelled):
                    first_error = run.error
                    break
                if run.error is not None and first_error is None:
                    first_error = run.error
        finally:
            if first_error is not None:
                cancel.set()
            for t in threads:
                t.join()
        if first_error is None:
            for i in order:
                if runs[i].error is not None:
                    first_error = runs[i].error
                    break
        if first_error is not None:
            for i in order:
                err = runs[i].error
                if err is not None and not isinstance(err, BuildCancelled):
                    first_error = err
                    break
            raise first_error
        final = results[target]
        unused = sorted(k for k, v in opts.buildargs.items() if k not in used and k not in PLATFORM_ARGS)
        if unused and not opts.quiet:
            emit({"stream": f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n"})
        emit({"aux": {"ID": final.image_id}})
        short = final.image_id.split(":", 1)[1][:12]
        if opts.quiet:
            emit({"stream": f"{final.image_id}\n"})
        else:
            emit({"stream": f"Successfully built {short}\n"})
        for tag in opts.tags:
            self.images.tag(final.image_id, tag)
            if not opts.quiet:
                emit({"stream": f"Successfully tagged {_familiar(tag)}\n"})
        self.gc()
        return final.image_id

    @staticmethod
    def _stage_index(p: Plan, ref: str) -> int | None:
        for s in p.stages:
            if s.name and s.name == ref.lower():
                return s.index
        if ref.isdigit() and int(ref) < len(p.stages):
            return int(ref)
        return None

    def _needed(self, p: Plan, bases: list[str], target: int, lexer: Lexer,
                meta_env: dict[str, str]) -> dict[int, _StageRun]:
        """The target stage and every stage it depends on (FROM, COPY --from, RUN --mount from=)."""
        runs: dict[int, _StageRun] = {}
        todo = [target]
        while todo:
            i = todo.pop()
            if i in runs:
                continue
            stage = p.stages[i]
            run = _StageRun(stage)
            refs = [bases[i]]
            for node in stage.nodes:
                for f in node.flags:
                    if f.startswith("from="):
                        refs.append(lexer.word(f[5:], meta_env))
                    elif f.startswith("mount="):
                        m = re.search(r"(?:^|,)from=([^,]+)", f[6:])
                        if m:
                            refs.append(lexer.word(m.group(1), meta_env))
            for ref in refs:
                idx = None
                for s in p.stages[:i]:
                    if s.name and s.name == ref.lower():
                        idx = s.index
                if idx is None and ref.isdigit() and int(ref) < i:
                    idx = int(ref)
                if idx is not None and idx != i:
                    run.deps.add(idx)
                    todo.append(idx)
            runs[i] = run
        return runs

    def _run_stage(self, stage: Stage, base: str, first_step: int, total: int, opts: BuildOptions,
                   ctx: BuildContext, escape: str, meta: dict[str, str | None], used: set[str],
                   lookup_stage: Callable[[str], StageResult | None], out: Callable[[str], None],
                   cancel: threading.Event, work: str, runs: dict[int, _StageRun],
                   results: dict[int, StageResult], labels_step: bool,
                   base_stage: StageResult | None) -> StageResult:
        step = first_step
        out(f"Step {step}/{total} : {stage.original}\n")
        st = self._base(base, base_stage, opts, out)
        if st.image_id:
            out(f" ---> {st.image_id.split(':', 1)[1][:12]}\n")
        sb = StageBuilder(images=self.images, containers=self.containers, cache=self.cache, ctx=ctx, opts=opts,
                          escape=escape, meta_args=meta, used_args=used, stage_results=lookup_stage, emit=out,
                          cancel=cancel, work_dir=work, cache_mount_root=self.cache_mount_root)
        if opts.cachefrom:
            allowed: set[str] = set()
            for ref in opts.cachefrom:
                try:
                    allowed |= self.cache.lineage(self.images.lookup(ref).id)
                except DockyardError:
                    continue  # docker ignores a cache source it cannot find
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
            from .dockerfile import parse as parse_df

            sb.step(st, parse_df(line).nodes[0])
        self.cache.touch(sb.used_keys)
        if not st.image_id:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        return StageResult(st.image_id, st.config, st.layer_dirs)

    def _onbuild(self, sb: StageBuilder, st: State, triggers: list[str], out: Callable[[str], None]) -> None:
        out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) != 1 else ''}\n")
        from .instructions import check

        cfg_cc = st.cc
        cfg_cc["OnBuild"] = None  # triggers run once, in the child (not inherited further)
        for trig in triggers:
            df = parse(trig)
            for node in df.nodes:
                check(node, df.escape)
                sb.step(st, node)
        if st.cc.get("OnBuild"):
            pass

    def _base(self, base: str, base_stage: StageResult | None, opts: BuildOptions,
              out: Callable[[str], None]) -> State:
        if base.lower() == "scratch":
            return base_state(None)
        res = base_stage
        if res is not None:
            from .ports import BaseImage

            return base_state(BaseImage(res.image_id, res.config, res.layer_dirs, []))
        if opts.pull:  # docker's --pull: always ask the registry; a failed pull fails the build
            try:
                self.images.pull(base, opts.auth, lambda m: out(_progress_text(m)))
            except DockyardError as e:
                raise BuildError(str(e)) from None
        try:
            img = self.images.lookup(base)
        except NotFound:
            try:
                self.images.pull(base, opts.auth, lambda m: out(_progress_text(m)))
                img = self.images.lookup(base)
            except DockyardError as e:
                raise BuildError(str(e)) from None
        except DockyardError as e:
            raise BuildError(str(e)) from None
        return base_state(img)

    # ------------------------------------------------------------------ cache: df, prune, gc
    def df(self) -> list[dict[str, Any]]:
        out = []
        for r in self.cache.all():
            out.append({"ID": r.key.split(":", 1)[1][:25], "Parent": r.parent or "", "Parents": [r.parent] if
                        r.parent else [], "Type": "regular", "Description": r.description,
                        "InUse": False, "Shared": False, "Size": r.size,
                        "CreatedAt": _rfc3339(r.created), "LastUsedAt": _rfc3339(r.last_used),
                        "UsageCount": r.usage_count})
        return out

    def prune(self, all_: bool = False, keep_storage: int = 0, filters: dict[str, list[str]] | None = None) \
            -> dict[str, Any]:
        filters = filters or {}
        for k in filters:
            if k not in ("until", "id", "parent", "type", "description", "inuse", "shared", "private", "label",
                         "label!"):
                raise InvalidParameter(f"invalid filter '{k}'")
        until = None
        if filters.get("until"):
            until = time.time() - _duration_seconds(filters["until"][0])
        records = self.cache.all()  # most recently used first
        kept = 0
        deleted: list[str] = []
        reclaimed = 0
        victims = []
        for r in records:
            if until is not None and r.last_used > until:
                continue
            if filters.get("id") and not any(r.key.split(":", 1)[1].startswith(i) for i in filters["id"]):
                continue
            if keep_storage and kept + r.size <= keep_storage:
                kept += r.size
                continue
            victims.append(r)
        for r in victims:
            self.cache.drop(r.key)
            deleted.append(r.key.split(":", 1)[1][:25])
        # drop the images no row and no tag needs any more, children first
        progress = True
        candidates = {r.image_id for r in victims}
        live = {r.image_id for r in self.cache.all()}
        while progress:
            progress = False
            for image_id in sorted(candidates):
                if image_id in live:
                    candidates.discard(image_id)
                    continue
                try:
                    freed = self.images.remove_unused(image_id)
                except DockyardError:
                    freed = -1
                if freed >= 0:
                    reclaimed += freed
                    candidates.discard(image_id)
                    progress = True
        if all_ or not filters:
            self._evict_slots(limit=0)  # the kept uploads go with the cache
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def gc(self) -> None:
        """Keep the cache under its bound (daemon.json ``builder.gc.defaultKeepStorage``), oldest out first."""
        if not self.gc_enabled or self.keep_storage <= 0:
            return
        if self.cache.total_size() <= self.keep_storage:
            return
        try:
            self.prune(keep_storage=self.keep_storage)
        except DockyardError:
            log.exception("build cache gc failed")


def _result_of(results: dict[int, StageResult], idx: int | None) -> StageResult | None:
    return results.get(idx) if idx is not None else None


def _progress_text(m: dict[str, Any]) -> str:
    status = m.get("status") or ""
    ident = m.get("id")
    return (f"{ident}: {status}\n" if ident else f"{status}\n") if status else ""


def _familiar(tag: str) -> str:
    from ..images.reference import parse_normalized

    try:
        return parse_normalized(tag).with_default_tag().familiar()
    except Exception:  # noqa: BLE001 - the tag step itself reports bad names
        return tag


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1e9):09d}Z"


def _duration_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)([smh])", text):
        total += float(num) * units[unit]
    if not total:
        try:
            return time.time() - float(text)
        except ValueError:
            raise InvalidParameter(f"invalid filter 'until={text}'") from None
    return total
