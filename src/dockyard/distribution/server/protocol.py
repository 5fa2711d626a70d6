"""What the server adds to the shared protocol vocabulary (``distribution/spec.py``): the grammar of
repository names, tags and digest references in request paths."""

from __future__ import annotations

import re

from ..spec import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    IMAGE_MANIFESTS,
    INDEXES,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
)

__all__ = ["DOCKER_MANIFEST", "DOCKER_MANIFEST_LIST", "OCI_INDEX", "OCI_MANIFEST"]

NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
NAME_MAX = 255

INDEX_TYPES = frozenset(INDEXES)
MANIFEST_TYPES = frozenset(IMAGE_MANIFESTS + INDEXES)
MANIFEST_MAX = MAX_MANIFEST_SIZE


def valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX and NAME_RE.match(name) is not None


def is_digest(ref: str) -> bool:
    return ":" in ref
