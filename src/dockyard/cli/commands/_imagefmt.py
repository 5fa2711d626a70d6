"""Small output helpers for the image commands (docker's table layout, sizes, durations, templates).

Kept tiny on purpose: the shared helpers in ``cli/format`` replace these where they exist.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import IO, Any


def short_id(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def human_size(size: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision``: decimal units, ``precision`` significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def created_ago(ts: float) -> str:
    return human_duration(time.time() - ts) + " ago"


def write_table(out: IO[str], headers: list[str], rows: list[list[str]]) -> None:
    """Go tabwriter(minwidth 10, padding 3) as the docker CLI uses for its tables."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [headers, *rows]:
        cells = [cell.ljust(max(10, widths[i] + 3)) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        out.write("".join(cells).rstrip() + "\n")


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            from dockyard.cli.app import CLIError

            raise CLIError("bad format of filter (expected name=value)\nSee 'dockyard --help'.", 125)
        out.setdefault(k.strip().lower(), []).append(v)
    return out


def go_json(val: Any) -> str:
    """JSON as Go's encoder writes it: sorted keys, no spaces, ``<>&`` escaped."""
    text = json.dumps(val, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_FIELD = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def _lookup(obj: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _render_one(tmpl: str, obj: Any) -> str:
    def repl(m: re.Match[str]) -> str:
        val = _lookup(obj, m.group(2))
        if m.group(1):
            return go_json(val)
        if val is None:
            return "<no value>"
        if isinstance(val, (list, dict)):
            if isinstance(val, list):
                return "[" + " ".join(str(v) for v in val) + "]"
            return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(val.items())) + "]"
        return str(val)

    return _FIELD.sub(repl, tmpl.replace("\\t", "\t").replace("\\n", "\n"))


def render_template(tmpl: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> Iterator[str]:
    """The ``{{.Field}}`` / ``{{json .}}`` subset of Go templates, with docker's ``table`` prefix."""
    if tmpl.startswith("table"):
        body = tmpl[len("table"):].strip()
        cols = [m.group(2) for m in _FIELD.finditer(body)]
        table_rows = [[_render_one("{{." + c + "}}", r) for c in cols] for r in rows]
        import io

        buf = io.StringIO()
        write_table(buf, [headers.get(c, c.upper()) for c in cols], table_rows)
        yield from buf.getvalue().splitlines()
        return
    for r in rows:
        yield _render_one(tmpl, r)
