"""Generation: ``samples`` (10) reactions per clip of a split, in the evaluation's format.

For each clip, all its windows and all samples go through the model in one batched call (the
latent noise multiplied by ``scale``); the overlapping windows are blended back into the whole
clip (750 frames in REACT 2023/2024, any length in MARS) by overlap-add with a raised-sine taper
(``stitch="mean"``: plain averages, the official 50/50), and sample ``k`` is written as
``<pred_dir>/<split>/<clip>/result-<k>.pth`` (float32 ``(T, 25)``, temp file then rename), then the
clip's marker. Noise is seeded per clip from ``seed`` and the clip path, so a clip's reactions do
not depend on which other clips are generated, nor by which process. A clip whose marker records
the same weights, settings and features is read back instead of redone; ``.generation.json``
sums up a finished split. The command line is :mod:`react.generate`, which spreads the clips over
the processes of ``accelerate launch``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from react.reaction.contract import sample
from react.reaction.data import layouts
from react.reaction.data import react_layout as L
from react.reaction.data.dyadic import DyadicWindows
from react.utils.io import save_json, save_tensor
from react.utils.progress import progress as progress_bar

FINGERPRINT = ".generation.json"  # the split's summary, once every clip is done
CLIP_MARKER = ".generation.done"  # in a clip's folder, after its files: the settings it was made with
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
    """``(samples, T, 25)`` reactions to clip index ``clip`` of ``dataset`` (``T``: its length), through
    the generator contract: the model's ``inputs`` as conditions, its own noise; a model with
    ``feedback`` runs its windows in order, ``frames`` apart (:func:`generate_with_feedback`)."""
    generator = torch.Generator().manual_seed(clip_seed(seed, dataset.split.clips[clip]))
    total = int(dataset.lengths[clip])
    covered = max(total, dataset.num_frames)  # a clip shorter than a window: one window, cut after
    if model.feedback:
        starts = torch.arange(0, covered, model.frames)
        conditions = dataset.clip_conditions(clip, model.inputs, starts)
        noise = model.draw_noise(len(starts), samples, generator)
        conditions = {name: value.to(device) for name, value in conditions.items()}
        reactions = generate_with_feedback(model, conditions, noise, scale)
        return reactions.float().cpu().transpose(0, 1).flatten(1, 2)[:, :total]
    conditions = dataset.clip_conditions(clip, model.inputs)
    conditions = {name: value.to(device) for name, value in conditions.items()}
    windows = sample(model, conditions, samples, generator, scale)  # (W, S, F, 25)
    starts = dataset.clip_starts(clip)
    return blend_windows(windows.float().cpu().transpose(0, 1), starts, covered, stitch)[:, :total]


def generate_with_feedback(model: torch.nn.Module, conditions: dict[str, torch.Tensor], noise: torch.Tensor,
                           scale: float = 1.0) -> torch.Tensor:
    """Reactions ``(W, S, frames, nodes)`` to consecutive windows ``(W, frames, dim)`` of one clip, one
    window at a time: each reads as ``past`` the last ``feedback`` frames generated for the same
    sample before it (zeros before the clip's start)."""
    windows, samples = noise.shape[:2]
    first = next(iter(conditions.values()))
    history = first.new_zeros(samples, model.feedback, model.nodes)
    out = []
    for w in range(windows):
        own = {name: value[w:w + 1] for name, value in conditions.items()}
        reaction = model.generate({**own, "past": history[None]}, noise[w:w + 1], scale)  # (1, S, F, N)
        out.append(reaction)
        history = torch.cat([history, reaction[0]], 1)[:, -model.feedback:]
    return torch.cat(out)


def settings_stamp(model: torch.nn.Module, dataset: DyadicWindows, samples: int, seed: int,
                   scale: float = 1.0, stitch: str = "taper") -> dict:
    """What determines every clip's predictions besides its own features: the weights, the model's
    construction settings (e.g. the top-k rule, the inverse's stopping rule), the sampling and inversion
    settings and the windows."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    sampling = {key: float(getattr(model, key, 0.0))
                for key in ("noise_std", "noise_clip", "noise_max", "inverse_iters", "inverse_tol")}
    sampling.update(scale=float(scale), stitch=stitch)
    model_settings = hashlib.sha1(getattr(model, "settings", "").encode()).hexdigest()
    return {"weights_sha1": digest.hexdigest(), "model_sha1": model_settings, "samples": samples,
            "seed": seed, **sampling, "windows": [dataset.num_frames, dataset.stride]}


def _feature_stamp(dataset: DyadicWindows, clip: str, inputs: Sequence[str] = ("video", "audio")) -> str:
    """Size and modification time of a clip's feature files, and of its facial-attributes file
    when the model reads them (``speaker`` among ``inputs``)."""
    paths = [dataset.video.path(clip), dataset.audio.path(clip)]
    if "speaker" in inputs:
        paths.append(layouts.emotion_path(dataset.split, clip))
    return ";".join(f"{path}:{path.stat().st_size}:{path.stat().st_mtime_ns}" if path.is_file()
                    else f"{path}:missing" for path in paths)


def clip_stamp(settings: dict, dataset: DyadicWindows, clip: int, inputs: Sequence[str] = ("video", "audio")
               ) -> str:
    """sha1 of everything one clip's predictions depend on: the settings, its id, length and input files."""
    path = dataset.split.clips[clip]
    text = json.dumps([settings, path, int(dataset.lengths[clip]), _feature_stamp(dataset, path, inputs)])
    return hashlib.sha1(text.encode()).hexdigest()


def fingerprint(model: torch.nn.Module, dataset: DyadicWindows, samples: int, seed: int, scale: float = 1.0,
                stitch: str = "taper") -> dict:
    """The split summary written to ``<pred_dir>/<split>/.generation.json`` once every clip is done:
    the settings, the clips and their feature files."""
    clips = [dataset.split.clips[c] for c in dataset.clips]
    stamps = "".join(_feature_stamp(dataset, clip, model.inputs) + ";" for clip in clips)
    files = hashlib.sha1(stamps.encode())
    settings = settings_stamp(model, dataset, samples, seed, scale, stitch)
    return {**settings, "features_sha1": files.hexdigest(), "clips": clips}


def _read_finished(pred_dir: Path, dataset: DyadicWindows, clip: int, samples: int,
                   stamp: str) -> torch.Tensor | None:
    """The clip's predictions when its marker holds ``stamp`` and every file reads back, else None."""
    name, path = dataset.split.name, dataset.split.clips[clip]
    marker = L.prediction_path(pred_dir, name, path, 0).with_name(CLIP_MARKER)
    try:
        if json.loads(marker.read_text()).get("stamp") != stamp:
            return None
        files = [L.prediction_path(pred_dir, name, path, k) for k in range(samples)]
        return torch.from_numpy(np.stack([L.read_prediction(f, int(dataset.lengths[clip])) for f in files]))
    except (OSError, ValueError, AttributeError):  # no marker, a damaged one or a damaged file: redo
        return None


@dataclass
class Generated:
    """Reactions to some clips (``(samples, T, 25)`` each, in order) and how many were generated
    now (``generated``) or read back from an earlier run with the same settings (``reused``)."""

    preds: list[torch.Tensor]
    generated: int = 0
    reused: int = 0


def generate_clips(model: torch.nn.Module, dataset: DyadicWindows, pred_dir: str | os.PathLike | None,
                   positions: Sequence[int], samples: int = L.NUM_PREDICTIONS, seed: int = 0,
                   device: torch.device | str = "cpu", progress: bool = True, scale: float = 1.0,
                   stitch: str = "taper") -> Generated:
    """Reactions to the clips ``dataset.clips[p]`` for ``p`` in ``positions``. With ``pred_dir``, each
    clip's ``result-<k>.pth`` files are written (temporary name, then rename), then its marker
    (``.generation.done``: the :func:`clip_stamp`); a clip whose marker matches is read back, not
    redone, so an interrupted run resumes where it stopped, whichever process wrote the clip."""
    if stitch not in STITCHES:
        raise ValueError(f"stitch must be one of {', '.join(STITCHES)}, got '{stitch}'")
    was_training = model.training
    model.eval()
    settings = settings_stamp(model, dataset, samples, seed, scale, stitch) if pred_dir is not None else None
    out = Generated([])
    clips = progress_bar([dataset.clips[p] for p in positions], desc=f"generate {dataset.split.name}",
                         unit="clip", disable=not progress)
    try:
        for clip in clips:
            path = dataset.split.clips[clip]
            stamp = clip_stamp(settings, dataset, clip, model.inputs) if pred_dir is not None else ""
            pred = None if pred_dir is None else _read_finished(Path(pred_dir), dataset, clip, samples, stamp)
            if pred is not None:
                out.preds.append(pred)
                out.reused += 1
                continue
            pred = generate_clip(model, dataset, clip, samples, seed, device, scale, stitch)
            if not torch.isfinite(pred).all():
                raise FloatingPointError(f"generated reactions for {path} are not finite")
            if pred_dir is not None:
                marker = L.prediction_path(pred_dir, dataset.split.name, path, 0).with_name(CLIP_MARKER)
                marker.unlink(missing_ok=True)  # the files change: no stale marker may vouch for them
                for k in range(samples):
                    save_tensor(pred[k].clone(), L.prediction_path(pred_dir, dataset.split.name, path, k))
                save_json({"stamp": stamp}, marker)
            out.preds.append(pred)
            out.generated += 1
    finally:
        model.train(was_training)
    return out


def stack(preds: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    """``(C, S, T, 25)`` when every clip has ``T`` frames, else the list itself."""
    return torch.stack(preds) if preds and len({p.shape for p in preds}) == 1 else preds


def write_fingerprint(model: torch.nn.Module, dataset: DyadicWindows, pred_dir: str | os.PathLike,
                      samples: int, seed: int, scale: float = 1.0, stitch: str = "taper") -> None:
    """Record the finished split in ``<pred_dir>/<split>/.generation.json`` (unchanged file kept)."""
    target = Path(pred_dir) / dataset.split.name / FINGERPRINT
    stamp = fingerprint(model, dataset, samples, seed, scale, stitch)
    try:
        if json.loads(target.read_text()) == stamp:
            return
    except (OSError, ValueError):
        pass
    save_json(stamp, target)


def generate_split(model: torch.nn.Module, dataset: DyadicWindows, pred_dir: str | os.PathLike | None,
                   samples: int = L.NUM_PREDICTIONS, seed: int = 0, device: torch.device | str = "cpu",
                   progress: bool = True, scale: float = 1.0,
                   stitch: str = "taper") -> torch.Tensor | list[torch.Tensor]:
    """Reactions to every clip of ``dataset``: ``(C, samples, T, 25)``, or a list of ``(samples, T_c, 25)``
    when the clips differ in length; written under ``pred_dir`` (see :func:`generate_clips`)."""
    done = generate_clips(model, dataset, pred_dir, range(len(dataset.clips)), samples, seed, device,
                          progress, scale, stitch)
    if pred_dir is not None:
        write_fingerprint(model, dataset, pred_dir, samples, seed, scale, stitch)
    return stack(done.preds)
