"""Image references parsed and normalised as docker's distribution/reference does.

``busybox`` → ``docker.io/library/busybox:latest``; ``host:5000/a/b:tag``; ``name@sha256:…``.
Errors carry docker's exact wording because clients show them verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_ANCHORED_NAME_RE = re.compile(rf"^(?:({_DOMAIN})/)?({_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)$")
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


class ReferenceError_(InvalidParameter):
    """An image name docker would refuse (HTTP 400)."""


@dataclass(frozen=True)
class Reference:
    """A normalised reference: ``domain/path`` plus an optional tag and/or digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.name

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar(self) -> str:
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_default_tag(self) -> Reference:
        """``TagNameOnly``: a bare name gets ``:latest`` (a digest reference stays as is)."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1 or ("." not in name[:i] and ":" not in name[:i] and name[:i] != "localhost"
                   and name[:i].lower() == name[:i]):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = name[:i], name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def _parse(s: str) -> Reference:
    """docker's ``reference.Parse`` on an already-qualified string."""
    m = _REFERENCE_RE.match(s)
    if m is None:
        if not s:
            raise ReferenceError_("invalid reference format: repository name must have at least one component")
        if _REFERENCE_RE.match(s.lower()):
            raise ReferenceError_("invalid reference format: repository name must be lowercase")
        raise ReferenceError_("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError_(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    nm = _ANCHORED_NAME_RE.match(name)
    assert nm is not None
    domain, path = nm.group(1) or "", nm.group(2)
    if digest is not None and not digest.startswith("sha256:"):
        raise ReferenceError_("unsupported digest algorithm")
    if digest is not None and len(digest) != len("sha256:") + 64:
        raise ReferenceError_("invalid checksum digest length")
    return Reference(domain, path, tag, digest)


def parse_normalized(s: str) -> Reference:
    """``ParseNormalizedNamed``: a user-typed name, normalised to docker.io/library/… ."""
    if _IDENTIFIER_RE.match(s):
        raise ReferenceError_(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(s)
    tag_sep = remainder.find(":")
    remote = remainder[:tag_sep] if tag_sep > -1 else remainder
    if remote.lower() != remote:
        raise ReferenceError_(f"invalid reference format: repository name ({remote}) must be lowercase")
    ref = _parse(f"{domain}/{remainder}")
    if not ref.domain:
        raise ReferenceError_("invalid reference format")
    return ref


def parse_tagged(s: str) -> Reference:
    """A name as ``docker tag``/``import`` take it: normalised, ``:latest`` when untagged."""
    return parse_normalized(s).with_default_tag()


def validate_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise ReferenceError_("invalid tag format")
    return tag


def looks_like_id(s: str) -> bool:
    """A full or short image ID (``sha256:`` optional) rather than a name."""
    h = s[7:] if s.startswith("sha256:") else s
    return bool(re.fullmatch(r"[a-f0-9]{1,64}", h))


def is_full_digest(s: str) -> bool:
    return bool(_SHA256_RE.match(s))
