"""``dockyard compose``: Compose v2's command line (global flags, then a command with its own flags).

Errors print as Compose v2 prints them and exit with its codes (see compose/errors.py); a daemon error
is ``Error response from daemon: …``, exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from dockyard.client.api_client import APIClient, APIError, DaemonUnreachable
from dockyard.compose.engine import Engine
from dockyard.compose.errors import SYNTAX_FAILURE, ComposeError
from dockyard.compose.loader import LoadOptions, load_project
from dockyard.compose.progress import Progress
from dockyard.compose.project import Project

_GLOBAL_VALUED = {"-f": "files", "--file": "files", "-p": "project_name", "--project-name": "project_name",
                  "--project-directory": "project_directory", "--env-file": "env_files", "--profile": "profiles",
                  "--ansi": "ansi", "--progress": "progress", "--parallel": "parallel"}
_GLOBAL_FLAGS = {"--compatibility", "--dry-run", "--all-resources", "--verbose"}


class Context:
    """What a compose command needs: the load options, the engine (made on first use) and the streams."""

    def __init__(self, opts: LoadOptions, host: str | None, ansi: str = "auto", out: IO[str] | None = None,
                 err: IO[str] | None = None, progress: str = "auto") -> None:
        self.opts = opts
        self.host = host
        self.ansi = ansi
        self.progress_mode = progress
        self.out: IO[str] = out or sys.stdout
        self.err: IO[str] = err or sys.stderr
        self._engine: Engine | None = None
        self._progress: list[Progress] = []

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(APIClient(self.host))
        return self._engine

    def project(self, services: list[str] | None = None, profiles: list[str] | None = None) -> Project:
        return load_project(self.opts, profiles, services)

    def project_name_only(self) -> str | None:
        """The project's name without its files (down/ps/... work by labels when no file is there)."""
        return self.opts.project_name or (self.opts.environ or os.environ).get("COMPOSE_PROJECT_NAME")

    def color(self, no_color: bool = False) -> bool:
        if no_color or self.ansi == "never" or os.environ.get("NO_COLOR"):
            return False
        return self.ansi == "always" or self.out.isatty()

    def progress(self, quiet: bool = False) -> Progress:
        """Where the command reports its steps (nothing with ``--progress quiet`` or a command's -q): a live
        display on a terminal (``--progress auto|tty``), plain lines otherwise (``--progress plain``)."""
        quiet = quiet or self.progress_mode == "quiet"
        live = self.progress_mode == "tty" or (self.progress_mode == "auto" and self.ansi != "never"
                                               and _isatty(self.err))
        if live and not quiet:
            from dockyard.compose.ttyprogress import TTYProgress

            p: Progress = TTYProgress(self.err)
        else:
            p = Progress(self.err, quiet=quiet)
        self._progress.append(p)
        return p

    def close(self) -> None:
        for p in self._progress:
            p.close()

    def warn(self, text: str) -> None:
        self.err.write(f"WARN[0000] {text}\n")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        if message.startswith("unrecognized arguments: "):
            message = "unknown flag: " + message.split(": ", 1)[1].split()[0]
        raise ComposeError(message, SYNTAX_FAILURE)


def split_globals(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    g: dict[str, Any] = {"files": [], "env_files": [], "profiles": []}
    i = 0
    while i < len(argv):
        a = argv[i]
        key, eq, val = a.partition("=")
        if key in _GLOBAL_VALUED:
            if not eq:
                if i + 1 >= len(argv):
                    raise ComposeError(f"flag needs an argument: {a}", SYNTAX_FAILURE)
                val = argv[i + 1]
                i += 1
            dest = _GLOBAL_VALUED[key]
            if isinstance(g.get(dest), list):
                g[dest].append(val)
            else:
                g[dest] = val
        elif len(a) > 2 and a[0] == "-" and a[1] in "fp" and a[1] != "-":  # -fFILE / -pNAME
            dest = "files" if a[1] == "f" else "project_name"
            if dest == "files":
                g["files"].append(a[2:])
            else:
                g[dest] = a[2:]
        elif key in _GLOBAL_FLAGS:
            pass
        else:
            break
        i += 1
    return g, argv[i:]


USAGE = """Usage:  docker compose [OPTIONS] COMMAND

Define and run multi-container applications with Docker

Options:
      --ansi string                Control when to print ANSI control characters ("never"|"always"|"auto")
      --env-file stringArray       Specify an alternate environment file
  -f, --file stringArray           Compose configuration files
      --profile stringArray        Specify a profile to enable
      --project-directory string   Specify an alternate working directory
  -p, --project-name string        Project name

Commands:
  attach      Attach local standard input, output, and error streams to a service's running container
  build       Build or rebuild services
  config      Parse, resolve and render compose file in canonical format
  cp          Copy files/folders between a service container and the local filesystem
  create      Creates containers for a service
  down        Stop and remove containers, networks
  events      Receive real time events from containers
  exec        Execute a command in a running container
  images      List images used by the created containers
  kill        Force stop service containers
  logs        View output from containers
  ls          List running compose projects
  pause       Pause services
  port        Print the public port for a port binding
  ps          List containers
  pull        Pull service images
  push        Push service images
  restart     Restart service containers
  rm          Removes stopped service containers
  run         Run a one-off command on a service
  scale       Scale services
  start       Start services
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop services
  top         Display the running processes
  unpause     Unpause services
  up          Create and start containers
  version     Show the Docker Compose version information
  wait        Block until containers of all (or specified) services stop.
  watch       Watch build context for service and rebuild/refresh containers when files are updated

Run 'docker compose COMMAND --help' for more information on a command.
"""


_MODULES = {**{n: "cmd_up" for n in ("up", "create", "down", "start", "stop", "restart", "kill", "pause",
                                      "unpause", "rm", "scale", "build", "pull", "push", "watch")},
            **{n: "cmd_info" for n in ("config", "ps", "ls", "images", "top", "port", "events", "version")},
            **{n: "cmd_exec" for n in ("exec", "run", "logs", "attach", "cp", "wait", "stats")}}


def _command(name: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[Any, Context], int]]:
    """The command's (configure, run); only its module is imported (start-up time)."""
    import importlib

    mod = importlib.import_module(f"dockyard.compose.{_MODULES[name]}")
    return mod.COMMANDS[name]  # type: ignore[no-any-return]


def main(argv: list[str], host: str | None = None, out: IO[str] | None = None, err: IO[str] | None = None,
         prog: str = "docker compose") -> int:
    err = err or sys.stderr
    try:
        g, rest = split_globals(argv)
        if not rest or rest[0] in ("-h", "--help", "help"):
            (out or sys.stdout).write(USAGE)
            return 0
        if rest[0] == "install-plugin":
            from dockyard.compose.plugin import install

            return install(rest[1:], out or sys.stdout)
        if rest[0] == "docker-cli-plugin-metadata":
            from dockyard.compose.plugin import metadata

            (out or sys.stdout).write(metadata() + "\n")
            return 0
        name = rest[0]
        if name not in _MODULES:
            raise ComposeError(f"unknown docker command: \"compose {rest[0]}\"", SYNTAX_FAILURE)
        configure, run = _command(name)
        p = _Parser(prog=f"{prog} {name}", add_help=True, allow_abbrev=False)
        configure(p)
        try:
            ns = p.parse_args(rest[1:])
        except SystemExit as e:  # --help
            return int(e.code or 0) if isinstance(e.code, int) else 0
        opts = LoadOptions(files=g["files"], project_name=g.get("project_name"),
                           project_directory=g.get("project_directory"), env_files=g["env_files"],
                           profiles=[p for v in g["profiles"] for p in v.split(",") if p])
        ctx = Context(opts, host, ansi=str(g.get("ansi") or "auto"), out=out, err=err,
                      progress=str(g.get("progress") or "auto"))
        opts.warn = ctx.warn
        try:
            return int(run(ns, ctx) or 0)
        finally:
            ctx.close()
    except ComposeError as e:
        err.write(e.message + "\n")
        return e.code
    except APIError as e:
        err.write(f"Error response from daemon: {e.message}\n")
        return 1
    except DaemonUnreachable as e:
        err.write(f"{e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0

