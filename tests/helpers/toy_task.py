"""A small regression task used to test the engine (resume, DDP, checkpoints) in isolation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from react.config import RunConfig


@dataclass
class ToyData:
    root: str = ""
    size: int = 64
    noise: float = 0.1


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
    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, cfg: DictConfig, run_dir: Path):
        self.cfg, self.run_dir = cfg, run_dir
        self.data = ToyDataset(cfg.data.size, cfg.data.noise)

    def build_model(self) -> nn.Module:
        h = self.cfg.model.hidden
        return nn.Sequential(nn.Linear(4, h), nn.Tanh(), nn.Dropout(self.cfg.model.dropout), nn.Linear(h, 1))

    def train_dataset(self):
        return self.data

    def collate(self, items):
        index, x, y = zip(*items)
        return torch.tensor(index), torch.stack(x), torch.stack(y)

    def training_step(self, model, batch):
        index, x, y = batch
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        with open(self.run_dir / f"seen_rank{rank}.jsonl", "a") as fh:
            fh.write(json.dumps({"world": world, "index": index.tolist()}) + "\n")
        loss = nn.functional.mse_loss(model(x), y)
        return loss, {"mse": loss.item()}

    def validate(self, model, accelerator):
        pred = model(self.data.x.to(accelerator.device))
        return {"val/loss": nn.functional.mse_loss(pred, self.data.y.to(accelerator.device)).item()}

    def test(self, model, accelerator):
        return self.validate(model, accelerator)
