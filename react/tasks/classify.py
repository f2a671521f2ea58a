"""Task ``classify``: an engagement classifier (BORED / ENGAGED / FRUSTRATED) on XRoom windows.

The input under ``data.root`` (a modality folder of the preprocess stage) is either one window
folder (``standardize`` ...), encoded by a window encoder, or one or more feature folders
(``statistical``, ``spectral``, ``ssl_features``) whose vectors are concatenated and standardised.
The encoder starts from scratch or from an ``ssl`` run (``model.weights``; ``auto`` = this modality's
``ssl_training``), frozen or fine-tuned. ``data.label_fraction`` keeps a seeded, class-stratified
share of the training labels (e.g. 0.1). ``test`` writes the speech-emotion report
(:mod:`react.ser.report`: accuracy, UAR, macro-F1, confusion, per class).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from react.config import ConfigError, RunConfig
from react.data.ts_augment import TSAugment, TSAugmentConfig, one_cpu_thread
from react.data.windows import labelled_intervals, read_meta
from react.data.xroom import LABELS
from react.errors import LayoutError
from react.models.timeseries import Classifier, EncoderConfig, build_encoder
from react.tasks.protocol import RunPaths
from react.tasks.ssl import Indices, build, fit_encoder, pretrained_encoder, typed, window_tensor
from react.utils.logging import get_logger

log = get_logger(__name__)
SSL_RUN = "ssl_training"  # the ssl run of a modality folder (model.weights: auto)


@dataclass
class ClassifyDataConfig:
    root: str = "runs/tools/XRoom/bio"  # a modality folder of the preprocess stage
    inputs: list[str] = field(default_factory=lambda: ["standardize"])  # a window folder, or feature folders
    label_fraction: float = 1.0  # share of the training labels used, per class, drawn with `seed`
    label_unit: str = "window"  # what label_fraction counts: window | interval (labelled intervals)
    eval_batch_size: int = 512


@dataclass
class ClassifyModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # for window inputs
    weights: str = ""  # "" from scratch | auto (<root>/ssl_training) | an ssl run folder or checkpoint
    freeze_encoder: bool = False
    dense_neurons: int = 64
    dropout: float = 0.3


@dataclass
class ClassifyLossConfig:
    class_weights: list[float] = field(default_factory=list)  # one per label, e.g. [2.5, 1, 2.5]; [] = none
    balanced: bool = False  # inverse frequency of the (kept) training labels instead
    label_smoothing: float = 0.0


@dataclass
class Config(RunConfig):
    task: str = "classify"
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    model: ClassifyModelConfig = field(default_factory=ClassifyModelConfig)
    loss: ClassifyLossConfig = field(default_factory=ClassifyLossConfig)
    augment: TSAugmentConfig = field(default_factory=TSAugmentConfig)  # window inputs; all off by default


def label_subset(y: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified ``fraction`` of ``y`` (at least one per class).

    With ``groups`` (one id per item, one label per group), the fraction counts groups and every
    item of a drawn group is kept.
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"data.label_fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return np.arange(len(y))
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    ids, first = np.unique(groups, return_index=True)
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(ids[y[first] == k])[:max(1, round(fraction * (y[first] == k).sum()))]
            for k in np.unique(y)]
    return np.flatnonzero(np.isin(groups, np.concatenate(kept)))


class Task:
    """Engine hooks for window or feature classification (the contract: :mod:`react.tasks.protocol`)."""

    monitor = "val/uar"
    monitor_mode = "max"

    def __init__(self, cfg: DictConfig, paths: RunPaths):
        self.cfg, self.paths = cfg, paths
        self.meta = read_meta(cfg.data.root)
        if not cfg.data.inputs:
            raise ConfigError("data.inputs: name a window folder or feature folders")
        self.splits = {s: self._load(s) for s in ("train", "val", "test")}
        self.windowed = self.splits["train"][0].dim() == 3
        if self.windowed and len(cfg.data.inputs) > 1:
            raise ConfigError(f"data.inputs {list(cfg.data.inputs)}: a window folder cannot be combined")
        x, y, files = self.splits["train"]
        if cfg.data.label_unit not in ("window", "interval"):
            raise ConfigError(f"data.label_unit: unknown '{cfg.data.label_unit}'. Valid: window, interval")
        groups = labelled_intervals(cfg.data.root, "train") if cfg.data.label_unit == "interval" else None
        keep = torch.from_numpy(label_subset(y.numpy(), cfg.data.label_fraction, cfg.seed, groups))
        self.splits["train"] = (x[keep], y[keep], [files[i] for i in keep])
        try:
            self.augment = TSAugment(typed(cfg.augment))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if self.augment.enabled and not self.windowed:
            raise ConfigError("augment: augmentations apply to window inputs, not to feature vectors")
        log.info("classify: %d of %d training windows labelled (fraction %g of the %ss), inputs %s",
                 len(keep), len(y), cfg.data.label_fraction, cfg.data.label_unit, ", ".join(cfg.data.inputs))

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        parts = [window_tensor(self.cfg.data.root, split, folder) for folder in self.cfg.data.inputs]
        dims = {folder: tuple(p[0].shape[1:]) for folder, p in zip(self.cfg.data.inputs, parts)}
        if len(parts) > 1 and any(len(d) != 1 for d in dims.values()):
            raise LayoutError(f"{self.cfg.data.root}: only feature folders can be combined, got {dims}")
        x = torch.cat([p[0] for p in parts], dim=1) if len(parts) > 1 else parts[0][0]
        return x, parts[0][1], parts[0][2]

    # ----- model -----------------------------------------------------------------------------
    def weights_path(self) -> str:
        weights = self.cfg.model.weights
        return str(Path(self.cfg.data.root) / SSL_RUN) if weights == "auto" else weights

    def build_model(self, pretrained: bool = True) -> Classifier:
        m = self.cfg.model
        if not self.windowed:
            if m.weights:
                raise ConfigError("model.weights: a pre-trained encoder applies to window inputs; for SSL "
                                  "features use data.inputs=[ssl_features]")
            model = build(Classifier, None, self.splits["train"][0].shape[1], len(LABELS), m.dense_neurons,
                          m.dropout)
            return self._standardise(model, self.splits["train"][0])
        state = None
        if m.weights and pretrained:
            arch, state = pretrained_encoder(self.weights_path())
            m.encoder = OmegaConf.merge(OmegaConf.structured(EncoderConfig), arch)  # the checkpoint's
        fit_encoder(m.encoder, self.meta, self.cfg.data.root)
        encoder = build(build_encoder, typed(m.encoder))
        if state is not None:
            encoder.load_state_dict(state)
            log.info("encoder weights from %s (%s)", self.weights_path(),
                     "frozen" if m.freeze_encoder else "fine-tuned")
        model = build(Classifier, encoder, 0, len(LABELS), m.dense_neurons, m.dropout, m.freeze_encoder)
        if not m.freeze_encoder:
            return model
        size = self.cfg.data.eval_batch_size
        with torch.no_grad():
            x = self.splits["train"][0]
            embeddings = torch.cat([encoder.eval()(x[i:i + size]) for i in range(0, len(x), size)])
        return self._standardise(model, embeddings)

    @staticmethod
    def _standardise(model: Classifier, features: torch.Tensor) -> Classifier:
        """Set the classifier's input standardisation from the training features (or embeddings)."""
        model.center.copy_(features.mean(0))
        model.scale.copy_(features.std(0).clamp(min=1e-6))
        return model

    # ----- training --------------------------------------------------------------------------
    def train_dataset(self) -> Indices:
        return Indices(len(self.splits["train"][1]))

    def collate(self, items: Sequence[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(items)
        x, y, _ = self.splits["train"]
        with one_cpu_thread(x):  # a small gather
            return {"index": index, "x": x[index], "y": y[index]}

    def class_weights(self) -> torch.Tensor | None:
        loss = self.cfg.loss
        if loss.class_weights and loss.balanced:
            raise ConfigError("loss.class_weights and loss.balanced: choose one")
        if loss.class_weights:
            if len(loss.class_weights) != len(LABELS):
                raise ConfigError(f"loss.class_weights needs {len(LABELS)} values ({', '.join(LABELS)}), "
                                  f"got {list(loss.class_weights)}")
            return torch.tensor(list(loss.class_weights), dtype=torch.float32)
        if loss.balanced:
            counts = torch.bincount(self.splits["train"][1], minlength=len(LABELS)).float()
            weights = torch.where(counts > 0, counts.sum() / counts.clamp(min=1) / len(LABELS), 0.0)
            return weights / weights[counts > 0].mean()
        return None

    def training_step(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        x = self.augment(batch["x"]) if self.augment.enabled else batch["x"]
        logits = model(x).float()
        weights = self.class_weights()
        loss = nn.functional.cross_entropy(logits, batch["y"], label_smoothing=self.cfg.loss.label_smoothing,
                                           weight=None if weights is None else weights.to(logits.device))
        return loss, {"acc": (logits.argmax(-1) == batch["y"]).float().mean().item()}

    # ----- evaluation ------------------------------------------------------------------------
    def probabilities(self, model: nn.Module, split: str, device: torch.device) -> np.ndarray:
        x = self.splits[split][0]
        size = self.cfg.data.eval_batch_size
        out = [torch.softmax(model(x[i:i + size].to(device)).float(), -1) for i in range(0, len(x), size)]
        return torch.cat(out).cpu().numpy()

    def validate(self, model: nn.Module, accelerator: Any) -> dict[str, float]:
        from react.ser.report import classification_metrics

        y = self.splits["val"][1].numpy()
        probs = self.probabilities(model, "val", accelerator.device)
        metrics = classification_metrics(y, probs, list(LABELS))
        nll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()
        return {"val/loss": float(nll), "val/accuracy": metrics["accuracy"], "val/uar": metrics["uar"],
                "val/macro_f1": metrics["macro_f1"]}

    def test(self, model: nn.Module, accelerator: Any) -> dict[str, Any]:
        from react.ser.report import write_report

        _, y, files = self.splits["test"]
        probs = self.probabilities(model, "test", accelerator.device)
        metrics = write_report(self.paths.run_dir, y.numpy(), probs, list(LABELS), files,
                               protocol=self.meta.get("protocol"))
        log.info("test (%d windows, participants %s): accuracy %.4f, UAR %.4f, macro-F1 %.4f (chance %.4f)",
                 metrics["n"], ", ".join(self.meta["splits"]["test"]), metrics["accuracy"], metrics["uar"],
                 metrics["macro_f1"], metrics["chance_uar"])
        keys = ("n", "accuracy", "uar", "macro_f1", "chance_uar")
        # the checkpoint's val UAR: what a choice among configurations may use, never the test
        val_uar = self.validate(model, accelerator)["val/uar"] if len(self.splits["val"][1]) else None
        return {**{k: metrics[k] for k in keys}, "val_uar": val_uar, "protocol": self.meta.get("protocol"),
                "report": str(self.paths.run_dir / "report"),
                "test_participants": self.meta["splits"]["test"]}
