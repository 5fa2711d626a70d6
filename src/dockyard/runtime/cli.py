"""``dockyard runtime``: runc's command line on top of the runtime functions.

The parser is hand-rolled because argparse alone costs several
milliseconds of import, which is a visible share of a container start.
Errors print as ``dockyard runtime: message`` (and as JSON lines into
``--log`` when given) and exit 1, like runc.
"""

from __future__ import annotations

import json
import os
import sys
import time

from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.state import DEFAULT_ROOT

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

USAGE = """usage: dockyard runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...

commands:
  create ID --bundle DIR [--pid-file F] [--console-socket S]
  start ID
  state ID
  kill ID [SIGNAL] [--all]
  delete ID [--force]
  run ID --bundle DIR [--pid-file F] [--detach] [--console-socket S]
  exec ID [--process F | [-t] [-e K=V] [--cwd D] [-u UID[:GID]] [-d] [--pid-file F]
          [--console-socket S] [--no-new-privs] [--cap CAP] -- CMD ...]
  ps ID [--format table|json]
  pause ID / resume ID
  update ID --resources F|-
  list [--format table|json] [-q]
  features
"""

# option name -> takes a value; aliases map to the canonical name
_COMMAND_OPTIONS: dict[str, dict[str, bool]] = {
    "create": {"bundle": True, "pid-file": True, "console-socket": True, "no-pivot": False, "preserve-fds": True},
    "run": {"bundle": True, "pid-file": True, "console-socket": True, "detach": False, "no-pivot": False,
            "preserve-fds": True, "keep": False},
    "start": {},
    "state": {},
    "kill": {"all": False},
    "delete": {"force": False},
    "exec": {"process": True, "tty": False, "env": True, "cwd": True, "user": True, "detach": False,
             "pid-file": True, "console-socket": True, "no-new-privs": False, "cap": True,
             "additional-gids": True, "apparmor": True, "process-label": True, "preserve-fds": True},
    "ps": {"format": True},
    "pause": {},
    "resume": {},
    "update": {"resources": True},
    "list": {"format": True, "quiet": False},
    "features": {},
}
_ALIASES = {"b": "bundle", "t": "tty", "e": "env", "u": "user", "d": "detach", "p": "process", "f": "format",
            "q": "quiet", "a": "all", "r": "resources", "g": "additional-gids", "c": "cap"}
_REPEATED = {"env", "cap", "additional-gids"}


class UsageError(Exception):
    pass


def parse_args(command: str, argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Options and positionals; for exec everything after the id and command start is the command."""
    spec = _COMMAND_OPTIONS[command]
    opts: dict[str, Any] = {}
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if command == "exec" and len(positionals) >= 1 and (not arg.startswith("-") or arg == "--"):
            rest = argv[i - 1 :]
            positionals += rest[1:] if rest[0] == "--" else rest
            break
        if arg == "--":
            positionals += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        name = _ALIASES.get(name, name)
        if name not in spec:
            raise UsageError(f"unknown option {arg!r} for {command}")
        if spec[name]:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"option {arg!r} needs a value")
                value = argv[i]
                i += 1
            if name in _REPEATED:
                opts.setdefault(name, []).append(value)
            else:
                opts[name] = value
        else:
            opts[name] = value.lower() not in ("false", "0") if eq else True
    return opts, positionals


def _need_id(positionals: list[str], command: str) -> str:
    if not positionals:
        raise UsageError(f'"{command}" requires a container id')
    return positionals[0]


class _Logger:
    """Writes errors to stderr and, if asked, to --log in runc's text or JSON form."""

    def __init__(self, path: str | None, fmt: str) -> None:
        self.path = path
        self.fmt = fmt

    def error(self, message: str) -> None:
        print(f"dockyard runtime: {message}", file=sys.stderr)
        if not self.path:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            line = json.dumps({"level": "error", "msg": message, "time": stamp})
        else:
            line = f'time="{stamp}" level=error msg={json.dumps(message)}'
        try:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")
        except OSError:
            pass


def main(argv: list[str]) -> int:
    """Entry point for ``dockyard runtime ARGS``; returns the process exit status."""
    root = DEFAULT_ROOT
    log_path: str | None = None
    log_format = "text"
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].lstrip("-").partition("=")
        if name in ("h", "help"):
            print(USAGE, end="")
            return 0
        if name in ("root", "log", "log-format", "criu", "rootless"):
            if not eq:
                i += 1
                if i >= len(argv):
                    print(f"dockyard runtime: option --{name} needs a value", file=sys.stderr)
                    return 2
                value = argv[i]
            if name == "root":
                root = os.path.abspath(value)
            elif name == "log":
                log_path = value
            elif name == "log-format":
                log_format = value
        elif name not in ("debug", "systemd-cgroup"):
            print(f"dockyard runtime: unknown global option {argv[i]!r}\n{USAGE}", file=sys.stderr, end="")
            return 2
        i += 1
    logger = _Logger(log_path, log_format)
    if i >= len(argv):
        print(USAGE, end="", file=sys.stderr)
        return 2
    command, rest = argv[i], argv[i + 1 :]
    if command not in _COMMAND_OPTIONS:
        logger.error(f"unknown command {command!r}")
        return 2
    try:
        opts, positionals = parse_args(command, rest)
        from dockyard.runtime import commands

        return int(getattr(commands, "cmd_" + command)(root, opts, positionals))
    except UsageError as exc:
        logger.error(str(exc))
        return 2
    except OCIRuntimeError as exc:
        logger.error(exc.message)
        # runc's exec exits 255 when the process cannot be started, so no exit status of the process is mistaken
        # for a runtime failure; every other command fails with 1
        return 255 if command == "exec" else 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the caller; the traceback only when debugging
        if os.environ.get("DOCKYARD_RUNTIME_DEBUG"):
            raise
        logger.error(f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
