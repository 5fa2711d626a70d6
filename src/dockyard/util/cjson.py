"""``json.dumps``/``json.loads`` straight from CPython's C accelerator, for the CLI's start-up.

Importing the ``json`` package costs ~5 ms because its pure-Python fallbacks compile regexes (re, enum,
functools); the C encoder and scanner in ``_json`` that json itself uses need none of that. Output and
results are json's own (default arguments); where ``_json`` lacks them the functions are json's.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

try:
    from _json import encode_basestring as _quote_unicode
    from _json import encode_basestring_ascii as _quote
    from _json import make_encoder as _make_encoder
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - an interpreter without the accelerator
    _make_encoder = _make_scanner = None  # type: ignore[assignment,misc]

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


def _not_serializable(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


class _Context:
    """The settings json.JSONDecoder() hands its C scanner (json's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _make_scanner(_Context()) if _make_scanner is not None else None  # type: ignore[arg-type]


def dumps(obj: Any, separators: tuple[str, str] = (", ", ": ")) -> str:
    """json.dumps(obj, separators=separators)."""
    if _make_encoder is None:  # pragma: no cover
        import json

        return json.dumps(obj, separators=separators)
    if isinstance(obj, str):
        return _quote(obj)  # type: ignore[no-any-return]
    encode = _make_encoder({}, _not_serializable, _quote, None, separators[1], separators[0], False, False, True)
    return "".join(encode(obj, 0))


def quote(text: str, ensure_ascii: bool = True) -> str:
    """json.dumps(text, ensure_ascii=ensure_ascii) for one string."""
    if _make_encoder is None:  # pragma: no cover
        import json

        return json.dumps(text, ensure_ascii=ensure_ascii)
    return (_quote if ensure_ascii else _quote_unicode)(text)  # type: ignore[no-any-return]


def loads(data: str | bytes | bytearray) -> Any:
    """json.loads(data) for UTF-8 text; any malformed input raises ValueError (json's JSONDecodeError)."""
    if _scan is None or not isinstance(data, str) and (data[:1] in (b"\xef", b"\xfe", b"\xff")
                                                       or b"\x00" in data[:4]):
        import json  # a BOM or UTF-16/32 bytes: json's own detection

        return json.loads(data)
    text = data if isinstance(data, str) else data.decode("utf-8", "surrogatepass")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(text, start)
    except StopIteration:
        obj, end = None, -1
    if end < 0 or text[end:].strip(_WHITESPACE):
        import json  # json's exact error (position, wording)

        return json.loads(text)
    return obj
