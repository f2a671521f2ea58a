"""Video features: decode (mp4 or a folder of numbered pngs) -> resize -> centre crop -> Swin -> 768-d.

Decoding and cropping run in the reader (a worker process) and produce uint8 ``B x H x W x 3``
chunks; normalisation and the timm Swin forward run batched in the main process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from features.media import count_video_frames, iter_rgb_frames, resize_and_crop  # noqa: F401 - public here too
from features.runner import Extractor, Job, Reader
from features.weights import resolve_weights, weights_settings
from react.utils.logging import get_logger, warn_random_init

log = get_logger(__name__)


class FrameReader(Reader):
    """Decodes a clip into uint8 chunks of at most ``batch_size`` cropped frames."""

    def __init__(self, resize: int, crop: int, batch_size: int):
        self.resize, self.crop, self.batch_size = resize, crop, batch_size

    def __call__(self, job: Job) -> Iterator[torch.Tensor]:
        chunk: list[np.ndarray] = []
        count = 0
        for frame in iter_rgb_frames(job.source):
            chunk.append(resize_and_crop(frame, self.resize, self.crop))
            count += 1
            if len(chunk) == self.batch_size:
                yield torch.from_numpy(np.stack(chunk))
                chunk = []
            if count == job.frames:
                break
        if chunk:
            yield torch.from_numpy(np.stack(chunk))
        if count == 0:
            raise ValueError("no frames decoded")
        if count < job.frames:
            raise ValueError(f"video too short: {count} frames decoded, {job.frames} expected")


def build_swin(cfg: DictConfig, seed: int) -> nn.Module:
    """The timm backbone with its classifier removed: from a checkpoint file, an HF-format dir or random."""
    import timm

    weights = resolve_weights(cfg.weights, cfg.random_init, "video")
    arch = OmegaConf.to_container(cfg.arch, resolve=True)
    kwargs = {"num_classes": 0, "img_size": cfg.crop, **arch}
    if weights is not None and weights.is_dir():
        if arch:
            raise ValueError(f"{weights}: video.arch overrides {sorted(arch)} cannot apply to an HF-format "
                             "directory, whose config.json fixes the architecture")
        return timm.create_model(f"local-dir:{weights}", pretrained=True, **kwargs)
    torch.manual_seed(seed)
    try:
        model = timm.create_model(cfg.backbone, pretrained=False, **kwargs)
    except TypeError as err:  # an unknown keyword in video.arch
        raise ValueError(f"video.arch {sorted(arch)} does not fit {cfg.backbone}: {err}") from None
    if weights is None:
        warn_random_init(f"video backbone {cfg.backbone}")
    else:
        _load_checkpoint(model, weights)
    return model


def _load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load a timm or original-format checkpoint file; classifier weights are dropped."""
    from timm.models import load_state_dict

    state = load_state_dict(str(path))
    convert = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if convert is not None:
        state = convert(state, model)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith("head")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
                  if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        problems = {"missing keys": missing, "unexpected keys": unexpected, "shape mismatches": mismatched}
        detail = "; ".join(f"{name} {items[:3]}{'...' if len(items) > 3 else ''}"
                           for name, items in problems.items() if items)
        raise ValueError(f"{path}: checkpoint does not fit {type(model).__name__} with this video.arch: "
                         f"{detail}")
    model.load_state_dict(state)


class VideoExtractor(Extractor):
    """Swin pooled features per frame."""

    def __init__(self, cfg: DictConfig, model: nn.Module | None = None):
        v = cfg.video
        self.batch_size = v.batch_size
        self.reader = FrameReader(v.resize, v.crop, v.batch_size)
        self.settings = self.describe(cfg)
        self.cfg, self.model = cfg, model
        self.mean, self.std = v.mean, v.std

    def load(self) -> None:
        if self.model is None:
            self.model = build_swin(self.cfg.video, self.cfg.seed)
        self.model.eval().to(self.cfg.device)

    @staticmethod
    def describe(cfg: DictConfig) -> dict[str, Any]:
        """What the sidecar records and a rerun must match."""
        v = cfg.video
        return {"type": "video", "backbone": v.backbone, "arch": OmegaConf.to_container(v.arch),
                **weights_settings(v.weights, v.random_init, "video", cfg.seed), "fps": cfg.fps,
                "frames": cfg.frames, "resize": v.resize, "crop": v.crop, "mean": v.mean, "std": v.std}

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 ``B x H x W x 3`` -> float ``B x 3 x H x W`` with ``(x / 255 - mean) / std``."""
        x = batch.permute(0, 3, 1, 2).float()
        return x.mul_(1.0 / (255.0 * self.std)).sub_(self.mean / self.std)

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalise(batch))

    def finish(self, job: Job, rows: torch.Tensor) -> torch.Tensor:
        return rows
