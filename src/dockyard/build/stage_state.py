"""What a stage carries from step to step: the image so far (ID, config, layer directories), the build args it
declared and its shell. Kept apart from the step code so every step module shares one definition."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .imageconfig import empty_container_config
from .ports import BaseImage

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]


@dataclass
class StageResult:
    image_id: str
    config: dict[str, Any]
    layer_dirs: list[str]


@dataclass
class State:
    """The image being built by a stage: its ID and full image config."""

    image_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    layer_dirs: list[str] = field(default_factory=list)
    cmd_set: bool = False
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in this stage (value or unset)
    shell: list[str] = field(default_factory=lambda: list(DEFAULT_SHELL))

    @property
    def cc(self) -> dict[str, Any]:
        return self.config.setdefault("config", empty_container_config())


def env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def base_state(img: BaseImage | None) -> State:
    """The state a stage starts from: its base image, or an empty image for ``scratch``."""
    if img is None:
        return State(config={"architecture": "amd64", "os": "linux", "config": empty_container_config(),
                             "rootfs": {"type": "layers", "diff_ids": []}, "history": []})
    cfg = copy.deepcopy(img.config)
    cc = cfg.setdefault("config", empty_container_config())
    for k, v in empty_container_config().items():
        cc.setdefault(k, v)
    shell = cc.get("Shell") or list(DEFAULT_SHELL)
    return State(image_id=img.id, config=cfg, layer_dirs=list(img.layer_dirs), shell=list(shell))
