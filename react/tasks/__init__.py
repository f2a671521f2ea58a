"""Task registry: a task is a module with a ``Config`` dataclass and a ``Task`` class.

The contract a task fulfils is written down in :mod:`react.tasks.protocol`. Modules are imported
lazily so that a command only pays for the task it runs. A task outside this package is named by
its dotted module path (``task=mypackage.my_task``). Every reaction generator
(:data:`react.reaction.models.GENERATORS`) is a task of :mod:`react.reaction.task`, whose
``schema(name)`` gives that generator's config dataclass.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from types import ModuleType

from omegaconf import DictConfig

from react.config import ConfigError, config_layers, resolve
from react.reaction.models import GENERATORS
from react.tasks.protocol import RunPaths, Task, TaskFactory, TestableTask

TASKS = {
    **{name: "react.reaction.task" for name in GENERATORS},
    "ser": "react.tasks.ser",
    "ssl": "react.tasks.ssl",
    "classify": "react.tasks.classify",
}

__all__ = ["TASKS", "RunPaths", "Task", "TaskFactory", "TestableTask", "build_task", "load_task_config",
           "task_module", "task_schema"]


def task_module(name: str) -> ModuleType:
    """Import the module of task ``name`` (e.g. ``regnn``)."""
    if name not in TASKS and "." not in name:
        raise ConfigError(f"unknown task '{name}'. Valid tasks: {', '.join(sorted(TASKS))} "
                          "(or a dotted module path)")
    try:
        return importlib.import_module(TASKS.get(name, name))
    except ModuleNotFoundError as err:
        raise ConfigError(f"task '{name}': cannot import {TASKS.get(name, name)}: {err}") from None


def task_schema(name: str) -> type:
    """The config dataclass of task ``name``."""
    module = task_module(name)
    return module.schema(name) if hasattr(module, "schema") else module.Config


def build_task(cfg: DictConfig, paths: RunPaths) -> Task:
    """The ``Task`` object of ``cfg.task``."""
    factory: TaskFactory = task_module(cfg.task).Task
    return factory(cfg, paths)


def load_task_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> DictConfig:
    """Resolve a task config: the ``task`` key (YAML or override) names the schema, then
    schema defaults <- YAML at ``path`` <- ``overrides`` as :func:`react.config.load_config`."""
    layers = config_layers(path, overrides)
    name = next((d["task"] for _, d in reversed(layers) if "task" in d), None)
    if name is None:
        raise ConfigError("no 'task' given: set task: <name> in the YAML or task=<name>")
    return resolve(task_schema(name), layers)
