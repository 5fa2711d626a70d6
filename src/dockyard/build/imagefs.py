"""Read-only look-ups in an image's filesystem straight from its unpacked layers (no mount needed).

Used for COPY destinations (does ``/app`` exist, is ``/bin`` a symlink), ``--chown`` names from the image's
``/etc/passwd`` and ``/etc/group``, and ``COPY --from`` sources. Overlay whiteouts (0/0 character devices)
and opaque directories hide what lies below them, as the mounted image would.
"""

from __future__ import annotations

import os
import posixpath
import stat


class ImageFS:
    def __init__(self, layer_dirs: list[str]) -> None:
        self.layers = list(reversed(layer_dirs))  # top first

    def _lookup(self, rel: str) -> str | None:
        """The topmost layer path of ``rel`` (no symlink resolution), or None if absent or whited out."""
        parts = [p for p in rel.split("/") if p]
        if not parts:
            return self.layers[0] if self.layers else None
        for layer in self.layers:
            p = os.path.join(layer, *parts)
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                if self._opaque_above(layer, parts):
                    return None
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None
            return p
        return None

    @staticmethod
    def _opaque_above(layer: str, parts: list[str]) -> bool:
        for k in range(len(parts) - 1, 0, -1):
            d = os.path.join(layer, *parts[:k])
            try:
                if os.getxattr(d, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                    return True
            except OSError:
                continue
        return False

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """``path`` with every symlink in the image resolved (absolute, inside the image)."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            comp = parts.pop(0)
            if comp == "..":
                if done:
                    done.pop()
                continue
            cand = "/".join(done + [comp])
            p = self._lookup(cand)
            if p is not None and os.path.islink(p) and (parts or follow_last):
                hops += 1
                if hops > 40:
                    break
                target = os.readlink(p)
                if target.startswith("/"):
                    done = []
                parts = [x for x in target.split("/") if x and x != "."] + parts
                continue
            done.append(comp)
        return "/" + "/".join(done)

    def stat(self, path: str) -> os.stat_result | None:
        p = self._lookup(self.resolve(path).lstrip("/"))
        if p is None:
            return None
        try:
            return os.stat(p)
        except OSError:
            return None

    def is_dir(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def disk_path(self, path: str) -> str | None:
        return self._lookup(self.resolve(path).lstrip("/"))

    def entry_path(self, path: str) -> str | None:
        """The disk path of ``path`` itself (a symlink stays a symlink), or None when absent."""
        return self._lookup(self.resolve(path, follow_last=False).lstrip("/"))

    def read_text(self, path: str) -> str:
        p = self.disk_path(path)
        if p is None:
            return ""
        try:
            with open(p, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def list_dir(self, path: str) -> list[str]:
        """Names in a directory of the merged image (whiteouts applied)."""
        rel = self.resolve(path).lstrip("/")
        names: set[str] = set()
        hidden: set[str] = set()
        for layer in self.layers:
            d = os.path.join(layer, rel) if rel else layer
            try:
                entries = os.listdir(d)
            except OSError:
                continue
            for name in entries:
                if name in hidden or name in names:
                    continue
                st = os.lstat(os.path.join(d, name))
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    hidden.add(name)
                else:
                    names.add(name)
            try:
                if os.getxattr(d, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                    break
            except OSError:
                pass
        return sorted(names)


def _id_lookup(text: str, name: str) -> int | None:
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name:
            try:
                return int(fields[2])
            except ValueError:
                return None
    return None


def parse_chown(spec: str, fs: ImageFS) -> tuple[int, int]:
    """``--chown=user[:group]`` with names looked up in the image (docker: group defaults to the uid)."""
    user, _, group = spec.partition(":")
    passwd = fs.read_text("/etc/passwd")
    if user.isdigit():
        uid = int(user)
    else:
        found = _id_lookup(passwd, user)
        if found is None:
            raise LookupError(f"unable to find user {user}: no matching entries in passwd file")
        uid = found
    if not group:
        return uid, uid
    if group.isdigit():
        return uid, int(group)
    gid = _id_lookup(fs.read_text("/etc/group"), group)
    if gid is None:
        raise LookupError(f"unable to find group {group}: no matching entries in group file")
    return uid, gid
