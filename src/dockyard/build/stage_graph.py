"""Which stages a build needs and how their steps are numbered: the target and every stage it reaches through
``FROM``, ``COPY --from`` and ``RUN --mount=from=`` (unused stages are skipped, as BuildKit does), with the
classic builder's ``Step N/M`` numbering over the stages that run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .instructions import Plan, Stage
from .shell_words import Lexer
from .stage_state import StageResult


@dataclass
class StageRun:
    """One needed stage while the build runs: what it waits for, the messages it has produced so far."""

    stage: Stage
    deps: set[int] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    result: StageResult | None = None


def stage_index(p: Plan, ref: str) -> int | None:
    """The stage ``ref`` names (``AS name`` or its number), or None for an image reference."""
    for s in p.stages:
        if s.name and s.name == ref.lower():
            return s.index
    if ref.isdigit() and int(ref) < len(p.stages):
        return int(ref)
    return None


def needed_stages(p: Plan, bases: list[str], target: int, lexer: Lexer,
                  meta_env: dict[str, str]) -> dict[int, StageRun]:
    """The target stage and every stage it depends on (FROM, COPY --from, RUN --mount from=)."""
    runs: dict[int, StageRun] = {}
    todo = [target]
    while todo:
        i = todo.pop()
        if i in runs:
            continue
        stage = p.stages[i]
        run = StageRun(stage)
        refs = [bases[i]]
        for node in stage.nodes:
            for f in node.flags:
                if f.startswith("from="):
                    refs.append(lexer.word(f[5:], meta_env))
                elif f.startswith("mount="):
                    m = re.search(r"(?:^|,)from=([^,]+)", f[6:])
                    if m:
                        refs.append(lexer.word(m.group(1), meta_env))
        for ref in refs:
            idx = None
            for s in p.stages[:i]:
                if s.name and s.name == ref.lower():
                    idx = s.index
            if idx is None and ref.isdigit() and int(ref) < i:
                idx = int(ref)
            if idx is not None and idx != i:
                run.deps.add(idx)
                todo.append(idx)
        runs[i] = run
    return runs


def step_numbers(runs: dict[int, StageRun], extra_steps: int) -> tuple[dict[int, int], int]:
    """The first step number of each needed stage (its FROM) and the total, ``extra_steps`` included."""
    order = sorted(runs)
    total = sum(1 + len(runs[i].stage.nodes) for i in order) + extra_steps
    first: dict[int, int] = {}
    n = 1
    for i in order:
        first[i] = n
        n += 1 + len(runs[i].stage.nodes)
    return first, total
