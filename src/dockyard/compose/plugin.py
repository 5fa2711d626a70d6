"""``docker compose`` through dockyard: the docker CLI plugin and the daemon it should talk to.

``dockyard compose install-plugin`` writes ``$DOCKER_CONFIG/cli-plugins/docker-compose`` (default
``~/.docker``), a small script running this module with the installed interpreter. The docker CLI runs a
plugin as ``docker-compose [docker's global flags] compose ARGS`` after asking it for
``docker-cli-plugin-metadata``; the daemon is the one the docker CLI points at: ``-H``, else
``DOCKER_HOST``, else the context (``--context``, ``DOCKER_CONTEXT``, or config.json's currentContext).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import IO

from dockyard import __version__
from dockyard.compose.errors import SYNTAX_FAILURE, ComposeError


def metadata() -> str:
    from dockyard.compose.labels import COMPOSE_VERSION

    return json.dumps({"SchemaVersion": "0.1.0", "Vendor": "Dockyard",
                       "Version": f"v{COMPOSE_VERSION} (dockyard {__version__})",
                       "ShortDescription": "Docker Compose (dockyard compose)",
                       "URL": "https://github.com/compose-spec/compose-spec"})


def _config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def install(args: list[str], out: IO[str]) -> int:
    directory = os.path.join(_config_dir(), "cli-plugins")
    i = 0
    while i < len(args):
        if args[i] in ("--dir", "--path") and i + 1 < len(args):
            directory = args[i + 1]
            i += 2
            continue
        raise ComposeError(f"unknown flag: {args[i]}", SYNTAX_FAILURE)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "docker-compose")
    script = f'#!/bin/sh\nexec {sys.executable} -m dockyard.compose.plugin "$@"\n'
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(script)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    out.write(f"installed the docker CLI plugin at {path}\n")
    return 0


def _context_host(name: str) -> str | None:
    if name == "default":
        return None
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = os.path.join(_config_dir(), "contexts", "meta", digest, "meta.json")
    try:
        with open(meta) as f:
            data = json.load(f)
    except (OSError, ValueError):
        raise ComposeError(f"context {name!r} not found") from None
    host = ((data.get("Endpoints") or {}).get("docker") or {}).get("Host")
    return str(host) if host else None


def docker_host(host_flag: str | None = None, context_flag: str | None = None) -> str:
    """The daemon address the docker CLI would use."""
    if host_flag:
        return host_flag
    context = context_flag or os.environ.get("DOCKER_CONTEXT")
    if not context and os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    if not context:
        try:
            with open(os.path.join(_config_dir(), "config.json")) as f:
                context = json.load(f).get("currentContext")
        except (OSError, ValueError):
            context = None
    if context:
        host = _context_host(context)
        if host:
            return host
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


_DOCKER_VALUED = {"-H", "--host", "-c", "--context", "--config", "-l", "--log-level", "--tlscacert",
                  "--tlscert", "--tlskey"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "docker-cli-plugin-metadata":
        sys.stdout.write(metadata() + "\n")
        return 0
    host: str | None = None
    context: str | None = None
    i = 0
    while i < len(args) and args[i] != "compose":
        key, eq, val = args[i].partition("=")
        if key in _DOCKER_VALUED:
            if not eq and i + 1 < len(args):
                val = args[i + 1]
                i += 1
            if key in ("-H", "--host"):
                host = val
            elif key in ("-c", "--context"):
                context = val
            elif key == "--config":
                os.environ["DOCKER_CONFIG"] = val
        i += 1
    rest = args[i + 1:] if i < len(args) else args
    from dockyard.compose.cli import main as compose_main

    try:
        target = docker_host(host, context)
    except ComposeError as e:
        sys.stderr.write(e.message + "\n")
        return 1
    return compose_main(rest, target)


if __name__ == "__main__":
    raise SystemExit(main())
