"""One logging setup: console plus a log file in the run directory."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(run_dir: str | os.PathLike | None = None, level: int = logging.INFO,
                  filename: str = "log.txt") -> logging.Logger:
    """Configure the ``react`` logger: console always, ``<run_dir>/<filename>`` when given."""
    logger = logging.getLogger("react")
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(console)
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(Path(run_dir) / filename)
        file_handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(file_handler)
    return logger


def get_logger(name: str) -> logging.Logger:
    """A child of the ``react`` logger, e.g. ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith("react") else f"react.{name}")


def warn_random_init(what: str, note: str = "") -> None:
    """Say loudly (log and a Python warning) that ``what`` has random, untrained weights."""
    msg = (f"{what} is RANDOMLY INITIALISED (random_init: true){note}: it carries no pre-trained "
           "knowledge; use this only for tests and demos")
    get_logger("react.weights").warning(msg)
    warnings.warn(msg, stacklevel=3)
