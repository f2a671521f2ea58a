"""The reaction task: any registered generator trained and tested by the shared engine.

    accelerate launch train.py --config configs/regnn.yaml [key=value ...]
    python train.py --config configs/regnn.yaml mode=test checkpoint=RUN_OR_CKPT

The config's ``task`` names the generator (:data:`react.reaction.models.GENERATORS`, e.g. ``regnn``);
its ``model`` section is that generator's config (and ``loss`` its loss config, where it has one).
Training items are speaker windows with their appropriate real reactions
(:mod:`react.reaction.data.dyadic`); a training step is the model's own
:meth:`~react.reaction.contract.ReactionGenerator.training_loss`. Validation computes the losses on val
windows and scores generated reactions with the evaluation library; test mode writes
``generate.samples`` reactions per clip of ``generate.split`` and scores them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import ConcatDataset, Dataset

from evaluation import METRIC_SETS, compute_metrics
from react.config import ConfigError, RunConfig
from react.reaction.contract import training_loss
from react.reaction.data import react_layout as L
from react.reaction.data.dyadic import PATTERNS, DyadicWindows, FeatureAugment, collate_windows
from react.reaction.data.layouts import (
    DIRECTIONS,
    LAYOUTS,
    METRIC_SET,
    input_clips,
    read_appropriateness,
    read_split,
)
from react.reaction.generation import STITCHES, generate_split
from react.reaction.models import GENERATORS
from react.tasks.protocol import RunPaths


@dataclass
class DataConfig:
    root: str = "data/demo"  # REACT 2023/2024 layout (split CSVs, Emotion/, matrices) or MARS (docs/data.md)
    layout: str = "auto"  # auto (detected) | react (REACT 2023/2024) | mars (REACT 2025/2026)
    directions: str = "both"  # input clips: both (every clip of each pair) | speaker (MARS scripts' default)
    features_root: str = ""  # <root>/<split>/{Video,Audio}_features ("" = root)
    roots: list[str] = field(default_factory=list)  # several REACT datasets in one run (replaces root)
    features_roots: list[str] = field(default_factory=list)  # one per entry of roots ([] = the roots)
    split: str = "train"
    num_frames: int = 50
    stride: int = 25
    neighbour_pattern: str = "all"  # nearest | pair | all
    max_neighbours: int = 10  # random subset size when training
    keep_listener: bool = True  # the subset always holds the real listener (False: official random.sample)
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
class SamplingConfig:
    scale: float = 1.0  # multiplies the latent noise: larger = more diverse, less accurate
    stitch: str = "taper"  # taper: raised-sine overlap-add | mean: overlapping halves averaged (official)


@dataclass
class ReactionConfig(RunConfig):
    """The sections every generator's task config has; :func:`schema` adds ``model`` (and ``loss``)."""

    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


def schema(name: str) -> type:
    """The task config dataclass of generator ``name``: :class:`ReactionConfig` with ``task: name``,
    ``model`` the generator's config and, where it has one, ``loss`` its loss config."""
    entry = GENERATORS[name]
    sections = {"model": entry.load("config"), **({"loss": entry.load("loss")} if entry.loss else {})}
    fields = [("task", str, field(default=name))]
    fields += [(key, cls, field(default_factory=cls)) for key, cls in sections.items()]
    cls = make_dataclass(f"{entry.model}TaskConfig", fields, bases=(ReactionConfig,))
    cls.__module__ = __name__
    return cls


Config = schema("regnn")  # the registry names this module for every generator (react.tasks.TASKS)


def feature_dims(model_cfg: DictConfig) -> tuple[int | None, int | None]:
    """``(video_dim, audio_dim)`` a model config names (top level or under ``perceptual``); None
    where it names none (the feature files are then not checked against it)."""
    section = model_cfg.get("perceptual", model_cfg)
    return section.get("video_dim"), section.get("audio_dim")


class Task:
    """Engine hooks for a reaction generator (the contract: :mod:`react.tasks.protocol`)."""

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
        if "loss" in cfg and cfg.loss.kind not in ("project", "official"):
            raise ConfigError(f"loss.kind: must be project or official, got '{cfg.loss.kind}'")
        if cfg.sampling.stitch not in STITCHES:
            raise ConfigError(f"sampling.stitch: must be one of {', '.join(STITCHES)}, "
                              f"got '{cfg.sampling.stitch}'")
        if cfg.sampling.scale < 0:
            raise ConfigError(f"sampling.scale: must be >= 0, got {cfg.sampling.scale}")
        if cfg.data.layout not in ("auto", *LAYOUTS):
            raise ConfigError(f"data.layout: must be auto, {' or '.join(LAYOUTS)}, got '{cfg.data.layout}'")
        if cfg.data.directions not in DIRECTIONS:
            raise ConfigError(f"data.directions: must be {' or '.join(DIRECTIONS)}, "
                              f"got '{cfg.data.directions}'")
        self.cfg, self.paths = cfg, paths
        self.monitor, self.monitor_mode = cfg.val.monitor, cfg.val.monitor_mode
        self._val: list[DyadicWindows] | None = None
        self._steps_per_epoch = 0

    def build_model(self, pretrained: bool = True) -> torch.nn.Module:
        """The generator ``cfg.task`` from ``cfg.model`` for windows of ``data.num_frames``; a
        generator with a loss config gets ``cfg.loss`` and the neighbour pattern; with
        ``pretrained``, the generator's ``setup`` loads its pretrained parts (features are
        precomputed: REGNN has none)."""
        entry = GENERATORS[self.cfg.task]
        extra = {"loss": self.cfg.loss, "pattern": self.cfg.data.neighbour_pattern} if entry.loss else {}
        model = entry.load("model")(self.cfg.model, self.cfg.data.num_frames, **extra)
        if pretrained and entry.setup:
            entry.load("setup")(model, self)
        return model

    def sources(self) -> list[tuple[str, str, str | None]]:
        """``(name, root, features root)`` of each dataset: ``data.roots`` (named after their folders),
        else ``data.root`` (name ``""``)."""
        d = self.cfg.data
        if not d.roots:
            return [("", d.root, d.features_root or None)]
        if d.features_roots and len(d.features_roots) != len(d.roots):
            raise ConfigError(f"data.features_roots: {len(d.features_roots)} entries for "
                              f"{len(d.roots)} data.roots")
        names = [Path(r).name for r in d.roots]
        names = [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]
        features = d.features_roots or [None] * len(d.roots)
        return list(zip(names, d.roots, features))

    def dataset(self, split: str, training: bool = False, clips: list[int] | None = None,
                targets: bool = True, source: int = 0) -> DyadicWindows:
        """The windows of ``split`` of dataset ``source``; ``clips``: indices of the input clips
        (default: those of ``data.directions``)."""
        d = self.cfg.data
        video_dim, audio_dim = feature_dims(self.cfg.model)
        _, root, features_root = self.sources()[source]
        if clips is None:
            clips = input_clips(read_split(root, split, d.layout), d.directions)
        return DyadicWindows(root, split, video_dim=video_dim, audio_dim=audio_dim,
                             features_root=features_root, num_frames=d.num_frames, stride=d.stride,
                             pattern=d.neighbour_pattern, max_neighbours=d.max_neighbours, training=training,
                             augment=FeatureAugment(d.noise_std, d.feature_dropout), clips=clips,
                             targets=targets, layout=d.layout, keep_listener=d.keep_listener)

    def train_dataset(self) -> Dataset:
        split = self.cfg.data.split
        parts = [self.dataset(split, training=True, source=i) for i in range(len(self.sources()))]
        for part in parts:
            part.check_features()  # a feature size that does not fit the model stops here, not in a worker
        dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        t = self.cfg.train
        world = int(os.environ.get("WORLD_SIZE", "1"))
        self._steps_per_epoch = math.ceil(len(dataset) / world / t.batch_size)
        if t.max_steps_per_epoch:
            self._steps_per_epoch = min(self._steps_per_epoch, t.max_steps_per_epoch)
        return dataset

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        return collate_windows(items)

    def training_step(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """The model's own loss; it learns the run's steps per epoch (``steps_per_epoch``) first."""
        getattr(model, "module", model).steps_per_epoch = self._steps_per_epoch or 1  # DDP wraps the model
        loss, parts = training_loss(model, batch)
        return loss, {name: value.item() for name, value in parts.items()}

    def _val_datasets(self) -> list[DyadicWindows]:
        if self._val is None:
            self._val = []
            for i, (_, root, _) in enumerate(self.sources()):
                clips = input_clips(read_split(root, self.cfg.val.split, self.cfg.data.layout),
                                    self.cfg.data.directions)
                n = self.cfg.val.max_clips or len(clips)
                self._val.append(self.dataset(self.cfg.val.split, clips=clips[:n], source=i))
        return self._val

    def validate(self, model: torch.nn.Module, accelerator: Any) -> dict[str, float]:
        """:meth:`validate_one` per dataset; with several ``data.roots`` each dataset's metrics are
        logged as ``val/<name>/<key>`` and ``val/<key>`` is their mean weighted by windows."""
        datasets = self._val_datasets()
        if len(datasets) == 1:
            return self.validate_one(model, accelerator, datasets[0])
        metrics: dict[str, float] = {}
        total = sum(len(ds) for ds in datasets)
        for (name, _, _), dataset in zip(self.sources(), datasets):
            own = self.validate_one(model, accelerator, dataset)
            for key, value in own.items():
                metrics[key.replace("val/", f"val/{name}/", 1)] = value
                metrics[key] = metrics.get(key, 0.0) + value * len(dataset) / total
        return metrics

    def validate_one(self, model: torch.nn.Module, accelerator: Any, dataset: DyadicWindows
                     ) -> dict[str, float]:
        """Losses over the val windows of the first ``val.max_clips`` clips, then metrics of
        ``val.samples`` generated reactions per clip (appropriate sets restricted to those clips).
        The log-determinant term needs gradients and is left out of ``val/loss``. Validation draws
        nothing from the global RNG, so it does not change the course of training."""
        device, size = accelerator.device, self.cfg.val.batch_size
        sums: dict[str, float] = {}
        for first in range(0, len(dataset), size):  # no DataLoader: it would draw from the global RNG
            items = [dataset[i] for i in range(first, min(first + size, len(dataset)))]
            batch = {k: v.to(device) for k, v in collate_windows(items).items()}
            loss, parts = model.training_loss(batch)
            for name, value in {"loss": loss, **parts}.items():
                sums[name] = sums.get(name, 0.0) + value.item() * len(batch["index"])
        metrics = {f"val/{name}": value / len(dataset) for name, value in sums.items()}
        if self.cfg.val.samples > 0:
            s = self.cfg.sampling
            preds = generate_split(model, dataset, None, self.cfg.val.samples, self.cfg.generate.seed, device,
                                   progress=False, scale=s.scale, stitch=s.stitch)
            scores = self.score(dataset, preds)
            keys = METRIC_SETS[METRIC_SET[dataset.split.layout]]
            metrics.update({f"val/{k}": float(scores[k]) for k in keys})
        return metrics

    def score(self, dataset: DyadicWindows, preds: torch.Tensor | list[torch.Tensor]) -> dict:
        """The evaluation library's metrics of ``preds`` for ``dataset.clips``: ``(C, S, T, 25)``, or
        a list of ``(S, T_c, 25)`` for clips of different lengths (MARS); the metric set of the
        layout (docs/metrics.md)."""
        clips = dataset.clips
        split = dataset.split
        emotions = [e.numpy() for e in dataset.emotions]
        listener = [emotions[split.listener_index(c)] for c in clips]
        matrix = read_appropriateness(split)[np.ix_(clips, clips)]
        workers = self.cfg.generate.workers or None
        threads = torch.get_num_threads()  # numba's OpenMP layer resets torch's thread count
        pred = preds.numpy() if isinstance(preds, torch.Tensor) else [p.numpy() for p in preds]
        try:
            return compute_metrics(pred, listener, [emotions[c] for c in clips], matrix,
                                   metric_set=METRIC_SET[split.layout],
                                   tlcc_samples=self.cfg.generate.tlcc_samples, workers=workers)
        finally:
            torch.set_num_threads(threads)

    def test(self, model: torch.nn.Module, accelerator: Any) -> dict:
        """Write ``generate.samples`` reactions per clip of ``generate.split``, then score them; with
        several ``data.roots``, each dataset under ``<pred_dir>/<name>`` with its own summary."""
        sources = self.sources()
        if len(sources) == 1:
            return self.test_one(model, accelerator)
        return {"datasets": {name: self.test_one(model, accelerator, i, name)
                             for i, (name, _, _) in enumerate(sources)}}

    def test_one(self, model: torch.nn.Module, accelerator: Any, source: int = 0, name: str = "") -> dict:
        """The test of one dataset (``source``: index into :meth:`sources`)."""
        g = self.cfg.generate
        dataset = self.dataset(g.split, targets=g.metrics, source=source)
        pred_dir = Path(g.pred_dir or os.path.join(self.paths.run_dir, "pred")) / name
        s = self.cfg.sampling
        preds = generate_split(model, dataset, pred_dir, g.samples, g.seed, accelerator.device, scale=s.scale,
                               stitch=s.stitch)
        summary: dict[str, Any] = {"split": g.split, "pred_dir": str(pred_dir), "clips": len(dataset.clips),
                                   "samples": g.samples, "sampling_scale": s.scale}
        if g.metrics:
            summary["metrics"] = self.score(dataset, preds)
        return summary
