"""Optimizer and per-epoch learning-rate schedules named in ``TrainConfig``."""

from __future__ import annotations

import bisect
import math

import torch
from omegaconf import DictConfig

from react.config import ConfigError


def param_groups(model: torch.nn.Module, train: DictConfig) -> list[dict]:
    """Trainable parameters grouped by ``train.lr_scales`` prefixes (one group without scales)."""
    scales = dict(train.lr_scales)
    groups: dict[float, list] = {}
    matched = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        prefix = next((p for p in scales if name.startswith(p)), None)
        matched.add(prefix)
        groups.setdefault(scales[prefix] if prefix else 1.0, []).append(param)
    unused = sorted(set(scales) - matched)
    if unused:
        raise ConfigError(f"train.lr_scales: no trainable parameter starts with {', '.join(unused)}")
    return [{"params": params, "lr": train.lr * scale} for scale, params in groups.items()]


def build_optimizer(model: torch.nn.Module, train: DictConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over :func:`param_groups`, as the fused kernel (one pass over all parameters per
    step, CPU and GPU alike; the same update rule as the per-parameter loop)."""
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if train.optimizer not in kinds:
        raise ConfigError(f"train.optimizer: unknown '{train.optimizer}'. Valid: {', '.join(kinds)}")
    return kinds[train.optimizer](param_groups(model, train), lr=train.lr, weight_decay=train.weight_decay,
                                  fused=True)


def lr_factor(epoch: int, train: DictConfig) -> float:
    """Multiplier of ``train.lr`` during ``epoch`` (0-based): linear warm-up, then the schedule."""
    if epoch < train.warmup_epochs:
        return (epoch + 1) / (train.warmup_epochs + 1)
    if train.scheduler == "warmup_multistep":
        return train.gamma ** bisect.bisect_right(sorted(train.milestones), epoch)
    if train.scheduler == "cosine":
        span = max(1, train.epochs - train.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - train.warmup_epochs) / span))
    if train.scheduler == "constant":
        return 1.0
    raise ConfigError(f"train.scheduler: unknown '{train.scheduler}'. "
                      "Valid: warmup_multistep, cosine, constant")


def build_scheduler(optimizer: torch.optim.Optimizer, train: DictConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per epoch."""
    lr_factor(train.warmup_epochs, train)  # validate the name before training starts
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(epoch, train))
