"""One stage of a build: each instruction applied to the image config, RUN in a real container, COPY/ADD as
deterministic layers, every step committed as an image and remembered in the cache.

Messages follow the classic builder's stream: ``Step N/M : …``, `` ---> Using cache``, `` ---> Running in …``,
``Removing intermediate container …``, `` ---> <id>``.
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import DockyardError
from .cache import BuildCache, cache_key
from .context import BuildContext, Source
from .copy_step import CopyStep, copy_out
from .dockerfile import Node, ParseError, parse_exec_form
from .imageconfig import empty_container_config
from .imagefs import ImageFS
from .instructions import PROXY_ARGS, flag_map, name_value_pairs, split_words_raw
from .layertar import LayerBuilder
from .options import BuildCancelled, BuildError, BuildOptions
from .ports import BaseImage, BuildContainers, BuildImages, RunRequest
from .runmounts import RunMounts
from .shell_words import Lexer, ShellWordError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
Emit = Callable[[str], None]


def now_rfc3339() -> str:
    from ..images.config import now_rfc3339 as _now

    return _now()


def go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a string slice (``["a" "b c"]``), the form docker's history uses."""
    return "[" + " ".join(json.dumps(x) for x in items) + "]"


def go_duration(ns: int) -> str:
    if ns == 0:
        return "0s"
    secs = ns / 1e9
    h, rem = divmod(int(secs), 3600)
    m, s = divmod(rem, 60)
    frac = secs - int(secs)
    out = ""
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    sec = s + frac
    out += (f"{sec:g}" if frac else f"{s}") + "s"
    return out


def parse_duration(text: str, line: int, flag: str) -> int:
    import re

    if not text:
        return 0
    units = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ParseError(line, f"time: invalid duration \"{text}\"")
    return int(total)


@dataclass
class StageResult:
    image_id: str
    config: dict[str, Any]
    layer_dirs: list[str]


@dataclass
class State:
    """The image being built by a stage: its ID and full image config."""

    image_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    layer_dirs: list[str] = field(default_factory=list)
    cmd_set: bool = False
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in this stage (value or unset)
    shell: list[str] = field(default_factory=lambda: list(DEFAULT_SHELL))

    @property
    def cc(self) -> dict[str, Any]:
        return self.config.setdefault("config", empty_container_config())


def env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


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
        handler = getattr(self, f"do_{node.cmd}")
        handler(st, node)

    def _commit_meta(self, st: State, summary: str, mutate: Callable[[dict[str, Any]], None],
                     extra_key: Any = None) -> None:
        """A metadata-only step: same layers, new config, an ``empty_layer`` history entry."""
        prefix = " ".join(st.shell)
        created_by = f"{prefix} #(nop)  {summary}"
        key = cache_key(st.image_id or "scratch", "meta", summary, extra_key, st.shell)
        if self._try_cache(st, key):
            return
        cfg = copy.deepcopy(st.config)
        cc = cfg.setdefault("config", empty_container_config())
        mutate(cc)
        cc["Image"] = st.image_id
        ccc = copy.deepcopy(cc)
        ccc["Cmd"] = [*st.shell, "#(nop) ", summary]
        self._committed_in_container(st, ccc, lambda cid: self._finish(
            st, cfg, ccc, created_by, None, key, "meta", summary, empty=True, container_id=cid, announce=False))

    def _committed_in_container(self, st: State, ccc: dict[str, Any], commit: Callable[[str], str]) -> None:
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

    def _finish(self, st: State, cfg: dict[str, Any], container_config: dict[str, Any], created_by: str,
                layer: Iterator[bytes] | None, key: str, kind: str, description: str, empty: bool,
                container_id: str = "", announce: bool = True) -> str:
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
            new_id = self.images.commit(st.image_id, cfg, layer)
        except DockyardError as e:
            raise BuildError(str(e)) from None
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

    def _try_cache(self, st: State, key: str) -> bool:
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
        self.cached_so_far = False
        return False

    def _cache_allowed(self, image_id: str) -> bool:
        """With ``cachefrom``, only steps that lead to one of those images are reused (docker's rule)."""
        return self.cache_sources is None or image_id in self.cache_sources

    # -- metadata instructions ------------------------------------------------------------------------
    def do_env(self, st: State, node: Node) -> None:
        pairs = [(self.word(k, st, node.line), self.word(v, st, node.line))
                 for k, v in name_value_pairs(node, self.escape)]

        def mutate(cc: dict[str, Any]) -> None:
            env = list(cc.get("Env") or [])
            for k, v in pairs:
                env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
            cc["Env"] = env

        self._commit_meta(st, "ENV " + " ".join(f"{k}={v}" for k, v in pairs), mutate)

    def do_label(self, st: State, node: Node) -> None:
        pairs = [(self.word(k, st, node.line), self.word(v, st, node.line))
                 for k, v in name_value_pairs(node, self.escape)]

        def mutate(cc: dict[str, Any]) -> None:
            labels = dict(cc.get("Labels") or {})
            labels.update(dict(pairs))
            cc["Labels"] = labels

        self._commit_meta(st, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs), mutate)

    def do_maintainer(self, st: State, node: Node) -> None:
        who = node.args.strip()

        def mutate(cc: dict[str, Any]) -> None:
            pass

        st.config["author"] = who
        self._commit_meta(st, f"MAINTAINER {who}", mutate)

    def _cmd_value(self, st: State, node: Node) -> list[str]:
        if node.exec_form is not None:
            return list(node.exec_form)
        return [*st.shell, node.args]

    def do_cmd(self, st: State, node: Node) -> None:
        cmd = self._cmd_value(st, node)

        def mutate(cc: dict[str, Any]) -> None:
            cc["Cmd"] = cmd

        self._commit_meta(st, f"CMD {go_quote_list(cmd)}", mutate)
        st.cmd_set = True

    def do_entrypoint(self, st: State, node: Node) -> None:
        if node.exec_form is not None:
            ep: list[str] | None = list(node.exec_form)
        elif node.args.strip():
            ep = [*st.shell, node.args]
        else:
            ep = None
        cmd_set = st.cmd_set

        def mutate(cc: dict[str, Any]) -> None:
            cc["Entrypoint"] = ep
            if not cmd_set:
                cc["Cmd"] = None

        self._commit_meta(st, f"ENTRYPOINT {go_quote_list(ep or [])}", mutate)

    def do_expose(self, st: State, node: Node) -> None:
        ports = self.words(node.args, st, node.line)
        specs: list[str] = []
        for p in ports:
            num, _, proto = p.partition("/")
            proto = (proto or "tcp").lower()
            if proto not in ("tcp", "udp", "sctp"):
                raise BuildError(f"invalid proto: {proto}")
            lo, _, hi = num.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                raise BuildError(f"invalid containerPort: {num}")
            for n in range(int(lo), int(hi or lo) + 1):
                specs.append(f"{n}/{proto}")

        def mutate(cc: dict[str, Any]) -> None:
            exposed = dict(cc.get("ExposedPorts") or {})
            for s in specs:
                exposed[s] = {}
            cc["ExposedPorts"] = exposed

        self._commit_meta(st, "EXPOSE " + " ".join(sorted(ports)), mutate)

    def do_volume(self, st: State, node: Node) -> None:
        if node.exec_form is not None:
            vols = [self.word(v, st, node.line) for v in node.exec_form]
        else:
            vols = self.words(node.args, st, node.line)
        if any(not v.strip() for v in vols):
            raise BuildError("VOLUME specified can not be an empty string")

        def mutate(cc: dict[str, Any]) -> None:
            v = dict(cc.get("Volumes") or {})
            for x in vols:
                v[x] = {}
            cc["Volumes"] = v

        self._commit_meta(st, f"VOLUME [{' '.join(vols)}]", mutate)

    def do_user(self, st: State, node: Node) -> None:
        user = self.word(node.args, st, node.line)

        def mutate(cc: dict[str, Any]) -> None:
            cc["User"] = user

        self._commit_meta(st, f"USER {user}", mutate)

    def do_stopsignal(self, st: State, node: Node) -> None:
        sig = self.word(node.args, st, node.line)
        from ..containers.signals import parse_signal

        try:
            parse_signal(sig)
        except Exception:  # noqa: BLE001 - reported with docker's wording
            raise BuildError(f"Invalid signal: {sig}") from None

        def mutate(cc: dict[str, Any]) -> None:
            cc["StopSignal"] = sig

        self._commit_meta(st, f"STOPSIGNAL {sig}", mutate)

    def do_shell(self, st: State, node: Node) -> None:
        shell = list(node.exec_form or [])

        def mutate(cc: dict[str, Any]) -> None:
            cc["Shell"] = shell

        st.shell = shell  # docker's history line for SHELL already uses the new shell
        self._commit_meta(st, f"SHELL [{' '.join(shell)}]", mutate)

    def do_onbuild(self, st: State, node: Node) -> None:
        trigger = node.args.strip()
        word, _, rest = trigger.partition(" ")
        trigger = word.upper() + (" " + rest.strip() if rest.strip() else "")

        def mutate(cc: dict[str, Any]) -> None:
            cc["OnBuild"] = list(cc.get("OnBuild") or []) + [trigger]

        self._commit_meta(st, f"ONBUILD {trigger}", mutate)

    def do_healthcheck(self, st: State, node: Node) -> None:
        words = split_words_raw(node.args, self.escape)
        flags = flag_map(node)
        if words[0].upper() == "NONE":
            hc: dict[str, Any] = {"Test": ["NONE"]}
        else:
            rest = node.args.strip()[len(words[0]):].strip()
            form = parse_exec_form(rest)
            test = ["CMD", *form] if form is not None else ["CMD-SHELL", rest]
            hc = {"Test": test}
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                              ("start-interval", "StartInterval")):
                if flag in flags:
                    d = parse_duration(flags[flag][-1], node.line, flag)
                    if d != 0 and d < 10**6:
                        raise BuildError(f"Interval \"{flag}\" cannot be less than 1ms")
                    if d:
                        hc[key] = d
            if "retries" in flags:
                try:
                    r = int(flags["retries"][-1])
                except ValueError:
                    raise BuildError(f"strconv.ParseInt: parsing \"{flags['retries'][-1]}\": invalid syntax") \
                        from None
                if r < 0:
                    raise BuildError("--retries cannot be negative")
                if r:
                    hc["Retries"] = r
        summary = "HEALTHCHECK &{" + go_quote_list(hc["Test"]) + " " + " ".join(
            f'"{go_duration(hc.get(k, 0))}"' for k in ("Interval", "Timeout", "StartPeriod")) \
            + f" '\\x{hc.get('Retries', 0):02x}'" + "}"

        def mutate(cc: dict[str, Any]) -> None:
            cc["Healthcheck"] = hc

        self._commit_meta(st, summary, mutate)

    def do_arg(self, st: State, node: Node) -> None:
        for word in split_words_raw(node.args, self.escape):
            name, sep, default = word.partition("=")
            value: str | None
            if name in self.opts.buildargs and self.opts.buildargs[name] is not None:
                value = self.opts.buildargs[name]
            elif sep:
                value = self.word(default, st, node.line)
            elif name in self.meta_args:
                value = self.meta_args[name]
            else:
                value = None
            self.used_args.add(name)
            st.args[name] = value
            summary = f"ARG {name}" + (f"={self.word(default, st, node.line)}" if sep else "")

            def mutate(cc: dict[str, Any]) -> None:
                pass

            self._commit_meta(st, summary, mutate, extra_key=value)

    def do_workdir(self, st: State, node: Node) -> None:
        wd = self.word(node.args, st, node.line)
        if not wd.startswith("/"):
            wd = posixpath.join(st.cc.get("WorkingDir") or "/", wd)
        wd = posixpath.normpath(wd)
        fs = ImageFS(st.layer_dirs)
        summary = f"WORKDIR {wd}"
        key = cache_key(st.image_id or "scratch", "workdir", wd, st.shell)
        if self._try_cache(st, key):
            return
        lb = LayerBuilder()  # docker commits WORKDIR as a layer: the directory when it is new, else nothing
        if not fs.is_dir(wd):
            self._ancestors(lb, fs, fs.resolve(wd).lstrip("/") + "/x", (0, 0))
        cfg = copy.deepcopy(st.config)
        cfg.setdefault("config", empty_container_config())["WorkingDir"] = wd
        cfg["config"]["Image"] = st.image_id
        ccc = copy.deepcopy(cfg["config"])
        prefix = " ".join(st.shell)
        ccc["Cmd"] = [*st.shell, f"#(nop) {summary}"]
        self._committed_in_container(st, ccc, lambda cid: self._finish(
            st, cfg, ccc, f"{prefix} #(nop) {summary}", lb.chunks(), key, "workdir", summary, empty=False,
            container_id=cid, announce=False))

    # -- RUN -------------------------------------------------------------------------------------------
    def do_run(self, st: State, node: Node) -> None:
        flags = flag_map(node)
        if node.exec_form is not None:
            cmd = list(node.exec_form)
        else:
            script = node.args
            if node.heredocs:
                only = len(node.heredocs) == 1 and node.args.strip().startswith("<<") and \
                    len(node.args.split()) == 1
                if only:
                    script = node.heredocs[0].content
                else:
                    script = node.args + "\n" + "".join(h.content + h.name + "\n" for h in node.heredocs)
            cmd = [*st.shell, script]
        network = (flags.get("network") or [""])[-1]
        if network not in ("", "default", "none", "host"):
            raise ParseError(node.line, f"unsupported network mode: {network}")
        arg_env = self.arg_env(st)
        env_now = env_dict(st.cc.get("Env"))
        build_args = sorted((k, v) for k, v in arg_env.items() if k not in env_now)
        history_args = [(k, v) for k, v in build_args if k not in PROXY_ARGS]
        save_cmd = list(cmd)
        if history_args:
            save_cmd = [f"|{len(history_args)}", *[f"{k}={v}" for k, v in history_args], *cmd]
        mounts = RunMounts(self, st, node, flags.get("mount") or [])
        key = cache_key(st.image_id or "scratch", "run", save_cmd, network, mounts.cache_identity())
        if self._try_cache(st, key):
            return
        run_env = list(st.cc.get("Env") or [DEFAULT_PATH]) + [f"{k}={v}" for k, v in build_args]
        mode = {"": self.opts.network_mode, "default": self.opts.network_mode}.get(network, network)
        try:
            binds, tmpfs, hide = mounts.prepare()
            req = RunRequest(image_id=st.image_id, cmd=cmd, env=run_env, workdir=st.cc.get("WorkingDir") or "",
                             user=st.cc.get("User") or "", network_mode=mode or "default", binds=binds,
                             tmpfs=tmpfs, resources=dict(self.opts.resources), extra_hosts=list(self.opts.extra_hosts),
                             labels={})
            self._run_container(st, req, cmd, save_cmd, key, hide)
        finally:
            mounts.cleanup()

    def _run_container(self, st: State, req: RunRequest, cmd: list[str], save_cmd: list[str], key: str,
                       hide: set[str]) -> None:
        try:
            cid = self.containers.create(req)
        except DockyardError as e:
            raise BuildError(str(e)) from None
        removed = False

        def remove() -> None:
            nonlocal removed
            if not removed:
                removed = True
                try:
                    self.containers.remove(cid)
                except DockyardError:
                    pass
                self.emit(f"Removing intermediate container {cid[:12]}\n")

        self.emit(f" ---> Running in {cid[:12]}\n")
        watcher = threading.Thread(target=self._kill_on_cancel, args=(cid,), daemon=True)
        done = threading.Event()
        self._done = done
        watcher.start()
        try:
            try:
                code = self.containers.run(cid, lambda b: self.emit(b.decode("utf-8", "replace")))
            except DockyardError as e:
                if self.opts.forcerm:
                    remove()
                raise BuildError(str(e)) from None
            finally:
                done.set()
            self.check_cancel()
            if code != 0:
                if self.opts.forcerm:
                    remove()
                raise BuildError(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code=code)
            cfg = copy.deepcopy(st.config)
            cc = cfg.setdefault("config", empty_container_config())
            cc["Image"] = st.image_id
            ccc = copy.deepcopy(cc)
            ccc["Cmd"] = save_cmd
            created_by = " ".join(save_cmd)
            try:
                diff = _filter_tar(self.containers.diff(cid), hide)
                new_id = self._finish(st, cfg, ccc, created_by, diff, key, "run", created_by, empty=False,
                                      container_id=cid, announce=False)
            except BaseException:
                if self.opts.forcerm:
                    remove()
                raise
            if self.opts.rm or self.opts.forcerm:
                remove()
            self.emit(f" ---> {new_id.split(':', 1)[1][:12]}\n")
        except BuildCancelled:
            if self.opts.rm or self.opts.forcerm:
                remove()
            raise


    def _kill_on_cancel(self, cid: str) -> None:
        """Kill the step's container once the build is cancelled; again until it is gone (a kill can land in the
        moment between the process starting and the container being recorded as running)."""
        while not self._done.is_set():
            if self.cancel.wait(0.2):
                try:
                    self.containers.kill(cid)
                except DockyardError:
                    pass
                self._done.wait(0.5)

    # -- COPY / ADD ------------------------------------------------------------------------------------
    def do_copy(self, st: State, node: Node) -> None:
        CopyStep(self).run(st, node, add=False)

    def do_add(self, st: State, node: Node) -> None:
        CopyStep(self).run(st, node, add=True)

    def _ancestors(self, lb: LayerBuilder, fs: ImageFS, target: str, owner: tuple[int, int] | None) -> None:
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

    def _from_fs(self, ref: str) -> ImageFS:
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

    def _materialise(self, fs: ImageFS, path: str) -> Source:
        import secrets

        dest = os.path.join(self.fetch_dir, "from-" + secrets.token_hex(6))
        os.makedirs(dest)
        name = posixpath.basename(path.rstrip("/")) or "root"
        target = os.path.join(dest, name)
        copy_out(fs, path, target)
        return Source(path.lstrip("/"), target, os.path.isdir(target) and not os.path.islink(target))

def _filter_tar(chunks: Iterator[bytes], hide: set[str]) -> Iterator[bytes]:
    """The RUN diff without the mount points made for its --mount targets (they are not part of the image)."""
    if not hide:
        yield from chunks
        return
    from ..util.tario import ChunkReader, end_of_archive, header_bytes, pad

    with tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as tf:  # type: ignore[call-overload]
        for ti in tf:
            name = ti.name.rstrip("/")
            if name in hide and (ti.isdir() or (ti.isreg() and ti.size == 0)):
                continue
            yield header_bytes(ti)
            if ti.isreg() and ti.size:
                f = tf.extractfile(ti)
                left = ti.size
                while left > 0 and f is not None:
                    data = f.read(min(1 << 20, left))
                    if not data:
                        break
                    yield data
                    left -= len(data)
                yield pad(ti.size)
    yield end_of_archive()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def base_state(img: BaseImage | None) -> State:
    if img is None:
        return State(config={"architecture": "amd64", "os": "linux", "config": empty_container_config(),
                             "rootfs": {"type": "layers", "diff_ids": []}, "history": []})
    cfg = copy.deepcopy(img.config)
    cc = cfg.setdefault("config", empty_container_config())
    for k, v in empty_container_config().items():
        cc.setdefault(k, v)
    shell = cc.get("Shell") or list(DEFAULT_SHELL)
    return State(image_id=img.id, config=cfg, layer_dirs=list(img.layer_dirs), shell=list(shell))
