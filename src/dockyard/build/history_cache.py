"""``cachefrom`` images matched by their history, as dockerd's classic builder does for ``--cache-from``.

An image that was pulled (or loaded) has no build-cache rows here, only its config. A step is a hit on such an
image when the image's history continues the current state's history (same entries, same layers so far) and
its next entry was ``created_by`` exactly what this step would record. At the image's last entry the image
itself is the result; before that, an intermediate image is made from the current state plus that entry and
its layer, which is already in the store as part of the cache image (no layer is copied or re-made).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ports import BaseImage


@dataclass(frozen=True)
class HistoryHit:
    image: BaseImage
    index: int  # the history entry this step matched

    @property
    def is_last(self) -> bool:
        return self.index == len(self.image.config.get("history") or []) - 1


def _history(cfg: dict[str, Any]) -> list[Any]:
    return list(cfg.get("history") or [])


def _diff_ids(cfg: dict[str, Any]) -> list[str]:
    return list((cfg.get("rootfs") or {}).get("diff_ids") or [])


def _continues(target: dict[str, Any], parent: dict[str, Any] | None) -> bool:
    """dockerd's ``isValidParent``: the parent's history and layers are a strict prefix of the target's."""
    th = _history(target)
    if not th:
        return False
    if parent is None:
        return True
    ph, pd = _history(parent), _diff_ids(parent)
    if not ph and not pd:
        return True
    td = _diff_ids(target)
    if len(ph) >= len(th) or len(pd) > len(td):
        return False
    return th[:len(ph)] == ph and td[:len(pd)] == pd


def match(sources: list[BaseImage], parent: dict[str, Any] | None, created_by: str) -> HistoryHit | None:
    n = len(_history(parent)) if parent is not None else 0
    for img in sources:
        if not _continues(img.config, parent):
            continue
        entry = _history(img.config)[n]
        if isinstance(entry, dict) and entry.get("created_by", "") == created_by:
            return HistoryHit(img, n)
    return None


def _layer_at(cfg: dict[str, Any], index: int) -> str:
    """The diff ID the history entry ``index`` added ("" for an empty-layer entry)."""
    hist = _history(cfg)
    if hist[index].get("empty_layer"):
        return ""
    k = sum(1 for h in hist[:index] if not (isinstance(h, dict) and h.get("empty_layer")))
    ids = _diff_ids(cfg)
    return ids[k] if k < len(ids) else ""


def restored_config(hit: HistoryHit, parent: dict[str, Any] | None, step_config: dict[str, Any]) -> dict[str, Any]:
    """The intermediate image for a hit before the cache image's last entry: the parent's history and layers
    plus the matched entry (and its layer), with the step's own container config."""
    target = hit.image.config
    entry = dict(_history(target)[hit.index])
    history = (_history(parent) if parent is not None else []) + [entry]
    diff_ids = _diff_ids(parent) if parent is not None else []
    layer = _layer_at(target, hit.index)
    if layer:
        diff_ids = [*diff_ids, layer]
    cfg: dict[str, Any] = {"architecture": target.get("architecture", "amd64"), "os": target.get("os", "linux"),
                           "config": step_config, "created": entry.get("created", ""),
                           "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    for k in ("author", "variant", "os.version", "os.features"):
        if k in target:
            cfg[k] = target[k]
    return cfg
