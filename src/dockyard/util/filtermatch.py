"""docker's filter matching (api/types/filters.Args), shared by the list endpoints' filters.

``match``: a value equal to the source, or a regular expression found anywhere in it (unanchored;
one that does not compile matches nothing); several values are ORed. ``label_match``: ``key`` or
``key=value``. ``bool_value``: docker's true/1 and false/0, anything else its 400 wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dockyard.errors import InvalidParameter


def match(values: Iterable[str], source: str) -> bool:
    for v in values:
        if v == source:
            return True
        try:
            if re.search(v, source):
                return True
        except re.error:
            continue
    return False


def label_match(labels: dict[str, str], want: str) -> bool:
    key, eq, value = want.partition("=")
    if key not in labels:
        return False
    return not eq or labels[key] == value


def bool_value(key: str, values: list[str], message: str = "") -> bool:
    """The one boolean a filter such as ``dangling`` holds (true/1, false/0; both or neither: 400 with
    ``message``, by default docker's ``invalid filter 'key=[values]'``, Go's rendering of the list)."""
    lowered = {v.lower() for v in values}
    is_true, is_false = bool(lowered & {"true", "1"}), bool(lowered & {"false", "0"})
    if is_true == is_false:
        raise InvalidParameter(message or f"invalid filter '{key}=[{' '.join(values)}]'")
    return is_true
