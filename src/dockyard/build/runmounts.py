"""``RUN --mount``: cache, bind, tmpfs and secret mounts turned into the step container's binds and tmpfs.

Cache mounts are directories the daemon keeps between builds (``<data-root>/build/cache-mounts/<id>``), so a
package cache survives; bind mounts show the context (read-only, or a private copy with ``rw``) or another
stage; secrets are files written for the step only and never part of a layer.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import secrets as secrets_mod
import shutil
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .context import Source, SourceError
from .dockerfile import Node, ParseError
from .options import BuildError

if TYPE_CHECKING:
    from .executor import StageBuilder
    from .stage_state import State

_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        lk = _locks.get(key)
        if lk is None:
            lk = _locks[key] = threading.Lock()
        return lk


@dataclass
class MountSpec:
    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    readonly: bool | None = None
    size: str = ""
    required: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def parse_mount(text: str, line: int) -> MountSpec:
    m = MountSpec()
    seen_type = False
    for field_ in [f for f in text.split(",") if f]:
        k, sep, v = field_.partition("=")
        k = k.strip().lower()
        if k == "type":
            if v not in ("bind", "cache", "tmpfs", "secret", "ssh"):
                raise ParseError(line, f"unsupported mount type \"{v}\"")
            m.type = v
            seen_type = True
        elif k in ("target", "dst", "destination"):
            m.target = v
        elif k in ("source", "src"):
            m.source = v
        elif k == "from":
            m.from_ = v
        elif k == "id":
            m.id = v
        elif k == "sharing":
            if v not in ("shared", "private", "locked"):
                raise ParseError(line, f"unsupported sharing value \"{v}\"")
            m.sharing = v
        elif k == "mode":
            try:
                m.mode = int(v, 8)
            except ValueError:
                raise ParseError(line, f"invalid value for mode: {v}") from None
        elif k in ("uid", "gid"):
            try:
                setattr(m, k, int(v))
            except ValueError:
                raise ParseError(line, f"invalid value for {k}: {v}") from None
        elif k in ("readonly", "ro"):
            m.readonly = (v or "true").lower() in ("true", "1")
        elif k in ("readwrite", "rw"):
            m.readonly = (v or "true").lower() not in ("true", "1")
        elif k == "size":
            m.size = v
        elif k == "required":
            m.required = (v or "true").lower() in ("true", "1")
        else:
            m.extra[k] = v if sep else "true"
    del seen_type
    if m.type == "secret":
        if not m.id:
            m.id = posixpath.basename(m.target) if m.target else ""
        if not m.target:
            m.target = f"/run/secrets/{m.id}"
    if not m.target and m.type != "ssh":
        raise ParseError(line, "mount target must be specified")
    if m.type == "cache" and not m.id:
        m.id = m.target
    return m


class RunMounts:
    def __init__(self, builder: StageBuilder, st: State, node: Node, specs: list[str]) -> None:
        self.b = builder
        self.st = st
        self.node = node
        self.mounts = [parse_mount(builder.word(s, st, node.line), node.line) for s in specs]
        self._held: list[threading.Lock] = []
        self._tmp: list[str] = []

    def _target(self, m: MountSpec) -> str:
        t = m.target
        if not t.startswith("/"):
            t = posixpath.join(self.st.cc.get("WorkingDir") or "/", t)
        return posixpath.normpath(t)

    def cache_identity(self) -> list[Any]:
        out: list[Any] = []
        for m in self.mounts:
            ident: list[Any] = [m.type, self._target(m), m.from_, m.source, m.readonly]
            if m.type == "bind" and not m.from_:
                try:
                    ident.append(self.b.ctx.checksum(self.b.ctx.sources(m.source or ".", "RUN")))
                except SourceError:
                    ident.append("missing")
            out.append(ident)
        return out

    def prepare(self) -> tuple[list[str], dict[str, str], set[str]]:
        from .imagefs import ImageFS

        binds: list[str] = []
        tmpfs: dict[str, str] = {}
        hide: set[str] = set()
        fs = ImageFS(self.st.layer_dirs)
        for m in self.mounts:
            target = self._target(m)
            probe = target
            while probe != "/" and fs.stat(probe) is None:  # the mount point and the dirs made for it
                hide.add(probe.lstrip("/"))
                probe = posixpath.dirname(probe)
            if m.type == "cache":
                binds.append(f"{self._cache_dir(m)}:{target}")
                if m.sharing == "locked":
                    lk = _lock_for(m.id)
                    lk.acquire()
                    self._held.append(lk)
            elif m.type == "tmpfs":
                tmpfs[target] = f"size={m.size}" if m.size else ""
            elif m.type == "secret":
                data = self.b.opts.secrets.get(m.id)
                if data is None:
                    if m.required:
                        raise BuildError(f"secret {m.id}: not found")
                    continue
                d = os.path.join(self.b.work_dir, "secret-" + secrets_mod.token_hex(6))
                os.makedirs(d, mode=0o700)
                self._tmp.append(d)
                path = os.path.join(d, "data")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(path, m.mode if m.mode is not None else 0o400)
                os.chown(path, m.uid, m.gid)
                binds.append(f"{path}:{target}:ro")
            elif m.type == "bind":
                binds.append(self._bind_source(m, target))
            else:
                raise BuildError(f"mount type {m.type} is not supported by this builder")
        return binds, tmpfs, hide

    def _cache_dir(self, m: MountSpec) -> str:
        name = hashlib.sha256(m.id.encode()).hexdigest()[:32]
        path = os.path.join(self.b.cache_mount_root, name)
        if m.sharing == "private":
            path = os.path.join(self.b.work_dir, "cache-" + name)
            self._tmp.append(path)
        if not os.path.isdir(path):
            tmp = path + ".tmp-" + secrets_mod.token_hex(4)
            os.makedirs(tmp, mode=m.mode if m.mode is not None else 0o755)
            os.chmod(tmp, m.mode if m.mode is not None else 0o755)
            os.chown(tmp, m.uid, m.gid)
            if m.from_:
                src = self.b.from_fs(m.from_)
                from .copy_step import copy_out

                copy_out(src, m.source or "/", os.path.join(tmp, "seed"))
                for name_ in os.listdir(os.path.join(tmp, "seed")):
                    os.rename(os.path.join(tmp, "seed", name_), os.path.join(tmp, name_))
                os.rmdir(os.path.join(tmp, "seed"))
            try:
                os.rename(tmp, path)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    def _bind_source(self, m: MountSpec, target: str) -> str:
        ro = m.readonly is not False
        if m.from_:
            src = self.b.materialise(self.b.from_fs(m.from_), "/" + m.source.lstrip("/"))
            self._tmp.append(os.path.dirname(src.path))
            return f"{src.path}:{target}" + (":ro" if ro else "")
        try:
            found = self.b.ctx.sources(m.source or ".", "RUN")
        except SourceError as e:
            raise BuildError(str(e)) from None
        src = found[0]
        if ro:
            return f"{src.path}:{target}:ro"
        copy_dir = os.path.join(self.b.work_dir, "bind-" + secrets_mod.token_hex(6))
        self._tmp.append(copy_dir)
        dest = os.path.join(copy_dir, "data")
        if src.is_dir:
            shutil.copytree(src.path, dest, symlinks=True)
        else:
            os.makedirs(copy_dir)
            shutil.copy2(src.path, dest)
        return f"{dest}:{target}"

    def cleanup(self) -> None:
        for lk in self._held:
            lk.release()
        self._held.clear()
        for d in self._tmp:
            shutil.rmtree(d, ignore_errors=True)
        self._tmp.clear()


__all__ = ["RunMounts", "MountSpec", "parse_mount", "Source"]
