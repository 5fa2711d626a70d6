"""The list and remove shape that `volume` and `network` share (the docker CLI's formatter does the same for both).

``write_list``: a ``-q`` list of one key, unless a custom ``--format`` is given (docker's New*Format: only the
default or plain ``table`` format turns quiet), else the rows through docker's table/template formatter.
``labels_text``: docker's ``k=v,k2=v2`` column. ``remove_each``: DELETE each object, print the names that went,
report the rest as the daemon words them, exit 1 if any failed (``missing_ok``: ``-f`` ignores a 404;
``status_line``: docker 28's network rm ends its errors with its bare StatusError, "exit status 1").
"""

from __future__ import annotations

from dockyard.cli.format.output import Row, render_list
from dockyard.client.api_client import APIError, NotFound

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cli.app import CLIContext


def labels_text(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def write_list(ctx: CLIContext, rows: list[Row], *, fmt: str, quiet: bool, key: str, headers: dict[str, str],
               default_table: str) -> None:
    if quiet and fmt in ("", "table"):
        ctx.out.write("".join(f"{r[key]}\n" for r in rows))
        return
    ctx.out.write(render_list(fmt, rows, headers, default_table))


def remove_each(ctx: CLIContext, targets: list[tuple[str, str]], *, query: dict[str, Any] | None = None,
                missing_ok: bool = False, status_line: bool = False) -> int:
    """``targets``: (name as given, API path) pairs."""
    failed = False
    for name, path in targets:
        try:
            ctx.client.request("DELETE", path, query).close()
        except APIError as e:
            if missing_ok and isinstance(e, NotFound):
                continue
            ctx.err.write(f"Error response from daemon: {e.message}\n")
            failed = True
            continue
        ctx.out.write(name + "\n")
    if failed and status_line:
        ctx.err.write("exit status 1\n")
    return 1 if failed else 0
