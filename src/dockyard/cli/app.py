"""Runs one CLI command: builds its parser, parses, gives it a context, maps errors to docker's output.

Docker's exit codes: flag errors 125; daemon errors 1 (125 for run/create, which also
print the "docker: " prefix); a container that cannot be invoked 126, not found 127.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.fastargs import REMAINDER
from dockyard.cli.fastargs import parse as fast_parse
from dockyard.client.api_client import APIClient, APIError, DaemonUnreachable

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    import argparse
    from typing import IO, Any


def _ngettext(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def _argparse() -> Any:
    """argparse, imported when a command needs it (the common run/create/exec flags parse without it).

    argparse translates every message through gettext, whose import compiles a regex and whose calls
    import locale and probe for message catalogues; the CLI speaks docker's English only, so argparse
    is loaded against a two-function stand-in and its messages pass through untranslated.
    """
    if "argparse" not in sys.modules and "gettext" not in sys.modules:
        plain = type(sys)("gettext")
        plain.gettext = str  # type: ignore[attr-defined]
        plain.ngettext = _ngettext  # type: ignore[attr-defined]
        sys.modules["gettext"] = plain
        try:
            import argparse
        finally:
            del sys.modules["gettext"]
    else:
        import argparse
    argparse._ = str  # type: ignore[attr-defined]
    argparse.ngettext = _ngettext  # type: ignore[attr-defined]
    return argparse


# Commands whose everyday flags are read without argparse (cli/fastargs.py; argparse still does the rest).
_FAST_FLAGS = {"run", "create", "exec", "ps"}
# Commands whose daemon errors exit 125 with the "dockyard: " prefix, as docker's run/create do.
_RUN_LIKE = {"run", "create", "container run", "container create"}


class CLIError(Exception):
    """A user-facing error with docker's exit code (raised by commands)."""

    def __init__(self, message: str, code: int = 1, bare: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.bare = bare  # printed without the "dockyard: " prefix run/create errors carry


class ExitWith(Exception):
    """Leave the command with a status code and no message (e.g. a container's exit code)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class CLIContext:
    """What a command needs: the API client (created on first use), the output streams, the globals."""

    def __init__(self, global_opts: dict[str, Any], out: IO[str] | None = None, err: IO[str] | None = None,
                 stdin: IO[str] | None = None) -> None:
        self.global_opts = global_opts
        self.out: IO[str] = out or sys.stdout
        self.err: IO[str] = err or sys.stderr
        self.stdin: IO[str] = stdin or sys.stdin
        self._client: APIClient | None = None

    @property
    def host(self) -> str:
        """-H, DOCKYARD_HOST, DOCKER_HOST; else the context's endpoint (--context, DOCKER_CONTEXT, the config's
        currentContext); else the default socket."""
        explicit = self.global_opts.get("host") or os.environ.get("DOCKYARD_HOST") or os.environ.get("DOCKER_HOST")
        if explicit:
            return str(explicit)
        from dockyard.cli import contexts

        cfg_dir = contexts.config_dir(self.global_opts.get("config"))
        name = contexts.current_name(cfg_dir, self.global_opts.get("context"))
        if name != contexts.DEFAULT:
            try:
                host = contexts.host_of(contexts.load(cfg_dir, name))
            except contexts.ContextError as e:
                raise CLIError(f"failed to resolve context: {e}", 1) from None
            if host:
                return host
        return "unix:///run/dockyard.sock"

    @property
    def client(self) -> APIClient:
        if self._client is None:
            g = self.global_opts
            tls = bool(g.get("tls")) or bool(g.get("tlsverify"))
            cert_path = None
            if g.get("tlscacert"):
                cert_path = os.path.dirname(str(g["tlscacert"]))
            self._client = APIClient(self.host, tls=tls or None,
                                     tls_verify=True if g.get("tlsverify") else None, cert_path=cert_path,
                                     headers=self.request_headers())
        return self._client

    @property
    def config_dir(self) -> str:
        """docker's client config directory: --config, else DOCKER_CONFIG, else ~/.docker."""
        return str(self.global_opts.get("config") or os.environ.get("DOCKER_CONFIG")
                   or os.path.join(os.path.expanduser("~"), ".docker"))

    def request_headers(self) -> dict[str, str]:
        """Headers for every request: the config file's HttpHeaders (as the docker CLI sends them), with
        --token or DOCKYARD_TOKEN as the bearer token over them."""
        headers: dict[str, str] = {}
        path = os.path.join(self.config_dir, "config.json")
        if os.path.exists(path):
            from dockyard.util import cjson

            try:
                with open(path, "rb") as f:
                    conf = cjson.loads(f.read())
                fixed = conf.get("HttpHeaders") if isinstance(conf, dict) else None
                if isinstance(fixed, dict):
                    headers.update({str(k): str(v) for k, v in fixed.items()})
            except (OSError, ValueError):
                pass
        token = self.global_opts.get("token") or os.environ.get("DOCKYARD_TOKEN")
        if token:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {token}"
        return headers


_parser_class: Any = None


def _Parser(**kw: Any) -> argparse.ArgumentParser:  # noqa: N802 - stands for the class, built on first use
    """An ArgumentParser with docker's error text and exit code 125 (the class is made with argparse's import)."""
    global _parser_class
    if _parser_class is None:
        ap = _argparse()

        class DockerParser(ap.ArgumentParser):  # type: ignore[name-defined,misc]
            """argparse with docker's error text and exit code 125."""

            _shared_formatter: argparse.HelpFormatter | None = None

            def _get_formatter(self) -> argparse.HelpFormatter:
                # add_argument builds a formatter per flag only to check its metavar: while a command configures
                # its flags one formatter serves them all; a fixed width spares importing shutil and an ioctl
                if self._shared_formatter is not None:
                    return self._shared_formatter
                try:
                    width = int(os.environ.get("COLUMNS", "")) - 2
                except ValueError:
                    width = 98
                return ap.HelpFormatter(prog=self.prog, width=width)  # type: ignore[no-any-return]

            def error(self, message: str) -> Any:  # type: ignore[override]
                if message.startswith("unrecognized arguments: "):
                    message = "unknown flag: " + message.split(": ", 1)[1].split()[0]
                sys.stderr.write(f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")
                raise SystemExit(125)

        _parser_class = DockerParser
    return _parser_class(**kw)  # type: ignore[no-any-return]


def _load(name: str) -> tuple[Any, Any]:
    from dockyard.cli.registry import COMMANDS

    target = COMMANDS[name]
    mod_name, _, prefix = target.partition(":")
    full_name = f"dockyard.cli.commands.{mod_name}"
    if name not in _FAST_FLAGS:
        _argparse()  # before the command's module imports it: loaded without gettext
    __import__(full_name)  # importlib itself would be one more import at start-up
    mod = sys.modules[full_name]
    if prefix:
        return getattr(mod, f"configure_{prefix}"), getattr(mod, f"run_{prefix}")
    return mod.configure, mod.run


def _bool_values(p: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """docker's boolean flags also take "--rm=false" / "-d=true"; argparse's store_true does not."""
    flags = {opt: a for a in p._actions if a.nargs == 0 and a.const in (True, False) for opt in a.option_strings}
    valued = {opt for a in p._actions if a.nargs != 0 for opt in a.option_strings}
    stop_at_positional = any(a.nargs == REMAINDER for a in p._actions)
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            return out + args[i - 1:]
        name, eq, value = arg.partition("=")
        if eq and name in flags:
            if value.lower() not in ("true", "false", "1", "0", "t", "f"):
                p.error(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: parsing "{value}": '
                        "invalid syntax")
            if (value.lower() in ("true", "1", "t")) == bool(flags[name].const):
                out.append(name)
            continue
        out.append(arg)
        if arg in valued and i < len(args):
            out.append(args[i])  # the flag's value, whatever it looks like
            i += 1
        elif not arg.startswith("-") and stop_at_positional:
            return out + args[i:]  # run/exec: everything after the image/container is the command
    return out


def _configure(p: Any, configure: Any) -> None:
    """Let the command add its flags, with one formatter for all the metavar checks."""
    p._shared_formatter = p._get_formatter()
    try:
        configure(p)
    finally:
        p._shared_formatter = None


def make_parser(name: str) -> argparse.ArgumentParser:
    configure, _ = _load(name)
    p = _Parser(prog=f"dockyard {name}", add_help=True, allow_abbrev=False, conflict_handler="resolve")
    _configure(p, configure)
    return p


def run_command(name: str, args: list[str], global_opts: dict[str, Any]) -> int:
    """Parse ``args`` for command ``name``, run it, and turn errors into docker's messages and codes."""
    configure, run = _load(name)
    run_like = name in _RUN_LIKE
    ns: Any = fast_parse(configure, args) if name in _FAST_FLAGS else None
    if ns is None:
        p = _Parser(prog=f"dockyard {name}", add_help=True, allow_abbrev=False, conflict_handler="resolve")
        _configure(p, configure)
        try:
            ns = p.parse_args(_bool_values(p, args))
        except SystemExit as e:
            return int(e.code or 0) if isinstance(e.code, int) else 125
    ctx = CLIContext(global_opts)
    prefix = "dockyard: " if run_like else ""
    try:
        return int(run(ns, ctx) or 0)
    except ExitWith as e:
        return e.code
    except CLIError as e:
        ctx.err.write(f"{'' if e.bare else prefix}{e.message}\n")
        return e.code
    except APIError as e:
        ctx.err.write(f"{prefix}Error response from daemon: {e.message}\n")
        if run_like:
            ctx.err.write(f"\nRun 'dockyard {name} --help' for more information\n")
            return 125
        return 1
    except DaemonUnreachable as e:
        ctx.err.write(f"{prefix}{e}\n")
        return 125 if run_like else 1
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        return 130
