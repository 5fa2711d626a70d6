"""Instruction checks and argument shapes: what docker's instruction parser refuses, in its wording.

The whole Dockerfile is checked before the first step runs, so a typo on line 40 costs no build time.
Stages are split here too: ``ARG`` before the first ``FROM`` is global (it only feeds ``FROM`` lines), each
``FROM`` opens a stage, ``AS name`` names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dockerfile import Dockerfile, Node, ParseError

ALLOWED_FLAGS: dict[str, tuple[str, ...]] = {
    "from": ("platform",),
    "run": ("mount", "network", "security"),
    "copy": ("from", "chown", "chmod", "link", "exclude", "parents"),
    "add": ("chown", "chmod", "checksum", "link", "exclude", "keep-git-dir"),
    "healthcheck": ("interval", "timeout", "start-period", "start-interval", "retries"),
}
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
              "no_proxy", "ALL_PROXY", "all_proxy")
PLATFORM_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS",
                 "BUILDARCH", "BUILDVARIANT")


def split_words_raw(text: str, escape: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes for the later substitution pass."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'" and i + 1 < len(text):
            cur.append(c + text[i + 1])
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in " \t\n":
            if cur:
                words.append("".join(cur))
                cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    if cur:
        words.append("".join(cur))
    return words


def name_value_pairs(node: Node, escape: str) -> list[tuple[str, str]]:
    """ENV / LABEL / ARG-style ``k=v k2="v 2"`` (or the legacy ``ENV k v``); values still unexpanded."""
    what = node.cmd.upper()
    words = split_words_raw(node.args, escape)
    if not words:
        raise ParseError(node.line, f"{what} requires at least one argument")
    if "=" not in words[0]:
        if node.cmd == "label":
            raise ParseError(node.line, f"Syntax error - can't find = in \"{words[0]}\". "
                                        "Must be of the form: name=value")
        if len(words) < 2:
            raise ParseError(node.line, f"{what} must have two arguments")
        value = node.args.strip()[len(words[0]):].strip()
        return [(words[0], value)]
    pairs = []
    for w in words:
        if "=" not in w:
            raise ParseError(node.line, f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        k, _, v = w.partition("=")
        if not k:
            raise ParseError(node.line, f"{what} names can not be blank")
        pairs.append((k, v))
    return pairs


def flag_map(node: Node) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    allowed = ALLOWED_FLAGS.get(node.cmd, ())
    for f in node.flags:
        name, sep, value = f.partition("=")
        if name not in allowed:
            raise ParseError(node.line, f"Unknown flag: {name}")
        if not sep and name not in ("link", "parents", "keep-git-dir"):
            raise ParseError(node.line, f"Missing a value on flag: {name}")
        out.setdefault(name, []).append(value if sep else "true")
    return out


def check(node: Node, escape: str) -> None:
    """docker's argument-count and form checks for one instruction."""
    cmd, what = node.cmd, node.cmd.upper()
    flag_map(node)
    words = split_words_raw(node.args, escape)
    if cmd == "from":
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise ParseError(node.line, "FROM requires either one or three arguments")
    elif cmd in ("env", "label"):
        name_value_pairs(node, escape)
    elif cmd == "arg":
        if not words:
            raise ParseError(node.line, "ARG requires exactly one argument")
    elif cmd in ("copy", "add"):
        n = len(node.exec_form) if node.exec_form is not None else len(words)
        if n < 2 and not (node.heredocs and n >= 1):
            raise ParseError(node.line, f"{what} requires at least two arguments, but only one was provided. "
                                        "Destination could not be determined")
    elif cmd in ("workdir", "user", "stopsignal", "maintainer"):
        if not node.args.strip():  # docker's parser keeps the whole rest of the line as the one argument
            raise ParseError(node.line, f"{what} requires exactly one argument")
    elif cmd in ("expose", "volume", "run"):
        if not words:
            raise ParseError(node.line, f"{what} requires at least one argument")
    elif cmd == "shell":
        if node.exec_form is None:
            raise ParseError(node.line, "SHELL requires the arguments to be in JSON form")
        if not node.exec_form:
            raise ParseError(node.line, "SHELL requires at least one argument")
    elif cmd == "onbuild":
        inner = node.args.split(None, 1)[0].lower() if node.args.strip() else ""
        if not inner:
            raise ParseError(node.line, "ONBUILD requires at least one argument")
        if inner == "onbuild":
            raise ParseError(node.line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if inner in ("from", "maintainer"):
            raise ParseError(node.line, f"{inner.upper()} isn't allowed as an ONBUILD trigger")
    elif cmd == "healthcheck":
        if not words:
            raise ParseError(node.line, "HEALTHCHECK requires at least one argument")
        kind = words[0].upper()
        if kind == "NONE":
            if len(words) > 1 or node.flags:
                raise ParseError(node.line, "HEALTHCHECK NONE takes no arguments")
        elif kind != "CMD":
            raise ParseError(node.line, f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")
        elif len(words) < 2:
            raise ParseError(node.line, "Missing command after HEALTHCHECK CMD")


@dataclass
class Stage:
    index: int
    base: str  # unexpanded FROM argument
    name: str  # lower-cased AS name, or ""
    platform: str
    line: int
    original: str
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Plan:
    meta_args: list[Node]
    stages: list[Stage]


def plan(df: Dockerfile, dockerfile_name: str = "Dockerfile") -> Plan:
    if not df.nodes:
        raise ParseError(1, f"the Dockerfile ({dockerfile_name}) cannot be empty")
    meta: list[Node] = []
    stages: list[Stage] = []
    for node in df.nodes:
        check(node, df.escape)
        if node.cmd == "from":
            words = split_words_raw(node.args, df.escape)
            flags = flag_map(node)
            name = words[2].lower() if len(words) == 3 else ""
            if name and (not name[0].isalpha() or not all(c.isalnum() or c in "_.-" for c in name)):
                raise ParseError(node.line, f"invalid name for build stage: \"{words[2]}\", name can't start "
                                            "with a number or contain symbols")
            if name and any(s.name == name for s in stages):
                raise ParseError(node.line, f"duplicate name {name}")
            stages.append(Stage(len(stages), words[0], name, (flags.get("platform") or [""])[0], node.line,
                                node.original))
        elif not stages:
            if node.cmd != "arg":
                raise ParseError(node.line, "no build stage in current context")
            meta.append(node)
        else:
            stages[-1].nodes.append(node)
    return Plan(meta, stages)
