"""Multi-group DTW compiled with numba: the FRD kernel on CPU.

The FRD cost of a pair of sequences is a weighted sum of three DTWs, one per column group
(SPEC.md section 2: AUs / 15, valence-arousal, expressions / 8). The DTW is tslearn's: the square
root of the minimal sum of squared Euclidean frame distances along an unconstrained warping path.
Frame distances are computed in float32 from the float32 inputs (at most 17 roundings of positive
terms: relative error below 1.1e-6) and accumulated in float64, so every value is within 1.1e-6
(relative) of ``tslearn.metrics.dtw``, which does all of it in float64.

Speed comes from:

* SIMD: the accumulated matrix is filled in horizontal strips of ``STRIP`` rows and, inside a
  strip, along anti-diagonals, whose cells are independent, so the inner loop vectorises and the
  strip's frames stay in the L1 cache while the other sequence streams through once per strip;
* exact pruning: FRD needs only the minimum over a clip's appropriate listeners. Candidates are
  tried best guess first (smallest diagonal-path cost). A cheap lower bound screens each other
  one: the DTW of both sequences projected onto a few orthonormal principal directions of the AU
  and expression groups (a projection never increases a distance, so neither the DTW). Survivors
  are computed in full with early abandoning: every warping path crosses every row, so the smallest
  value of a finished row bounds the final DTW from below (rounding is monotone, so this holds in
  floating point). The minimum is exactly the one a full computation gives;
* threads: (clip, sample) minima run in parallel (numba ``prange``).

Kernels are compiled with ``cache=True`` so a new process loads them from disk.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

STRIP = 128  # rows of the accumulated matrix per strip
# Column groups of the 25 facial attributes and their divisors (SPEC.md section 2).
G0, G1, G2, G3 = 0, 15, 17, 25
DIVISORS = (15.0, 1.0, 8.0)
# Columns of the projected sequences per group for the lower-bound screen: 5 principal
# coordinates of the AUs, valence-arousal as is, 4 principal coordinates of the expressions.
P0, P1, P2, P3 = 0, 5, 7, 11
# Relative slack of the screen: covers the float32 distance errors (1.1e-6) many times over.
MARGIN = 1e-3


@njit(cache=True, inline="always")
def _min3(a, b, c):
    m = a if a < b else b
    return m if m < c else c


@njit(cache=True, inline="always")
def _diagonal(xt, yr, x0, y0, n, d0, d1, g, new, prev, prev2, lo, cost):
    """Cells ``lo .. lo+n-1`` of one anti-diagonal of group ``g`` (dims ``d0:d1``).

    Frame distances in float32 (one SIMD loop), accumulated costs in the buffers' dtype (a second).
    Offsets are unsigned so that numba emits no negative-index wraparound: the loops vectorise.
    """
    one = np.uint64(1)
    for q in range(np.uint64(n)):
        c = np.float32(0.0)
        for d in range(d0, d1):
            diff = xt[d, x0 + q] - yr[d, y0 + q]
            c += diff * diff
        cost[q] = c
    for q in range(np.uint64(n)):
        new[g, lo + one + q] = cost[q] + _min3(prev[g, lo + q], prev[g, lo + one + q], prev2[g, lo + q])


@njit(cache=True, inline="always")
def _dtw(xt, yr, threshold, b0, b1, b2, b3, acc):
    """Combined DTW over column groups ``b0:b1, b1:b2, b2:b3`` accumulated in ``acc``'s dtype."""
    t1, t2 = xt.shape[1], yr.shape[1]
    inf = np.inf
    last = np.full((3, t2 + 1), inf, dtype=acc.dtype)  # accumulated row above the strip; [0] is column -1
    below = np.full((3, t2 + 1), inf, dtype=acc.dtype)
    last[:, 0] = 0.0
    prev2 = np.empty((3, STRIP + 2), dtype=acc.dtype)  # anti-diagonals s-2, s-1, s of the strip
    prev = np.empty((3, STRIP + 2), dtype=acc.dtype)
    new = np.empty((3, STRIP + 2), dtype=acc.dtype)
    cost = np.empty(STRIP, dtype=np.float32)
    for r0 in range(0, t1, STRIP):
        h = min(STRIP, t1 - r0)
        prev2[:] = inf
        prev[:] = inf
        new[:] = inf
        for g in range(3):
            prev2[g, 0] = last[g, 0]
        below[:, 0] = inf
        for s in range(h + t2 - 1):
            lo = max(0, s - t2 + 1)
            hi = min(s, h - 1)
            if s < t2:  # the cell above the strip's first row, column s
                for g in range(3):
                    prev[g, 0] = last[g, s + 1]
            x0 = np.uint64(r0 + lo)
            y0 = np.uint64(t2 - 1 - s + lo)
            ulo = np.uint64(lo)
            n = hi - lo + 1
            _diagonal(xt, yr, x0, y0, n, b0, b1, 0, new, prev, prev2, ulo, cost)
            _diagonal(xt, yr, x0, y0, n, b1, b2, 1, new, prev, prev2, ulo, cost)
            _diagonal(xt, yr, x0, y0, n, b2, b3, 2, new, prev, prev2, ulo, cost)
            for g in range(3):
                if lo > 0:
                    new[g, lo] = inf
                new[g, hi + 2] = inf
                if hi == h - 1:
                    below[g, s - h + 2] = new[g, h]
            prev2, prev, new = prev, new, prev2
        last, below = below, last
        if r0 + h < t1:  # early abandoning on the row just finished
            bound = 0.0
            for g in range(3):
                low = inf
                for j in range(1, t2 + 1):
                    low = min(low, last[g, j])
                bound += math.sqrt(low) / DIVISORS[g]
            if bound > threshold:
                return inf
    total = 0.0
    for g in range(3):
        total += math.sqrt(last[g, t2]) / DIVISORS[g]
    return total


@njit(cache=True, nogil=True)
def group_dtw(xt, yr, threshold):
    """FRD pair cost ``DTW_AU/15 + DTW_VA + DTW_expr/8``, or ``inf`` once it provably exceeds ``threshold``.

    ``xt``: (25, T1) float32, the first sequence transposed; ``yr``: (25, T2) float32, the second
    sequence transposed and reversed in time (``yr[:, m] = y[T2 - 1 - m]``).
    """
    return _dtw(xt, yr, threshold, G0, G1, G2, G3, np.empty(0, dtype=np.float64))


@njit(cache=True, nogil=True)
def screen_dtw(xt, yr, threshold):
    """``group_dtw`` accumulated in float32: twice as fast, relative error below 1e-4."""
    return _dtw(xt, yr, threshold, G0, G1, G2, G3, np.empty(0, dtype=np.float32))


@njit(cache=True, nogil=True)
def projected_dtw(xt, yr, threshold):
    """``screen_dtw`` of sequences projected to (P3, T): a lower bound of the full one."""
    return _dtw(xt, yr, threshold, P0, P1, P2, P3, np.empty(0, dtype=np.float32))


@njit(cache=True, nogil=True)
def _diagonal_cost(xt, yr):
    """FRD cost of the diagonal warping path (equal lengths): an upper bound of ``group_dtw``."""
    t = xt.shape[1]
    total = 0.0
    for g in range(3):
        lo, hi = (G0, G1) if g == 0 else ((G1, G2) if g == 1 else (G2, G3))
        acc = 0.0
        for d in range(lo, hi):
            for i in range(t):
                diff = xt[d, i] - yr[d, t - 1 - i]
                acc += diff * diff
        total += math.sqrt(acc) / DIVISORS[g]
    return total


@njit(cache=True, parallel=True)
def _min_over_candidates(queries, qproj, yr, yproj, slack, cand_ptr, cand, start, stop, out_value, out_stats):
    """For queries ``start..stop-1``: min over their candidates of ``group_dtw``.

    A candidate is skipped when its projected lower bound exceeds ``best * (1 + MARGIN) + slack``
    (``slack`` bounds the effect of rounding the projected coordinates to float32).
    Survivors are screened again in full dimension with float32 accumulation, then computed exactly.
    ``out_stats[q]`` = (candidates that passed the projected screen, exact DTW computations).
    """
    same_length = yr.shape[2] == queries.shape[1]
    for q in prange(start, stop):
        xt = np.ascontiguousarray(queries[q].T)
        first, last = cand_ptr[q], cand_ptr[q + 1]
        guess = np.empty(last - first)
        for c in range(last - first):
            guess[c] = _diagonal_cost(xt, yr[cand[first + c]]) if same_length else 0.0
        order = np.argsort(guess, kind="mergesort")
        best = group_dtw(xt, yr[cand[first + order[0]]], np.inf)
        passed = 0
        exact = 1
        for c in order[1:]:
            j = cand[first + c]
            limit = best * (1.0 + MARGIN) + slack
            if projected_dtw(qproj[q], yproj[j], limit) > limit:
                continue
            passed += 1
            if screen_dtw(xt, yr[j], best * (1.0 + MARGIN)) > best * (1.0 + MARGIN):
                continue
            exact += 1
            best = min(best, group_dtw(xt, yr[j], best))
        out_value[q] = best
        out_stats[q, 0] = passed
        out_stats[q, 1] = exact


def reverse_references(y: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """(N, T, D) -> (N, D, T) reversed in time, the layout of ``group_dtw``'s second sequence."""
    return np.ascontiguousarray(np.swapaxes(np.asarray(y)[:, ::-1], 1, 2), dtype=dtype)


def principal_projection(frames: np.ndarray) -> np.ndarray:
    """(25, P3) block-diagonal matrix with orthonormal columns: top principal directions of the AU
    and expression columns of ``frames`` (N, 25), identity on valence-arousal.

    Projecting with it never increases a distance within a group, so the DTW of projected
    sequences is a lower bound of the full one.
    """
    frames = np.asarray(frames, dtype=np.float64)
    proj = np.zeros((G3, P3))
    proj[G1:G2, P1:P2] = np.eye(G2 - G1)
    for (a, b), (pa, pb) in (((G0, G1), (P0, P1)), ((G2, G3), (P2, P3))):
        block = frames[:, a:b] - frames[:, a:b].mean(axis=0)
        _, vectors = np.linalg.eigh(block.T @ block)  # ascending eigenvalues
        proj[a:b, pa:pb] = vectors[:, ::-1][:, : pb - pa]
    return proj


def rounding_slack(qproj: np.ndarray, yproj: np.ndarray, path_cells: int) -> float:
    """Largest change of the projected DTW bound that rounding the coordinates to float32 can cause.

    A coordinate of magnitude <= m moves by e <= m 2^-24; a squared difference then moves by at
    most 8 m e + 4 e^2 per dimension, a path has at most ``path_cells`` cells, and the square root
    of a sum moves by at most the square root of the sum's change.
    """
    slack = 0.0
    for (a, b), div in (((P0, P1), DIVISORS[0]), ((P2, P3), DIVISORS[2])):
        m = float(max(np.abs(qproj[:, a:b]).max(), np.abs(yproj[:, a:b]).max()))
        e = m * 2.0**-24
        slack += math.sqrt(path_cells * (b - a) * (8 * m * e + 4 * e * e)) / div
    return 1.01 * slack


def min_group_dtw(
    queries: np.ndarray, references: np.ndarray, cand_ptr: np.ndarray, cand: np.ndarray,
    chunk: int = 0, progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact min over candidates of the FRD pair cost, for many queries.

    ``queries``: (Q, T1, 25) float32; ``references``: (R, T2, 25). Query ``q`` is compared with
    ``references[cand[cand_ptr[q]:cand_ptr[q+1]]]`` (CSR layout, at least one candidate each).
    Returns (minimum (Q,), stats (Q, 2): candidates past the screen, exact DTW computations).
    ``chunk`` > 0 runs the queries in chunks (with a progress bar if ``progress``).
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    references = np.asarray(references, dtype=np.float32)
    nq = len(queries)
    cand_ptr = np.ascontiguousarray(cand_ptr, dtype=np.int64)
    cand = np.ascontiguousarray(cand, dtype=np.int64)
    if len(cand_ptr) != nq + 1 or np.any(np.diff(cand_ptr) < 1):
        raise ValueError("cand_ptr must have one entry per query plus one, each query >= 1 candidate")
    sample = queries[:: max(1, nq // 64), ::4].reshape(-1, G3)
    proj = principal_projection(np.concatenate([references[:, ::4].reshape(-1, G3), sample]))
    yr = reverse_references(references)
    yproj = reverse_references(references @ proj)
    qproj = np.ascontiguousarray(np.swapaxes(queries @ proj, 1, 2), dtype=np.float32)
    slack = rounding_slack(qproj, yproj, queries.shape[1] + references.shape[1] - 1)
    value = np.empty(nq)
    stats = np.zeros((nq, 2), dtype=np.int64)
    step = chunk if chunk > 0 else max(nq, 1)
    starts = range(0, nq, step)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="FRD", unit="chunk", leave=False)
    with numba.parallel_chunksize(1):
        for start in starts:
            _min_over_candidates(queries, qproj, yr, yproj, slack, cand_ptr, cand, start,
                                 min(start + step, nq), value, stats)
    return value, stats


def pair_cost(x: np.ndarray, y: np.ndarray) -> float:
    """FRD cost of two (T, 25) sequences."""
    xt = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)
    return float(group_dtw(xt, reverse_references(np.asarray(y)[None])[0], np.inf))


def set_threads(workers: int | None) -> int:
    """Use ``workers`` numba threads (``None``: all available); returns the number used."""
    n = min(workers or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    return n
