"""Registry commands: pull, push, login, logout, search (docker's flags, output and exit codes)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dockyard.cli.app import CLIContext, CLIError

_DEFAULT_DOMAIN = "docker.io"


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="/:@")


def _split_domain(name: str) -> tuple[str, str]:
    """(registry domain, remainder) as docker's reference parser splits a familiar name."""
    i = name.find("/")
    if i == -1 or ("." not in name[:i] and ":" not in name[:i] and name[:i] != "localhost"
                   and name[:i].lower() == name[:i]):
        return _DEFAULT_DOMAIN, name
    return name[:i], name[i + 1:]


def _parse(name: str) -> tuple[str, str, str, str]:
    """(repository as typed, tag, digest, domain) of NAME[:TAG][@DIGEST]."""
    digest = ""
    if "@" in name:
        name, _, digest = name.partition("@")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
    return name, tag, digest, _split_domain(name)[0]


def _full_reference(repo: str, tag: str, digest: str) -> str:
    domain, rest = _split_domain(repo)
    if domain == _DEFAULT_DOMAIN and "/" not in rest:
        rest = "library/" + rest
    s = f"{domain}/{rest}"
    if tag:
        s += ":" + tag
    if digest:
        s += "@" + digest
    return s


def _auth_header(domain: str) -> dict[str, str]:
    from dockyard.cli import dockerconfig

    try:
        return {"X-Registry-Auth": dockerconfig.encoded_auth(dockerconfig.server_key(domain))}
    except dockerconfig.ConfigFileError as e:
        raise CLIError(str(e)) from None


def _show(ctx: CLIContext, messages: Any, quiet: bool) -> list[dict[str, Any]]:
    from dockyard.cli.format.jsonprogress import ProgressError, display

    class _Null:
        def write(self, s: str) -> int:
            return len(s)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    try:
        return display(messages, _Null() if quiet else ctx.out)  # type: ignore[arg-type]
    except ProgressError as e:
        raise CLIError(str(e)) from None


# ------------------------------------------------------------------------------------------ pull
def _transfer_options(p: argparse.ArgumentParser, name_metavar: str) -> None:
    """The options pull and push share (docker-cli's): NAME, -a, -q, --platform, --disable-content-trust."""
    p.add_argument("name", metavar=name_metavar)
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform", default="")
    p.add_argument("--disable-content-trust", action="store_true", default=True)


def _default_tag(args: argparse.Namespace, ctx: CLIContext, tag: str, digest: str) -> str:
    """docker-cli's rule for -a and the implicit ``latest``."""
    if args.all_tags and (tag or digest):
        raise CLIError("tag can't be used with --all-tags/-a")
    if not args.all_tags and not tag and not digest:
        tag = "latest"
        if not args.quiet:
            ctx.out.write("Using default tag: latest\n")
    return tag


def configure_pull(p: argparse.ArgumentParser) -> None:
    _transfer_options(p, "NAME[:TAG|@DIGEST]")


def run_pull(args: argparse.Namespace, ctx: CLIContext) -> int:
    repo, tag, digest, domain = _parse(args.name)
    tag = _default_tag(args, ctx, tag, digest)
    query = {"fromImage": repo, "tag": digest or tag}
    if args.platform:
        query["platform"] = args.platform
    resp = ctx.client.request("POST", "/images/create", query, headers=_auth_header(domain))
    _show(ctx, resp.iter_json(), args.quiet)
    ctx.out.write(_full_reference(repo, "" if args.all_tags else tag, digest) + "\n")
    return 0


# ------------------------------------------------------------------------------------------ push
def configure_push(p: argparse.ArgumentParser) -> None:
    _transfer_options(p, "NAME[:TAG]")


def run_push(args: argparse.Namespace, ctx: CLIContext) -> int:
    repo, tag, digest, domain = _parse(args.name)
    if digest:
        raise CLIError("cannot push a digest reference")
    tag = _default_tag(args, ctx, tag, digest)
    query = {"tag": tag} if tag else {}
    if args.platform:  # the daemon takes os/arch[/variant] as well as docker-cli's JSON-encoded OCI platform
        query["platform"] = args.platform
    resp = ctx.client.request("POST", f"/images/{_quote(repo)}/push", query, headers=_auth_header(domain))
    _show(ctx, resp.iter_json(), args.quiet)
    if args.quiet:
        ctx.out.write(_full_reference(repo, tag, "") + "\n")
    return 0


# ------------------------------------------------------------------------------------------ login/logout
def configure_login(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", default="")
    p.add_argument("-u", "--username", default="")
    p.add_argument("-p", "--password", default="")
    p.add_argument("--password-stdin", action="store_true")


_LOGIN_HINT = "To login with a different account, run 'docker logout' followed by 'docker login'"


def _hint(text: str, styled: bool) -> str:
    """docker-cli's "Info ->" hint line, in its colours when stderr is a terminal."""
    if styled:
        return ("\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \u2192 \x1b[0m\x1b[0m\x1b[3m"
                f"{text}\x1b[0m")
    return f" Info -> {text}"


def _read_line(ctx: CLIContext, prompt: str, echo: bool = True) -> str:
    """docker-cli's prompt: the prompt on stdout, a line from stdin (echo off for a password, then a newline)."""
    ctx.out.write(prompt)
    ctx.out.flush()
    if echo:
        return sys.stdin.readline().strip()
    import termios

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    new = list(old)
    new[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSADRAIN, new)
    try:
        line = sys.stdin.readline()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
    ctx.out.write("\n")
    ctx.out.flush()
    return line.strip()


def _daemon_login(ctx: CLIContext, user: str, password: str, key: str) -> dict[str, Any]:
    body = {"username": user, "password": password, "serveraddress": key}
    resp = ctx.client.post("/auth", body=body)
    return dict(resp or {})


def run_login(args: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli import dockerconfig
    from dockyard.client.api_client import APIError

    server = args.server or dockerconfig.INDEX_SERVER
    key = dockerconfig.server_key(server)
    user, password = args.username, args.password
    if password and args.password_stdin:
        raise CLIError("conflicting options: cannot specify both --password and --password-stdin", bare=True)
    if args.password_stdin:
        if not user:
            raise CLIError("Must provide --username with --password-stdin")
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    elif password:
        ctx.err.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    stored: dict[str, str] = {}
    if not user and not password:
        try:
            stored = dockerconfig.get_auth(key)
        except dockerconfig.ConfigFileError as e:
            raise CLIError(str(e)) from None
    if stored.get("username") and stored.get("password"):
        # docker-cli tries the stored credentials first, and prompts only when the registry refuses them
        ctx.err.write(f"Authenticating with existing credentials... [Username: {stored['username']}]\n\n"
                      f"{_hint(_LOGIN_HINT, ctx.err.isatty())}\n\n\n")
        ctx.err.flush()
        try:
            resp = _daemon_login(ctx, stored["username"], stored["password"], key)
        except APIError as e:
            ctx.err.write("Stored credentials invalid or expired\n" if e.status == 401
                          else f"Login did not succeed, error: Error response from daemon: {e.message}\n")
        else:
            token = str(resp.get("IdentityToken") or "")
            try:
                dockerconfig.store_auth(key, stored["username"], "" if token else stored["password"], token)
            except dockerconfig.ConfigFileError as e:
                raise CLIError(f"Error saving credentials: {e}") from None
            ctx.out.write(str(resp.get("Status") or "Login Succeeded") + "\n")
            return 0
    if (not user or not password) and not sys.stdin.isatty():
        raise CLIError("Error: Cannot perform an interactive login from a non TTY device", bare=True)
    if not user:
        default = stored.get("username", "").strip()
        user = _read_line(ctx, f"Username ({default}): " if default else "Username: ") or default
        if not user:
            raise CLIError("Error: Non-null Username Required", bare=True)
    if not password:
        password = _read_line(ctx, "Password: ", echo=False)
        if not password:
            raise CLIError("Error: Password Required", bare=True)
    try:
        resp = _daemon_login(ctx, user, password, key)
    except APIError as e:
        raise CLIError(f"Error response from daemon: {e.message}", bare=True) from None
    token = str(resp.get("IdentityToken") or "")
    try:
        dockerconfig.store_auth(key, user, "" if token else password, token)
    except dockerconfig.ConfigFileError as e:
        raise CLIError(str(e)) from None
    if not token and not dockerconfig.load().get("credsStore"):
        ctx.err.write(f"\nWARNING! Your credentials are stored unencrypted in '{dockerconfig.config_path()}'.\n"
                      "Configure a credential helper to remove this warning. See\n"
                      "https://docs.docker.com/go/credential-store/\n\n")
    ctx.out.write(str(resp.get("Status") or "Login Succeeded") + "\n")
    return 0


def configure_logout(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", default="")


def run_logout(args: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli import dockerconfig

    key = dockerconfig.server_key(args.server or dockerconfig.INDEX_SERVER)
    if not dockerconfig.erase_auth(key):
        ctx.out.write(f"Not logged in to {key}\n")
        return 0
    ctx.out.write(f"Removing login credentials for {key}\n")
    return 0


# ------------------------------------------------------------------------------------------ search
def configure_search(p: argparse.ArgumentParser) -> None:
    p.add_argument("term", metavar="TERM")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--no-trunc", action="store_true")


def run_search(args: argparse.Namespace, ctx: CLIContext) -> int:
    filters: dict[str, list[str]] = {}
    for f in args.filter:
        k, sep, v = f.partition("=")
        if not sep:
            raise CLIError("bad format of filter (expected name=value)")
        filters.setdefault(k, []).append(v)
    query: dict[str, Any] = {"term": args.term}
    if args.limit:
        query["limit"] = args.limit
    if filters:
        query["filters"] = json.dumps(filters)
    domain = _split_domain(args.term)[0] if "/" in args.term else _DEFAULT_DOMAIN
    results = ctx.client.request("GET", "/images/search", query, headers=_auth_header(domain)).json() or []
    if args.format:
        from dockyard.util.gotemplate import render

        for r in results:
            fields = {"Name": r.get("name", ""), "Description": r.get("description", ""),
                   "StarCount": r.get("star_count", 0), "IsOfficial": "[OK]" if r.get("is_official") else "",
                   "IsAutomated": "[OK]" if r.get("is_automated") else ""}
            ctx.out.write(render(args.format, fields) + "\n")
        return 0
    rows = [("NAME", "DESCRIPTION", "STARS", "OFFICIAL")]
    for r in results:
        desc = str(r.get("description") or "").replace("\n", " ")
        if not args.no_trunc and len(desc) > 45:
            desc = desc[:44] + "…"
        rows.append((str(r.get("name", "")), desc, str(r.get("star_count", 0)),
                     "[OK]" if r.get("is_official") else ""))
    widths = [max(len(line[i]) for line in rows) for i in range(3)]
    for line in rows:
        ctx.out.write("   ".join(c.ljust(widths[i]) for i, c in enumerate(line[:3])) + "   " + line[3] + "\n")
    return 0
