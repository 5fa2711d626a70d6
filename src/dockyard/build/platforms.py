"""Platforms for ``FROM --platform`` and the build's ``platform``: parsed and normalised as containerd's
``platforms.Parse`` does, compared with an image config's ``os``/``architecture``/``variant``, and checked against
what this host runs.

The image store keeps one image per tag (docker's classic store), so a platform is honoured by using the local
image when it is of that platform and otherwise pulling that platform's manifest from the registry's index.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import Any

from .options import BuildError

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
                 "i386": "386", "i686": "386"}
_OSES = ("linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "plan9",
         "android", "ios", "js", "dragonfly", "wasip1")
_ARCHES = ("386", "amd64", "arm", "arm64", "ppc64", "ppc64le", "mips", "mipsle", "mips64", "mips64le", "s390x",
           "riscv64", "loong64", "wasm")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


def _normalize(os_: str, arch: str, variant: str) -> Platform:
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "arm64" and variant in ("v8", "8"):
        variant = ""
    elif arch == "amd64" and variant == "v1":
        variant = ""
    elif arch == "arm" and variant in ("", "7", "v7"):
        variant = "v7"
    elif variant.isdigit():
        variant = "v" + variant
    return Platform(os_, arch, variant)


def host() -> Platform:
    return _normalize("linux", _platform.machine().lower(), "")


def parse(spec: str) -> Platform:
    """``os/arch[/variant]``, ``os`` or ``arch``; docker's message (via containerd) on anything else."""
    text = spec.strip().lower()
    parts = text.split("/")
    bad = BuildError(f'failed to parse platform {spec}: "{spec}": unknown operating system or architecture: '
                     "invalid argument")
    if not text or len(parts) > 3 or any(not p for p in parts):
        raise bad
    if len(parts) == 1:
        word = _ARCH_ALIASES.get(parts[0], parts[0])
        if word in _OSES:
            h = host()
            return Platform(word, h.architecture, h.variant) if word == "linux" else Platform(word, h.architecture)
        if word in _ARCHES:
            return _normalize("linux", word, "")
        raise bad
    os_, arch = parts[0], _ARCH_ALIASES.get(parts[1], parts[1])
    if os_ not in _OSES or arch not in _ARCHES:
        raise bad
    return _normalize(os_, arch, parts[2] if len(parts) == 3 else "")


def of_config(config: dict[str, Any]) -> Platform:
    """The platform an image config declares (an image without one counts as the host's)."""
    h = host()
    return _normalize(str(config.get("os") or "linux").lower(), str(config.get("architecture") or h.architecture)
                      .lower(), str(config.get("variant") or "").lower())


def matches(config: dict[str, Any], want: Platform) -> bool:
    have = of_config(config)
    return have.os == want.os and have.architecture == want.architecture and \
        (not want.variant or not have.variant or have.variant == want.variant)


def check_runnable_os(want: Platform) -> None:
    """A Linux engine builds Linux images only (dockerd: ``operating system is not supported``)."""
    if want.os != "linux":
        raise BuildError("operating system is not supported")


def set_on_config(config: dict[str, Any], want: Platform) -> None:
    """``FROM --platform=… scratch``: the image declares the platform asked for."""
    config["os"] = want.os
    config["architecture"] = want.architecture
    if want.variant:
        config["variant"] = want.variant
    else:
        config.pop("variant", None)
