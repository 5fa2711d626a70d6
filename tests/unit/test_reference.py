"""Image reference parsing and normalisation, checked against docker's behaviour and wording."""

from __future__ import annotations

import pytest

from dockyard.api.errors import http_status
from dockyard.images.reference import (
    ReferenceError_,
    looks_like_id,
    parse_normalized,
    parse_tagged,
)

VALID = [
    # input, full normalised string, familiar form
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox", "busybox"),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("localhost:5000/app:1", "localhost:5000/app:1", "localhost:5000/app:1"),
    ("example.com/a/b/c", "example.com/a/b/c", "example.com/a/b/c"),
    ("a-b__c/e.f", "docker.io/a-b__c/e.f", "a-b__c/e.f"),
    ("Example.com/app", "Example.com/app", "Example.com/app"),
    ("[::1]:5000/app:x", "[::1]:5000/app:x", "[::1]:5000/app:x"),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64,
     "busybox@sha256:" + "a" * 64),
    ("busybox:1@sha256:" + "b" * 64, "docker.io/library/busybox:1@sha256:" + "b" * 64,
     "busybox:1@sha256:" + "b" * 64),
]


@pytest.mark.parametrize(("text", "full", "familiar"), VALID)
def test_valid_references(text: str, full: str, familiar: str) -> None:
    ref = parse_normalized(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


INVALID = [
    ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
    ("user/App", "invalid reference format: repository name (user/App) must be lowercase"),
    ("busybox:", "invalid reference format"),
    (":tag", "invalid reference format"),
    ("-busybox", "invalid reference format"),
    ("busybox:-tag", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("a_b.c/x", "invalid reference format"),
    ("UPPER.com/App", "invalid reference format: repository name (App) must be lowercase"),
    ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings"),
    ("x/" + "a" * 260, "invalid reference format: repository name must not be more than 255 characters"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_references(text: str, message: str) -> None:
    with pytest.raises(ReferenceError_) as exc:
        parse_normalized(text)
    assert str(exc.value) == message
    assert http_status(exc.value) == 400  # an InvalidParameter: the API answers 400


def test_default_tag() -> None:
    assert str(parse_tagged("busybox")) == "docker.io/library/busybox:latest"
    assert parse_tagged("host:5000/x").familiar() == "host:5000/x:latest"
    digest = "busybox@sha256:" + "c" * 64
    assert parse_tagged(digest).familiar() == digest  # digest references get no tag


def test_tag_length_limit() -> None:
    assert parse_normalized("a:" + "t" * 128).tag == "t" * 128
    with pytest.raises(ReferenceError_):
        parse_normalized("a:" + "t" * 129)


def test_id_detection() -> None:
    assert looks_like_id("0123456789ab")
    assert looks_like_id("sha256:" + "f" * 64)
    assert not looks_like_id("busybox")
    assert not looks_like_id("sha256:xyz")
