"""docker's column alignment: Go's tabwriter with minwidth 10, padding 3, blanks; the last column unpadded."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Sequence


def align(lines: Sequence[str], minwidth: int = 10, padding: int = 3) -> str:
    """Align tab-separated ``lines`` the way docker's tabwriter(10, 1, 3, ' ', 0) does."""
    rows = [line.split("\t") for line in lines]
    out: list[str] = []
    # Go's tabwriter aligns a column over a block of consecutive lines that have a cell in it.
    widths: list[list[int]] = [[0] * max(len(r) - 1, 0) for r in rows]
    ncols = max((len(r) for r in rows), default=0)
    for col in range(ncols - 1):
        start = 0
        while start < len(rows):
            if len(rows[start]) - 1 <= col:
                start += 1
                continue
            end = start
            width = 0
            while end < len(rows) and len(rows[end]) - 1 > col:
                width = max(width, len(rows[end][col]))
                end += 1
            cell = max(minwidth, width + padding)
            for i in range(start, end):
                widths[i][col] = cell
            start = end
    for r, w in zip(rows, widths, strict=True):
        parts = [cell.ljust(w[i]) for i, cell in enumerate(r[:-1])]
        parts.append(r[-1] if r else "")
        out.append("".join(parts))
    return "".join(line + "\n" for line in out)


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A header line plus rows, aligned."""
    lines = ["\t".join(headers)] + ["\t".join(r) for r in rows]
    return align(lines)


def truncate_id(ident: str, no_trunc: bool = False) -> str:
    """Short ids are 12 hex characters, without the "sha256:" prefix."""
    if ident.startswith("sha256:"):
        ident = ident[7:]
    return ident if no_trunc else ident[:12]


def ellipsis(text: str, width: int, no_trunc: bool = False) -> str:
    """docker truncates long commands to ``width`` runes, the last one "…"."""
    if no_trunc or len(text) <= width:
        return text
    return text[: width - 1] + "…"
