"""--format handling shared by the list commands: docker's "table" templates, headers, raw templates."""

from __future__ import annotations

from dockyard.cli.format.table import align
from dockyard.util.gotemplate import Template, TemplateError, prepare_format

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


class HeaderContext:
    """Stands in for a row while rendering the header line: every field answers its column title."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        title = self._headers.get(name, name.upper())

        class _Title(str):
            def __call__(self, *args: Any) -> str:
                return str(self)

        return _Title(title)

    def __json__(self) -> Any:
        return dict(self._headers)


class Row(dict):  # type: ignore[type-arg]
    """A list row of docker's field names; ``json .`` marshals it as docker's row contexts do (sorted keys)."""

    def __json__(self) -> Any:
        return _sorted_maps(self)


def _sorted_maps(value: Any) -> Any:
    """Go marshals maps with sorted keys."""
    if isinstance(value, dict):
        return {k: _sorted_maps(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_maps(v) for v in value]
    return value


def go_time_string(rfc3339: str) -> str:
    """Go's ``time.Time.String()`` for an RFC 3339 UTC stamp: "2024-01-02 15:04:05.123 +0000 UTC"."""
    if not rfc3339.endswith("Z") or "T" not in rfc3339:
        return rfc3339
    day, _, clock = rfc3339[:-1].partition("T")
    whole, dot, frac = clock.partition(".")
    frac = frac.rstrip("0")
    return f"{day} {whole}{'.' + frac if dot and frac else ''} +0000 UTC"


def render_list(fmt: str, rows: Iterable[Any], headers: dict[str, str], default_table: str,
                parse_error: str = "template parsing error") -> str:
    """Render ``rows`` with a user format (or the default table) the way docker's formatter does
    (``parse_error``: the words before a template that does not parse; ``ps`` says its own)."""
    if not fmt or fmt == "table":
        fmt = default_table
    elif fmt == "json":  # docker's shorthand for one JSON object per line
        fmt = "{{json .}}"
    is_table, body = prepare_format(fmt)
    try:
        # Go's error positions count from the start of what the user wrote, "table " included
        tpl = Template(body, pos_offset=len(fmt) - len(fmt[len("table"):].lstrip(" ")) if is_table else 0)
    except TemplateError as e:
        from dockyard.cli.app import CLIError

        raise CLIError(f"{parse_error}: {e}", 1) from None
    rendered = []
    try:
        for row in rows:
            rendered.append(tpl.execute(row))
        if not is_table:
            return "".join(r + "\n" for r in rendered)
        header = tpl.execute(HeaderContext(headers))
    except TemplateError as e:
        raise _execute_error(e) from None
    lines = [header] + rendered
    return align("\n".join(lines).split("\n"))


def render_each(fmt: str, values: Iterable[Any], raw: list[Any] | None = None, out: Any = None,
                strict: bool = False) -> str:
    """A raw (non-table) template applied to each value, one output line each (inspect -f).

    As docker's inspect: a value the template fails on (a typed struct without the field) is tried again
    on its raw JSON (``raw``) with Go's missingkey=error; what fails there too is reported after the
    others are printed (to ``out``; a lone newline when nothing was), and the command exits 1. ``strict``
    runs ``values`` themselves with missingkey=error (they are the raw JSON already).
    """
    _, body = prepare_format(fmt) if not fmt.startswith("table") else (False, fmt)
    try:
        tpl = Template(body)
    except TemplateError as e:
        raise _format_error(e, 64) from None  # the docker CLI's StatusError for a template it cannot parse
    done: list[str] = []
    errors: list[str] = []
    for i, v in enumerate(values):
        try:
            done.append(tpl.execute(v, missingkey_error=strict) + "\n")
            continue
        except TemplateError as e:
            error = e
        if raw is not None and i < len(raw):
            try:
                done.append(tpl.execute(raw[i], missingkey_error=True) + "\n")
                continue
            except TemplateError as e:
                error = e
        errors.append(f"template parsing error: {error}")
    if errors:
        if out is not None:
            out.write("".join(done) or "\n")
        from dockyard.cli.app import CLIError

        raise CLIError("\n".join(errors), 1)
    return "".join(done)


def _execute_error(e: TemplateError) -> Exception:
    """docker's list formatter wording for a template that parses but fails on a row."""
    from dockyard.cli.app import CLIError

    return CLIError(f"failed to execute template: {e}", 1)


def _format_error(e: TemplateError, code: int = 1) -> Exception:
    """docker's wording for a template that does not parse or execute: never a traceback."""
    from dockyard.cli.app import CLIError

    return CLIError(f"template parsing error: {e}", code)
