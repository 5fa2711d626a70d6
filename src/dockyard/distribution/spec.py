"""The OCI distribution / Docker registry v2 protocol's shared vocabulary: media types, digests, descriptors,
manifests, indexes and platform selection.

Used by the registry client (pull, push) and the registry server alike, so both agree on what a valid manifest
is. Pure logic: nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameter

# -- media types -------------------------------------------------------------------------------------------
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

IMAGE_MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
SCHEMA1 = (DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED)
LAYER_TYPES = (DOCKER_LAYER, DOCKER_FOREIGN_LAYER, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_NONDIST,
               OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD)
FOREIGN_LAYER_TYPES = (DOCKER_FOREIGN_LAYER, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD)

# What a client sends as Accept for a manifest (docker's order: schema 2 and OCI, lists and indexes).
MANIFEST_ACCEPT = ", ".join((DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX))

# docker's message for a schema 1 manifest (moby: distribution/pull_v2.go, since v28 schema 1 is gone)
SCHEMA1_REFUSED = ("Docker Image Format v1 and Docker Image manifest version 2, schema 1 "
                   "support has been removed. Suggest the author of {ref} to upgrade the image to the OCI Format "
                   "or Docker Image manifest v2, schema 2. More information at "
                   "https://docs.docker.com/go/deprecated-image-specs/")

MAX_MANIFEST_SIZE = 4 << 20  # distribution refuses larger manifests; so do we, before parsing

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class ManifestError(InvalidParameter):
    """A manifest or index that is not valid JSON of a known shape."""


class DigestMismatch(InvalidParameter):
    """Content whose sha256 is not the digest it was asked for by."""


# -- digests -----------------------------------------------------------------------------------------------
def is_digest(s: str) -> bool:
    return bool(_DIGEST_RE.match(s))


def parse_digest(s: str) -> str:
    """A ``sha256:<64 hex>`` digest; anything else (other algorithms included) is refused."""
    if not _DIGEST_RE.match(s):
        if ":" in s and not s.startswith("sha256:"):
            raise InvalidParameter(f"unsupported digest algorithm: {s}")
        raise InvalidParameter(f"invalid digest: {s!r}")
    return s


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_bytes(data: bytes, expected: str) -> None:
    got = digest_of(data)
    if got != expected:
        raise DigestMismatch(f"digest mismatch: expected {expected}, got {got}")


# -- descriptors and platforms -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
                 "i386": "386", "i686": "386"}


def normalize_platform(os_: str, arch: str, variant: str = "") -> Platform:
    """containerd's platforms.Normalize: aliases folded, arm64's v8 and amd64's v1 variants dropped."""
    os_ = (os_ or "linux").lower()
    arch = _ARCH_ALIASES.get(arch.lower(), arch.lower()) if arch else "amd64"
    variant = (variant or "").lower()
    if arch == "arm64" and variant in ("v8", "8"):
        variant = ""
    if arch == "amd64" and variant == "v1":
        variant = ""
    if arch == "arm" and variant in ("", "7", "v7") and os_ == "linux":
        variant = "v7"
    return Platform(os_, arch, variant)


def parse_platform(spec: str) -> Platform:
    """``os[/arch[/variant]]`` or ``arch`` as ``--platform`` takes it; docker's message on a bad one."""
    parts = [p for p in spec.strip().split("/")]
    if not spec.strip() or any(not p for p in parts) or len(parts) > 3:
        raise InvalidParameter(f'"{spec}": invalid platform format')
    if len(parts) == 1:
        if parts[0].lower() in ("linux", "windows", "darwin", "freebsd"):
            return normalize_platform(parts[0], host_platform().architecture)
        return normalize_platform("linux", parts[0])
    return normalize_platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def parse_platform_arg(value: str) -> Platform:
    """A ``platform`` query parameter: JSON-encoded OCI platform (what docker-cli sends for push, API 1.46+)
    or ``os/arch[/variant]``."""
    if value.lstrip().startswith("{"):
        try:
            doc = json.loads(value)
        except ValueError:
            raise InvalidParameter(f"invalid platform: {value}") from None
        if not isinstance(doc, dict):
            raise InvalidParameter(f"invalid platform: {value}")
        return normalize_platform(str(doc.get("os") or ""), str(doc.get("architecture") or ""),
                                  str(doc.get("variant") or ""))
    return parse_platform(value)


def host_platform() -> Platform:
    return normalize_platform("linux", _platform.machine())


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_json(cls, d: Any) -> Descriptor:
        if not isinstance(d, dict):
            raise ManifestError("invalid descriptor")
        digest = d.get("digest")
        size = d.get("size")
        if not isinstance(digest, str) or not is_digest(digest):
            raise ManifestError(f"invalid descriptor digest: {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"invalid descriptor size for {digest}")
        plat = None
        p = d.get("platform")
        if isinstance(p, dict):
            plat = normalize_platform(str(p.get("os", "")), str(p.get("architecture", "")),
                                      str(p.get("variant", "")))
        urls = d.get("urls") or ()
        return cls(str(d.get("mediaType") or ""), digest, size, tuple(str(u) for u in urls), plat,
                   dict(d.get("annotations") or {}))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.platform is not None:
            out["platform"] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                out["platform"]["variant"] = self.platform.variant
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


# -- manifests ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def _load_json(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_MANIFEST_SIZE:
        raise ManifestError("manifest too large")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ManifestError(f"invalid manifest: {e}") from None
    if not isinstance(doc, dict):
        raise ManifestError("invalid manifest: not a JSON object")
    return doc


def manifest_kind(raw: bytes, content_type: str = "") -> str:
    """The media type of a manifest document: its ``mediaType`` field, else the Content-Type, else sniffed
    (``manifests`` → OCI index, ``config`` → OCI manifest, ``fsLayers`` → schema 1)."""
    doc = _load_json(raw)
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    ct = content_type.split(";", 1)[0].strip()
    if ct in IMAGE_MANIFESTS + INDEXES + SCHEMA1:
        return ct
    if doc.get("schemaVersion") == 1 or "fsLayers" in doc:
        return DOCKER_MANIFEST_V1_SIGNED
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc:
        return OCI_MANIFEST
    return ct or ""


def parse_manifest(raw: bytes, media_type: str) -> ImageManifest:
    doc = _load_json(raw)
    if doc.get("schemaVersion") != 2:
        raise ManifestError("invalid manifest: schemaVersion must be 2")
    config = Descriptor.from_json(doc.get("config"))
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("invalid manifest: layers must be a list")
    return ImageManifest(media_type, config, tuple(Descriptor.from_json(x) for x in layers))


def parse_index(raw: bytes, media_type: str) -> Index:
    doc = _load_json(raw)
    if doc.get("schemaVersion") != 2:
        raise ManifestError("invalid index: schemaVersion must be 2")
    ms = doc.get("manifests")
    if not isinstance(ms, list):
        raise ManifestError("invalid index: manifests must be a list")
    return Index(media_type, tuple(Descriptor.from_json(x) for x in ms))


def select_platform(index: Index, want: Platform) -> Descriptor | None:
    """The index entry for ``want`` (containerd's matcher: exact variant first, then a lower arm variant,
    then an entry without variant); attestation manifests (``unknown/unknown``) never match."""
    candidates = [d for d in index.manifests
                  if d.platform is not None and d.platform.os == want.os
                  and d.platform.architecture == want.architecture]
    for d in candidates:
        if d.platform is not None and d.platform.variant == want.variant:
            return d
    if want.architecture == "arm" and want.variant.startswith("v"):
        for v in range(int(want.variant[1:] or 0) - 1, 4, -1):
            for d in candidates:
                if d.platform is not None and d.platform.variant == f"v{v}":
                    return d
    for d in candidates:
        if d.platform is not None and not d.platform.variant:
            return d
    if not want.variant and candidates:
        return candidates[0]
    return None


def layer_compression(media_type: str) -> str:
    """``gzip``, ``zstd`` or ``none`` by media type (the extractor sniffs the bytes anyway)."""
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith(".tar") or media_type.endswith("nondistributable.v1.tar"):
        return "none"
    return "gzip"


def image_manifest_json(config: Descriptor, layers: list[Descriptor], media_type: str = DOCKER_MANIFEST) -> bytes:
    """A schema 2 / OCI manifest as docker pushes it (indented three spaces, like docker's own)."""
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": config.to_json(),
           "layers": [x.to_json() for x in layers]}
    return json.dumps(doc, indent=3).encode()
