"""The subset of Go's text/template that docker users write in --format, with docker's functions.

Data are JSON values (dicts, lists, str, int, float, bool, None) or objects exposing attributes
and methods (the ps/stats row contexts); `.Field` looks up a dict key or an attribute, and calls
it when it is a method, passing the command's arguments.
"""

from __future__ import annotations

from dockyard.util import cjson

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(Exception):
    """Parse or execution error, worded like Go's ("template: :1: …")."""


_MISSING = object()


# -- lexing -------------------------------------------------------------------------------------------
class _FieldPath(list):  # type: ignore[type-arg]
    """A ``.A.B`` field chain (a list of names) that remembers where it stands in the template source,
    for Go's positioned execution errors (``template: :1:2: executing "" at <.A.B>: …``)."""

    pos = 0
    text = ""


def _split(src: str) -> list[tuple[str, str, int]]:
    """Text and action pieces (with the action's offset in ``src``), the {{- and -}} trim markers applied to
    the neighbouring text."""
    pieces: list[tuple[str, str, int]] = []
    i = 0
    trim_next = False
    while True:
        j = src.find("{{", i)
        if j < 0:
            text = src[i:]
            pieces.append(("text", text.lstrip() if trim_next else text, i))
            return pieces
        text = src[i:j]
        if trim_next:
            text = text.lstrip()
        k = src.find("}}", j + 2)
        if k < 0:
            raise TemplateError("template: :1: unclosed action")
        body = src[j + 2:k]
        if body.startswith("- ") or body == "-" or body.startswith("-\t") or body.startswith("-\n"):
            text = text.rstrip()
            body = body[1:]
        trim_next = False
        if body.endswith(" -") or body.endswith("\t-") or body.endswith("\n-"):
            body = body[:-1]
            trim_next = True
        pieces.append(("text", text, i))
        start = src.find(body.strip(), j + 2) if body.strip() else j + 2
        body = body.strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            pieces.append(("action", body, start))
        i = k + 2


def _tokens(action: str, base: int = 0) -> list[tuple[str, Any]]:
    toks: list[tuple[str, Any]] = []
    i, n = 0, len(action)
    while i < n:
        c = action[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and action[j] != '"':
                j += 2 if action[j] == "\\" else 1
            if j >= n:
                raise TemplateError("template: :1: unterminated quoted string")
            toks.append(("str", cjson.loads(action[i:j + 1])))
            i = j + 1
        elif c == "`":
            j = action.index("`", i + 1)
            toks.append(("str", action[i + 1:j]))
            i = j + 1
        elif c == "'":
            j = action.index("'", i + 1)
            toks.append(("num", ord(cjson.loads('"' + action[i + 1:j] + '"'))))
            i = j + 1
        elif action.startswith(":=", i):
            toks.append(("decl", ":="))
            i += 2
        elif c in "|(),=":
            toks.append((c, c))
            i += 1
        elif c.isdigit() or (c in "-+" and i + 1 < n and action[i + 1].isdigit()):
            j = i + 1
            while j < n and (action[j].isalnum() or action[j] in "._+-" and action[j - 1] in "eE"
                             or action[j] == "."):
                j += 1
            text = action[i:j]
            try:
                toks.append(("num", int(text, 0)))
            except ValueError:
                toks.append(("num", float(text)))
            i = j
        else:
            j = i
            while j < n and not action[j].isspace() and action[j] not in "|(),=\"`":
                if action[j] == ":" and action.startswith(":=", j):
                    break
                j += 1
            word = action[i:j]
            if not word:
                raise TemplateError(f"template: :1: unexpected {action[i]!r} in command")
            if word.startswith("."):
                path = _FieldPath(p for p in word.split(".")[1:] if p)
                # Go's node for a chain .A.B stands where its second field starts
                path.pos, path.text = base + i + (word.find(".", 1) if word.count(".") > 1 else 0), word
                toks.append(("field", path))
            elif word.startswith("$"):
                name, *fields = word.split(".")
                toks.append(("var", (name, fields)))
            elif word in ("true", "false"):
                toks.append(("bool", word == "true"))
            elif word == "nil":
                toks.append(("nil", None))
            else:
                toks.append(("ident", word))
            i = j
    return toks


# -- parsing ------------------------------------------------------------------------------------------
class _Pipe:
    """``$x := cmd | cmd …`` (decls are the variable names assigned)."""

    def __init__(self, decls: list[str], cmds: list[list[tuple[str, Any]]]) -> None:
        self.decls = decls
        self.cmds = cmds


def _parse_pipe(toks: list[tuple[str, Any]]) -> _Pipe:
    decls: list[str] = []
    k = next((i for i, t in enumerate(toks) if t[0] in ("decl", "=")), -1)
    if k >= 0 and all(t[0] in ("var", ",") for t in toks[:k]):
        decls = [t[1][0] for t in toks[:k] if t[0] == "var"]
        toks = toks[k + 1:]
    cmds: list[list[tuple[str, Any]]] = [[]]
    depth = 0
    for t in toks:
        if t[0] == "(":
            depth += 1
        elif t[0] == ")":
            depth -= 1
        if t[0] == "|" and depth == 0:
            cmds.append([])
        else:
            cmds[-1].append(t)
    if len(cmds) > 1 and not cmds[-1]:
        cmds.pop()  # Go's parser takes a trailing "|" before "}}" (docker runs "{{.Name | }}")
    if any(not c for c in cmds):
        raise TemplateError("template: :1: missing value for command")
    return _Pipe(decls, cmds)


class _Node:
    def __init__(self, kind: str, pipe: _Pipe | None = None, text: str = "") -> None:
        self.kind = kind
        self.pipe = pipe
        self.text = text
        self.body: list[_Node] = []
        self.else_body: list[_Node] = []


def _parse(src: str, pos_offset: int = 0) -> list[_Node]:
    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    for kind, body, offset in _split(src):
        target = stack[-1][1]
        if kind == "text":
            if body:
                target.append(_Node("text", text=body))
            continue
        toks = _tokens(body, offset + pos_offset)
        if not toks:
            raise TemplateError("template: :1: missing value for command")
        head = toks[0]
        if head == ("ident", "end"):
            if len(stack) == 1:
                raise TemplateError("template: :1: unexpected {{end}}")
            stack.pop()
        elif head == ("ident", "else"):
            node = stack[-1][0]
            if node is None:
                raise TemplateError("template: :1: unexpected {{else}}")
            if len(toks) > 1 and toks[1][0] == "ident" and toks[1][1] in ("if", "with"):
                # {{else if x}} == {{else}}{{if x}} … with one shared {{end}}
                inner = _Node(toks[1][1], _parse_pipe(toks[2:]))
                inner.chained = True  # type: ignore[attr-defined]
                node.else_body.append(inner)
                stack[-1] = (inner, inner.body)
                continue
            stack[-1] = (node, node.else_body)
        elif head[0] == "ident" and head[1] in ("if", "range", "with"):
            node = _Node(head[1], _parse_pipe(toks[1:]))
            target.append(node)
            stack.append((node, node.body))
        elif head[0] == "ident" and head[1] in ("define", "template", "block"):
            raise TemplateError(f"template: :1: {head[1]} is not supported")
        else:
            target.append(_Node("action", _parse_pipe(toks)))
    if len(stack) != 1:
        raise TemplateError("template: :1: unexpected EOF")
    return root


# -- values -------------------------------------------------------------------------------------------
def truthy(v: Any) -> bool:
    if v is None or v is _MISSING:
        return False
    if isinstance(v, (bool, int, float, str, list, dict, tuple)):
        return bool(v)
    return True


def go_str(v: Any) -> str:
    """fmt's %v for JSON-ish values."""
    if v is _MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e21:
            text = f"{v:g}"
            return text if "e" in text else str(int(v))
        return repr(v)
    if isinstance(v, str):
        return v
    if hasattr(v, "__gostr__"):  # a typed struct (cli/format/gostruct.py) prints as {field field …}
        return str(v.__gostr__(go_str))
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v[k])}" for k in sorted(v, key=str)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    return str(v)


def _to_json(v: Any) -> str:
    """docker's json func; row contexts marshal themselves with Go's HTML escaping ("->" → "-\\u003e")."""
    import json  # only here: the package pulls in re, enum and functools, a few ms of every CLI start
    if hasattr(v, "__json__"):
        text = json.dumps(v.__json__(), separators=(",", ":"), ensure_ascii=False, default=str)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return json.dumps(None if v is _MISSING else v, separators=(",", ":"), ensure_ascii=False, default=str)


def _eq(a: Any, *others: Any) -> bool:
    return any(a == b for b in others)


def _cmp(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a, b
    if type(a) is not type(b):
        raise TemplateError("error calling lt: incompatible types for comparison")
    return a, b


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if v is None or v is _MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        if isinstance(v, dict):
            v = v.get(k)
        else:
            try:
                v = v[int(k)]
            except (IndexError, TypeError, ValueError):
                raise TemplateError(f"error calling index: index out of range: {k}") from None
    return v


def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    i = 0
    ai = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "-+# 0123456789.":
            j += 1
        if j >= len(fmt):
            out.append(fmt[i:])
            break
        flags, verb = fmt[i + 1:j], fmt[j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        if ai >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[ai]
        ai += 1
        if verb in "sv":
            out.append(("%" + flags + "s") % go_str(a))
        elif verb == "q":
            out.append(("%" + flags + "s") % cjson.quote(go_str(a), ensure_ascii=False))
        elif verb == "t":
            out.append(go_str(bool(a)))
        elif verb in "dxXo":
            out.append(("%" + flags + verb) % int(a))
        elif verb in "feEgG":
            out.append(("%" + flags + verb) % float(a))
        else:
            out.append(("%" + flags + "s") % go_str(a))
    return "".join(out)


def _print(*args: Any) -> str:
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_str(a)
    return out


def _title(s: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in _keep_sep(s))


def _keep_sep(s: str) -> list[str]:
    parts: list[str] = []
    cur = ""
    for ch in s:
        if ch.isspace():
            if cur:
                parts.append(cur)
                cur = ""
            parts.append(ch)
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def _len(v: Any) -> int:
    if v is None or v is _MISSING:
        raise TemplateError("error calling len: len of nil pointer")
    return len(v)


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _to_json,
    "join": lambda items, sep: sep.join(go_str(x) for x in (items or [])),
    "split": lambda s, sep: s.split(sep),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: _title(go_str(s)),
    "pad": lambda s, pre, post: " " * int(pre) + go_str(s) + " " * int(post),
    "truncate": lambda s, n: go_str(s)[: int(n)],
    "len": _len,
    "index": _index,
    "print": _print,
    "printf": _printf,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": _eq,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: _cmp(a, b)[0] < _cmp(a, b)[1],
    "le": lambda a, b: _cmp(a, b)[0] <= _cmp(a, b)[1],
    "gt": lambda a, b: _cmp(a, b)[0] > _cmp(a, b)[1],
    "ge": lambda a, b: _cmp(a, b)[0] >= _cmp(a, b)[1],
    "not": lambda a: not truthy(a),
    "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truthy(x)), a[-1]),
    "slice": lambda v, *ix: v[int(ix[0]) if ix else 0: int(ix[1]) if len(ix) > 1 else None],
    "html": lambda s: go_str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
    "urlquery": lambda s: go_str(s),
}


# -- execution ----------------------------------------------------------------------------------------
def _field(v: Any, name: str, args: list[Any]) -> Any:
    if v is None or v is _MISSING:
        if isinstance(v, dict) or v is _MISSING:
            return _MISSING
        raise TemplateError(f'template: :1: nil pointer evaluating interface {{}}.{name}')
    if isinstance(v, dict):
        if args:
            raise TemplateError(f"template: :1: can't give argument to non-function .{name}")
        return v.get(name, _MISSING)
    attr = getattr(v, name, _MISSING)
    if attr is _MISSING or name.startswith("_"):
        raise TemplateError(f"template: :1: can't evaluate field {name} in type {type(v).__name__}")
    if callable(attr):
        return attr(*args)
    if args:
        raise TemplateError(f"template: :1: can't give argument to non-function .{name}")
    return attr


class _Scope:
    def __init__(self, dot: Any, variables: dict[str, Any]) -> None:
        self.dot = dot
        self.vars = variables


class Template:
    """A parsed template; ``execute(data)`` renders it."""

    def __init__(self, src: str, funcs: dict[str, Callable[..., Any]] | None = None, pos_offset: int = 0) -> None:
        self.src = src
        self.funcs = dict(FUNCS, **(funcs or {}))
        self.nodes = _parse(src, pos_offset)
        self._check_functions(self.nodes)

    def _check_functions(self, nodes: list[_Node]) -> None:
        """Go resolves function names when it parses: an unknown one fails before anything is printed."""
        for node in nodes:
            for cmd in node.pipe.cmds if node.pipe is not None else []:
                for kind, val in cmd:
                    if kind == "ident" and val not in self.funcs:
                        raise TemplateError(f'template: :1: function "{val}" not defined')
            self._check_functions(node.body)
            self._check_functions(node.else_body)

    def execute(self, data: Any, *, missingkey_error: bool = False) -> str:
        """Render ``data``. ``missingkey_error`` is Go's ``missingkey=error`` option (docker's inspect runs
        the raw JSON with it): a map key that is not there fails instead of printing ``<no value>``."""
        out: list[str] = []
        self._missingkey_error = missingkey_error
        try:
            self._run(self.nodes, _Scope(data, {"$": data}), out)
        except TemplateError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as e:
            # never a traceback: whatever the template does wrong is Go's execution error
            raise TemplateError(f"template: :1: executing \"\" : {e}") from None
        return "".join(out)

    def _run(self, nodes: list[_Node], sc: _Scope, out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                assert node.pipe is not None
                v = self._pipe(node.pipe, sc)
                if not node.pipe.decls:
                    out.append(go_str(v))
            elif node.kind == "if":
                assert node.pipe is not None
                inner = _Scope(sc.dot, dict(sc.vars))
                if truthy(self._pipe(node.pipe, inner)):
                    self._run(node.body, inner, out)
                else:
                    self._run(node.else_body, inner, out)
            elif node.kind == "with":
                assert node.pipe is not None
                inner = _Scope(sc.dot, dict(sc.vars))
                v = self._pipe(node.pipe, inner)
                if truthy(v):
                    self._run(node.body, _Scope(v, inner.vars), out)
                else:
                    self._run(node.else_body, inner, out)
            elif node.kind == "range":
                self._range(node, sc, out)

    def _range(self, node: _Node, sc: _Scope, out: list[str]) -> None:
        assert node.pipe is not None
        decls = node.pipe.decls
        pipe = _Pipe([], node.pipe.cmds)
        v = self._pipe(pipe, sc)
        if v is None or v is _MISSING:
            items: list[tuple[Any, Any]] = []
        elif isinstance(v, dict):
            items = [(k, v[k]) for k in sorted(v, key=str)]
        elif isinstance(v, (list, tuple)):
            items = list(enumerate(v))
        elif isinstance(v, int):
            items = [(i, i) for i in range(v)]
        else:
            raise TemplateError(f"template: :1: range can't iterate over {go_str(v)}")
        if not items:
            self._run(node.else_body, sc, out)
            return
        for k, item in items:
            variables = dict(sc.vars)
            if len(decls) == 1:
                variables[decls[0]] = item
            elif len(decls) >= 2:
                variables[decls[0]] = k
                variables[decls[1]] = item
            self._run(node.body, _Scope(item, variables), out)

    def _pipe(self, pipe: _Pipe, sc: _Scope) -> Any:
        v: Any = _MISSING
        for i, cmd in enumerate(pipe.cmds):
            v = self._cmd(cmd, sc, [] if i == 0 else [v])
        for name in pipe.decls:
            sc.vars[name] = v
        return v

    def _cmd(self, cmd: list[tuple[str, Any]], sc: _Scope, piped: list[Any]) -> Any:
        head, rest = cmd[0], cmd[1:]
        if head[0] == "(":  # a parenthesized pipeline, maybe chained: (index .Ports "80/tcp").HostPort
            end = self._close(cmd, 0)
            v, end = self._chained(cmd, end, self._operand(cmd[: end + 1], sc))
            if cmd[end + 1:] or piped:
                raise TemplateError("template: :1: can't give argument to non-function")
            return v
        args = self._args(rest, sc) + piped
        kind, val = head
        if kind == "ident":
            fn = self.funcs.get(val)
            if fn is None:
                raise TemplateError(f'template: :1: function "{val}" not defined')
            try:
                return fn(*args)
            except TemplateError:
                raise
            except (TypeError, ValueError, AttributeError, KeyError) as e:
                raise TemplateError(f"template: :1: error calling {val}: {e}") from None
        if kind == "field":
            return self._chain(sc.dot, val, args)
        if kind == "var":
            name, fields = val
            if name not in sc.vars:
                raise TemplateError(f"template: :1: undefined variable: {name}")
            return self._chain(sc.vars[name], fields, args)
        if args:
            raise TemplateError(f"template: :1: can't give argument to non-function {go_str(val)}")
        return val

    def _chain(self, v: Any, fields: list[str], args: list[Any]) -> Any:
        if not fields:
            if args:
                raise TemplateError("template: :1: can't give argument to non-function .")
            return v
        where = f':1:{getattr(fields, "pos", 0)}: executing "" at <{getattr(fields, "text", "")}>'
        for j, name in enumerate(fields):
            if isinstance(v, dict) and name not in v and getattr(self, "_missingkey_error", False):
                raise TemplateError(f'template: {where}: map has no entry for key "{name}"')
            if not isinstance(v, dict) and v is not None and v is not _MISSING and isinstance(fields, _FieldPath) \
                    and (name.startswith("_") or getattr(v, name, _MISSING) is _MISSING):
                gotype = getattr(v, "__gotype__", type(v).__name__)
                raise TemplateError(f"template: {where}: can't evaluate field {name} in type {gotype}")
            v = _field(v, name, args if j == len(fields) - 1 else [])
        return v

    def _chained(self, toks: list[tuple[str, Any]], end: int, v: Any) -> tuple[Any, int]:
        """Fields right after a closing paren apply to its value (Go's chain node): ``(…).A.B``."""
        while end + 1 < len(toks) and toks[end + 1][0] == "field":
            v = self._chain(v, toks[end + 1][1], [])
            end += 1
        return v, end

    @staticmethod
    def _close(toks: list[tuple[str, Any]], start: int) -> int:
        depth = 0
        for i in range(start, len(toks)):
            if toks[i][0] == "(":
                depth += 1
            elif toks[i][0] == ")":
                depth -= 1
                if depth == 0:
                    return i
        raise TemplateError("template: :1: unclosed left paren")

    def _args(self, toks: list[tuple[str, Any]], sc: _Scope) -> list[Any]:
        out: list[Any] = []
        i = 0
        while i < len(toks):
            if toks[i][0] == "(":
                end = self._close(toks, i)
                v, end = self._chained(toks, end, self._operand(toks[i:end + 1], sc))
                out.append(v)
                i = end + 1
            else:
                out.append(self._operand([toks[i]], sc))
                i += 1
        return out

    def _operand(self, toks: list[tuple[str, Any]], sc: _Scope) -> Any:
        kind, val = toks[0]
        if kind == "(":
            inner = toks[1:-1]
            return self._pipe(_parse_pipe(inner), _Scope(sc.dot, sc.vars))
        if kind == "field":
            return self._chain(sc.dot, val, [])
        if kind == "var":
            name, fields = val
            if name not in sc.vars:
                raise TemplateError(f"template: :1: undefined variable: {name}")
            return self._chain(sc.vars[name], fields, [])
        if kind == "ident":
            fn = self.funcs.get(val)
            if fn is None:
                raise TemplateError(f'template: :1: function "{val}" not defined')
            return fn()
        return val


def prepare_format(fmt: str) -> tuple[bool, str]:
    """docker's pre-processing: a leading "table" makes a table; literal \\t and \\n become tabs/newlines."""
    is_table = fmt.startswith("table")
    body = fmt[len("table"):] if is_table else fmt
    body = body.strip(" ") if is_table else body
    return is_table, body.replace("\\t", "\t").replace("\\n", "\n")


def render(fmt: str, data: Any) -> str:
    """Render one value with a template string (no table handling)."""
    return Template(fmt).execute(data)
