"""The build's ``outputs``: where the result goes besides (or instead of) the image store.

As BuildKit's exporters: the default (``moby``/``image``/``docker``, or none given) is an image in the store,
tagged; ``local`` writes the target stage's filesystem into the directory ``dest``, ``tar`` writes it as one
tar file at ``dest`` (written aside, then renamed into place), ``cacheonly`` keeps only the build cache. With
``local``, ``tar`` and ``cacheonly`` nothing is tagged. ``dest`` is a path on the daemon's host (``dockyard
build -o`` sends it absolute); there is no client session to stream a result back, so ``dest=-`` is refused.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .imagefs import ImageFS
from .layertar import LayerBuilder, entry_from_stat
from .options import BuildError

IMAGE_TYPES = ("", "moby", "image", "docker")
TYPES = (*IMAGE_TYPES, "local", "tar", "cacheonly")


@dataclass(frozen=True)
class Output:
    type: str
    dest: str = ""

    @property
    def tags_image(self) -> bool:
        return self.type in IMAGE_TYPES


def parse(raw: Any) -> Output | None:
    """The ``outputs`` query parameter (a JSON array of ``{"Type", "Attrs"}``); None for the default."""
    if raw in (None, "", []):
        return None
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise BuildError("invalid outputs specified: outputs must be a JSON array of objects")
    if len(raw) > 1:
        raise BuildError("multiple outputs not supported")
    out = raw[0]
    kind = str(out.get("Type") or out.get("type") or "")
    attrs = out.get("Attrs") or out.get("attrs") or {}
    if not isinstance(attrs, dict):
        raise BuildError("invalid outputs specified: Attrs must be an object")
    if kind not in TYPES:
        raise BuildError(f'exporter "{kind}" could not be found')
    dest = str(attrs.get("dest") or "")
    if kind in ("local", "tar"):
        if not dest:
            raise BuildError(f"dest is required for {kind} exporter")
        if dest == "-":
            raise BuildError(f"{kind} exporter: dest - needs a client session, which the classic build "
                             "protocol has not; give a path on the daemon's host")
        if not os.path.isabs(dest):
            raise BuildError(f"{kind} exporter: dest must be an absolute path on the daemon's host: {dest}")
    return Output(kind, dest)


def _tree(fs: ImageFS, path: str = "/") -> Iterator[tuple[str, str, os.stat_result]]:
    """(path without leading "/", disk path, lstat) of every entry of the merged filesystem, sorted."""
    for name in fs.list_dir(path):
        child = posixpath.join(path, name)
        disk = fs.entry_path(child)
        if disk is None:
            continue
        st = os.lstat(disk)
        yield child.lstrip("/"), disk, st
        if stat.S_ISDIR(st.st_mode):
            yield from _tree(fs, child)


def export(out: Output, layer_dirs: list[str]) -> None:
    if out.type == "local":
        _export_local(layer_dirs, out.dest)
    elif out.type == "tar":
        _export_tar(layer_dirs, out.dest)


def _export_local(layer_dirs: list[str], dest: str) -> None:
    fs = ImageFS(layer_dirs)
    os.makedirs(dest, exist_ok=True)
    dirs: list[tuple[str, os.stat_result]] = []
    for rel, disk, st in _tree(fs):
        target = os.path.join(dest, rel)
        if stat.S_ISDIR(st.st_mode):
            if not os.path.isdir(target) or os.path.islink(target):
                _remove(target)
                os.mkdir(target, 0o700)
            dirs.append((target, st))
            continue
        _remove(target)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(disk), target)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(disk, target)
            os.chmod(target, stat.S_IMODE(st.st_mode))
        else:
            continue  # devices, fifos and sockets are not written out
        os.lchown(target, st.st_uid, st.st_gid)
    for target, st in reversed(dirs):  # modes last, so a read-only directory was still writable while filled
        os.chmod(target, stat.S_IMODE(st.st_mode))
        os.lchown(target, st.st_uid, st.st_gid)


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def _export_tar(layer_dirs: list[str], dest: str) -> None:
    fs = ImageFS(layer_dirs)
    lb = LayerBuilder()
    for rel, disk, st in _tree(fs):
        e = entry_from_stat(rel, disk, st, (st.st_uid, st.st_gid), None, keep_mtime=True)
        if e is not None:
            lb.add(e)
    parent = os.path.dirname(dest) or "."
    if not os.path.isdir(parent):
        raise BuildError(f"tar exporter: open {dest}: no such file or directory")
    tmp = os.path.join(parent, f".{os.path.basename(dest)}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            for chunk in lb.chunks():
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
