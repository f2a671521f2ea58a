"""The REACT metrics (docs/metrics.md) over arrays, vectorised, for the 2023/2024 and 2025/2026 sets.

Shapes: ``pred`` (C, S, T, 25) predictions of the C clips of a split in its 2N order, S samples
each; ``listener`` (C, T, 25) with ``listener[j]`` the real listener reaction to clip j;
``speaker`` (C, T, 25) with ``speaker[k]`` the Emotion of clip k; ``appropriate`` (C, C) bool,
``appropriate[k, j]`` when the reaction to clip j also suits clip k. Sums run in float64.

Clips of different lengths (REACT 2025/2026, MARS) come as lists: ``pred[k]`` (S, T_k, 25),
``speaker[k]`` (T_k, 25), ``listener[j]`` (T_j, 25). FRD compares whole sequences (DTW takes
unequal lengths); FRC and MAE compare a prediction and a reaction on their common length (the
first ``min(T_k, T_j)`` frames); S-MSE, FRVar and TLCC are per clip; FRDvs needs equal lengths.
Lists whose clips all have one length are scored exactly as arrays.

Every metric is a mean of per-clip terms (FRDvs: of mergeable moments), so :func:`score_clips`
scores any subset of the clips (a chunk, or one process's share) and :func:`combine` merges the
parts into exactly the values of the whole: memory stays bounded and processes can split a split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METRIC_SETS = {  # REACT 2023/2024 (official printout order) and REACT 2025/2026 (MARS scripts)
    "2024": ("FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC"),
    "2025": ("FRC", "FRD", "TLCC", "S-MSE", "FRVar", "MAE"),
}
METRIC_KEYS = METRIC_SETS["2024"]
MAE_COLUMNS = slice(15, 25)  # valence, arousal and the 8 expressions
CCC_EPS = 1e-8
TLCC_MAX_LAG = 49  # lags -49..49 (2 s at 25 fps, as the official code)
TLCC_CHUNK = 256  # (clip, sample) pairs scored at once


def _as_numpy(x: Any, dtype: type = np.float32) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=dtype)


def _constant_columns(x: np.ndarray) -> np.ndarray:
    """``(..., T, D) -> (..., D)``: whether a column takes a single value over the frames."""
    return (x.max(axis=-2) == x.min(axis=-2))


Seqs = np.ndarray | list  # (N, T, ...) array, or a list of N arrays (T_i, ...) of different T_i


def _frames(x: Seqs) -> np.ndarray:
    """(N,) frames of each item (the axis before the last)."""
    if isinstance(x, np.ndarray):
        return np.full(len(x), x.shape[-2], dtype=np.int64)
    return np.array([a.shape[-2] for a in x], dtype=np.int64)


def _take(x: Seqs, idx: Any) -> Seqs:
    """Items ``idx`` of an array or a list."""
    return x[idx] if isinstance(x, np.ndarray) else [x[i] for i in np.atleast_1d(idx)]


def _as_seqs(x: Any, dtype: type = np.float32) -> Seqs:
    """An array (dense input) or a list of arrays (one per clip)."""
    if isinstance(x, (list, tuple)):
        return [_as_numpy(a, dtype) for a in x]
    return _as_numpy(x, dtype)


def _dense_if_equal(*xs: Seqs) -> tuple[Seqs, ...]:
    """Stack lists whose items all have one frame count (scored as arrays), else all as lists."""
    if all(isinstance(x, np.ndarray) for x in xs):
        return xs
    if len({int(t) for x in xs for t in _frames(x)}) <= 1:
        return tuple(x if isinstance(x, np.ndarray) else np.stack(x) for x in xs)
    return tuple(list(x) for x in xs)


def _common_lengths(frames: int, references: Seqs, cand: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Candidates grouped by the length they share with a ``frames``-long prediction."""
    common = np.minimum(_frames(references)[cand], frames)
    return [(int(m), cand[common == m]) for m in np.unique(common)]


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centred float64 values, means, population variances and constant flags of ``(..., T, D)``."""
    v = x.astype(np.float64)
    mean = v.mean(axis=-2)
    centred = v - mean[..., None, :]
    return centred, mean, (centred**2).mean(axis=-2), _constant_columns(x)


def _reference_stats(x: np.ndarray, block: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``(A, D, T)`` (the float32 values), float64 means, population variances and constant
    flags ``(A, D)`` of references ``(A, T, D)``; float64 temporaries for ``block`` references at a time."""
    mean = x.mean(axis=1, dtype=np.float64)
    var = np.empty_like(mean)
    for a in range(0, len(x), block):
        deviation = x[a:a + block] - mean[a:a + block, None]
        var[a:a + block] = np.einsum("atd,atd->ad", deviation, deviation) / x.shape[1]
    return np.ascontiguousarray(x.transpose(0, 2, 1)), mean, var, _constant_columns(x)


def _ccc(p: tuple, g_rows: np.ndarray, g_mean: np.ndarray, g_var: np.ndarray, g_const: np.ndarray,
         t: int) -> np.ndarray:
    """(S, A) CCC (mean over columns) of predictions with stats ``p`` (:func:`_stats` of (S, T, D))
    and A references: rows ``g_rows`` (A, D, T), centred or not (the predictions are centred, so
    the covariance is the same), means, variances, constant flags (A, D)."""
    p_c, p_mean, p_var, p_const = p
    p_rows = np.ascontiguousarray(p_c.transpose(2, 0, 1))  # (D, S, T)
    cov = (np.matmul(p_rows, g_rows.transpose(1, 2, 0)) / t).transpose(1, 2, 0)  # (S, A, D), BLAS per column
    cov = np.where(p_const[:, None, :] | g_const[None], 0.0, cov)  # r := 0 where a column is constant
    denom = p_var[:, None] + g_var[None] + (p_mean[:, None] - g_mean[None]) ** 2
    return (2 * cov / (denom + CCC_EPS)).mean(axis=-1)


def _candidates(appropriate: np.ndarray) -> list[np.ndarray]:
    rows = [np.flatnonzero(row) for row in appropriate]
    empty = [k for k, row in enumerate(rows) if len(row) == 0]
    if empty:
        raise ValueError(f"clips {empty[:10]}{'...' if len(empty) > 10 else ''} have no appropriate "
                         "listener in the matrix (an all-zero row): FRC/FRD are undefined for them")
    return rows


def frc_per_clip(pred: Seqs, listener: Seqs, appropriate: np.ndarray) -> np.ndarray:
    """(C,) per clip: the sum over samples of the max CCC with an appropriate listener (on their
    common length when lengths differ).

    ``appropriate`` holds the rows of ``pred``'s clips (C x all clips).
    """
    cands = _candidates(appropriate)
    if not isinstance(pred, np.ndarray):
        return _frc_ragged(pred, listener, cands)
    t = pred.shape[2]
    used = np.flatnonzero(appropriate.any(axis=0))  # statistics of these listeners only (a chunk's)
    where = np.zeros(len(listener), dtype=np.int64)
    where[used] = np.arange(len(used))
    g_rows, g_mean, g_var, g_const = _reference_stats(listener[used])  # a clip's candidates: whole rows
    out = np.empty(len(pred))
    for k, cand in enumerate(cands):
        cand = where[cand]
        ccc = _ccc(_stats(pred[k]), g_rows[cand], g_mean[cand], g_var[cand], g_const[cand], t)
        out[k] = ccc.max(axis=1).sum()  # (S, |A|): best reaction per sample, summed over samples
    return out


def _frc_ragged(pred: list, listener: Seqs, cands: list[np.ndarray]) -> np.ndarray:
    """:func:`frc_per_clip` of clips of different lengths, candidates grouped by common length."""
    out = np.empty(len(pred))
    for k, cand in enumerate(cands):
        best = np.full(pred[k].shape[0], -np.inf)
        for m, group in _common_lengths(pred[k].shape[1], listener, cand):
            g_c, g_mean, g_var, g_const = _stats(_truncated(listener, group, m))
            ccc = _ccc(_stats(pred[k][:, :m]), np.ascontiguousarray(g_c.transpose(0, 2, 1)), g_mean, g_var,
                       g_const, m)
            best = np.maximum(best, ccc.max(axis=1))
        out[k] = best.sum()
    return out


def _truncated(references: Seqs, idx: np.ndarray, frames: int) -> np.ndarray:
    """``(len(idx), frames, D)``: the first ``frames`` frames of references ``idx``."""
    if isinstance(references, np.ndarray):
        return references[idx][:, :frames]
    return np.stack([references[j][:frames] for j in idx])


def frc(pred: np.ndarray, listener: np.ndarray, appropriate: np.ndarray) -> float:
    """Mean over clips of the sum over samples of the max CCC with an appropriate listener."""
    return float(frc_per_clip(pred, listener, appropriate).mean())


def frd_minima(
    pred: np.ndarray, listener: np.ndarray, appropriate: np.ndarray, *, backend: str = "numba",
    device: str = "cpu", progress: bool = False,
) -> tuple[np.ndarray, dict[str, int]]:
    """(C, S) min over appropriate listeners of the combined group DTW, and pruning counts."""
    c, s = len(pred), pred[0].shape[0]
    cands = _candidates(appropriate)
    counts = np.repeat([len(a) for a in cands], s)
    cand_ptr = np.concatenate([[0], np.cumsum(counts)])
    cand = np.concatenate([a for a in cands for _ in range(s)])
    if isinstance(pred, np.ndarray):
        queries = pred.reshape(c * s, *pred.shape[2:])
    else:
        queries = [sample for clip in pred for sample in clip]
    if backend == "torch":
        from evaluation.dtw_torch import min_group_dtw_torch

        values = min_group_dtw_torch(queries, listener, cand_ptr, cand, device=device, progress=progress)
        stats = {"pairs": int(len(cand)), "full_pairs": int(len(cand))}
    else:
        from evaluation.dtw import min_group_dtw

        values, done = min_group_dtw(queries, listener, cand_ptr, cand, chunk=64, progress=progress)
        stats = {"pairs": int(len(cand)), "full_pairs": int(done.sum())}
    return values.reshape(c, s), stats


def frd(pred: np.ndarray, listener: np.ndarray, appropriate: np.ndarray, **kwargs: Any) -> float:
    """Mean over clips of the sum over samples of the min DTW cost to an appropriate listener."""
    minima, _ = frd_minima(pred, listener, appropriate, **kwargs)
    return float(minima.sum(axis=1).mean())


def s_mse_per_clip(pred: Seqs) -> np.ndarray:
    """(C,) mean squared difference between two samples of each clip; NaN with a single sample."""
    if pred[0].shape[0] < 2:
        return np.full(len(pred), np.nan)
    per_clip = np.empty(len(pred))
    for k in range(len(pred)):  # sum over ordered pairs a != b = 2 S sum_a ||P_a - mean||^2
        s, t, d = pred[k].shape
        p = pred[k].astype(np.float64)
        per_clip[k] = 2 * s * ((p - p.mean(axis=0)) ** 2).sum() / (s * (s - 1) * t * d)
    return per_clip


def s_mse(pred: np.ndarray) -> float:
    """S-MSE (FRDiv): mean over clips of the mean squared difference between two of its samples.

    NaN with a single sample (no pair).
    """
    return float(s_mse_per_clip(pred).mean())


@dataclass
class Moments:
    """Count, mean ``(S, T, D)`` and summed squared deviation ``(S,)`` of clips' samples (for FRDvs)."""

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, pred: np.ndarray) -> Moments:
        """Two passes in float64, one clip at a time: no float64 copy of all the clips."""
        mean = pred.mean(axis=0, dtype=np.float64)
        m2 = np.zeros(pred.shape[1])
        for clip in pred:
            deviation = clip - mean
            m2 += np.einsum("std,std->s", deviation, deviation)
        return cls(len(pred), mean, m2)

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of clips (Chan et al.'s pairwise update)."""
        n = self.count + other.count
        delta = other.mean - self.mean
        m2 = self.m2 + other.m2 + (delta**2).sum(axis=(1, 2)) * self.count * other.count / n
        return Moments(n, self.mean + delta * (other.count / n), m2)


def frdvs_from_moments(m: Moments) -> float:
    """FRDvs from the moments of all clips: sum over ordered clip pairs = 2 C sum_k ||P_k - mean||^2."""
    c = m.count
    s, t, d = m.mean.shape
    if c < 2:
        return float("nan")
    return float(2 * c * m.m2.sum() / (c * (c - 1) * s) / (t * d))


def frdvs(pred: np.ndarray) -> float:
    """FRDvs: mean squared difference between the same sample index of two different clips.

    NaN with a single clip (no pair).
    """
    return frdvs_from_moments(Moments.of(pred))


def fr_var_per_clip(pred: np.ndarray) -> np.ndarray:
    """(C,) mean over samples and columns of the unbiased variance over frames."""
    return np.array([pred[k].astype(np.float64).var(axis=1, ddof=1).mean() for k in range(len(pred))])


def fr_var(pred: np.ndarray) -> float:
    """FRVar: mean over clips, samples and columns of the unbiased variance over frames."""
    return float(fr_var_per_clip(pred).mean())


def mae_per_clip(pred: Seqs, listener: Seqs, appropriate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C,) summed MAE over columns 15:25 of every (sample, appropriate listener) pair (on their
    common length when lengths differ), (C,) pair counts."""
    sums, pairs = np.zeros(len(pred)), np.zeros(len(pred), dtype=np.int64)
    for k, cand in enumerate(_candidates(appropriate)):
        for m, group in _common_lengths(pred[k].shape[1], listener, cand):
            g = _truncated(listener, group, m)[..., MAE_COLUMNS]
            diff = np.abs(pred[k][:, None, :m, MAE_COLUMNS] - g[None])  # (S, |A|, m, 10) float32
            sums[k] += diff.astype(np.float64).mean(axis=(2, 3)).sum()
            pairs[k] += diff.shape[0] * diff.shape[1]
    return sums, pairs


def mae(pred: np.ndarray, listener: np.ndarray, appropriate: np.ndarray) -> float:
    """MAE (REACT 2025/2026): mean over all prediction x appropriate ground-truth pairs of the mean
    absolute difference over frames and columns 15:25 (valence, arousal, expressions)."""
    sums, pairs = mae_per_clip(pred, listener, appropriate)
    return float(sums.sum() / pairs.sum())


def _window_sums(x: np.ndarray) -> np.ndarray:
    """Prefix sums along frames with a leading zero: ``(N, T, D) -> (N, T+1, D)``."""
    out = np.zeros((x.shape[0], x.shape[1] + 1, x.shape[2]))
    np.cumsum(x, axis=1, out=out[:, 1:])
    return out


def lagged_correlations(pred: np.ndarray, speaker: np.ndarray, max_lag: int = TLCC_MAX_LAG) -> np.ndarray:
    """Pearson r of ``pred`` and ``speaker`` per column for lags ``-max_lag..max_lag``: (N, 2L+1, D).

    Lag ``l > 0`` pairs ``pred[l:]`` with ``speaker[:-l]``, ``l < 0`` pairs ``pred[:l]`` with
    ``speaker[-l:]`` (the official shift). A window where either column is constant gives NaN,
    as ``np.corrcoef`` does; values are clipped to [-1, 1] like it.
    """
    n, t, d = pred.shape
    x = pred.astype(np.float64)
    y = speaker.astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)  # centring keeps the one-pass sums well conditioned
    y -= y.mean(axis=1, keepdims=True)
    sx, sy = _window_sums(x), _window_sums(y)
    sxx, syy = _window_sums(x * x), _window_sums(y * y)
    # Number of value changes up to each frame: a window is constant iff it holds no change.
    cx = np.concatenate([np.zeros((n, 1, d)), np.cumsum(pred[:, 1:] != pred[:, :-1], axis=1)], axis=1)
    cy = np.concatenate([np.zeros((n, 1, d)), np.cumsum(speaker[:, 1:] != speaker[:, :-1], axis=1)], axis=1)
    lags = range(-max_lag, max_lag + 1)
    r = np.empty((n, len(lags), d))
    for li, lag in enumerate(lags):
        xa, xb = max(0, lag), t + min(0, lag)  # pred window [xa, xb)
        ya, yb = max(0, -lag), t - max(0, lag)  # speaker window [ya, yb)
        m = xb - xa
        sxy = np.einsum("ntd,ntd->nd", x[:, xa:xb], y[:, ya:yb])
        mx, my = (sx[:, xb] - sx[:, xa]) / m, (sy[:, yb] - sy[:, ya]) / m
        cov = sxy - m * mx * my
        vx = (sxx[:, xb] - sxx[:, xa]) - m * mx * mx
        vy = (syy[:, yb] - syy[:, ya]) - m * my * my
        constant = (cx[:, xb - 1] == cx[:, xa]) | (cy[:, yb - 1] == cy[:, ya])
        # Nearly constant windows lose digits in the one-pass sums: redo those two-pass.
        fragile = ~constant & ((vx <= 1e-9 * (sxx[:, xb] - sxx[:, xa]))
                               | (vy <= 1e-9 * (syy[:, yb] - syy[:, ya])))
        for i, col in zip(*np.nonzero(fragile)):
            a = x[i, xa:xb, col] - x[i, xa:xb, col].mean()
            b = y[i, ya:yb, col] - y[i, ya:yb, col].mean()
            cov[i, col], vx[i, col], vy[i, col] = a @ b, a @ a, b @ b
        with np.errstate(invalid="ignore", divide="ignore"):
            r[:, li] = np.where(constant, np.nan, cov / np.sqrt(vx * vy))
    return np.clip(r, -1.0, 1.0)


def tlcc_offsets(pred: np.ndarray, speaker: np.ndarray,
                 max_lag: int = TLCC_MAX_LAG) -> tuple[np.ndarray, np.ndarray]:
    """|offset| of the best lag per pair (N,), and whether a NaN lag decided it (N,) bool.

    The score of a lag is the mean of the per-column correlations (NaN if any is NaN); the chosen
    lag is the argmax with NaN counted as the largest value (numpy/torch argmax), so a constant
    column over the whole clip gives the worst offset ``max_lag``.
    """
    scores = lagged_correlations(pred, speaker, max_lag).mean(axis=2)  # (N, 2L+1)
    nan = np.isnan(scores)
    has_nan = nan.any(axis=1)
    best = np.where(has_nan, nan.argmax(axis=1), np.nanargmax(np.where(nan, -np.inf, scores), axis=1))
    return np.abs(max_lag - best).astype(np.float64), has_nan


def tlcc_per_clip(pred: Seqs, speaker: Seqs, samples: str = "first") -> tuple[np.ndarray, int]:
    """(C, n) TLCC |offsets| of the first (``first``) or all (``all``) samples of each clip, and the
    number of (clip, sample) pairs that a constant column forced to the worst offset."""
    if samples not in ("first", "all"):
        raise ValueError(f"tlcc samples must be 'first' or 'all', got {samples!r}")
    n = 1 if samples == "first" else pred[0].shape[0]
    step = max(1, TLCC_CHUNK // n)  # clips per chunk: bounded memory on a full test split
    frames = _frames(pred)
    offsets, worst, k = [], 0, 0
    while k < len(pred):  # chunks of consecutive clips of one length
        end = k + 1
        while end < min(len(pred), k + step) and frames[end] == frames[k]:
            end += 1
        chunk = pred[k:end, :n] if isinstance(pred, np.ndarray) else np.stack([p[:n] for p in pred[k:end]])
        own = speaker[k:end] if isinstance(speaker, np.ndarray) else np.stack(speaker[k:end])
        off, nan = tlcc_offsets(chunk.reshape(-1, *chunk.shape[2:]), np.repeat(own, n, axis=0))
        offsets.append(off.reshape(-1, n))
        worst += int((nan & (off == TLCC_MAX_LAG)).sum())
        k = end
    return np.concatenate(offsets), worst


def tlcc(pred: np.ndarray, speaker: np.ndarray, samples: str = "first") -> tuple[float, int]:
    """TLCC: mean |offset| between predictions and the speaker; ``samples`` is ``first`` or ``all``.

    Returns (value, number of (clip, sample) pairs that a constant column forced to the worst offset).
    """
    offsets, worst = tlcc_per_clip(pred, speaker, samples)
    return float(offsets.mean()), worst


def check_inputs(pred: Seqs, listener: Seqs, speaker: Seqs, appropriate: np.ndarray,
                 clips: np.ndarray | None = None) -> None:
    """Raise ``ValueError`` naming the argument whose shape or values do not fit.

    ``pred`` holds the clips ``clips`` (default: all) of the split that ``listener`` describes.
    Arrays: ``pred`` (n, S, T, 25), ``listener`` and ``speaker`` (c, T, 25); lists (clips of
    different lengths): ``pred[k]`` (S, T_k, 25), ``speaker[k]`` (T_k, 25), ``listener[j]`` (T_j, 25).
    """
    if isinstance(pred, np.ndarray) and pred.ndim != 4:
        raise ValueError(f"pred must be (clips, samples, frames, 25), got shape {pred.shape}")
    n, c = len(pred), len(listener)
    if clips is None and n != c:
        raise ValueError(f"pred has {n} clips but listener {c}: they must match")
    if appropriate.shape != (c, c):
        raise ValueError(f"appropriate must be ({c}, {c}) for {c} clips, got {appropriate.shape}")
    if clips is not None and (len(clips) != n or (n and (clips.min() < 0 or clips.max() >= c))):
        raise ValueError(f"clips must name {n} clips of 0..{c - 1}")
    if isinstance(pred, np.ndarray):
        _, s, t, d = pred.shape
        if listener.shape[1:] != (t, d) or speaker.shape != listener.shape:
            raise ValueError(f"listener {listener.shape} and speaker {speaker.shape} must be {(c, t, d)} "
                             f"to match pred {pred.shape}")
        shortest = t
    else:
        own = np.arange(n) if clips is None else clips
        if len(speaker) != c:
            raise ValueError(f"speaker has {len(speaker)} clips but listener {c}: they must match")
        for name, arrays, rank in (("pred", pred, 3), ("listener", listener, 2), ("speaker", speaker, 2)):
            bad = [k for k, a in enumerate(arrays) if a.ndim != rank or a.shape[-1] != 25 or a.shape[-2] < 1]
            if bad:
                shape = "(samples, frames, 25)" if rank == 3 else "(frames, 25)"
                raise ValueError(f"{name}[{bad[0]}] must be {shape}, got {arrays[bad[0]].shape}")
        counts = sorted({p.shape[0] for p in pred})
        if len(counts) > 1:
            raise ValueError(f"every clip needs the same number of samples, got {counts}")
        wrong = [k for k in range(n) if pred[k].shape[1] != len(speaker[own[k]])]
        if wrong:
            k = wrong[0]
            raise ValueError(f"pred[{k}] has {pred[k].shape[1]} frames but its speaker "
                             f"{len(speaker[own[k]])}: a prediction covers its input clip")
        s, d, shortest = (pred[0].shape[0], 25, int(_frames(pred).min())) if n else (1, 25, TLCC_MAX_LAG + 2)
    if min(n, s) < 1 or shortest <= TLCC_MAX_LAG + 1 or d != 25:
        raise ValueError(f"pred must have clips and samples, more than {TLCC_MAX_LAG + 1} frames (TLCC "
                         f"lags reach {TLCC_MAX_LAG}) and 25 columns; got {n} clips, {s} samples, "
                         f"{shortest} frames (shortest clip), {d} columns")
    for name, arr in (("pred", pred, ), ("listener", listener), ("speaker", speaker)):
        if not all(np.isfinite(a).all() for a in ([arr] if isinstance(arr, np.ndarray) else arr)):
            raise ValueError(f"{name} contains NaN or inf")


def _metric_keys(metric_set: str, frdvs: bool | None) -> tuple[str, ...]:
    """The keys a set reports; ``frdvs`` adds (True) or drops (False) FRDvs, None keeps the set's."""
    if metric_set not in METRIC_SETS:
        raise ValueError(f"metric_set must be one of {', '.join(METRIC_SETS)}, got {metric_set!r}")
    keys = METRIC_SETS[metric_set]
    if frdvs and "FRDvs" not in keys:
        keys += ("FRDvs",)
    if frdvs is False:
        keys = tuple(k for k in keys if k != "FRDvs")
    return keys


@dataclass
class Partial:
    """Per-clip terms of some clips of a split (``clips``: their indices), mergeable by :func:`combine`."""

    keys: tuple[str, ...]
    clips: np.ndarray
    per_clip: dict[str, np.ndarray] = field(default_factory=dict)  # FRC, FRD, S-MSE, FRVar, TLCC, MAE pairs
    moments: Moments | None = None  # FRDvs
    tlcc_worst: int = 0
    frd_pairs: int = 0
    frd_full_pairs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def score_clips(
    pred: Any, clips: Any, listener: Any, speaker: Any, appropriate: Any, *, metric_set: str = "2024",
    frdvs: bool | None = None, tlcc_samples: str = "first", device: str = "cpu", workers: int | None = None,
    backend: str = "auto", progress: bool = False,
) -> Partial:
    """The per-clip terms of the clips ``clips`` (indices into the split), whose predictions ``pred``
    (len(clips), S, T, 25) are; ground truth and matrix are the whole split's. Options as
    :func:`compute_metrics`.
    """
    pred, listener, speaker = _dense_if_equal(_as_seqs(pred), _as_seqs(listener), _as_seqs(speaker))
    appropriate = _as_numpy(appropriate, dtype=bool)
    clips = np.asarray(clips, dtype=np.int64)
    check_inputs(pred, listener, speaker, appropriate, clips)
    keys = _metric_keys(metric_set, frdvs)
    if "FRDvs" in keys and not isinstance(pred, np.ndarray):
        raise ValueError("FRDvs compares the same sample of different clips frame by frame: it needs clips "
                         "of one length (the 2025 metric set leaves it out)")
    if backend == "auto":
        backend = "torch" if device.startswith("cuda") else "numba"
    if backend not in ("numba", "torch"):
        raise ValueError(f"backend must be auto, numba or torch, got {backend!r}")
    if backend == "numba":
        from evaluation.dtw import set_threads

        set_threads(workers)
    part = Partial(keys, clips)
    rows = appropriate[clips]

    def timed(key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        part.seconds[key] = round(time.perf_counter() - start, 4)
        return out

    part.per_clip["FRC"] = timed("FRC", frc_per_clip, pred, listener, rows)
    minima, stats = timed("FRD", frd_minima, pred, listener, rows, backend=backend, device=device,
                          progress=progress)
    part.per_clip["FRD"] = minima.sum(axis=1)
    part.frd_pairs, part.frd_full_pairs = stats["pairs"], stats["full_pairs"]
    part.per_clip["S-MSE"] = timed("S-MSE", s_mse_per_clip, pred)
    part.per_clip["FRVar"] = timed("FRVar", fr_var_per_clip, pred)
    if "FRDvs" in keys:
        part.moments = timed("FRDvs", Moments.of, pred)
    part.per_clip["TLCC"], part.tlcc_worst = timed("TLCC", tlcc_per_clip, pred, _take(speaker, clips),
                                                   tlcc_samples)
    if "MAE" in keys:
        part.per_clip["MAE"], part.per_clip["MAE_pairs"] = timed("MAE", mae_per_clip, pred, listener, rows)
    return part


def combine(parts: list[Partial]) -> dict[str, Any]:
    """The metrics of the union of ``parts`` (disjoint clip sets), keys in the set's order, plus extras
    (see :func:`compute_metrics`); ``seconds`` adds up the parts' times."""
    parts = [p for p in parts if len(p.clips)]
    if not parts:
        raise ValueError("no clips were scored")
    keys = parts[0].keys
    clips = np.concatenate([p.clips for p in parts])
    if len(np.unique(clips)) != len(clips):
        raise ValueError("the parts score some clips twice")
    per_clip = {k: np.concatenate([p.per_clip[k] for p in parts]) for k in parts[0].per_clip}
    results: dict[str, Any] = {}
    for key in keys:
        if key == "FRDvs":
            moments = parts[0].moments
            for p in parts[1:]:
                moments = moments.merge(p.moments)
            results[key] = frdvs_from_moments(moments)
        elif key == "MAE":
            results[key] = float(per_clip["MAE"].sum() / per_clip["MAE_pairs"].sum())
        else:
            results[key] = float(per_clip[key].mean())
    seconds: dict[str, float] = {}
    for p in parts:
        for k, v in p.seconds.items():
            seconds[k] = round(seconds.get(k, 0.0) + v, 4)
    results.update(TLCC_worst_clips=sum(p.tlcc_worst for p in parts),
                   frd_pairs=sum(p.frd_pairs for p in parts),
                   frd_full_pairs=sum(p.frd_full_pairs for p in parts), seconds=seconds)
    return results


def compute_metrics(
    pred: Any, listener: Any, speaker: Any, appropriate: Any, *, metric_set: str = "2024",
    frdvs: bool | None = None, tlcc_samples: str = "first", device: str = "cpu", workers: int | None = None,
    backend: str = "auto", progress: bool = False,
) -> dict[str, Any]:
    """The metrics of a set, in its order: ``2024`` (REACT 2023/2024) ``FRC FRD S-MSE FRVar FRDvs
    TLCC`` or ``2025`` (REACT 2025/2026) ``FRC FRD TLCC S-MSE FRVar MAE``; ``frdvs`` True adds FRDvs,
    False drops it. Plus extras.

    Extras: ``TLCC_worst_clips`` (pairs whose TLCC offset a constant column forced to the worst
    value), ``frd_pairs`` / ``frd_full_pairs`` (DTW pairs in the definition / not pruned) and
    ``seconds`` per metric. ``backend``: ``numba`` (CPU), ``torch`` (``device`` cpu or cuda) or
    ``auto`` (torch on cuda, numba otherwise). numpy arrays or torch tensors, or lists of them for
    clips of different lengths (see the module docstring).
    """
    pred = _as_seqs(pred)
    part = score_clips(pred, np.arange(len(pred)), listener, speaker, appropriate, metric_set=metric_set,
                       frdvs=frdvs, tlcc_samples=tlcc_samples, device=device, workers=workers,
                       backend=backend, progress=progress)
    return combine([part])
