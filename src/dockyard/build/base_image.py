"""A stage's starting state: ``scratch``, an earlier stage, or an image from the store or its registry.

``--pull`` always asks the registry (a failed pull fails the build); an absent image is pulled. With a platform
(``FROM --platform``, the build's ``platform``) the local image is used only when it is of that platform,
otherwise that platform's entry is pulled from the registry's index (the store keeps one image per tag, as
docker's classic store does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DockyardError, NotFound
from . import platforms
from .options import BuildError, BuildOptions
from .ports import BaseImage, BuildImages
from .stage_state import StageResult, State, base_state

Out = Callable[[str], None]


def _progress_text(m: dict[str, Any]) -> str:
    status = m.get("status") or ""
    ident = m.get("id")
    return (f"{ident}: {status}\n" if ident else f"{status}\n") if status else ""


def _lookup(images: BuildImages, ref: str) -> BaseImage:
    try:
        return images.lookup(ref)
    except DockyardError as e:
        raise BuildError(str(e)) from None


def stage_base(images: BuildImages, base: str, base_stage: StageResult | None, opts: BuildOptions, out: Out,
               platform: platforms.Platform | None = None) -> State:
    if platform is not None:
        platforms.check_runnable_os(platform)
    if base.lower() == "scratch":
        st = base_state(None)
        platforms.set_on_config(st.config, platform or platforms.host())
        return st
    if base_stage is not None:
        return base_state(BaseImage(base_stage.image_id, base_stage.config, base_stage.layer_dirs, []))
    plat = str(platform) if platform is not None else ""

    def pull() -> None:
        try:
            images.pull(base, opts.auth, lambda m: out(_progress_text(m)), plat)
        except DockyardError as e:
            raise BuildError(str(e)) from None

    if opts.pull:
        pull()
    try:
        img = images.lookup(base)
    except NotFound:
        pull()
        img = _lookup(images, base)
    except DockyardError as e:
        raise BuildError(str(e)) from None
    if platform is not None and not platforms.matches(img.config, platform):
        pull()
        img = _lookup(images, base)
        if not platforms.matches(img.config, platform):
            raise BuildError(f"image with reference {base} was found but does not match the specified "
                             f"platform: wanted {platform}, actual: {platforms.of_config(img.config)}")
    return base_state(img)
