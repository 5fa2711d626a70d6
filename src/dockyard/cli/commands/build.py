"""``dockyard build`` / ``image build`` and ``builder prune``.

On the daemon's own host (a unix socket) the context directory is read in place by the daemon: nothing is
tarred or uploaded and only what the Dockerfile uses is hashed. Against a remote daemon, or for ``-`` and URLs,
the classic protocol is used (a tar upload, or ``remote=``).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tarfile
import time
from typing import Any

from dockyard.cli.app import CLIContext, CLIError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH | URL | -")
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("-f", "--file", default="")
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("--target", default="")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--network", default="")
    p.add_argument("--add-host", action="append", default=[])
    p.add_argument("--secret", action="append", default=[])
    p.add_argument("--iidfile", default="")
    p.add_argument("--cache-from", action="append", default=[])
    p.add_argument("--platform", default="")
    p.add_argument("--shm-size", default="")
    p.add_argument("-m", "--memory", default="")
    p.add_argument("--memory-swap", default="")
    p.add_argument("--cpu-shares", type=int, default=0)
    p.add_argument("--cpuset-cpus", default="")
    p.add_argument("--cpu-period", type=int, default=0)
    p.add_argument("--cpu-quota", type=int, default=0)
    p.add_argument("--rm", default="true")
    p.add_argument("--force-rm", action="store_true")
    p.add_argument("--progress", default="auto", choices=("auto", "plain", "tty", "quiet", "rawjson"))
    p.add_argument("--squash", action="store_true")
    p.add_argument("-o", "--output", action="append", default=[])


def _outputs(specs: list[str]) -> list[dict[str, Any]]:
    """``-o type=local,dest=DIR`` / ``type=tar,dest=FILE`` / ``DIR`` (buildx's forms), dest made absolute."""
    out: list[dict[str, Any]] = []
    for spec in specs:
        attrs: dict[str, str] = {}
        if "=" not in spec:
            attrs = {"type": "tar" if spec == "-" else "local", "dest": spec}
        else:
            for field in spec.split(","):
                k, sep, v = field.partition("=")
                if not sep:
                    raise CLIError(f"invalid value {field!r} for --output: expected key=value")
                attrs[k.strip().lower()] = v.strip()
        kind = attrs.pop("type", "")
        if not kind:
            raise CLIError(f"invalid output {spec!r}: type is required")
        if attrs.get("dest") and attrs["dest"] != "-":
            attrs["dest"] = os.path.abspath(attrs["dest"])
        out.append({"Type": kind, "Attrs": attrs})
    return out


def _size(text: str) -> int | None:
    if not text:
        return None
    from dockyard.cli.commands.runflags import ram_in_bytes

    return ram_in_bytes(text)


def _secrets(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        fields = dict(f.partition("=")[::2] for f in spec.split(","))
        sid = fields.get("id", "")
        if not sid:
            raise CLIError(f"invalid secret spec {spec!r}: id is required")
        if fields.get("env"):
            data = os.environ.get(fields["env"], "").encode()
        else:
            src = fields.get("src") or fields.get("source") or ""
            if not src:
                data = os.environ.get(sid, "").encode()
            else:
                try:
                    with open(src, "rb") as f:
                        data = f.read()
                except OSError as e:
                    raise CLIError(f"failed to read secret {sid}: {e}") from None
        out[sid] = base64.b64encode(data).decode()
    return out


def _stdin_context() -> tuple[bytes, bool]:
    """(data, is_tar): ``-`` on stdin is a tar context (maybe compressed) or a lone Dockerfile."""
    data = sys.stdin.buffer.read()
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00" or data[257:262] == b"ustar":
        return data, True
    return data, False


def _tar_of(root: str, dockerfile: str | None) -> tuple[bytes, str]:
    """A tar of the context honouring .dockerignore (the Dockerfile and .dockerignore always sent)."""
    from dockyard.util.dockerignore import IgnoreMatcher, read_patterns

    patterns: list[str] = []
    try:
        with open(os.path.join(root, ".dockerignore")) as f:
            patterns = read_patterns(f.read())
    except OSError:
        pass
    ign = IgnoreMatcher(patterns)
    buf = io.BytesIO()
    df_name = "Dockerfile"
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if ign and ign.excluded(rel) and rel not in ("Dockerfile", ".dockerignore"):
                    continue
                tf.add(os.path.join(dirpath, name), arcname=rel, recursive=False)
            keep = []
            for d in dirnames:
                rel = d if rel_dir == "." else f"{rel_dir}/{d}"
                if os.path.islink(os.path.join(dirpath, d)):
                    continue
                if ign and ign.excluded(rel) and not ign.may_include_under(rel):
                    continue
                tf.add(os.path.join(dirpath, d), arcname=rel, recursive=False)
                keep.append(d)
            dirnames[:] = keep
        if dockerfile is not None:
            df_name = f".dockerfile.{os.urandom(10).hex()}"
            with open(dockerfile, "rb") as f:
                data = f.read()
            ti = tarfile.TarInfo(df_name)
            ti.size = len(data)
            ti.mtime = int(time.time())
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue(), df_name


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    query: dict[str, Any] = {"t": args.tag or None, "target": args.target or None,
                             "nocache": "1" if args.no_cache else None, "pull": "1" if args.pull else None,
                             "q": "1" if args.quiet else None, "networkmode": args.network or None,
                             "platform": args.platform or None, "forcerm": "1" if args.force_rm else None,
                             "rm": "0" if args.rm.lower() in ("false", "0") else "1",
                             "squash": "1" if args.squash else None}
    buildargs: dict[str, str] = {}
    for ba in args.build_arg:
        k, sep, v = ba.partition("=")
        if sep:
            buildargs[k] = v
        elif k in os.environ:
            buildargs[k] = os.environ[k]
    if buildargs:
        query["buildargs"] = json.dumps(buildargs)
    if args.output:
        query["outputs"] = json.dumps(_outputs(args.output))
    if args.label:
        query["labels"] = json.dumps(dict(lb.partition("=")[::2] for lb in args.label))
    if args.cache_from:
        query["cachefrom"] = json.dumps(args.cache_from)
    if args.add_host:
        query["extrahosts"] = args.add_host
    for key, val in (("shmsize", _size(args.shm_size)), ("memory", _size(args.memory)),
                     ("memswap", _size(args.memory_swap) if args.memory_swap not in ("", "-1") else
                      (-1 if args.memory_swap == "-1" else None)),
                     ("cpushares", args.cpu_shares or None), ("cpusetcpus", args.cpuset_cpus or None),
                     ("cpuperiod", args.cpu_period or None), ("cpuquota", args.cpu_quota or None)):
        if val is not None:
            query[key] = str(val)
    headers: dict[str, str] = {}
    if args.secret:
        headers["X-Dockyard-Build-Secrets"] = base64.b64encode(json.dumps(_secrets(args.secret)).encode()).decode()
    body: Any = None
    path = args.path
    if path == "-":
        data, is_tar = _stdin_context()
        if is_tar:
            body = data
            if args.file:
                query["dockerfile"] = args.file
        else:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                ti = tarfile.TarInfo("Dockerfile")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            body = buf.getvalue()
    elif "://" in path or path.startswith("git@") or path.startswith("github.com/"):
        query["remote"] = path
        if args.file:
            query["dockerfile"] = args.file
    else:
        if not os.path.isdir(path):
            raise CLIError(f"unable to prepare context: path \"{path}\" not found")
        root = os.path.abspath(path)
        dockerfile = os.path.abspath(args.file) if args.file else os.path.join(root, "Dockerfile")
        if not args.file and not os.path.exists(dockerfile) and os.path.exists(os.path.join(root, "dockerfile")):
            dockerfile = os.path.join(root, "dockerfile")
        if not os.path.exists(dockerfile):
            raise CLIError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat "
                           f"{dockerfile}: no such file or directory")
        inside = (dockerfile + "/").startswith(root + "/")
        if ctx.host.startswith("unix://") and not os.environ.get("DOCKYARD_BUILD_UPLOAD"):
            headers["X-Dockyard-Context"] = root
            query["dockerfile"] = os.path.relpath(dockerfile, root) if inside else dockerfile
        else:
            body, df_name = _tar_of(root, None if inside else dockerfile)
            query["dockerfile"] = os.path.relpath(dockerfile, root) if inside else df_name
    if body is not None:
        headers["Content-Type"] = "application/x-tar"
    return _stream(ctx, args, query, body, headers)


def _stream(ctx: CLIContext, args: argparse.Namespace, query: dict[str, Any], body: Any,
            headers: dict[str, str]) -> int:
    from dockyard.cli.commands.build_progress import Display

    client = ctx.client
    resp = client._raw("POST", "/build", {k: v for k, v in query.items() if v is not None}, body=body,
                       headers=headers)
    if resp.status >= 400:
        from dockyard.client.api_client import _error_from

        raise _error_from(resp)
    image_id = ""
    display = Display(ctx.out, ctx.err, args.progress, args.quiet)
    try:
        for msg in resp.iter_json():
            if msg.get("aux") and msg["aux"].get("ID"):
                image_id = msg["aux"]["ID"]
                continue
            if msg.get("error"):
                display.close()
                ctx.err.write(msg["error"].rstrip("\n") + "\n")
                code = (msg.get("errorDetail") or {}).get("code") or 1
                return int(code)
            text = msg.get("stream") or ""
            if not text and msg.get("status"):
                text = (f"{msg['id']}: " if msg.get("id") else "") + msg["status"] + "\n"
            if text:
                display.feed(text)
    finally:
        resp.close()
    display.close()
    if args.quiet and image_id:
        ctx.out.write(image_id + "\n")
    if args.iidfile and image_id:
        tmp = args.iidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(image_id)
        os.replace(tmp, args.iidfile)
    return 0


# ------------------------------------------------------------------------------------------ builder prune
def configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("--keep-storage", default="")


def run_prune(args: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli.commands.lifecycle import confirm, filters_query
    from dockyard.cli.format.humanize import human_size

    warning = ("WARNING! This will remove all build cache. Are you sure you want to continue?" if args.all else
               "WARNING! This will remove all dangling build cache. Are you sure you want to continue?")
    if not args.force and not confirm(ctx, warning):
        return 0
    query: dict[str, Any] = {"all": "1" if args.all else None, "filters": filters_query(args.filter)}
    if args.keep_storage:
        query["keep-storage"] = str(_size(args.keep_storage))
    res = ctx.client.post("/build/prune", {k: v for k, v in query.items() if v is not None}) or {}
    deleted = res.get("CachesDeleted") or []
    if deleted:
        ctx.out.write("Deleted build cache objects:\n" + "".join(f"{d}\n" for d in deleted))
    ctx.out.write(f"Total:\t{human_size(res.get('SpaceReclaimed') or 0)}\n")
    return 0
