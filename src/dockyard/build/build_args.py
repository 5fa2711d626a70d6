"""Build args before the first stage: the predefined platform args (``BUILDPLATFORM``, ``TARGETARCH``…), the
``ARG``s declared before ``FROM`` (``--build-arg`` wins over their defaults), and which args count as used
for docker's "were not consumed" warning."""

from __future__ import annotations

import platform as platform_mod

from .dockerfile import ParseError
from .instructions import PROXY_ARGS, Plan, split_words_raw
from .options import BuildOptions
from .shell_words import Lexer, ShellWordError


def platform_args(platform: str) -> dict[str, str | None]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform_mod.machine(), platform_mod.machine())
    build = f"linux/{arch}"
    target = platform or build
    t_os, _, rest = target.partition("/")
    t_arch, _, t_var = rest.partition("/")
    return {"BUILDPLATFORM": build, "BUILDOS": "linux", "BUILDARCH": arch, "BUILDVARIANT": "",
            "TARGETPLATFORM": target, "TARGETOS": t_os, "TARGETARCH": t_arch or arch, "TARGETVARIANT": t_var}


def meta_args(p: Plan, opts: BuildOptions, lexer: Lexer, escape: str) -> tuple[dict[str, str | None], set[str]]:
    """The args every ``FROM`` (and each stage's bare ``ARG name``) sees, and the names consumed so far."""
    used: set[str] = set()
    meta: dict[str, str | None] = dict(platform_args(opts.platform))
    for node in p.meta_args:
        for word in split_words_raw(node.args, escape):
            name, sep, default = word.partition("=")
            used.add(name)
            if opts.buildargs.get(name) is not None:
                meta[name] = opts.buildargs[name]
            elif sep:
                try:
                    meta[name] = lexer.word(default, {k: v for k, v in meta.items() if v is not None})
                except ShellWordError as e:
                    raise ParseError(node.line, str(e)) from None
            else:
                meta[name] = None
    for k in PROXY_ARGS:
        if opts.buildargs.get(k) is not None:
            used.add(k)
    return meta, used
