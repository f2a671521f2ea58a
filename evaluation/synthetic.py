"""Model-like synthetic predictions in the layout ``evaluation.py`` reads (tests, benchmark).

Most samples are a time-shifted, noisy, smoothed copy of an appropriate listener reaction (what a
working generator produces); the rest are smooth random sequences in the valid value ranges.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.ndimage import gaussian_filter1d

from react.data import react_layout as L


def _valid_ranges(x: np.ndarray) -> np.ndarray:
    """AUs and expression probabilities into [0, 1], valence/arousal into [-1, 1]."""
    out = np.clip(x, 0.0, 1.0)
    out[..., L.NUM_AUS:L.NUM_AUS + 2] = np.clip(x[..., L.NUM_AUS:L.NUM_AUS + 2], -1.0, 1.0)
    return out


def make_predictions(listener: np.ndarray, appropriate: np.ndarray, samples: int = L.NUM_PREDICTIONS,
                     random_share: float = 0.3, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """``(C, samples, T, 25)`` float32 predictions for the C clips of a split.

    ``listener[j]``: real listener reaction to clip j; ``appropriate``: (C, C) bool.
    """
    rng = np.random.default_rng(seed)
    c, t, d = listener.shape
    pred = np.empty((c, samples, t, d), dtype=np.float32)
    for k in range(c):
        cand = np.flatnonzero(appropriate[k])
        for i in range(samples):
            drift = gaussian_filter1d(rng.normal(size=(t, d)), 6, axis=0) * noise * 4
            if rng.random() < random_share:
                base = 0.5 + gaussian_filter1d(rng.normal(size=(t, d)), 10, axis=0) * 3
            else:
                base = np.roll(listener[rng.choice(cand)], int(rng.integers(-10, 11)), axis=0)
            pred[k, i] = _valid_ranges(base + drift)
    return pred


def write_predictions(pred_dir: str | os.PathLike, split: L.Split, pred: np.ndarray) -> None:
    """Save ``pred[c, k]`` as ``<pred_dir>/<split>/<clip c>/result-<k>.pth`` (float32 tensors)."""
    import torch

    from react.utils.io import save_tensor

    for c, clip in enumerate(split.clips):
        for k in range(pred.shape[1]):
            save_tensor(torch.from_numpy(np.ascontiguousarray(pred[c, k])),
                        L.prediction_path(pred_dir, split.name, clip, k))
