"""``build:`` through the Engine API's ``POST /build``, as docker's classic builder client drives it.

The context directory is tarred into a temporary file (never held in memory) minus what ``.dockerignore``
excludes, and streamed to the daemon; the build's output goes to stderr, an error in the stream fails with
Compose's build exit code.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tarfile
import tempfile
from typing import Any

from dockyard.client.api_client import APIError, NotFound
from dockyard.compose.convert import image_ref, size_bytes
from dockyard.compose.engine import Engine
from dockyard.compose.errors import BUILD_FAILURE, ComposeError
from dockyard.compose.progress import Progress
from dockyard.compose.project import Project


def _ignore_patterns(context: str) -> list[tuple[bool, str]]:
    path = os.path.join(context, ".dockerignore")
    out: list[tuple[bool, str]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                neg = line.startswith("!")
                pat = os.path.normpath(line[1:] if neg else line).lstrip("/")
                out.append((neg, pat))
    except FileNotFoundError:
        pass
    return out


def _ignored(rel: str, patterns: list[tuple[bool, str]]) -> bool:
    verdict = False
    for neg, pat in patterns:
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + "/*") or rel.startswith(pat.rstrip("/") + "/"):
            verdict = not neg
    return verdict


def context_tar(context: str, dockerfile: str, inline: str | None = None) -> Any:
    """A temporary file holding the context as a tar, positioned at its start."""
    patterns = _ignore_patterns(context)
    tmp = tempfile.TemporaryFile()
    with tarfile.open(fileobj=tmp, mode="w") as tar:
        for root, dirs, files in os.walk(context):
            rel_root = os.path.relpath(root, context)
            for d in list(dirs):
                rel = os.path.normpath(os.path.join(rel_root, d))
                if _ignored(rel, patterns) and not any(neg for neg, _ in patterns):
                    dirs.remove(d)
            for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                rel = os.path.normpath(os.path.join(rel_root, name))
                if _ignored(rel, patterns) and rel not in (dockerfile, ".dockerignore"):
                    continue
                tar.add(os.path.join(root, name), arcname=rel, recursive=False)
        if inline is not None:
            import io

            data = inline.encode()
            info = tarfile.TarInfo(dockerfile)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.seek(0)
    return tmp


def build_query(project: Project, service: str, svc: dict[str, Any], no_cache: bool = False,
                pull: bool = False) -> dict[str, Any]:
    b = svc["build"]
    q: dict[str, Any] = {"t": [image_ref(project, service, svc)] + list(b.get("tags") or []),
                         "dockerfile": "Dockerfile.compose-inline" if b.get("dockerfile_inline")
                         else b.get("dockerfile") or "Dockerfile", "rm": True, "forcerm": True}
    args = {k: (v if v is not None else project.environment.get(k)) for k, v in (b.get("args") or {}).items()}
    args = {k: v for k, v in args.items() if v is not None}
    if args:
        q["buildargs"] = json.dumps(args)
    if b.get("target"):
        q["target"] = b["target"]
    if b.get("labels"):
        q["labels"] = json.dumps(b["labels"])
    if b.get("cache_from"):
        q["cachefrom"] = json.dumps(list(b["cache_from"]))
    if b.get("network"):
        q["networkmode"] = b["network"]
    if b.get("extra_hosts"):
        q["extrahosts"] = ",".join(f"{h}:{ip}" for h, ip in b["extra_hosts"].items())
    if b.get("shm_size") is not None:
        q["shmsize"] = size_bytes(b["shm_size"])
    if svc.get("platform"):
        q["platform"] = svc["platform"]
    if no_cache or b.get("no_cache"):
        q["nocache"] = True
    if pull or b.get("pull"):
        q["pull"] = True
    return q


def build_secrets_header(project: Project, refs: list[Any]) -> dict[str, str]:
    """``build.secrets`` → the header the dockyard builder takes them in (as ``dockyard build --secret``):
    base64 JSON of id → base64 content; the id is the secret's source, its content its file or variable."""
    if not refs:
        return {}
    import base64

    out: dict[str, str] = {}
    for ref in refs:
        src = str(ref["source"] if isinstance(ref, dict) else ref)
        top = project.secrets.get(src)
        if top is None:
            raise ComposeError(f"secret {src!r} is not defined")  # validation names it first
        if top.get("external"):
            raise ComposeError(f"unsupported external secret {top.get('name') or src}", BUILD_FAILURE)
        if top.get("file"):
            try:
                with open(str(top["file"]), "rb") as f:
                    data = f.read()
            except OSError as e:
                raise ComposeError(f"failed to read secret {src}: {e}", BUILD_FAILURE) from None
        else:
            data = str(project.environment.get(str(top.get("environment") or ""), "")).encode()
        out[src] = base64.b64encode(data).decode()
    return {"X-Dockyard-Build-Secrets": base64.b64encode(json.dumps(out).encode()).decode()}


def build_image(engine: Engine, project: Project, service: str, progress: Progress, no_cache: bool = False,
                pull: bool = False, quiet: bool = False, memory: int | None = None) -> str:
    """Build ``service``'s image; its ID."""
    svc = project.services[service]
    b = svc["build"]
    context = str(b["context"])
    if not os.path.isdir(context):
        raise ComposeError(f"unable to prepare context: path {context!r} not found", BUILD_FAILURE)
    headers = build_secrets_header(project, b.get("secrets") or [])
    ref = image_ref(project, service, svc)
    query = build_query(project, service, svc, no_cache, pull)
    if memory:
        query["memory"] = memory
    dockerfile = str(query["dockerfile"])
    progress.event("Image", ref, "Building")
    image_id = ""
    with context_tar(context, dockerfile, b.get("dockerfile_inline")) as tar:
        try:
            for msg in engine.build(tar, query, headers):
                if not isinstance(msg, dict):
                    continue
                if msg.get("error"):
                    progress.event("Image", ref, "Error")
                    detail = str(msg["error"]).strip()
                    raise ComposeError(f"failed to solve: {detail}" if "failed to solve" not in detail
                                       else detail, BUILD_FAILURE)
                text = str(msg.get("stream") or "").rstrip()
                if text and not quiet:
                    progress.message(f"#{service} {text}")
                aux = msg.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
        except NotFound as e:
            progress.event("Image", ref, "Error")
            raise ComposeError(f"the daemon at {engine.client.host} does not support image builds "
                               f"(POST /build: {e.message})", BUILD_FAILURE) from None
        except APIError as e:
            progress.event("Image", ref, "Error")
            raise ComposeError(f"Error response from daemon: {e.message}", BUILD_FAILURE) from None
    progress.event("Image", ref, "Built")
    return image_id
