"""`dockyard auth …`: obtain a token (login), manage the clients file, revoke tokens, show the policy."""

from __future__ import annotations

import argparse
import json
import os
import sys
from urllib.parse import quote, urlsplit

from dockyard.cli.app import CLIContext, CLIError
from dockyard.client.api_client import APIClient, APIError

# -- login --------------------------------------------------------------------------------------------


def configure_login(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard auth login --client-id ID --client-secret-stdin [OPTIONS]"
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from stdin")
    p.add_argument("--scope", default="", help="ask for fewer scopes than the client has (space-separated)")
    p.add_argument("--token-url", default="", help="the token endpoint (default: the daemon's /token)")


def _token_client(ctx: CLIContext, url: str) -> APIClient:
    if not url:
        return APIClient(ctx.host, tls=bool(ctx.global_opts.get("tls") or ctx.global_opts.get("tlsverify")) or None)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CLIError(f"invalid token URL {url!r}: expected http(s)://HOST:PORT/PATH")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return APIClient(f"tcp://{host}:{port}", tls=parts.scheme == "https")


def run_login(ns: argparse.Namespace, ctx: CLIContext) -> int:
    if not ns.client_secret_stdin:
        raise CLIError("give the client secret on stdin with --client-secret-stdin", 125)
    secret = ctx.stdin.read().rstrip("\r\n")
    if not secret:
        raise CLIError("Error: client secret is empty (read from stdin)")
    form = f"grant_type=client_credentials&client_id={quote(ns.client_id, safe='')}" \
           f"&client_secret={quote(secret, safe='')}"
    if ns.scope:
        form += f"&scope={quote(ns.scope, safe='')}"
    client = _token_client(ctx, ns.token_url)
    path = urlsplit(ns.token_url).path or "/token" if ns.token_url else "/token"
    resp = client._raw("POST", path, body=form.encode(), versioned=False,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    data = resp.data
    try:
        doc = json.loads(data) if data.strip() else {}
    except ValueError:
        doc = {}
    if resp.status != 200 or not isinstance(doc, dict) or "access_token" not in doc:
        reason = doc.get("error_description") or doc.get("error") if isinstance(doc, dict) else None
        raise CLIError(f"Error response from token endpoint: {reason or data[:200].decode(errors='replace')}"
                       f" ({resp.status})")
    _store_token(ctx.config_dir, str(doc["access_token"]))
    ctx.out.write(f"Login Succeeded (scope {doc.get('scope', '')}, expires in {doc.get('expires_in', '?')}s)\n")
    return 0


def _store_token(config_dir: str, token: str) -> None:
    """The token goes into the config's HttpHeaders, where both dockyard and the docker CLI send it from
    (written beside and renamed over, mode 0600: a token is a credential)."""
    path = os.path.join(config_dir, "config.json")
    conf: dict[str, object] = {}
    try:
        with open(path) as f:
            loaded = json.load(f)
        if isinstance(loaded, dict):
            conf = loaded
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot read {path}: {e}") from None
    headers = conf.get("HttpHeaders")
    headers = dict(headers) if isinstance(headers, dict) else {}
    headers = {k: v for k, v in headers.items() if str(k).lower() != "authorization"}
    headers["Authorization"] = f"Bearer {token}"
    conf["HttpHeaders"] = headers
    os.makedirs(config_dir, mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(conf, indent="\t") + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- client add|rm|ls ------------------------------------------------------------------------------------


def configure_client(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard auth client add|rm|ls [OPTIONS]"
    sub = p.add_subparsers(dest="action", metavar="add|rm|ls")
    sub.required = True
    add = sub.add_parser("add", prog="dockyard auth client add")
    add.add_argument("id")
    add.add_argument("--scope", action="append", default=[], help="a scope the client may ask for")
    add.add_argument("--secret-stdin", action="store_true", help="read the secret from stdin (else one is made)")
    add.add_argument("--token-ttl", type=int, default=None, help="lifetime of its tokens in seconds")
    add.add_argument("--cost", type=int, default=12, help="bcrypt cost (default 12)")
    rm = sub.add_parser("rm", prog="dockyard auth client rm")
    rm.add_argument("ids", nargs="+")
    ls = sub.add_parser("ls", prog="dockyard auth client ls")
    ls.add_argument("-q", "--quiet", action="store_true")


def run_client(ns: argparse.Namespace, ctx: CLIContext) -> int:
    """The daemon edits its clients file (--auth-clients): it hashes the secret and serves the change at once."""
    if ns.action == "ls":
        rows = ctx.client.get("/dockyard/auth/clients") or []
        if ns.quiet:
            ctx.out.write("".join(f"{c['ID']}\n" for c in rows))
            return 0
        table = [("CLIENT ID", "SCOPES", "TOKEN TTL")]
        table += [(c["ID"], ",".join(c["Scopes"]), str(c.get("TokenTTL") or "default")) for c in rows]
        width = [max(len(r[i]) for r in table) for i in range(2)]
        for r in table:
            ctx.out.write(f"{r[0].ljust(width[0])}   {r[1].ljust(width[1])}   {r[2]}\n")
        return 0
    if ns.action == "rm":
        failed = 0
        for cid in ns.ids:
            try:
                ctx.client.delete(f"/dockyard/auth/clients/{quote(cid, safe='')}")
                ctx.out.write(f"{cid}\n")
            except APIError as e:
                failed += 1
                ctx.err.write(f"Error response from daemon: {e.message}\n")
        return 1 if failed else 0
    wanted = sorted({s for arg in ns.scope for s in arg.replace(",", " ").split()})
    secret = None
    if ns.secret_stdin:
        secret = ctx.stdin.read().rstrip("\r\n")
        if not secret:
            raise CLIError("Error: secret is empty (read from stdin)")
    body = {"ID": ns.id, "Scopes": wanted, "TokenTTL": ns.token_ttl, "Cost": ns.cost,
            **({"Secret": secret} if secret else {})}
    doc = ctx.client.post("/dockyard/auth/clients", None, body) or {}
    ctx.out.write(f"{doc.get('ID', ns.id)}\n")
    if doc.get("Secret"):
        ctx.out.write(f"client secret (shown once): {doc['Secret']}\n")
    return 0


# -- revoke -----------------------------------------------------------------------------------------------


def configure_revoke(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard auth revoke JTI|CLIENT [JTI|CLIENT...]"
    p.add_argument("targets", nargs="+", metavar="JTI|CLIENT")


def run_revoke(ns: argparse.Namespace, ctx: CLIContext) -> int:
    failed = 0
    for target in ns.targets:
        try:
            doc = ctx.client.post("/dockyard/auth/revoke", {"target": target})
            ctx.out.write(f"{doc.get('ID', target)}\n")
        except APIError as e:
            failed += 1
            ctx.err.write(f"Error response from daemon: {e.message}\n")
    return 1 if failed else 0


# -- policy show ------------------------------------------------------------------------------------------


def configure_policy(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard auth policy show [--format json]"
    p.add_argument("action", choices=["show"])
    p.add_argument("-f", "--format", default="", help="'json' for the rules as JSON")


def run_policy(ns: argparse.Namespace, ctx: CLIContext) -> int:
    doc = ctx.client.get("/dockyard/auth/policy") or {}
    if ns.format == "json":
        ctx.out.write(json.dumps(doc) + "\n")
        return 0
    import yaml

    ctx.out.write(f"# {doc.get('Source', '')}\nrules:\n")
    for rule in doc.get("Rules", []):  # one rule a line, in the file's own syntax
        line = yaml.safe_dump(rule, sort_keys=False, default_flow_style=True, width=sys.maxsize).strip()
        ctx.out.write(f"  - {line}\n")
    return 0
