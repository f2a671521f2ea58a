"""Task registry: a task is a module with a ``Config`` dataclass and a ``Task`` class.

Modules are imported lazily so that a command only pays for the task it runs. A task outside
this package is named by its dotted module path (``task=mypackage.my_task``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASKS = {
    "regnn": "react.tasks.regnn",
    "ser": "react.tasks.ser",
}


def task_module(name: str) -> ModuleType:
    """Import the module of task ``name`` (e.g. ``regnn``)."""
    from react.config import ConfigError

    if name not in TASKS and "." not in name:
        raise ConfigError(f"unknown task '{name}'. Valid tasks: {', '.join(sorted(TASKS))} "
                          "(or a dotted module path)")
    try:
        return importlib.import_module(TASKS.get(name, name))
    except ModuleNotFoundError as err:
        raise ConfigError(f"task '{name}': cannot import {TASKS.get(name, name)}: {err}") from None


def task_schema(name: str) -> type:
    """The config dataclass of task ``name``."""
    return task_module(name).Config
