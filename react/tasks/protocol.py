"""The task contract: everything the training engine calls, and nothing else.

A task is a module with a ``Config`` dataclass (a subclass of :class:`react.config.RunConfig` that
adds ``data``/``model`` sections) and a ``Task`` class built as ``Task(cfg, paths)``. The engine
(:mod:`react.engine.trainer`) owns the run: it builds the accelerator, the loader, the optimizer,
the checkpoints, the logs and TensorBoard, and calls the hooks below. A new task is written from
this page alone; ``tests/helpers/toy_task.py`` is the smallest complete example.

Batches: ``collate`` returns a tensor, or a (nested) dict / tuple of tensors that the engine moves
to the device. A dict batch may carry ``"index"`` (the dataset items of the batch); with
``train.log_sample_indices`` the engine logs it per step and rank (used to prove DDP sharding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import Dataset


@dataclass(frozen=True)
class RunPaths:
    """The folders the engine hands a task.

    ``run_dir`` is where this run writes (config, logs, reports, predictions); ``trained_dir`` is,
    in test mode, the run folder of the checkpoint under test (its saved splits, say), else None.
    """

    run_dir: Path
    trained_dir: Path | None = None


@runtime_checkable
class Task(Protocol):
    """What the engine calls, in the order it calls it."""

    monitor: str  # key of validate()'s result that chooses the best checkpoint
    monitor_mode: str  # "min" or "max"

    def build_model(self, pretrained: bool = True) -> nn.Module:
        """The model, from ``cfg.model``. With ``pretrained`` the task loads any pretrained weights
        the config names (a local file or folder); the engine passes False when a checkpoint's
        weights follow, so a checkpoint alone rebuilds its model."""

    def train_dataset(self) -> Dataset:
        """Training items; the engine shards them over processes with a DistributedSampler.
        Check here that the data fits the model (e.g. feature sizes) and raise a one-line error."""

    def collate(self, items: Sequence[Any]) -> Any:
        """A batch from dataset items (runs in loader workers)."""

    def training_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise and scalars to log (floats), under the engine's autocast."""

    def validate(self, model: nn.Module, accelerator: Any) -> dict[str, float]:
        """Validation metrics (main process, no_grad, eval mode); must contain ``monitor``.
        Draw no random numbers from the global RNG, or the engine's restore hides it anyway."""


@runtime_checkable
class TestableTask(Task, Protocol):
    """A task with a test mode (``mode=test``, and after training with ``train.test_at_end``)."""

    def test(self, model: nn.Module, accelerator: Any) -> dict[str, Any]:
        """Test outputs (files under ``paths.run_dir``) and a JSON-able summary, which the
        engine writes to ``test_results.json``."""


class TaskFactory(Protocol):
    """The ``Task`` class of a task module."""

    def __call__(self, cfg: DictConfig, paths: RunPaths) -> Task: ...
