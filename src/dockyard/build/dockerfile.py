"""The Dockerfile reader: parser directives, comments, line continuations and heredocs, into raw instructions.

Each ``Node`` keeps the instruction word, its flags (``--from=x``), the rest of the line (continuations joined,
exactly as docker's parser does), the exec (JSON) form when the arguments are a JSON string array, the heredoc
bodies, and the line it started on, so every later error can name the line in docker's wording.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

INSTRUCTIONS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
                "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")
_HEREDOC_INSTRUCTIONS = ("run", "copy", "add")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


class ParseError(ValueError):
    """``dockerfile parse error on line N: …`` — docker's wording, which clients show as is."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"dockerfile parse error on line {line}: {message}")
        self.line = line
        self.detail = message


@dataclass
class Heredoc:
    name: str
    content: str
    expand: bool  # an unquoted terminator: the body is subject to substitution


@dataclass
class Node:
    cmd: str  # lower-case instruction word
    args: str  # the arguments after the flags, continuations joined
    original: str  # the instruction as written (for `Step N/M : …` and history)
    line: int
    flags: list[str] = field(default_factory=list)
    exec_form: list[str] | None = None
    heredocs: list[Heredoc] = field(default_factory=list)


@dataclass
class Dockerfile:
    nodes: list[Node]
    escape: str
    syntax: str = ""


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """(line without a trailing escape token, whether the instruction continues on the next line)."""
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[:-1], True
    return line, False


def split_flags(text: str) -> tuple[list[str], str]:
    """Leading ``--name[=value]`` words (quotes allowed in values) and the rest of the arguments."""
    flags: list[str] = []
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if not text.startswith("--", i):
            break
        j = i
        quote = ""
        while j < n and (quote or text[j] not in " \t"):
            if quote and text[j] == quote:
                quote = ""
            elif not quote and text[j] in "\"'":
                quote = text[j]
            j += 1
        word = text[i:j]
        if word == "--":
            i = j
            break
        flags.append(word[2:])
        i = j
    return flags, text[i:].strip(" \t")


def parse_exec_form(args: str) -> list[str] | None:
    """The JSON array form (``["a", "b"]``), or None for the shell form."""
    s = args.strip()
    if not s.startswith("["):
        return None
    try:
        val = json.loads(s)
    except ValueError:
        return None
    if isinstance(val, list) and all(isinstance(x, str) for x in val):
        return val
    return None


def parse(text: str) -> Dockerfile:
    lines = text.replace("\r\n", "\n").split("\n")
    escape = "\\"
    syntax = ""
    seen: set[str] = set()
    i = 0
    n = len(lines)
    # parser directives: only at the very top, before any comment, blank line or instruction
    while i < n:
        m = _DIRECTIVE.match(lines[i].strip())
        if not m:
            break
        key, value = m.group(1).lower(), m.group(2)
        if key not in _KNOWN_DIRECTIVES:
            break
        if key in seen:
            raise ParseError(i + 1, f"only one {key} parser directive can be used")
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise ParseError(i + 1, f"invalid escape token '{value}' does not match ` or \\")
            escape = value
        elif key == "syntax":
            syntax = value
        i += 1
    nodes: list[Node] = []
    while i < n:
        raw = lines[i]
        start = i + 1
        i += 1
        first = raw.lstrip(" \t")
        if not first.strip() or first.startswith("#"):
            continue
        text, cont = _trim_continuation(first, escape)
        parts = [text]
        while cont and i < n:
            nxt = lines[i]
            i += 1
            if nxt.lstrip(" \t").startswith("#"):
                continue
            if not nxt.strip():
                continue  # an empty continuation line (docker warns and skips it)
            piece, cont = _trim_continuation(nxt, escape)
            parts.append(piece)
        full = "".join(parts).strip()
        word, _, rest = full.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = more + " " + rest
        cmd = word.lower()
        if cmd not in INSTRUCTIONS:
            raise ParseError(start, f"unknown instruction: {word.upper()}")
        rest = rest.strip(" \t")
        node = Node(cmd=cmd, args=rest, original=full, line=start)
        if cmd in ("onbuild",):
            node.args = rest
        else:
            node.flags, node.args = split_flags(rest)
        if cmd in _HEREDOC_INSTRUCTIONS and node.exec_form is None:
            for m in _HEREDOC.finditer(node.args):
                chomp, quote, name = m.group(1), m.group(2), m.group(3)
                body: list[str] = []
                while True:
                    if i >= n:
                        raise ParseError(start, f"unterminated heredoc {name}")
                    ln = lines[i]
                    i += 1
                    check = ln.lstrip("\t") if chomp else ln
                    if check == name:
                        break
                    body.append(check)
                content = "\n".join(body) + ("\n" if body else "")
                node.heredocs.append(Heredoc(name=name, content=content, expand=not quote))
        if cmd in ("cmd", "entrypoint", "run", "shell", "copy", "add", "volume", "healthcheck") \
                and not node.heredocs:
            node.exec_form = parse_exec_form(node.args)
        nodes.append(node)
    return Dockerfile(nodes=nodes, escape=escape, syntax=syntax)
