"""`--user` resolution against the container's own /etc/passwd and /etc/group (read at start, like docker)."""

from __future__ import annotations

from dockyard.errors import InvalidParameter


def _read_db(rootfs: str, path: str) -> list[list[str]]:
    from dockyard.runtime.spec import resolve_in_root

    try:
        with open(resolve_in_root(rootfs, path), errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def _lookup_group(groups: list[list[str]], spec: str) -> int:
    for g in groups:
        if len(g) >= 3 and (g[0] == spec or g[2] == spec):
            return int(g[2])
    if spec.isdigit():
        return int(spec)
    raise InvalidParameter(f"unable to find group {spec}: no matching entries in group file")


def resolve_user(rootfs: str, user: str, group_add: list[str] | None = None) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids) for "name", "uid", "name:group" or "uid:gid" — docker's resolution and wording."""
    name, _, group = (user or "").partition(":")
    passwd = _read_db(rootfs, "/etc/passwd")
    groups = _read_db(rootfs, "/etc/group")
    uid, gid, username = 0, 0, ""
    if name:
        entry = next((p for p in passwd if len(p) >= 4 and (p[0] == name or p[2] == name)), None)
        if entry is not None:
            uid, gid, username = int(entry[2]), int(entry[3]), entry[0]
        elif name.isdigit():
            uid = int(name)
        else:
            raise InvalidParameter(f"unable to find user {name}: no matching entries in passwd file")
    else:
        entry = next((p for p in passwd if len(p) >= 4 and p[2] == "0"), None)
        username = entry[0] if entry else "root"
    if group:
        gid = _lookup_group(groups, group)
    # docker's additional gids: the primary group first, then (implicit form only) every group of the image's
    # /etc/group that lists the user, then --group-add; so root in a default container has "Groups: 0"
    extra: list[int] = [gid]
    if username and not group:
        for g in groups:
            if len(g) >= 4 and username in g[3].split(",") and int(g[2]) not in extra:
                extra.append(int(g[2]))
    for g_spec in group_add or []:
        gid_extra = _lookup_group(groups, g_spec)
        if gid_extra not in extra:
            extra.append(gid_extra)
    return uid, gid, extra
