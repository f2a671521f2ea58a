"""The ``regnn`` task: REGNN reaction generation trained and tested by the shared engine.

    accelerate launch train.py --config configs/regnn.yaml [key=value ...]
    python train.py --config configs/regnn.yaml mode=test checkpoint=RUN_OR_CKPT

Training items are speaker windows with their appropriate real reactions
(:mod:`react.data.dyadic`); the model is :class:`react.models.regnn.REGNN`; the losses are
:func:`react.losses.regnn_losses`. Validation computes the losses on val windows and scores
generated reactions with the evaluation library; test mode writes ``generate.samples`` reactions
per clip of ``generate.split`` and scores them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from evaluation import METRIC_KEYS, compute_metrics
from react.config import ConfigError, RunConfig
from react.data import react_layout as L
from react.data.dyadic import PATTERNS, DyadicWindows, FeatureAugment, collate_windows
from react.generation import generate_split
from react.losses import LossConfig, regnn_losses
from react.models.regnn import REGNN, ModelConfig
from react.tasks.protocol import RunPaths


@dataclass
class DataConfig:
    root: str = "data/demo"  # REACT layout: split CSVs, Emotion/, neighbour_emotion_*.npy
    features_root: str = ""  # <root>/<split>/{Video,Audio}_features ("" = root)
    split: str = "train"
    num_frames: int = 50
    stride: int = 25
    neighbour_pattern: str = "all"  # nearest | pair | all
    max_neighbours: int = 10  # random subset size when training
    noise_std: float = 0.0  # feature augmentation (training only)
    feature_dropout: float = 0.0


@dataclass
class ValConfig:
    split: str = "val"
    max_clips: int = 16  # first clips of the split used for validation (0 = all)
    samples: int = 2  # generated reactions per clip for the metrics (0 = losses only)
    batch_size: int = 64
    monitor: str = "val/loss"
    monitor_mode: str = "min"


@dataclass
class GenerateConfig:
    split: str = "test"
    pred_dir: str = ""  # "" = <out_dir>/pred
    samples: int = L.NUM_PREDICTIONS
    seed: int = 0
    metrics: bool = True  # score the predictions after writing them
    tlcc_samples: str = "first"  # first (official) | all
    workers: int = 0  # metric processes (0 = the library's default)


@dataclass
class Config(RunConfig):
    task: str = "regnn"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    val: ValConfig = field(default_factory=ValConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)


class Task:
    """Engine hooks for REGNN (the contract: :mod:`react.tasks.protocol`)."""

    def __init__(self, cfg: DictConfig, paths: RunPaths):
        if cfg.data.neighbour_pattern not in PATTERNS:
            raise ConfigError(f"data.neighbour_pattern: unknown '{cfg.data.neighbour_pattern}'. "
                              f"Valid: {', '.join(PATTERNS)}")
        if cfg.val.monitor_mode not in ("min", "max"):
            raise ConfigError(f"val.monitor_mode: must be min or max, got '{cfg.val.monitor_mode}'")
        if cfg.generate.tlcc_samples not in ("first", "all"):
            raise ConfigError(f"generate.tlcc_samples: must be first or all, got "
                              f"'{cfg.generate.tlcc_samples}'")
        if cfg.val.samples == 1 or (cfg.generate.metrics and cfg.generate.samples < 2):
            raise ConfigError("the metrics need at least 2 samples per clip: set val.samples to 0 or >= 2 "
                              "and generate.samples >= 2 (or generate.metrics=false)")
        if cfg.val.max_clips == 1:
            raise ConfigError("val.max_clips: the metrics need at least 2 clips (0 = all)")
        self.cfg, self.paths = cfg, paths
        self.monitor, self.monitor_mode = cfg.val.monitor, cfg.val.monitor_mode
        self._val: DyadicWindows | None = None

    def build_model(self, pretrained: bool = True) -> REGNN:
        """REGNN from ``cfg.model`` (it loads no pretrained weights: features are precomputed)."""
        return REGNN(self.cfg.model, self.cfg.data.num_frames)

    def dataset(self, split: str, training: bool = False, clips: list[int] | None = None,
                targets: bool = True) -> DyadicWindows:
        d, p = self.cfg.data, self.cfg.model.perceptual
        return DyadicWindows(d.root, split, video_dim=p.video_dim, audio_dim=p.audio_dim,
                             features_root=d.features_root or None, num_frames=d.num_frames, stride=d.stride,
                             pattern=d.neighbour_pattern, max_neighbours=d.max_neighbours, training=training,
                             augment=FeatureAugment(d.noise_std, d.feature_dropout), clips=clips,
                             targets=targets)

    def train_dataset(self) -> DyadicWindows:
        dataset = self.dataset(self.cfg.data.split, training=True)
        dataset.check_features()  # a feature size that does not fit the model stops here, not in a worker
        return dataset

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        return collate_windows(items)

    def _losses(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = self.cfg.loss
        out = model(batch["video"], batch["audio"], batch["reactions"], batch["mask"],
                    decode=w.recon > 0 or w.smooth > 0)
        return regnn_losses(out, batch["reactions"], batch["mask"], w, self.cfg.data.neighbour_pattern)

    def training_step(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        loss, parts = self._losses(model, batch)
        return loss, {name: value.item() for name, value in parts.items()}

    def _val_dataset(self) -> DyadicWindows:
        if self._val is None:
            split = L.read_split(self.cfg.data.root, self.cfg.val.split)
            n = self.cfg.val.max_clips or len(split)
            self._val = self.dataset(self.cfg.val.split, clips=list(range(min(n, len(split)))))
        return self._val

    def validate(self, model: torch.nn.Module, accelerator: Any) -> dict[str, float]:
        """Losses over the val windows of the first ``val.max_clips`` clips, then metrics of
        ``val.samples`` generated reactions per clip (appropriate sets restricted to those clips).
        The log-determinant term needs gradients and is left out of ``val/loss``. Validation draws
        nothing from the global RNG, so it does not change the course of training."""
        dataset, device, size = self._val_dataset(), accelerator.device, self.cfg.val.batch_size
        sums: dict[str, float] = {}
        for first in range(0, len(dataset), size):  # no DataLoader: it would draw from the global RNG
            items = [dataset[i] for i in range(first, min(first + size, len(dataset)))]
            batch = {k: v.to(device) for k, v in collate_windows(items).items()}
            loss, parts = self._losses(model, batch)
            for name, value in {"loss": loss, **parts}.items():
                sums[name] = sums.get(name, 0.0) + value.item() * len(batch["index"])
        metrics = {f"val/{name}": value / len(dataset) for name, value in sums.items()}
        if self.cfg.val.samples > 0:
            preds = generate_split(model, dataset, None, self.cfg.val.samples, self.cfg.generate.seed, device,
                                   progress=False)
            scores = self.score(dataset, preds)
            metrics.update({f"val/{k}": float(scores[k]) for k in METRIC_KEYS})
        return metrics

    def score(self, dataset: DyadicWindows, preds: torch.Tensor) -> dict:
        """The evaluation library's metrics of ``preds`` ``(C, S, 750, 25)`` for ``dataset.clips``."""

        clips = dataset.clips
        split = dataset.split
        listener = dataset.emotions[[split.listener_index(c) for c in clips]]
        matrix = L.read_appropriateness(split)[np.ix_(clips, clips)]
        workers = self.cfg.generate.workers or None
        threads = torch.get_num_threads()  # numba's OpenMP layer resets torch's thread count
        try:
            return compute_metrics(preds.numpy(), listener.numpy(), dataset.emotions[clips].numpy(), matrix,
                                   tlcc_samples=self.cfg.generate.tlcc_samples, workers=workers)
        finally:
            torch.set_num_threads(threads)

    def test(self, model: torch.nn.Module, accelerator: Any) -> dict:
        """Write ``generate.samples`` reactions per clip of ``generate.split``, then score them."""
        g = self.cfg.generate
        dataset = self.dataset(g.split, targets=g.metrics)
        pred_dir = Path(g.pred_dir or os.path.join(self.paths.run_dir, "pred"))
        preds = generate_split(model, dataset, pred_dir, g.samples, g.seed, accelerator.device)
        summary: dict[str, Any] = {"split": g.split, "pred_dir": str(pred_dir), "clips": len(dataset.clips),
                                   "samples": g.samples}
        if g.metrics:
            summary["metrics"] = self.score(dataset, preds)
        return summary
