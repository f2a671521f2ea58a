"""Synthetic predictions in the layout ``evaluation.py`` reads (tests, benchmark), of three kinds.

- ``mixture`` (model-like): a generator that learned something produces reactions that resemble
  the appropriate ones without copying any: each sample is a random convex mixture of a few
  appropriate listener reactions, time-warped by a smooth random speed profile (its own timing) and
  overlaid with smooth noise of its own, then put into the valid value ranges. No sample is close
  to a single reaction, so the FRD minima are not decided by one obviously nearest candidate.
- ``mean-like`` (low diversity, like an under-trained generator): the mean reaction of the split
  plus a little smooth noise per sample.
- ``random``: every value uniform in [0, 1), like the Random baseline.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.ndimage import gaussian_filter1d

from react.reaction.data import react_layout as L


def _valid_ranges(x: np.ndarray) -> np.ndarray:
    """AUs and expression probabilities into [0, 1], valence/arousal into [-1, 1]."""
    out = np.clip(x, 0.0, 1.0)
    out[..., L.NUM_AUS:L.NUM_AUS + 2] = np.clip(x[..., L.NUM_AUS:L.NUM_AUS + 2], -1.0, 1.0)
    return out


def _time_warp(x: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """``x`` (T, D) replayed at a smoothly varying speed (same start and end)."""
    t = len(x)
    speed = np.exp(strength * gaussian_filter1d(rng.normal(size=t), 40))
    pos = np.cumsum(speed)
    pos = (pos - pos[0]) / (pos[-1] - pos[0]) * (t - 1)
    frames = np.arange(t)
    return np.stack([np.interp(pos, frames, x[:, d]) for d in range(x.shape[1])], axis=1)


def make_predictions(listener: np.ndarray, appropriate: np.ndarray, samples: int = L.NUM_PREDICTIONS,
                     mix: int = 3, noise: float = 0.15, warp: float = 0.8, seed: int = 0) -> np.ndarray:
    """``(C, samples, T, 25)`` float32 predictions for the C clips of ``appropriate``'s rows.

    ``listener[j]``: real listener reaction to clip j; ``appropriate``: (C, clips) bool. Each
    sample mixes ``mix`` appropriate reactions with Dirichlet weights.
    """
    rng = np.random.default_rng(seed)
    c = len(appropriate)
    t, d = listener.shape[1:]
    pred = np.empty((c, samples, t, d), dtype=np.float32)
    for k in range(c):
        cand = np.flatnonzero(appropriate[k])
        for i in range(samples):
            parts = rng.choice(cand, size=min(mix, len(cand)), replace=False)
            weights = rng.dirichlet(np.ones(len(parts)))
            base = np.tensordot(weights, listener[parts].astype(np.float64), axes=1)
            own = gaussian_filter1d(rng.normal(size=(t, d)), 5, axis=0) * noise * 6
            pred[k, i] = _valid_ranges(_time_warp(base, rng, warp) + own)
    return pred


KINDS = ("mixture", "mean-like", "random")


def make_kind(kind: str, listener: np.ndarray, appropriate: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(C, 10, T, 25)`` float32 predictions of ``kind`` (see the module docstring) for the rows of
    ``appropriate``; ``listener``: every real reaction of the split."""
    if kind == "mixture":
        return make_predictions(listener, appropriate, seed=seed)
    rng = np.random.default_rng(seed)
    shape = (len(appropriate), L.NUM_PREDICTIONS, *listener.shape[1:])
    if kind == "random":
        return rng.random(shape, dtype=np.float32)
    if kind == "mean-like":
        noise = gaussian_filter1d(rng.normal(size=shape), 5, axis=2) * 0.1
        return _valid_ranges(listener.mean(axis=0, dtype=np.float64) + noise).astype(np.float32)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def write_predictions(pred_dir: str | os.PathLike, split: L.Split, pred: np.ndarray) -> None:
    """Save ``pred[c, k]`` as ``<pred_dir>/<split>/<clip c>/result-<k>.pth`` (float32 tensors)."""
    import torch

    from react.utils.io import save_tensor

    for c, clip in enumerate(split.clips):
        for k in range(pred.shape[1]):
            save_tensor(torch.from_numpy(np.ascontiguousarray(pred[c, k])),
                        L.prediction_path(pred_dir, split.name, clip, k))
