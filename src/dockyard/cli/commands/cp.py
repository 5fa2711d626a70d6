"""`dockyard cp`: copy files/folders between a container and the local filesystem, with docker's rules.

The daemon archives or extracts one path; deciding what lands where (into an existing directory, under a new
name, the contents of ``dir/.``) happens here by renaming the archive's top entry, as docker's client does.
Local extraction never follows a symlink it did not resolve itself: every parent is opened with O_NOFOLLOW.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from dockyard.cli.app import CLIError
from dockyard.util.humanize import human_size
from dockyard.util.tario import (
    NEW_FILE_FLAGS,
    BlockedPath,
    ChunkReader,
    copy_member,
    end_of_archive,
    entry_parts,
    file_entry_chunks,
    header_bytes,
    open_dir_path,
    tarinfo_from_stat,
)

GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)


def configure(p: Any) -> None:
    p.usage = "dockyard cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
    p.description = "Copy files/folders between a container and the local filesystem"
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", default=None,
                   help="Suppress progress output during copy. Progress output is automatically suppressed if no "
                        "terminal is attached")
    p.add_argument("source")
    p.add_argument("destination")


# -- docker's path rules (pure) -------------------------------------------------------------------------


def split_cp_arg(arg: str) -> tuple[str, str]:
    """CONTAINER:PATH or a local path (absolute, or starting with "." when it holds a colon)."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def has_trailing_sep(path: str) -> bool:
    return path.endswith("/")


def specifies_current_dir(path: str) -> bool:
    return os.path.basename(path) == "."


def asserts_directory(path: str) -> bool:
    return has_trailing_sep(path) or specifies_current_dir(path)


def preserve_trailing_dot_or_sep(cleaned: str, original: str) -> str:
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not has_trailing_sep(cleaned):
            cleaned += "/"
        cleaned += "."
    if not has_trailing_sep(cleaned) and has_trailing_sep(original):
        cleaned += "/"
    return cleaned


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """(parent, base) of the cleaned path, keeping a final "." as the base."""
    cleaned = os.path.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if specifies_current_dir(path):
        cleaned += "/."
    parent, base = os.path.dirname(cleaned) or ".", os.path.basename(cleaned) or cleaned
    if cleaned == "/":
        return "/", "/"
    return parent, base


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """GetRebaseName: keep "/." and "/" of ``path`` on ``resolved``; the base to restore after a symlink."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_sep(path) and not has_trailing_sep(resolved):
        resolved += "/"
    if os.path.basename(path.rstrip("/")) != os.path.basename(resolved.rstrip("/")):
        return resolved, os.path.basename(path.rstrip("/")) or path
    return resolved, ""


def prepare_copy(src_path: str, src_is_dir: bool, src_rebase: str, dst_path: str, dst_exists: bool,
                 dst_is_dir: bool) -> tuple[str, tuple[str, str] | None]:
    """PrepareArchiveCopy: the directory to extract into and the (old, new) rename of the top entry."""
    dst_dir, dst_base = split_path_dir_entry(dst_path)
    _, src_base = split_path_dir_entry(src_path)
    if src_rebase:
        src_base = src_rebase
    if dst_exists and dst_is_dir:
        return dst_path, None
    if dst_exists and src_is_dir:
        raise CLIError("cannot copy directory")
    if dst_exists or src_is_dir:
        return dst_dir, (src_base, dst_base)
    if asserts_directory(dst_path):
        raise CLIError("no such directory")
    return dst_dir, (src_base, dst_base)


def rename_entry(name: str, rename: tuple[str, str] | None) -> str:
    """RebaseArchiveEntries: the archive's top name ``old`` becomes ``new``."""
    if rename is None:
        return name
    old, new = rename
    if old == "/":
        old = ""
    return name.replace(old, new, 1)


def rename_all(name: str, renames: list[tuple[str, str]]) -> str:
    """The symlink's rebase (``-L``) first, then the destination's."""
    for rename in renames:
        name = rename_entry(name, rename)
    return name


# -- local side ----------------------------------------------------------------------------------------


def _abs_local(path: str) -> str:
    return preserve_trailing_dot_or_sep(os.path.abspath(path), path)


def _dest_info(path: str) -> tuple[str, bool, bool]:
    """CopyInfoDestinationPath: (path, exists, is_dir) after following symlinks at the destination."""
    original = path
    for _ in range(11):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return _missing_dest(path)
        except NotADirectoryError:
            raise CLIError("not a directory") from None
        if not stat.S_ISLNK(st.st_mode):
            return path, True, stat.S_ISDIR(st.st_mode)
        target = os.readlink(path)
        if not target.startswith("/"):
            target = os.path.join(split_path_dir_entry(path)[0], target)
        path = target
    raise CLIError(f"too many symlinks in {original}")


def _missing_dest(path: str) -> tuple[str, bool, bool]:
    """A destination that does not exist is fine when its parent directory does."""
    parent, _ = split_path_dir_entry(path)
    try:
        pst = os.stat(parent)
    except OSError as e:
        raise CLIError(f"stat {parent}: {os.strerror(e.errno or errno.ENOENT).lower()}") from None
    if not stat.S_ISDIR(pst.st_mode):
        raise CLIError("not a directory")
    return path, False, False


def _source_info(path: str, follow: bool) -> tuple[str, bool, str]:
    """CopyInfoSourcePath: (resolved path, is_dir, rebase name)."""
    try:
        if follow:
            resolved, rebase = rebase_name(path, os.path.realpath(path, strict=True))
        else:
            parent, base = os.path.split(path)
            resolved = os.path.join(os.path.realpath(parent or ".", strict=True), base)
            rebase = ""
            if has_trailing_sep(path) and os.path.basename(path.rstrip("/")) != os.path.basename(resolved.rstrip("/")):
                rebase = os.path.basename(path.rstrip("/"))
        st = os.lstat(resolved)
    except OSError as e:
        raise CLIError(f"lstat {e.filename or path}: {os.strerror(e.errno or errno.ENOENT).lower()}") from None
    return resolved, stat.S_ISDIR(st.st_mode), rebase


def _local_tar(path: str, rename: Callable[[str], str]) -> Iterator[bytes]:
    """TarResource: the entry ``path`` (a directory with all below it), named from its base."""
    src_dir, src_base = split_path_dir_entry(path)
    hardlinks: dict[tuple[int, int], str] = {}

    def one(full: str, arc: str) -> Iterator[bytes]:
        ti = tarinfo_from_stat(rename(arc), os.lstat(full), hardlinks, lambda: os.readlink(full))
        if ti is None:
            return
        if ti.type == tarfile.REGTYPE:
            with open(full, "rb") as f:
                yield from file_entry_chunks(ti, f.read)
            return
        yield header_bytes(ti)
        if ti.type == tarfile.DIRTYPE:
            for name in sorted(os.listdir(full)):
                yield from one(os.path.join(full, name), f"{arc.rstrip('/')}/{name}" if arc != "." else f"./{name}")

    yield from one(os.path.join(src_dir, src_base) if src_base != "." else src_dir, src_base)
    yield end_of_archive()


def _open_local_dir(root_fd: int, parts: list[str]) -> int:
    try:
        return open_dir_path(root_fd, parts, create=True)
    except BlockedPath:
        raise CLIError(f"refusing to extract below {'/'.join(parts)}: not a directory") from None


def untar_local(src: IO[bytes], dest: str, renames: list[tuple[str, str]]) -> None:
    """Untar with NoLchown and NoOverwriteDirNonDir into ``dest``; names stay below it, symlinks not followed."""
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dir_times: list[tuple[list[str], float]] = []
    try:
        with tarfile.open(fileobj=src, mode="r|") as tf:  # type: ignore[call-overload]
            for ti in tf:
                name = rename_all(ti.name, renames)
                parts = entry_parts(name)
                if ".." in parts:
                    raise CLIError(f"refusing archive entry {ti.name!r}: it climbs out of {dest}")
                if not parts:
                    continue
                dfd = _open_local_dir(root_fd, parts[:-1])
                try:
                    _local_entry(tf, ti, dfd, parts, dest, root_fd, renames)
                finally:
                    os.close(dfd)
                if ti.isdir():
                    dir_times.append((parts, ti.mtime))
    except tarfile.ReadError as e:
        raise CLIError(f"invalid tar archive: {e}") from None
    finally:
        for parts, mtime in sorted(dir_times, key=lambda x: -len(x[0])):
            try:
                os.utime(parts[-1], (mtime, mtime), dir_fd=_open_local_dir(root_fd, parts[:-1]),
                         follow_symlinks=False)
            except (OSError, CLIError):
                pass
        os.close(root_fd)


def _local_entry(tf: tarfile.TarFile, ti: tarfile.TarInfo, dfd: int, parts: list[str], dest: str,
                 root_fd: int, renames: list[tuple[str, str]]) -> None:
    base = parts[-1]
    where = os.path.join(dest, *parts)
    try:
        existing: os.stat_result | None = os.stat(base, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        is_dir = stat.S_ISDIR(existing.st_mode)
        if is_dir and not ti.isdir():
            raise CLIError(f'cannot overwrite directory "{where}" with non-directory "{dest}"')
        if not is_dir and ti.isdir():
            raise CLIError(f'cannot overwrite non-directory "{where}" with directory "{dest}"')
        if not is_dir:
            os.unlink(base, dir_fd=dfd)
    mode = ti.mode & 0o7777
    if ti.isdir():
        if existing is None:
            os.mkdir(base, 0o755, dir_fd=dfd)
        os.chmod(base, mode, dir_fd=dfd, follow_symlinks=False)
    elif ti.isreg():
        fd = os.open(base, NEW_FILE_FLAGS, 0o600, dir_fd=dfd)
        try:
            if not copy_member(tf, ti, fd):
                raise CLIError("unexpected EOF")
            os.fchmod(fd, mode)
            os.utime(fd, (ti.mtime, ti.mtime))
        finally:
            os.close(fd)
    elif ti.issym():
        os.symlink(ti.linkname, base, dir_fd=dfd)
        os.utime(base, (ti.mtime, ti.mtime), dir_fd=dfd, follow_symlinks=False)
    elif ti.islnk():
        target = entry_parts(rename_all(ti.linkname, renames))
        if not target or ".." in target:
            raise CLIError(f"refusing hard link {ti.name!r} to {ti.linkname!r}")
        sfd = _open_local_dir(root_fd, target[:-1])
        try:
            os.link(target[-1], base, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(sfd)
    elif ti.ischr() or ti.isblk() or ti.isfifo():
        kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK if ti.isblk() else stat.S_IFIFO
        os.mknod(base, kind | mode, os.makedev(ti.devmajor, ti.devminor), dir_fd=dfd)


# -- the command -------------------------------------------------------------------------------------


def _stat(ctx: Any, container: str, path: str) -> dict[str, Any] | None:
    """HEAD the archive path; None when the daemon has no such path (or container)."""
    resp = ctx.client._raw("HEAD", f"/containers/{container}/archive", {"path": path})  # no body to wait for
    resp.close()
    if resp.status >= 400:
        return None
    raw = resp.headers.get("x-docker-container-path-stat", "")
    try:
        return dict(json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))))
    except ValueError:
        return None


def _binary(stream: Any) -> Any:
    return getattr(stream, "buffer", stream)


def run(args: Any, ctx: Any) -> int:
    if not args.source:
        raise CLIError("source can not be empty")
    if not args.destination:
        raise CLIError("destination can not be empty")
    quiet = args.quiet if args.quiet is not None else not ctx.out.isatty()
    src_ctr, src_path = split_cp_arg(args.source)
    dst_ctr, dst_path = split_cp_arg(args.destination)
    if src_ctr and dst_ctr:
        raise CLIError("copying between containers is not supported")
    if src_ctr:
        return _from_container(ctx, src_ctr, src_path, dst_path, args.follow_link, quiet)
    if dst_ctr:
        return _to_container(ctx, dst_ctr, src_path, dst_path, args.follow_link, args.archive, quiet)
    raise CLIError("must specify at least one container source")


def _from_container(ctx: Any, container: str, src_path: str, dst_path: str, follow: bool, quiet: bool) -> int:
    if dst_path != "-":
        dst_path = _abs_local(dst_path)
        parent = os.path.dirname(os.path.normpath(dst_path))
        if parent and not os.path.exists(parent):
            raise CLIError(f'invalid output path: directory "{parent}" does not exist')
    rebase = ""
    if follow:
        st = _stat(ctx, container, src_path)
        if st is not None and st.get("mode", 0) & GO_MODE_SYMLINK:
            target = st.get("linkTarget") or ""
            if not target.startswith("/"):
                target = os.path.join(split_path_dir_entry(src_path)[0], target)
            src_path, rebase = rebase_name(src_path, target)
    resp = ctx.client.request("GET", f"/containers/{container}/archive", {"path": src_path})
    if dst_path == "-":
        out = _binary(ctx.out)
        for piece in resp.iter_raw():
            out.write(piece)
        out.flush()
        return 0
    raw = resp.headers.get("x-docker-container-path-stat", "")
    try:
        pstat = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) if raw else {}
    except ValueError:
        pstat = {}
    src_is_dir = bool(int(pstat.get("mode", 0)) & GO_MODE_DIR)
    target, exists, is_dir = _dest_info(dst_path)
    dst_dir, rename = prepare_copy(src_path, src_is_dir, rebase, target, exists, is_dir)
    renames = [(split_path_dir_entry(src_path)[1], rebase)] if rebase else []
    renames += [rename] if rename is not None else []
    body = ChunkReader(resp.iter_raw())
    untar_local(body, dst_dir, renames)  # type: ignore[arg-type]
    if not quiet:
        ctx.err.write(f"Successfully copied {human_size(body.total)} to {dst_path}\n")
    return 0


def _to_container(ctx: Any, container: str, src_path: str, dst_path: str, follow: bool, copy_uid_gid: bool,
                  quiet: bool) -> int:
    if src_path != "-":
        src_path = _abs_local(src_path)
    dst_target, dst_exists, dst_is_dir = dst_path, False, False
    st = _stat(ctx, container, dst_path)
    if st is not None and st.get("mode", 0) & GO_MODE_SYMLINK:
        target = st.get("linkTarget") or ""
        if not target.startswith("/"):
            target = os.path.join(split_path_dir_entry(dst_path)[0], target)
        dst_target = target
        st = _stat(ctx, container, target)
    if st is not None:
        mode = int(st.get("mode", 0))
        if mode & GO_MODE_TYPE and not mode & GO_MODE_DIR:
            raise CLIError(f'destination "{container}:{dst_path}" must be a directory or a regular file')
        dst_exists, dst_is_dir = True, bool(mode & GO_MODE_DIR)
    query: dict[str, Any] = {"noOverwriteDirNonDir": True}
    if copy_uid_gid:
        query["copyUIDGID"] = True
    if src_path == "-":
        if not dst_is_dir:
            raise CLIError(f'destination "{container}:{dst_path}" must be a directory')
        query["path"] = dst_target
        ctx.client.request("PUT", f"/containers/{container}/archive", query, _binary(ctx.stdin))
        return 0
    resolved, src_is_dir, rebase = _source_info(src_path, follow)
    dst_dir, rename = prepare_copy(resolved, src_is_dir, rebase, dst_target, dst_exists, dst_is_dir)
    renames = [(split_path_dir_entry(resolved)[1], rebase)] if rebase else []
    renames += [rename] if rename is not None else []
    body = ChunkReader(_local_tar(resolved, lambda name: rename_all(name, renames)))
    query["path"] = dst_dir
    ctx.client.request("PUT", f"/containers/{container}/archive", query, body)
    if not quiet:
        ctx.err.write(f"Successfully copied {human_size(body.total)} to {container}:{dst_target}\n")
    return 0
