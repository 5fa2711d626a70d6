"""Validation of one compose document against the compose specification's JSON schema.

The schema ships inside the package (``data/compose-spec.json``, a copy of the specification's). Of all the
violations the most specific one is reported (the deepest path; a wrong type wins a tie), worded as
Compose v2 words it: ``services.web additional properties 'imag' not allowed``,
``services.web.ports must be a list``.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from dockyard.compose.errors import ProjectError

_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "data", "compose-spec.json")


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    with open(_SCHEMA_PATH, encoding="utf-8") as f:
        schema = json.load(f)
    return jsonschema.Draft7Validator(schema)


def _human_type(t: Any) -> str:
    if isinstance(t, list):
        names = [_human_type(x) for x in t]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return {"object": "mapping", "array": "list"}.get(str(t), str(t))


def _path(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(root)"


def _leaves(error: Any) -> list[Any]:
    """The error itself, or for oneOf/anyOf the errors of its alternatives (where the mistake really is)."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        out: list[Any] = []
        for sub in error.context:
            out += _leaves(sub)
        return out
    return [error]


def _specificity(error: Any) -> tuple[int, int]:
    return (len(error.absolute_path), 1 if error.validator == "type" else 0)


def _describe(error: Any) -> str:
    path = _path(error)
    if error.validator == "additionalProperties":
        allowed = set((error.schema.get("properties") or {}).keys())
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        import re

        extra = [k for k in error.instance if k not in allowed and not any(re.search(p, k) for p in patterns)]
        names = ", ".join(f"'{k}'" for k in extra)
        return f"{path} additional properties {names} not allowed"
    if error.validator == "type":
        return f"{path} must be a {_human_type(error.validator_value)}"
    if error.validator == "required":
        return f"{path} {error.message.replace(' is a required property', '')} is required"
    if error.validator == "enum":
        return f"{path} must be one of the following: " + ", ".join(f'"{v}"' for v in error.validator_value)
    if error.validator in ("minimum", "maximum"):
        return f"{path} must be {'>=' if error.validator == 'minimum' else '<='} {error.validator_value}"
    if error.validator == "uniqueItems":
        return f"{path} must contain unique items"
    return f"{path} {error.message}"


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dockyard", "compose-valid")


def _fingerprint(document: dict[str, Any]) -> str:
    from dockyard.compose.labels import sha256_hex

    st = os.stat(_SCHEMA_PATH)  # another schema (size or time) is another key
    data = json.dumps(document, sort_keys=True, separators=(",", ":"), default=repr)
    return sha256_hex(f"{st.st_size}:{st.st_mtime_ns}:{data}".encode())


def validate(document: dict[str, Any], source: str) -> None:
    """Raise ProjectError naming ``source`` when ``document`` breaks the schema.

    Importing jsonschema and compiling the schema costs a few hundred milliseconds, more than everything
    else a no-change ``up`` does; so a document once found valid is remembered by the digest of its
    content and of the schema file (a marker file in the user's cache), and the same content is not checked
    again. Invalid documents are never remembered.
    """
    marker = os.path.join(_cache_dir(), _fingerprint(document))
    if os.path.exists(marker):
        return
    errors = list(_validator().iter_errors(document))
    if not errors:
        try:
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            with open(marker, "x"):
                pass
        except OSError:
            pass  # an unwritable cache only costs the next run the full check
        return
    leaves: list[Any] = []
    for e in errors:
        leaves += _leaves(e)
    best = max(leaves, key=_specificity)
    raise ProjectError(f"validating {source}: {_describe(best)}")
