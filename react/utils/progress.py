"""Progress for long loops: a tqdm bar on a terminal, plain periodic log lines otherwise.

Logs written to files or CI consoles then hold readable lines instead of carriage returns.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from react.utils.logging import get_logger

T = TypeVar("T")
log = get_logger("react.progress")


class _Lines:
    """Iterate and log ``desc: i/total`` at most every ``every`` seconds (and at the end)."""

    def __init__(self, iterable: Iterable[T], desc: str, total: int | None, unit: str, every: float):
        self.iterable, self.desc, self.unit, self.every = iterable, desc, unit, every
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.postfix = ""

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def _line(self, done: int, started: float) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        rate = done / max(time.perf_counter() - started, 1e-9)
        log.info("%s: %d%s %s (%.1f %s/s) %s", self.desc, done, of, self.unit, rate, self.unit, self.postfix)

    def __iter__(self) -> Iterator[T]:
        started = last = time.perf_counter()
        done = 0
        for item in self.iterable:
            yield item
            done += 1
            if time.perf_counter() - last >= self.every:
                self._line(done, started)
                last = time.perf_counter()
        if done and self.every != float("inf") and time.perf_counter() - started >= self.every:
            self._line(done, started)

    def close(self) -> None:
        """Nothing to close (the tqdm interface)."""


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, unit: str = "it",
             disable: bool = False, leave: bool = False, every: float = 30.0) -> Iterable[T]:
    """``tqdm(iterable)`` when stderr is a terminal, else periodic log lines every ``every`` s."""
    if disable:
        return _Lines(iterable, desc, total, unit, every=float("inf"))
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave)
    return _Lines(iterable, desc, total, unit, every)
