"""The two baselines fitted on the training split: ``Linear`` (ridge regression) and ``NN`` (retrieval).

Both read the speaker's per-frame inputs of every clip (:func:`speaker_inputs`): its facial
attributes (``emotion``) or the video features with the audio features linearly resampled to the
video frames (``features``, what the generators see), in either layout (:mod:`react.reaction.data.layouts`).
A training pair is clip ``c`` of the train split (both directions) with its real listener's
reaction ``E[listener_index(c)]``, on their common length.

- ``Linear``: each frame's input together with the inputs ``lags`` frames earlier (the first frame
  repeated before the start) is standardised by the training mean and standard deviation and
  mapped to the listener's 25 attributes by ridge regression with an intercept. The penalty is the
  one of ``RIDGE_GRID`` whose fit gives the smallest mean squared error on the validation split;
  the weights are those fitted on the training split alone. Everything runs on sums over frames
  (moments), so memory holds one clip at a time.
- ``NN``: the ``k`` training clips whose standardised inputs are closest to the test clip's (mean
  squared difference per frame and column over their common length), nearest first; sample ``i``
  is the real listener reaction of the ``i``-th nearest, cut to the test clip's length (its last
  frame repeated when shorter).

Neither reads anything of the split it predicts except the speaker inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from react.reaction.data import layouts
from react.reaction.data import react_layout as L
from react.reaction.data.dyadic import FeatureStore, resample_index

INPUT_KINDS = ("emotion", "features")
RIDGE_GRID = tuple(10.0 ** p for p in range(-4, 5))  # penalties relative to the standardised Gram / frame
DEFAULT_LAGS = (0, 4, 8, 12)  # frames of context of Linear (0.5 s at 25 fps)


def clip_lengths(split: L.Split) -> list[int]:
    """Frames of every clip: 750 in REACT 2023/2024, the facial-attribute rows in MARS."""
    if split.layout == "react":
        return [L.NUM_FRAMES] * len(split)
    from react.reaction.data import mars_layout as M

    return [M.frame_count(layouts.emotion_path(split, clip)) for clip in split.clips]


def speaker_inputs(split: L.Split, kind: str, features_root: str | os.PathLike | None = None
                   ) -> list[np.ndarray]:
    """Per clip of ``split`` the float32 ``(T_c, D)`` inputs: facial attributes (``emotion``) or video
    features with resampled audio features (``features``, from ``features_root``, default the data dir)."""
    if kind not in INPUT_KINDS:
        raise ValueError(f"inputs must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
    if kind == "emotion":
        return layouts.read_emotions(split)
    root = Path(features_root or split.data_dir)
    lengths = clip_lengths(split)
    video = FeatureStore(root, split.name, "video", None, dict(zip(split.clips, lengths)))
    audio = FeatureStore(root, split.name, "audio", None, 1)
    out = []
    for clip, frames in zip(split.clips, lengths):
        rows = torch.arange(frames)
        v, a = video[clip], audio[clip]
        lo, hi, w = resample_index(rows, a.shape[0], v.shape[0])
        resampled = audio.read(clip, lo) * (1 - w) + audio.read(clip, hi) * w
        out.append(torch.cat([video.read(clip, rows), resampled], 1).numpy())
    return out


def training_pairs(split: L.Split, inputs: list[np.ndarray], emotions: list[np.ndarray]
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(speaker inputs, real listener reaction) of every clip, cut to their common length."""
    pairs = []
    for c, x in enumerate(inputs):
        y = emotions[split.listener_index(c)]
        t = min(len(x), len(y))
        pairs.append((x[:t], y[:t]))
    return pairs


def with_context(x: np.ndarray, lags: tuple[int, ...]) -> np.ndarray:
    """``(T, D) -> (T, D * len(lags))``: frame t followed by frames t - lag (frame 0 before the start)."""
    idx = np.maximum(np.arange(len(x))[:, None] - np.asarray(lags)[None], 0)
    return x[idx].reshape(len(x), -1)


@dataclass
class Moments:
    """Frame count and float64 sums of z, y, z z^T, z y^T and y y^T over frames (z: inputs with context)."""

    n: int
    sz: np.ndarray
    sy: np.ndarray
    szz: np.ndarray
    szy: np.ndarray
    syy: np.ndarray

    @classmethod
    def of(cls, pairs: list[tuple[np.ndarray, np.ndarray]], lags: tuple[int, ...]) -> Moments:
        m = None
        for x, y in pairs:
            z, y = with_context(x, lags).astype(np.float64), y.astype(np.float64)
            part = (len(z), z.sum(0), y.sum(0), z.T @ z, z.T @ y, y.T @ y)
            m = part if m is None else tuple(a + b for a, b in zip(m, part))
        if m is None:
            raise ValueError("no training frames")
        return cls(*m)

    def centred(self, mz: np.ndarray, my: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sums of (z - mz)(z - mz)^T, (z - mz)(y - my)^T and (y - my)(y - my)^T."""
        n = self.n
        zz = self.szz - np.outer(mz, self.sz) - np.outer(self.sz, mz) + n * np.outer(mz, mz)
        zy = self.szy - np.outer(mz, self.sy) - np.outer(self.sz, my) + n * np.outer(mz, my)
        yy = self.syy - np.outer(my, self.sy) - np.outer(self.sy, my) + n * np.outer(my, my)
        return zz, zy, yy


@dataclass
class Ridge:
    """``y = intercept + ((with_context(x) - mean) / scale) @ weights``, penalty ``lam``."""

    lags: tuple[int, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: np.ndarray
    lam: float
    val_mse: dict[float, float]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(T, D)`` speaker inputs -> ``(T, 25)`` float32 reaction."""
        z = (with_context(x, self.lags).astype(np.float64) - self.mean) / self.scale
        return (self.intercept + z @ self.weights).astype(np.float32)


def fit_ridge(train: list[tuple[np.ndarray, np.ndarray]], val: list[tuple[np.ndarray, np.ndarray]],
              lags: tuple[int, ...] = DEFAULT_LAGS, grid: tuple[float, ...] = RIDGE_GRID) -> Ridge:
    """Ridge on the standardised training inputs, the penalty of ``grid`` best on ``val`` (MSE)."""
    tr = Moments.of(train, lags)
    mz, my = tr.sz / tr.n, tr.sy / tr.n
    zz, zy, _ = tr.centred(mz, my)
    scale = np.sqrt(np.diag(zz) / tr.n)
    scale[scale == 0] = 1.0  # a constant input column: centred to 0, its weight is penalised to 0
    gram = zz / tr.n / np.outer(scale, scale)
    cross = zy / tr.n / scale[:, None]
    s, v = np.linalg.eigh(gram)
    s = np.maximum(s, 0.0)
    va = Moments.of(val, lags)
    vzz, vzy, vyy = va.centred(mz, my)
    vzz, vzy = vzz / np.outer(scale, scale), vzy / scale[:, None]
    fits, errors = {}, {}
    for lam in grid:
        w = v @ ((v.T @ cross) / (s + lam)[:, None])
        sse = np.trace(vyy) - 2 * np.sum(w * vzy) + np.sum(w * (vzz @ w))
        fits[lam], errors[lam] = w, float(sse / (va.n * vzy.shape[1]))
    best = min(grid, key=lambda lam: errors[lam])
    return Ridge(tuple(lags), mz, scale, fits[best], my, best, errors)


def standardiser(train_inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (1 where constant) over every training frame."""
    n = sum(len(x) for x in train_inputs)
    mean = sum(x.sum(0, dtype=np.float64) for x in train_inputs) / n
    var = sum(((x - mean) ** 2).sum(0) for x in train_inputs) / n
    sd = np.sqrt(var)
    sd[sd == 0] = 1.0
    return mean, sd


def nearest_clips(queries: list[np.ndarray], train_inputs: list[np.ndarray], k: int) -> np.ndarray:
    """``(Q, k)`` indices of the training clips nearest to each query, nearest first (ties: lower index).

    Distance: mean squared difference per frame and column of the inputs standardised by the
    training statistics, over the common length (clips of one length: the cross products in float32,
    the norms in float64; memory holds the standardised inputs of both sets in float32). With
    fewer than ``k`` training clips the ranking repeats from the nearest.
    """
    mean, sd = standardiser(train_inputs)
    train = [((x - mean) / sd).astype(np.float32) for x in train_inputs]
    lengths = {len(x) for x in train} | {len(q) for q in queries}
    dist = np.empty((len(queries), len(train)))
    if len(lengths) == 1:  # one length: |a|^2 + |b|^2 - 2 a.b, the products in one float32 matrix product
        b = np.stack(train).reshape(len(train), -1)
        a = np.stack([((q - mean) / sd).astype(np.float32) for q in queries]).reshape(len(queries), -1)
        norm_a, norm_b = ([float(r.astype(np.float64) @ r.astype(np.float64)) for r in m] for m in (a, b))
        cross = (a @ b.T).astype(np.float64)
        dist[:] = (np.array(norm_a)[:, None] + np.array(norm_b)[None] - 2 * cross) / a.shape[1]
    else:
        for i, q in enumerate(queries):
            a = ((q - mean) / sd).astype(np.float32)
            for j, x in enumerate(train):
                t = min(len(a), len(x))
                dist[i, j] = float(((a[:t] - x[:t]).astype(np.float64) ** 2).mean())
    order = np.argsort(dist, axis=1, kind="stable")
    return order[:, np.arange(k) % len(train)]


def fit_to_length(y: np.ndarray, frames: int) -> np.ndarray:
    """The first ``frames`` frames of ``y``, its last frame repeated when it is shorter."""
    if len(y) >= frames:
        return y[:frames]
    return np.concatenate([y, np.repeat(y[-1:], frames - len(y), axis=0)])
