"""The `dockyard` command: docker's commands and flags, plus `dockyard runtime` and `dockyard daemon`.

Start-up time is a feature: this module imports nothing heavy; each command's module
is imported only when that command runs.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def _usage(out: Any) -> None:
    from dockyard.cli.registry import ALIASES, COMMANDS

    out.write("Usage:  dockyard [OPTIONS] COMMAND\n\nA Docker-compatible container engine\n\nCommands:\n")
    for name in sorted(set(COMMANDS) | set(ALIASES)):
        out.write(f"  {name}\n")
    out.write("\nOther:\n  daemon     Run the engine daemon\n  runtime    The OCI runtime (runc-compatible)\n"
              "  registry   Serve an OCI distribution registry (serve, gc)\n")


def _split_globals(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Global flags before the command: -H/--host, --config, -D/--debug, -l/--log-level, --tls*."""
    opts: dict[str, str | bool] = {}
    i = 0
    with_value = {"-H": "host", "--host": "host", "--config": "config", "-l": "log_level",
                  "--log-level": "log_level", "--tlscacert": "tlscacert", "--tlscert": "tlscert",
                  "--tlskey": "tlskey", "-c": "context", "--context": "context", "--token": "token"}
    flags = {"-D": "debug", "--debug": "debug", "--tls": "tls", "--tlsverify": "tlsverify"}
    while i < len(argv):
        a = argv[i]
        key, eq, val = a.partition("=")
        if key in with_value:
            if eq:
                opts[with_value[key]] = val
            else:
                if i + 1 >= len(argv):
                    sys.stderr.write(f"flag needs an argument: {a}\n")
                    raise SystemExit(125)
                opts[with_value[key]] = argv[i + 1]
                i += 1
        elif a in flags:
            opts[flags[a]] = True
        elif a in ("-v", "--version"):
            return opts, ["--version"]
        else:
            break
        i += 1
    return opts, argv[i:]


def _group_usage(group: str, rest: list[str]) -> int:
    """`dockyard GROUP` / `GROUP --help`: its commands, as docker lists them; an unknown one is an error."""
    from dockyard.cli.registry import ALIASES, COMMANDS

    subs = sorted({n.split(" ", 1)[1] for n in set(COMMANDS) | set(ALIASES) if n.startswith(group + " ")})
    if rest and rest[0] not in ("-h", "--help", "help"):
        sys.stderr.write(f"dockyard: unknown command: dockyard {group} {rest[0]}\n\n"
                         f"Run 'dockyard {group} --help' for more information\n")
        return 1
    out = sys.stdout
    out.write(f"Usage:  dockyard {group} COMMAND\n\n")
    if subs:
        out.write("Commands:\n" + "".join(f"  {sub}\n" for sub in subs) + "\n")
    else:
        out.write(f"This engine has no {group} commands yet.\n\n")
    out.write(f"Run 'dockyard {group} COMMAND --help' for more information on a command.\n")
    return 0


def resolve_command(words: list[str]) -> tuple[str | None, list[str]]:
    """Find the longest command name at the front of ``words`` (e.g. ``image ls``)."""
    from dockyard.cli.registry import ALIASES, COMMANDS

    for n in (2, 1):
        if len(words) >= n:
            name = " ".join(words[:n])
            name = ALIASES.get(name, name)
            if name in COMMANDS:
                return name, words[n:]
    return None, words


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "runtime":
        from dockyard.runtime.cli import main as runtime_main

        return runtime_main(argv[1:])
    if argv and argv[0] == "registry":
        from dockyard.distribution.server.cli import main as registry_main

        return registry_main(argv[1:])
    if argv and argv[0] == "daemon":
        from dockyard.daemon.main import main as daemon_main

        return daemon_main(argv[1:])
    gopts, rest = _split_globals(argv)
    if rest == ["--version"]:
        from dockyard import __version__

        # docker's `--version`: one line about the client, no daemon round trip
        sys.stdout.write(f"Dockyard version {__version__}, build dockyard\n")
        return 0
    if not rest or rest[0] in ("-h", "--help", "help"):
        _usage(sys.stdout)
        return 0
    if rest[0] == "compose":
        from dockyard.compose.cli import main as compose_main

        host = gopts.get("host")
        return compose_main(rest[1:], str(host) if host else None, prog="dockyard compose")
    name, args = resolve_command(rest)
    if name is None:
        from dockyard.cli.registry import GROUPS

        if rest[0] in GROUPS:
            return _group_usage(rest[0], rest[1:])
        sys.stderr.write(f"dockyard: '{rest[0]}' is not a dockyard command.\nSee 'dockyard --help'\n")
        return 1
    from dockyard.cli.app import run_command

    return run_command(name, args, gopts)


if __name__ == "__main__":
    raise SystemExit(main())
