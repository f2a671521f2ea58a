"""Progress for long work: a tqdm bar on a terminal, plain periodic log lines otherwise.

Logs written to files or CI consoles then hold readable lines instead of carriage returns.
``progress(iterable)`` wraps a loop; ``progress(total=n)`` is a counter advanced with ``update``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from react.utils.logging import get_logger

log = get_logger("react.progress")


class LineProgress:
    """The tqdm interface (iterate, ``update``, ``set_postfix``, context manager), logging
    ``desc: done/total`` at most every ``every`` seconds and once at the end of long work."""

    def __init__(self, iterable: Iterable | None, desc: str, total: int | None, unit: str, every: float):
        self.iterable, self.desc, self.unit, self.every = iterable, desc, unit, every
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.done, self.postfix = total, 0, ""
        self.started = self.last = time.perf_counter()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        log.info("%s: %d%s %s (%.1f %s/s) %s", self.desc, self.done, of, self.unit, rate, self.unit,
                 self.postfix)
        self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.perf_counter() - self.last >= self.every:
            self._line()

    def close(self) -> None:
        if self.done and math.isfinite(self.every) and time.perf_counter() - self.started >= self.every:
            self._line()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(iterable: Iterable | None = None, desc: str = "", total: int | None = None, unit: str = "it",
             disable: bool = False, leave: bool = False, every: float = 30.0) -> Any:
    """``tqdm`` when stderr is a terminal, else a :class:`LineProgress` logging every ``every`` s."""
    if not disable and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, dynamic_ncols=True)
    return LineProgress(iterable, desc, total, unit, math.inf if disable else every)
