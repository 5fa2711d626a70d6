"""Running the needed stages at the same time (each waits only for the stages it depends on, as BuildKit's
solver does) while the client sees one ordered stream: stage after stage, each stage's messages as they come.
The first real error cancels the rest; a stage that only stopped because of it is not the one reported."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .options import BuildCancelled, BuildError
from .stage_graph import StageRun
from .stage_state import StageResult

Out = Callable[[str], None]


class StageScheduler:
    def __init__(self, runs: dict[int, StageRun], index_of: Callable[[str], int | None],
                 cancel: threading.Event) -> None:
        self.runs = runs
        self.index_of = index_of
        self.cancel = cancel
        self.results: dict[int, StageResult] = {}
        self._cv = threading.Condition()

    def lookup(self, ref: str) -> StageResult | None:
        """An earlier stage's result once it is done (None: ``ref`` is not a stage); waits for it."""
        idx = self.index_of(ref)
        if idx is None:
            return None
        with self._cv:
            while idx not in self.results:
                run = self.runs.get(idx)
                if run is None or run.error is not None or self.cancel.is_set():
                    raise BuildError(f"stage {ref} did not complete")
                self._cv.wait(0.5)
            return self.results[idx]

    def run(self, build_one: Callable[[int, Out], StageResult], emit: Out) -> dict[int, StageResult]:
        """Build every stage (``build_one(index, out)``) and stream their messages in stage order."""
        order = sorted(self.runs)
        threads = [threading.Thread(target=self._run_stage, args=(i, build_one), name=f"build-stage-{i}",
                                    daemon=True) for i in order]
        for t in threads:
            t.start()
        first_error: BaseException | None = None
        try:
            for i in order:
                run = self.runs[i]
                self._stream(run, emit)
                if run.error is not None and not isinstance(run.error, BuildCancelled):
                    first_error = run.error
                    break
                if run.error is not None and first_error is None:
                    first_error = run.error
        finally:
            if first_error is not None:
                self.cancel.set()
            for t in threads:
                t.join()
        errors = [e for e in (self.runs[i].error for i in order) if e is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, BuildCancelled)), first_error or errors[0])
        return self.results

    def _stream(self, run: StageRun, emit: Out) -> None:
        sent = 0
        while True:
            with self._cv:
                while sent >= len(run.messages) and not run.done:
                    self._cv.wait(0.5)
                pending = run.messages[sent:]
                sent = len(run.messages)
                finished = run.done
            for msg in pending:
                emit(msg)
            if finished and sent >= len(run.messages):
                return

    def _run_stage(self, i: int, build_one: Callable[[int, Out], StageResult]) -> None:
        run = self.runs[i]

        def out(msg: str) -> None:
            with self._cv:
                run.messages.append(msg)
                self._cv.notify_all()

        try:
            for d in run.deps:
                with self._cv:
                    while not self.runs[d].done:
                        self._cv.wait(0.5)
                    if self.runs[d].error is not None:
                        raise BuildCancelled()
            res = build_one(i, out)
            with self._cv:
                self.results[i] = res
                run.result = res
        except BaseException as e:  # noqa: BLE001 - handed to the streaming thread
            run.error = e
            self.cancel.set()
        finally:
            with self._cv:
                run.done = True
                self._cv.notify_all()
