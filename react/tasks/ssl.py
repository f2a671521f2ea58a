"""Task ``ssl``: self-supervised pre-training of a window encoder (SimCLR's NT-Xent or VICReg).

Reads the windows that the tools' preprocess stage wrote under ``data.root`` (a modality folder
such as ``runs/tools/XRoom/bio``): by default the unlabelled ``ssl_<split>`` windows over whole
sessions, else the labelled ones with their labels ignored. Each training batch is augmented on
the device (:mod:`react.data.ts_augment`) and the positive pairs are two views of a window, two
temporal neighbours, or one window's modalities (``ssl.positives``); validation scores the
objective on the val participants with a fixed augmentation seed. ``test`` scores the test
participants and exports the encoder as ``<dataset>_<modality>_<input>_<ENCODER>_encoder.pt`` (the
reference tools' name) beside the checkpoints. The helpers below (window tensors, encoder fitting,
loading a pre-trained encoder) are shared with the ``classify`` task.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import Dataset

from react.config import ConfigError, RunConfig
from react.data.ts_augment import (
    GaussianNoise,
    Scale,
    TimeShifting,
    TimeWarping,
    TSAugment,
    TSAugmentConfig,
    ZeroMasking,
    one_cpu_thread,
)
from react.data.windows import channel_groups, load_windows, read_meta, split_table
from react.engine.checkpoint import CheckpointError, load_state
from react.errors import LayoutError
from react.losses_ssl import nt_xent, vicreg
from react.models.timeseries import EncoderConfig, SSLModel, build_encoder
from react.tasks.protocol import RunPaths
from react.utils.io import save_tensor
from react.utils.logging import get_logger

log = get_logger(__name__)
FRAMEWORKS = ("simclr", "vicreg")
POSITIVES = ("views", "neighbours", "modalities", "views+modalities")


@dataclass
class SSLDataConfig:
    root: str = "runs/tools/XRoom/bio"  # a modality folder of the preprocess stage
    input_type: str = "standardize"  # window folder: standardize | normalize | raw
    unlabelled: bool = True  # the ssl_<split> windows (preprocess get_ssl: true); false: the labelled ones
    eval_batch_size: int = 512


@dataclass
class SSLModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    projector: list[int] = field(default_factory=lambda: [256, 128])  # hidden widths, then the output


@dataclass
class SSLObjectiveConfig:
    framework: str = "simclr"  # simclr (NT-Xent) | vicreg
    temperature: float = 0.1  # simclr
    sim_weight: float = 25.0  # vicreg
    std_weight: float = 25.0
    cov_weight: float = 1.0
    # views: the positive pair is two augmentations of one window | neighbours: of two windows of one
    # session at most neighbour_seconds apart (temporal neighbours, as in CLOCS, Kiyasseh et al. 2021)
    # | modalities: the embeddings of one window's modalities, each by its own encoder (cross-modal, as
    # in contrastive multiview coding, Tian et al. 2020; needs model.encoder.fusion: late) | views+modalities:
    # two augmentations of each modality of a window, every pair of the four positive
    positives: str = "views"
    neighbour_seconds: float = 10.0


def default_augment() -> TSAugmentConfig:
    """The reference pair (noise, scale) plus masking, shifting and warping."""
    return TSAugmentConfig(gaussian_noise=GaussianNoise(0.8, 0.0, 0.2), scale=Scale(0.8, 1.3),
                           zero_masking=ZeroMasking(0.5, 0.3), time_shifting=TimeShifting(0.5, 0.2),
                           time_warping=TimeWarping(0.5, 0.2, 4))


@dataclass
class Config(RunConfig):
    task: str = "ssl"
    data: SSLDataConfig = field(default_factory=SSLDataConfig)
    model: SSLModelConfig = field(default_factory=SSLModelConfig)
    ssl: SSLObjectiveConfig = field(default_factory=SSLObjectiveConfig)
    augment: TSAugmentConfig = field(default_factory=default_augment)


# ----- shared with the classify task -----------------------------------------------------------
class Indices(Dataset):
    """Item ``i`` is ``i``: the task's collate gathers the rows of its in-memory tensors."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def window_tensor(root: str, split: str, folder: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Windows (or feature vectors), labels and file names of ``<split>.csv`` from ``<root>/<folder>``."""
    data = load_windows(root, split, folder)
    if len(data.y) == 0:
        raise LayoutError(f"{Path(root) / (split + '.csv')}: no windows; give the split participants "
                          "(preprocess val_fraction / test_fraction) or more data")
    return torch.tensor(data.x, dtype=torch.float32), torch.tensor(data.y), list(data.table["files"])


def fit_encoder(encoder: DictConfig, meta: dict, root: str) -> None:
    """Set the encoder's ``in_channels``, ``len_seq`` and ``groups`` from the windows' ``preprocess.json``,
    or check the values the config gives (a checkpoint's, or the reference ``encoder_config``)."""
    actual = {"in_channels": len(meta["channels"]), "len_seq": int(meta["window_frames"])}
    for key, value in actual.items():
        if encoder[key] and encoder[key] != value:
            what = f"channels {', '.join(meta['channels'])}" if key == "in_channels" else "frames"
            raise ConfigError(f"encoder.{key} is {encoder[key]} but the windows in {root} have {value} "
                              f"({what})")
        encoder[key] = value
    groups = channel_groups(meta)
    if encoder.fusion == "late" and list(encoder.groups) not in ([], groups):
        raise ConfigError(f"encoder.groups {list(encoder.groups)} do not match the modalities of {root} "
                          f"({groups})")
    encoder.groups = groups if encoder.fusion == "late" else []


def pretrained_encoder(weights: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """Encoder config and weights from an ``ssl`` run (folder or checkpoint; best weights first)."""
    state = load_state(weights)
    if state["config"].get("task") != "ssl":
        raise CheckpointError(f"{weights}: a '{state['config'].get('task')}' checkpoint, not an 'ssl' one")
    prefix = "encoder."
    tensors = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    return state["config"]["model"]["encoder"], tensors


def typed(section: Any) -> Any:
    """The dataclass instance behind a structured config section."""
    return OmegaConf.to_object(section) if isinstance(section, DictConfig) else section


def build(factory: Any, *args: Any) -> Any:
    """Call a model constructor, turning its ``ValueError`` into a one-line config error."""
    try:
        return factory(*args)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def neighbour_ranges(table: pd.DataFrame, seconds: float) -> tuple[torch.Tensor, ...]:
    """The windows of ``table`` (``participant``, ``session``, ``start_time`` columns) in
    session-then-time ``order``, each row's ``position`` in it, and per row the range ``[lo, hi)`` of
    positions of its session starting at most ``seconds`` from it (itself included)."""
    if table.empty:
        return tuple(torch.zeros(0, dtype=torch.long) for _ in range(4))
    session = pd.factorize(table["participant"].astype(str) + "/" + table["session"].astype(str))[0]
    start = table["start_time"].to_numpy(np.float64)
    start = start - start.min()
    order = np.lexsort((start, session))
    key = (session * (start.max() + 2 * seconds + 1.0) + start)[order]  # sessions apart on one time line
    lo = np.searchsorted(key, key - seconds, "left")
    hi = np.searchsorted(key, key + seconds, "right")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return tuple(torch.as_tensor(a) for a in (order, position, lo[position], hi[position]))


def draw_neighbours(ranges: tuple[torch.Tensor, ...], index: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Rows paired with rows ``index``: each a random other window of its range in
    :func:`neighbour_ranges` (the row itself when its range holds no other)."""
    order, position, lo, hi = ranges
    pos, others = position[index], hi[index] - lo[index] - 1
    pick = lo[index] + (torch.rand(len(index), generator=generator) * others).long()
    return order[torch.where(others > 0, pick + (pick >= pos).long(), pos)]


def pairwise_loss(z: torch.Tensor, objective: SSLObjectiveConfig | DictConfig
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """The objective between projections ``z`` ``(views, batch, out)``, averaged over every pair of
    views (one pair for two views; with VICReg also its three terms, averaged)."""
    losses, parts = [], []
    for i, j in itertools.combinations(range(len(z)), 2):
        if objective.framework == "simclr":
            losses.append(nt_xent(z[i], z[j], objective.temperature))
        else:
            loss, terms = vicreg(z[i], z[j], objective.sim_weight, objective.std_weight, objective.cov_weight)
            losses.append(loss)
            parts.append(terms)
    mean = {k: float(np.mean([p[k] for p in parts])) for k in parts[0]} if parts else {}
    return torch.stack(losses).mean(), mean


# ----- the task --------------------------------------------------------------------------------
class Task:
    """Engine hooks for self-supervised pre-training (the contract: :mod:`react.tasks.protocol`)."""

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, cfg: DictConfig, paths: RunPaths):
        if cfg.ssl.framework not in FRAMEWORKS:
            raise ConfigError(f"ssl.framework must be one of {', '.join(FRAMEWORKS)}, "
                              f"got {cfg.ssl.framework!r}")
        if cfg.ssl.positives not in POSITIVES:
            raise ConfigError(f"ssl.positives must be one of {', '.join(POSITIVES)}, "
                              f"got {cfg.ssl.positives!r}")
        self.cfg, self.paths = cfg, paths
        self.cross_modal = cfg.ssl.positives in ("modalities", "views+modalities")
        self.meta = read_meta(cfg.data.root)
        self.prefix = "ssl_" if cfg.data.unlabelled else ""
        self.folder = self.prefix + cfg.data.input_type
        try:
            self.augment = TSAugment(typed(cfg.augment))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if not self.augment.enabled and cfg.ssl.positives in ("views", "views+modalities"):
            raise ConfigError(f"augment: every probability is 0; positives: {cfg.ssl.positives} needs two "
                              "different views")
        if self.cross_modal:
            if cfg.model.encoder.fusion != "late":
                raise ConfigError(f"ssl.positives: {cfg.ssl.positives} needs one encoder per modality: set "
                                  "model.encoder.fusion: late (and a data.root of several modalities, "
                                  "e.g. bio+body)")
            if cfg.augment.channels_flip.probability > 0:
                raise ConfigError("augment.channels_flip mixes the modalities' channels; with ssl.positives: "
                                  f"{cfg.ssl.positives} its probability must be 0")
        self._windows: dict[str, torch.Tensor] = {}
        self._neighbours: dict[str, tuple[torch.Tensor, ...]] = {}

    def windows(self, split: str) -> torch.Tensor:
        if split not in self._windows:
            self._windows[split] = window_tensor(self.cfg.data.root, self.prefix + split, self.folder)[0]
        return self._windows[split]

    def partners(self, split: str, index: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor | None:
        """For ``positives: neighbours``, the windows paired with rows ``index`` of ``split``
        (:func:`draw_neighbours`); else None."""
        if self.cfg.ssl.positives != "neighbours":
            return None
        if split not in self._neighbours:
            table = split_table(self.cfg.data.root, self.prefix + split)
            self._neighbours[split] = neighbour_ranges(table, self.cfg.ssl.neighbour_seconds)
        return self.windows(split)[draw_neighbours(self._neighbours[split], index.cpu(), generator)]

    def build_model(self, pretrained: bool = True) -> SSLModel:
        fit_encoder(self.cfg.model.encoder, self.meta, self.cfg.data.root)
        encoder = build(build_encoder, typed(self.cfg.model.encoder))
        return build(SSLModel, encoder, list(self.cfg.model.projector), self.cross_modal)

    def train_dataset(self) -> Indices:
        return Indices(len(self.windows("train")))

    def collate(self, items: Sequence[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(items)
        x = self.windows("train")
        with one_cpu_thread(x):  # a small gather
            return {"index": index, "x": x[index]}

    def objective(self, model: nn.Module, x: torch.Tensor, partner: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of two augmented views of ``x`` (made in one call: every row draws its own), of
        one view of ``x`` against one of ``partner`` (its temporal neighbours), or of the modalities
        of one augmented view of ``x`` (two views for ``views+modalities``) against each other."""
        if self.cross_modal:
            n = 2 if self.cfg.ssl.positives == "views+modalities" else 1
            z = model(self.augment(x, generator, views=n))  # (modalities, views * batch, out)
            return pairwise_loss(z.unflatten(1, (n, len(x))).flatten(0, 1), self.cfg.ssl)
        if partner is None:
            views = self.augment(x, generator, views=2)
        else:
            views = self.augment(torch.cat([x, partner.to(x.device)]), generator)
        return pairwise_loss(model(views)[0].unflatten(0, (2, len(x))), self.cfg.ssl)

    def training_step(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return self.objective(model, batch["x"], self.partners("train", batch["index"]))

    def _score(self, model: nn.Module, split: str, device: torch.device) -> float:
        """The objective over ``split`` in training-size batches, with a fixed augmentation seed."""
        x = self.windows(split)
        size = self.cfg.train.batch_size
        generator = torch.Generator(device=device).manual_seed(self.cfg.seed)
        pairing = torch.Generator().manual_seed(self.cfg.seed)
        total, count = 0.0, 0
        for start in range(0, len(x) - 1, size):
            batch = x[start:start + size].to(device)
            if len(batch) < 2:
                continue
            partner = self.partners(split, torch.arange(start, start + len(batch)), pairing)
            total += self.objective(model, batch, partner, generator)[0].item() * len(batch)
            count += len(batch)
        return total / max(count, 1)

    def validate(self, model: nn.Module, accelerator: Any) -> dict[str, float]:
        return {"val/loss": self._score(model, "val", accelerator.device)}

    def encoder_file(self) -> Path:
        root = Path(self.cfg.data.root)
        parts = (root.parent.name, root.name, self.cfg.data.input_type, self.cfg.model.encoder.name.upper())
        return self.paths.run_dir / f"{'_'.join(parts)}_encoder.pt"

    def test(self, model: nn.Module, accelerator: Any) -> dict[str, Any]:
        loss = self._score(model, "test", accelerator.device)
        target = self.encoder_file()
        save_tensor({"encoder": model.encoder.state_dict(),
                     "config": OmegaConf.to_container(self.cfg.model.encoder, resolve=True),
                     "channels": self.meta["channels"]}, target)
        log.info("ssl test loss %.4f; encoder saved to %s", loss, target)
        return {"test/loss": loss, "encoder": str(target)}
