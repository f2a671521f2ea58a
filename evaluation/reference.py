"""Straightforward per-pair reference of the six metrics, written the way the official script does.

Loops over clips, samples and candidate listeners, one ``tslearn.metrics.dtw`` per pair and
group, per-column ``np.corrcoef`` for CCC and TLCC. Slow on purpose: tests and
``benchmarks/bench_eval.py`` check the fast implementation against it.

:func:`pooled` runs it the way the official evaluation script does (REACT 2024 ``evaluate.py``):
FRC, FRD and TLCC one clip per task in a ``multiprocessing`` pool (the ground truth sent along
with the tasks), S-MSE, FRVar and FRDvs as whole-tensor ``torch.cdist`` / variance expressions.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from functools import partial

import numpy as np

from evaluation.metrics import CCC_EPS, TLCC_MAX_LAG


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.corrcoef(a, b)[0, 1])


def ccc(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean over columns of the concordance correlation coefficient (r := 0 for a constant column)."""
    values = []
    for col in range(truth.shape[1]):
        t, p = truth[:, col].astype(np.float64), pred[:, col].astype(np.float64)
        r = _pearson(t, p)
        r = 0.0 if np.isnan(r) else r
        num = 2 * r * t.std() * p.std()
        values.append(num / (t.var() + p.var() + (t.mean() - p.mean()) ** 2 + CCC_EPS))
    return float(np.mean(values))


def frc(pred: np.ndarray, listener: np.ndarray, appropriate: np.ndarray) -> float:
    total = []
    for k in range(pred.shape[0]):
        cand = np.flatnonzero(appropriate[k])
        total.append(sum(max(ccc(listener[j], pred[k, i]) for j in cand) for i in range(pred.shape[1])))
    return float(np.mean(total))


def group_dtw(pred: np.ndarray, truth: np.ndarray) -> float:
    from tslearn.metrics import dtw

    p, t = pred.astype(np.float32), truth.astype(np.float32)
    return dtw(p[:, :15], t[:, :15]) / 15 + dtw(p[:, 15:17], t[:, 15:17]) + dtw(p[:, 17:], t[:, 17:]) / 8


def frd(pred: np.ndarray, listener: np.ndarray, appropriate: np.ndarray) -> float:
    total = []
    for k in range(pred.shape[0]):
        cand = np.flatnonzero(appropriate[k])
        total.append(sum(min(group_dtw(pred[k, i], listener[j]) for j in cand) for i in range(pred.shape[1])))
    return float(np.mean(total))


def s_mse(pred: np.ndarray) -> float:
    c, s, t, d = pred.shape
    per_clip = []
    for k in range(c):
        p = pred[k].astype(np.float64)
        per_clip.append(sum(((p[a] - p[b]) ** 2).sum() for a in range(s) for b in range(s) if a != b)
                        / (s * (s - 1) * t * d))
    return float(np.mean(per_clip))


def frdvs(pred: np.ndarray) -> float:
    c, s, t, d = pred.shape
    p = pred.astype(np.float64)
    total = sum(((p[k, i] - p[l, i]) ** 2).sum()
                for i in range(s) for k in range(c) for l in range(c) if k != l)
    return float(total / (c * (c - 1) * s) / (t * d))


def fr_var(pred: np.ndarray) -> float:
    return float(np.mean([np.var(pred[k, i].astype(np.float64), axis=0, ddof=1)
                          for k in range(pred.shape[0]) for i in range(pred.shape[1])]))


def _shift(x: np.ndarray, y: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    if lag > 0:
        return x[lag:], y[:-lag]
    if lag < 0:
        return x[:lag], y[-lag:]
    return x, y


def tlcc_offset(pred: np.ndarray, speaker: np.ndarray, max_lag: int = TLCC_MAX_LAG) -> int:
    """|offset| of the lag whose mean per-column correlation is largest (first NaN wins)."""
    scores = []
    for lag in range(-max_lag, max_lag + 1):
        a, b = _shift(pred, speaker, lag)
        scores.append(np.mean([_pearson(a[:, col], b[:, col]) for col in range(pred.shape[1])]))
    return abs(max_lag - int(np.argmax(scores)))


def tlcc(pred: np.ndarray, speaker: np.ndarray, samples: str = "first") -> float:
    n = 1 if samples == "first" else pred.shape[1]
    return float(np.mean([tlcc_offset(pred[k, i], speaker[k])
                          for k in range(pred.shape[0]) for i in range(n)]))


def compute_metrics(pred: np.ndarray, listener: np.ndarray, speaker: np.ndarray, appropriate: np.ndarray,
                    tlcc_samples: str = "first") -> dict[str, float]:
    """The six metrics by the per-pair reference."""
    return {
        "FRC": frc(pred, listener, appropriate), "FRD": frd(pred, listener, appropriate),
        "S-MSE": s_mse(pred), "FRVar": fr_var(pred), "FRDvs": frdvs(pred),
        "TLCC": tlcc(pred, speaker, tlcc_samples),
    }


def _clip_frc(row: np.ndarray, pred: np.ndarray, listener: np.ndarray) -> float:
    """Sum over the samples of one clip of the max CCC over its appropriate reactions."""
    cand = np.flatnonzero(row)
    return float(sum(max(ccc(listener[j], p) for j in cand) for p in pred))


def _clip_frd(row: np.ndarray, pred: np.ndarray, listener: np.ndarray) -> float:
    """Sum over the samples of one clip of the min FRD pair cost over its appropriate reactions."""
    cand = np.flatnonzero(row)
    return float(sum(min(group_dtw(p, listener[j]) for j in cand) for p in pred))


def _clip_tlcc(pred: np.ndarray, speaker: np.ndarray) -> float:
    """|offset| of the first sample only (the official per-clip function returns inside its loop)."""
    return float(tlcc_offset(pred[0], speaker))


def _torch_diversity(pred: np.ndarray) -> dict[str, float]:
    """S-MSE, FRVar and FRDvs as whole-tensor expressions (squared ``cdist`` sums, frame variance)."""
    import torch

    p = torch.from_numpy(pred)
    c, s = p.shape[:2]
    flat = p.reshape(c, s, -1)
    per_clip = [float(torch.cdist(x, x).pow(2).sum()) / (s * (s - 1) * flat.shape[-1]) for x in flat]
    across = flat.transpose(0, 1)
    frdvs_value = float(torch.cdist(across, across).pow(2).sum()) / (c * (c - 1) * s) / flat.shape[-1]
    return {"S-MSE": sum(per_clip) / c, "FRVar": float(p.var(dim=2).mean()), "FRDvs": frdvs_value}


def pooled(pred: np.ndarray, listener: np.ndarray, speaker: np.ndarray, appropriate: np.ndarray,
           processes: int) -> tuple[dict[str, np.ndarray | float], dict[str, float]]:
    """Per-clip FRC, FRD, TLCC of the clips ``pred`` holds (``appropriate``: their rows) in a pool of
    ``processes``, and the diversity metrics of ``pred``; returns (values, seconds per metric)."""
    group_dtw(pred[0, 0, :5], listener[0, :5])  # tslearn compiles on first use; forked workers inherit it
    values: dict[str, np.ndarray | float] = {}
    seconds: dict[str, float] = {}
    with mp.get_context("fork").Pool(processes) as pool:
        for key, fn in (("TLCC", None), ("FRC", _clip_frc), ("FRD", _clip_frd)):
            start = time.perf_counter()
            if fn is None:
                out = pool.starmap(_clip_tlcc, zip(pred, speaker))
            else:
                out = pool.starmap(partial(fn, listener=listener), zip(appropriate, pred))
            seconds[key] = time.perf_counter() - start
            values[key] = np.asarray(out)
    start = time.perf_counter()
    values.update(_torch_diversity(pred))
    seconds["diversity"] = time.perf_counter() - start
    return values, seconds
