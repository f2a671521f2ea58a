"""Generation: ``samples`` (10) reactions per clip of a split, in the evaluation's format.

For each clip, all its windows and all samples go through the model in one batched call (the
latent noise multiplied by ``scale``); the overlapping windows are blended back into 750 frames by
overlap-add with a raised-sine taper (``stitch="mean"``: plain averages, the official 50/50), and
sample ``k`` is written as ``<pred_dir>/<split>/<clip>/result-<k>.pth`` (float32 ``(750, 25)``,
temp file then rename). Noise is seeded per clip from ``seed`` and the clip path, so a clip's
reactions do not depend on which other clips are generated. A split whose predictions were all
written by the same weights and settings (``.generation.json``) is read back instead of redone.
The command line is :mod:`react.generate`.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from react.data import react_layout as L
from react.data.dyadic import DyadicWindows
from react.utils.io import save_json, save_tensor
from react.utils.progress import progress as progress_bar

FINGERPRINT = ".generation.json"
STITCHES = ("taper", "mean")


def taper(num_frames: int, floor: float = 1e-3) -> torch.Tensor:
    """Raised-sine window ``sin^2(pi (t + 0.5) / T)``; overlapping halves sum to one."""
    t = torch.arange(num_frames, dtype=torch.float64)
    return (torch.sin(torch.pi * (t + 0.5) / num_frames) ** 2).clamp(min=floor).float()


def blend_windows(windows: torch.Tensor, starts: torch.Tensor, total: int,
                  stitch: str = "taper") -> torch.Tensor:
    """Overlap-add windows ``(..., W, T, D)`` starting at ``starts`` ``(W,)`` into ``(..., total, D)``
    (``stitch``: ``taper`` weights or ``mean``, equal weights)."""
    w_count, frames = windows.shape[-3:-1]
    weight = taper(frames).to(windows) if stitch == "taper" else windows.new_ones(frames)
    rows = (starts[:, None] + torch.arange(frames)).flatten().to(windows.device)
    weighted = (windows * weight[:, None]).flatten(-3, -2)  # (..., W*T, D)
    summed = windows.new_zeros(*windows.shape[:-3], total, windows.shape[-1]).index_add_(-2, rows, weighted)
    norm = windows.new_zeros(total).index_add_(0, rows, weight.repeat(w_count))
    if (norm == 0).any():
        raise ValueError(f"windows starting at {starts.tolist()} do not cover all {total} frames")
    return summed / norm[:, None]


def clip_seed(seed: int, clip: str) -> int:
    """A per-clip seed that depends only on ``seed`` and the clip path."""
    return (seed * 1_000_003 + zlib.crc32(clip.encode())) % 2**63


@torch.no_grad()
def generate_clip(model: torch.nn.Module, dataset: DyadicWindows, clip: int, samples: int, seed: int,
                  device: torch.device | str = "cpu", scale: float = 1.0,
                  stitch: str = "taper") -> torch.Tensor:
    """``(samples, 750, 25)`` reactions to clip index ``clip`` of ``dataset``."""
    video, audio = dataset.clip_windows(clip)
    generator = torch.Generator().manual_seed(clip_seed(seed, dataset.split.clips[clip]))
    windows = model.sample(video.to(device), audio.to(device), samples, generator, scale)  # (W, S, T, 25)
    return blend_windows(windows.float().cpu().transpose(0, 1), dataset.starts, L.NUM_FRAMES, stitch)


def fingerprint(model: torch.nn.Module, dataset: DyadicWindows, samples: int, seed: int, scale: float = 1.0,
                stitch: str = "taper") -> dict:
    """What determines the predictions: the weights, sampling and inversion settings, the windows,
    the clips and their feature files (size and modification time)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    clips = [dataset.split.clips[c] for c in dataset.clips]
    files = hashlib.sha1()
    for store in (dataset.video, dataset.audio):
        for clip in clips:
            path = store.path(clip)
            stat = f"{path.stat().st_size}:{path.stat().st_mtime_ns}" if path.is_file() else "missing"
            files.update(f"{path}:{stat};".encode())
    sampling = {key: float(getattr(model, key, 0.0))
                for key in ("noise_std", "noise_clip", "noise_max", "inverse_iters", "inverse_tol")}
    sampling.update(scale=float(scale), stitch=stitch)
    return {"weights_sha1": digest.hexdigest(), "samples": samples, "seed": seed, **sampling,
            "windows": [dataset.num_frames, [int(s) for s in dataset.starts]],
            "features_sha1": files.hexdigest(), "clips": clips}


def _read_existing(pred_dir: Path, dataset: DyadicWindows, samples: int, stamp: dict) -> torch.Tensor | None:
    marker = pred_dir / dataset.split.name / FINGERPRINT
    if not marker.is_file() or json.loads(marker.read_text()) != stamp:
        return None
    name, clips = dataset.split.name, dataset.split.clips
    paths = [[L.prediction_path(pred_dir, name, clips[c], k) for k in range(samples)] for c in dataset.clips]
    if not all(p.is_file() for row in paths for p in row):
        return None
    try:
        return torch.from_numpy(np.stack([[L.read_prediction(p) for p in row] for row in paths]))
    except L.LayoutError:
        return None  # a damaged file: generate again


def generate_split(model: torch.nn.Module, dataset: DyadicWindows, pred_dir: str | os.PathLike | None,
                   samples: int = L.NUM_PREDICTIONS, seed: int = 0, device: torch.device | str = "cpu",
                   progress: bool = True, scale: float = 1.0, stitch: str = "taper") -> torch.Tensor:
    """Reactions to every clip of ``dataset``, ``(C, samples, 750, 25)``; written under ``pred_dir``."""
    if stitch not in STITCHES:
        raise ValueError(f"stitch must be one of {', '.join(STITCHES)}, got '{stitch}'")
    was_training = model.training
    model.eval()
    stamp = fingerprint(model, dataset, samples, seed, scale, stitch) if pred_dir is not None else None
    if pred_dir is not None:
        pred_dir = Path(pred_dir)
        existing = _read_existing(pred_dir, dataset, samples, stamp)
        if existing is not None:
            model.train(was_training)
            return existing
        (pred_dir / dataset.split.name / FINGERPRINT).unlink(missing_ok=True)
    preds = []
    clips = progress_bar(dataset.clips, desc=f"generate {dataset.split.name}", unit="clip",
                         disable=not progress)
    for clip in clips:
        pred = generate_clip(model, dataset, clip, samples, seed, device, scale, stitch)
        if not torch.isfinite(pred).all():
            raise FloatingPointError(f"generated reactions for {dataset.split.clips[clip]} are not finite")
        if pred_dir is not None:
            for k in range(samples):
                save_tensor(pred[k].clone(), L.prediction_path(pred_dir, dataset.split.name,
                                                               dataset.split.clips[clip], k))
        preds.append(pred)
    if pred_dir is not None:
        save_json(stamp, pred_dir / dataset.split.name / FINGERPRINT)
    model.train(was_training)
    return torch.stack(preds)
