"""``.env`` and ``env_file`` parsing, the dotenv dialect Compose v2 reads.

``KEY=VALUE`` lines, optionally prefixed by ``export``; ``#`` comments (inline after whitespace on unquoted
values); single quotes keep text literally, double quotes know ``\\n``, ``\\t``, ``\\"`` and ``\\\\``;
unquoted and double-quoted values are interpolated against the variables read so far and the environment.
A bare ``KEY`` takes the environment's value when it has one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dockyard.compose.errors import ProjectError
from dockyard.compose.interpolate import InterpolationError, substitute

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "\\$"}


def parse_env_file(path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables ``path`` defines; ``environ`` resolves references and bare keys."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ProjectError(f"env file {path} not found: stat {path}: no such file or directory") from None
    except OSError as e:
        raise ProjectError(f"failed to read {path}: {e.strerror}") from None
    env = dict(environ or {})
    result: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, eq, raw = line.partition("=")
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise ProjectError(f"failed to read {path}: line {i}: unexpected character in variable name {key!r}")
        if not eq:
            if key in env:
                result[key] = env[key]
            continue
        raw = raw.lstrip()
        if raw[:1] in ("'", '"'):
            quote = raw[0]
            body = raw[1:]
            while True:
                end = _closing(body, quote)
                if end >= 0 or i >= len(lines):
                    break
                body += "\n" + lines[i]
                i += 1
            value = body[:end] if end >= 0 else body
            if quote == '"':
                value = _unescape(value)
                value = _expand(value, {**env, **result}, path)
        else:
            hash_at = raw.find(" #")
            value = (raw[:hash_at] if hash_at >= 0 else raw).strip()
            value = _expand(value, {**env, **result}, path)
        result[key] = value
    return result


def _closing(body: str, quote: str) -> int:
    j = 0
    while j < len(body):
        if body[j] == "\\" and quote == '"':
            j += 2
            continue
        if body[j] == quote:
            return j
        j += 1
    return -1


def _unescape(value: str) -> str:
    out = []
    j = 0
    while j < len(value):
        c = value[j]
        if c == "\\" and j + 1 < len(value) and value[j + 1] in _ESCAPES:
            out.append(_ESCAPES[value[j + 1]])
            j += 2
            continue
        out.append(c)
        j += 1
    return "".join(out)


def _expand(value: str, env: Mapping[str, str], path: str) -> str:
    try:
        return substitute(value.replace("\\$", "$$"), env.get)
    except InterpolationError as e:
        raise ProjectError(f"{path}: {str(e).replace('{path}', 'env file')}") from None


def read_env_files(paths: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of several files, later files winning; missing files are an error."""
    merged: dict[str, str] = {}
    for p in paths:
        merged.update(parse_env_file(p, {**environ, **merged}))
    return merged


def default_env_file(directory: str) -> str | None:
    path = os.path.join(directory, ".env")
    return path if os.path.isfile(path) else None
