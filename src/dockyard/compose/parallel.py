"""Threads for independent engine calls, without concurrent.futures (whose import pulls in logging:
tens of milliseconds a no-change ``up`` would pay for nothing)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Task(Generic[T]):
    """``fn()`` running on its own thread; ``result()`` waits and returns its value or raises its error."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits for the result
            self._error = e

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[no-any-return]


def _bind(fn: Callable[[Any], T], item: Any) -> Callable[[], T]:
    return lambda: fn(item)


def run_all(fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
    """``fn`` on every item at once; all are waited for, then the first error (if any) is raised."""
    tasks = [Task(_bind(fn, item)) for item in items]
    errors: list[BaseException] = []
    out: list[T] = []
    for t in tasks:
        try:
            out.append(t.result())
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    if errors:
        raise errors[0]
    return out
