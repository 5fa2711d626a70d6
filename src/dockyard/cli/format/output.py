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


def render_list(fmt: str, rows: Iterable[Any], headers: dict[str, str], default_table: str) -> str:
    """Render ``rows`` with a user format (or the default table) the way docker's formatter does."""
    if not fmt or fmt == "table":
        fmt = default_table
    elif fmt == "json":  # docker's shorthand for one JSON object per line
        fmt = "{{json .}}"
    is_table, body = prepare_format(fmt)
    try:
        tpl = Template(body)
    except TemplateError as e:
        raise _format_error(e) from None
    rendered = []
    try:
        for row in rows:
            rendered.append(tpl.execute(row))
        if not is_table:
            return "".join(r + "\n" for r in rendered)
        header = tpl.execute(HeaderContext(headers))
    except TemplateError as e:
        raise _format_error(e) from None
    lines = [header] + rendered
    return align("\n".join(lines).split("\n"))


def render_each(fmt: str, values: Iterable[Any]) -> str:
    """A raw (non-table) template applied to each value, one output line each (inspect -f)."""
    _, body = prepare_format(fmt) if not fmt.startswith("table") else (False, fmt)
    try:
        tpl = Template(body)
    except TemplateError as e:
        raise _format_error(e, 64) from None  # the docker CLI's StatusError for a template it cannot parse
    try:
        return "".join(tpl.execute(v) + "\n" for v in values)
    except TemplateError as e:
        raise _format_error(e) from None


def _format_error(e: TemplateError, code: int = 1) -> Exception:
    """docker's wording for a template that does not parse or execute: never a traceback."""
    from dockyard.cli.app import CLIError

    return CLIError(f"template parsing error: {e}", code)
