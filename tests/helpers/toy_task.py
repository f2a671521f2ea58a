"""A small regression task used to test the engine (resume, DDP, checkpoints) in isolation."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from torch import nn

from react.config import RunConfig
from react.tasks import RunPaths


@dataclass
class ToyData:
    root: str = ""
    size: int = 64
    noise: float = 0.1
    interrupt_at: int = 0  # > 0: a Ctrl-C (KeyboardInterrupt) at this training step


@dataclass
class ToyModel:
    hidden: int = 16
    dropout: float = 0.2


@dataclass
class Config(RunConfig):
    task: str = "helpers.toy_task"
    data: ToyData = field(default_factory=ToyData)
    model: ToyModel = field(default_factory=ToyModel)


class ToyDataset(torch.utils.data.Dataset):
    """y = x . w / 2 (variance ~1.9), fresh input noise per draw (global RNG, like augmentation)."""

    def __init__(self, items: int, noise: float):
        gen = torch.Generator().manual_seed(1)
        self.x = torch.randn(items, 4, generator=gen)
        self.y = 0.5 * (self.x @ torch.tensor([1.0, -2.0, 0.5, 1.5]))[:, None]
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return i, self.x[i] + self.noise * torch.randn(4), self.y[i]


class Task:
    """The whole contract of react.tasks.protocol, nothing more."""

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, cfg: DictConfig, paths: RunPaths):
        self.cfg, self.paths = cfg, paths
        self.data = ToyDataset(cfg.data.size, cfg.data.noise)
        self.steps = 0

    def build_model(self, pretrained: bool = True) -> nn.Module:
        h = self.cfg.model.hidden
        return nn.Sequential(nn.Linear(4, h), nn.Tanh(), nn.Dropout(self.cfg.model.dropout), nn.Linear(h, 1))

    def train_dataset(self):
        return self.data

    def collate(self, items):
        index, x, y = zip(*items)
        return {"index": torch.tensor(index), "x": torch.stack(x), "y": torch.stack(y)}

    def training_step(self, model, batch):
        self.steps += 1
        if self.steps == self.cfg.data.interrupt_at:
            raise KeyboardInterrupt
        loss = nn.functional.mse_loss(model(batch["x"]), batch["y"])
        return loss, {"mse": loss.item()}

    def validate(self, model, accelerator):
        pred = model(self.data.x.to(accelerator.device))
        return {"val/loss": nn.functional.mse_loss(pred, self.data.y.to(accelerator.device)).item()}

    def test(self, model, accelerator):
        return self.validate(model, accelerator)
