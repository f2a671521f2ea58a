"""One logging setup: console plus a log file in the run directory."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Stderr(logging.StreamHandler):
    """A console handler that writes to whatever ``sys.stderr`` is now (redirected or captured)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """The stream is always the current ``sys.stderr``."""


class _LazyFile(logging.FileHandler):
    """A log file (and its folder) created at the first record, so that a command that fails before
    it logs anything leaves no folder holding an empty ``log.txt``."""

    def __init__(self, path: Path):
        super().__init__(path, delay=True)

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def setup_logging(run_dir: str | os.PathLike | None = None, level: int = logging.INFO,
                  filename: str = "log.txt", main: bool | None = None) -> logging.Logger:
    """Configure the ``react`` logger: console always, ``<run_dir>/<filename>`` when given.

    Under ``accelerate launch`` only the main process logs below ERROR (``main``: default, whether
    this process has rank 0), so each line and warning of a shared job appears once."""
    if main is None:
        from react.utils.distributed import rank

        main = rank() == 0
    logger = logging.getLogger("react")
    logger.setLevel(level if main else logging.ERROR)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _Stderr()
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(console)
    if run_dir is not None:
        file_handler = _LazyFile(Path(run_dir) / filename)
        file_handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(file_handler)
    return logger


def get_logger(name: str) -> logging.Logger:
    """A child of the ``react`` logger, e.g. ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith("react") else f"react.{name}")


def warn_random_init(what: str, note: str = "") -> None:
    """Say loudly, once, that ``what`` has random, untrained weights (a logged warning: console
    and the run's log file; without a logging setup Python prints it to stderr)."""
    get_logger("react.weights").warning(f"{what} is RANDOMLY INITIALISED (random_init: true){note}: it "
                                        "carries no pre-trained knowledge; use this only for tests and demos")
