"""RUN: the command in a real container made from the parent image (the build's network, resources, build args
and ``--mount``s), its output streamed, its diff committed as the step's layer. Cancelling the build kills the
container; ``rm``/``forcerm`` decide when the container goes, as in docker's classic builder."""

from __future__ import annotations

import copy
import tarfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import DockyardError
from .cache import cache_key
from .dockerfile import Node, ParseError
from .imageconfig import empty_container_config
from .instructions import PROXY_ARGS, flag_map
from .options import BuildCancelled, BuildError
from .ports import RunRequest
from .runmounts import RunMounts
from .stage_state import DEFAULT_PATH, env_dict

if TYPE_CHECKING:
    from .executor import StageBuilder
    from .stage_state import State


def run_command(st: State, node: Node) -> list[str]:
    """The argv a RUN executes: exec form as written, shell form (and heredocs) through the stage's shell."""
    if node.exec_form is not None:
        return list(node.exec_form)
    script = node.args
    if node.heredocs:
        only = len(node.heredocs) == 1 and node.args.strip().startswith("<<") and len(node.args.split()) == 1
        if only:
            script = node.heredocs[0].content
        else:
            script = node.args + "\n" + "".join(h.content + h.name + "\n" for h in node.heredocs)
    return [*st.shell, script]


def step_output(data: bytes, is_stderr: bool) -> str:
    """A RUN step's output for the stream; stderr wrapped in red as dockerd's stderr writer does."""
    text = data.decode("utf-8", "replace")
    return f"\x1b[91m{text}\x1b[0m" if is_stderr else text


def do_run(b: StageBuilder, st: State, node: Node) -> None:
    flags = flag_map(node)
    cmd = run_command(st, node)
    network = (flags.get("network") or [""])[-1]
    if network not in ("", "default", "none", "host"):
        raise ParseError(node.line, f"unsupported network mode: {network}")
    arg_env = b.arg_env(st)
    env_now = env_dict(st.cc.get("Env"))
    build_args = sorted((k, v) for k, v in arg_env.items() if k not in env_now)
    history_args = [(k, v) for k, v in build_args if k not in PROXY_ARGS]
    save_cmd = list(cmd)
    if history_args:
        save_cmd = [f"|{len(history_args)}", *[f"{k}={v}" for k, v in history_args], *cmd]
    mounts = RunMounts(b, st, node, flags.get("mount") or [])
    key = cache_key(st.image_id or "scratch", "run", save_cmd, network, mounts.cache_identity())
    if b.try_cache(st, key, " ".join(save_cmd)):
        return
    run_env = list(st.cc.get("Env") or [DEFAULT_PATH]) + [f"{k}={v}" for k, v in build_args]
    mode = {"": b.opts.network_mode, "default": b.opts.network_mode}.get(network, network)
    try:
        binds, tmpfs, hide = mounts.prepare()
        req = RunRequest(image_id=st.image_id, cmd=cmd, env=run_env, workdir=st.cc.get("WorkingDir") or "",
                         user=st.cc.get("User") or "", network_mode=mode or "default", binds=binds,
                         tmpfs=tmpfs, resources=dict(b.opts.resources), extra_hosts=list(b.opts.extra_hosts),
                         labels={})
        _StepContainer(b, st, req).run(cmd, save_cmd, key, hide)
    finally:
        mounts.cleanup()


class _StepContainer:
    """One RUN's container, from create to remove."""

    def __init__(self, b: StageBuilder, st: State, req: RunRequest) -> None:
        self.b = b
        self.st = st
        self.req = req
        self.cid = ""
        self.removed = False
        self.done = threading.Event()

    def remove(self) -> None:
        if not self.removed:
            self.removed = True
            try:
                self.b.containers.remove(self.cid)
            except DockyardError:
                pass
            self.b.emit(f"Removing intermediate container {self.cid[:12]}\n")

    def run(self, cmd: list[str], save_cmd: list[str], key: str, hide: set[str]) -> None:
        b, st, opts = self.b, self.st, self.b.opts
        try:
            self.cid = b.containers.create(self.req)
        except DockyardError as e:
            raise BuildError(str(e)) from None
        cid = self.cid
        b.emit(f" ---> Running in {cid[:12]}\n")
        watcher = threading.Thread(target=self._kill_on_cancel, daemon=True)
        watcher.start()
        try:
            try:
                code = b.containers.run(cid, lambda data, is_stderr: b.emit(step_output(data, is_stderr)))
            except DockyardError as e:
                if opts.forcerm:
                    self.remove()
                raise BuildError(str(e)) from None
            finally:
                self.done.set()
            b.check_cancel()
            if code != 0:
                if opts.forcerm:
                    self.remove()
                raise BuildError(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code=code)
            cfg = copy.deepcopy(st.config)
            cc = cfg.setdefault("config", empty_container_config())
            cc["Image"] = st.image_id
            ccc = copy.deepcopy(cc)
            ccc["Cmd"] = save_cmd
            created_by = " ".join(save_cmd)
            try:
                diff = filter_tar(b.containers.diff(cid), hide)
                new_id = b.finish(st, cfg, ccc, created_by, diff, key, "run", created_by, empty=False,
                                  container_id=cid, announce=False)
            except BaseException:
                if opts.forcerm:
                    self.remove()
                raise
            if opts.rm or opts.forcerm:
                self.remove()
            b.emit(f" ---> {new_id.split(':', 1)[1][:12]}\n")
        except BuildCancelled:
            if opts.rm or opts.forcerm:
                self.remove()
            raise

    def _kill_on_cancel(self) -> None:
        """Kill the step's container once the build is cancelled; again until it is gone (a kill can land in the
        moment between the process starting and the container being recorded as running)."""
        while not self.done.is_set():
            if self.b.cancel.wait(0.2):
                try:
                    self.b.containers.kill(self.cid)
                except DockyardError:
                    pass
                self.done.wait(0.5)


def filter_tar(chunks: Iterator[bytes], hide: set[str]) -> Iterator[bytes]:
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
