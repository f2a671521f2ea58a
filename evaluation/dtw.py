"""Multi-group DTW compiled with numba: the FRD kernel on CPU.

The FRD cost of a pair of sequences is a weighted sum of three DTWs, one per column group
(docs/metrics.md: AUs / 15, valence-arousal, expressions / 8). The DTW is tslearn's: the square
root of the minimal sum of squared Euclidean frame distances along an unconstrained warping path.
Frame distances are computed in float32 from the float32 inputs (at most 17 roundings of positive
terms: relative error below 1.1e-6) and accumulated in float64, so every value is within 1.1e-6
(relative) of ``tslearn.metrics.dtw``, which does all of it in float64.

Speed comes from:

* SIMD: the accumulated matrix is filled in horizontal strips of ``STRIP`` rows and, inside a
  strip, along anti-diagonals, whose cells are independent, so the inner loop vectorises and the
  strip's frames stay in the L1 cache while the other sequence streams through once per strip;
* exact pruning: FRD needs only the minimum over a clip's appropriate listeners. Candidates are
  tried best guess first (smallest diagonal-path cost), the others term by term against the best
  so far: valence-arousal first (2 columns, yet usually most of the cost); then block lower
  bounds of the expression and AU terms (the DTW of a frame against boxes of ``BLOCK`` reference
  frames: 8 times fewer cells, about 3/4 of the true value on model-like data) drop most of the
  candidates that are left; then expressions, then AUs, each with early abandoning. Every warping
  path crosses every row, so the smallest value of a finished row bounds a DTW from below. Every
  bound is computed with roundings that are monotone, so each holds in floating point, and a
  candidate stops only when its finished terms plus the bounds of the others exceed the best: the
  minimum is bit for bit the one a full computation gives;
* threads: (clip, sample) minima run in parallel (numba ``prange``).

Kernels are compiled with ``cache=True`` so a new process loads them from disk.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

STRIP = 128  # rows of the accumulated matrix per strip
BLOCK = 8  # frames of a reference per box of the block lower bound
# Column groups of the 25 facial attributes and their divisors (docs/metrics.md).
G0, G1, G2, G3 = 0, 15, 17, 25
DIVISORS = (15.0, 1.0, 8.0)


@njit(cache=True, inline="always")
def _min3(a, b, c):
    m = a if a < b else b
    return m if m < c else c


@njit(cache=True, inline="always")
def _diagonal(xt, yr, x0, y0, n, d0, d1, g, new, prev, prev2, lo, cost):
    """Cells ``lo .. lo+n-1`` of one anti-diagonal of group ``g`` (dims ``d0:d1``).

    Frame distances in float32 (one SIMD loop), accumulated costs in float64 (a second one).
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
def _dtw(xt, yr, threshold, groups, bounds, divisors, base):
    """``base + sum_g sqrt(DTW_g^2) / divisors[g]`` over the first ``groups`` column groups
    ``bounds[g]:bounds[g+1]``; ``inf`` once it provably exceeds ``threshold``. ``groups``,
    ``bounds`` and ``divisors`` are compile-time constants of the callers.
    """
    t1, t2 = xt.shape[1], yr.shape[1]
    inf = np.inf
    last = np.full((groups, t2 + 1), inf)  # accumulated row above the strip; [0]: column -1
    below = np.full((groups, t2 + 1), inf)
    last[:, 0] = 0.0
    prev2 = np.empty((groups, STRIP + 2))  # anti-diagonals s-2, s-1, s of the strip
    prev = np.empty((groups, STRIP + 2))
    new = np.empty((groups, STRIP + 2))
    cost = np.empty(STRIP, dtype=np.float32)
    for r0 in range(0, t1, STRIP):
        h = min(STRIP, t1 - r0)
        prev2[:] = inf
        prev[:] = inf
        new[:] = inf
        for g in range(groups):
            prev2[g, 0] = last[g, 0]
        below[:, 0] = inf
        for s in range(h + t2 - 1):
            lo = max(0, s - t2 + 1)
            hi = min(s, h - 1)
            if s < t2:  # the cell above the strip's first row, column s
                for g in range(groups):
                    prev[g, 0] = last[g, s + 1]
            x0 = np.uint64(r0 + lo)
            y0 = np.uint64(t2 - 1 - s + lo)
            ulo = np.uint64(lo)
            n = hi - lo + 1
            _diagonal(xt, yr, x0, y0, n, bounds[0], bounds[1], 0, new, prev, prev2, ulo, cost)
            if groups > 1:
                _diagonal(xt, yr, x0, y0, n, bounds[1], bounds[2], 1, new, prev, prev2, ulo, cost)
            if groups > 2:
                _diagonal(xt, yr, x0, y0, n, bounds[2], bounds[3], 2, new, prev, prev2, ulo, cost)
            for g in range(groups):
                if lo > 0:
                    new[g, lo] = inf
                new[g, hi + 2] = inf
                if hi == h - 1:
                    below[g, s - h + 2] = new[g, h]
            prev2, prev, new = prev, new, prev2
        last, below = below, last
        if r0 + h < t1:  # early abandoning on the row just finished
            bound = base
            for g in range(groups):
                low = inf
                for j in range(1, t2 + 1):
                    low = min(low, last[g, j])
                bound += math.sqrt(low) / divisors[g]
            if bound > threshold:
                return inf
    total = base
    for g in range(groups):
        total += math.sqrt(last[g, t2]) / divisors[g]
    return total


@njit(cache=True, nogil=True)
def group_dtw(xt, yr, threshold):
    """FRD pair cost ``DTW_AU/15 + DTW_VA + DTW_expr/8``, or ``inf`` once it provably exceeds ``threshold``.

    ``xt``: (25, T1) float32, the first sequence transposed; ``yr``: (25, T2) float32, the second
    sequence transposed and reversed in time (``yr[:, m] = y[T2 - 1 - m]``).
    """
    return _dtw(xt, yr, threshold, 3, (G0, G1, G2, G3), DIVISORS, 0.0)


@njit(cache=True, nogil=True)
def va_term(xt, yr, threshold, base):
    """``base + DTW_VA`` (float64 accumulation); ``inf`` once past ``threshold``."""
    return _dtw(xt, yr, threshold, 1, (G1, G2, G2, G2), (DIVISORS[1], 1.0, 1.0), base)


@njit(cache=True, nogil=True)
def expression_term(xt, yr, threshold, base):
    """``base + DTW_expr / 8`` (float64 accumulation); ``inf`` once past ``threshold``."""
    return _dtw(xt, yr, threshold, 1, (G2, G3, G3, G3), (DIVISORS[2], 1.0, 1.0), base)


@njit(cache=True, nogil=True)
def au_term(xt, yr, threshold, base):
    """``base + DTW_AU / 15`` (float64 accumulation); ``inf`` once past ``threshold``."""
    return _dtw(xt, yr, threshold, 1, (G0, G1, G1, G1), (DIVISORS[0], 1.0, 1.0), base)


@njit(cache=True, nogil=True)
def block_lower_bound(xr, lo, hi, d0, d1):
    """A lower bound of the squared DTW of dims ``d0:d1`` between a sequence and a reference.

    ``xr``: (25, T1) float32, the sequence transposed and reversed in time; ``lo``/``hi``:
    (25, B) float32, per dimension the smallest and largest value of each block of ``BLOCK``
    consecutive reference frames. Mapping a warping path's columns to their blocks gives a path on
    the (frame, block) grid that still visits every frame and every block, and a frame's cost in a
    block is at least its squared distance to the block's box; so the DTW of the box distances on
    that grid (``BLOCK`` times fewer cells) is a lower bound. Computed with the same float32 cost
    and float64 accumulation as the DTW, every step rounds monotonically: the bound holds exactly
    in floating point. Filled along anti-diagonals (SIMD) like ``_dtw``.
    """
    t, nb = xr.shape[1], lo.shape[1]
    inf = np.inf
    prev2 = np.full(nb + 2, inf)
    prev = np.full(nb + 2, inf)
    new = np.full(nb + 2, inf)
    prev2[0] = 0.0  # the virtual cell before (0, 0)
    cost = np.empty(nb, dtype=np.float32)
    zero = np.float32(0.0)
    one = np.uint64(1)
    for s in range(t + nb - 1):
        first = max(0, s - t + 1)  # blocks first..last on anti-diagonal s (frame s - block)
        last = min(s, nb - 1)
        n = np.uint64(last - first + 1)
        m0 = np.uint64(t - 1 - s + first)  # xr column of the first cell
        b0 = np.uint64(first)
        for q in range(n):
            cost[q] = zero
        for d in range(d0, d1):
            for q in range(n):
                v = xr[d, m0 + q]
                e = max(lo[d, b0 + q] - v, zero) + max(v - hi[d, b0 + q], zero)
                cost[q] += e * e
        for q in range(n):
            new[b0 + one + q] = cost[q] + _min3(prev2[b0 + q], prev[b0 + one + q], prev[b0 + q])
        if first > 0:
            new[first] = inf
        new[last + 2] = inf
        prev2, prev, new = prev, new, prev2
        if s == 0:
            new[0] = inf  # the array that held the virtual cell is filled next
    return prev[nb]


@njit(cache=True, nogil=True)
def staged_cost(xt, xr, yr, lo, hi, threshold):
    """``group_dtw`` one term at a time against ``threshold``; ``inf`` when the cost exceeds it.

    Valence-arousal first (2 columns, yet usually most of the cost); then the block lower bounds
    of the expression and AU terms (``block_lower_bound``: a fraction of a DTW's work) prune the
    candidate when the terms so far plus the bounds of the others exceed ``threshold``; then the
    expression and AU DTWs, each abandoned early. ``xr``: the first sequence transposed and
    reversed, ``lo``/``hi``: the second's block boxes (``reference_boxes``).
    """
    partial = va_term(xt, yr, threshold, 0.0)
    if partial > threshold:
        return np.inf
    bound = partial + math.sqrt(block_lower_bound(xr, lo, hi, G2, G3)) / DIVISORS[2]
    if bound > threshold:
        return np.inf
    au_bound = math.sqrt(block_lower_bound(xr, lo, hi, G0, G1)) / DIVISORS[0]
    if bound + au_bound > threshold:
        return np.inf
    partial = expression_term(xt, yr, threshold, partial)
    if partial > threshold or partial + au_bound > threshold:
        return np.inf
    total = au_term(xt, yr, threshold, partial)
    return total if total <= threshold else np.inf


@njit(cache=True, nogil=True)
def _path_cost(xt, yr):
    """FRD cost along one warping path: the diagonal for equal lengths; for unequal lengths the
    longer sequence steps every frame and the shorter one follows its rounded-down position (steps
    of 0 or 1, a valid path). An upper bound of ``group_dtw``, the guess that orders candidates."""
    t1, t2 = xt.shape[1], yr.shape[1]
    n = max(t1, t2)
    total = 0.0
    for g in range(3):
        lo, hi = (G0, G1) if g == 0 else ((G1, G2) if g == 1 else (G2, G3))
        acc = 0.0
        for d in range(lo, hi):
            for s in range(n):
                i = s if t1 == n else (s * (t1 - 1)) // (n - 1)
                j = s if t2 == n else (s * (t2 - 1)) // (n - 1)
                diff = xt[d, i] - yr[d, t2 - 1 - j]
                acc += diff * diff
        total += math.sqrt(acc) / DIVISORS[g]
    return total


def reference_boxes(y: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, D) -> per-block minima and maxima (N, D, ceil(T / block)) float32 for ``block_lower_bound``."""
    y = np.asarray(y, dtype=np.float32)
    n, t, d = y.shape
    nb = -(-t // block)
    padded = np.concatenate([y, np.repeat(y[:, -1:], nb * block - t, axis=1)], axis=1)  # repeats stay inside
    blocks = padded.reshape(n, nb, block, d)
    lo = np.ascontiguousarray(blocks.min(axis=2).transpose(0, 2, 1))
    hi = np.ascontiguousarray(blocks.max(axis=2).transpose(0, 2, 1))
    return lo, hi


@njit(cache=True, inline="always")
def _block(buf, off, q, rows):
    """Item ``q`` of a packed buffer (:func:`pack`) as a C-contiguous ``(rows, size / rows)`` array."""
    return buf[off[q]:off[q + 1]].reshape((rows, (off[q + 1] - off[q]) // rows))


@njit(cache=True, parallel=True)
def _min_over_candidates(qbuf, qoff, ybuf, yoff, lobuf, hibuf, boff, cand_ptr, cand, start, stop,
                         out_value, out_done):
    """For queries ``start..stop-1``: min over their candidates of ``group_dtw``.

    Packed inputs (:func:`pack`): queries ``(T1, 25)``, references transposed and reversed
    ``(25, T2)``, their block boxes ``(25, B)``. The best guess (:func:`_path_cost`) is computed in
    full, every other candidate term by term against the best so far (``staged_cost``).
    ``out_done[q]``: candidates not pruned (the guess included).
    """
    d = G3
    for q in prange(start, stop):
        x = qbuf[qoff[q]:qoff[q + 1]].reshape(((qoff[q + 1] - qoff[q]) // d, d))
        xt = np.ascontiguousarray(x.T)
        xr = np.ascontiguousarray(xt[:, ::-1])
        first, last = cand_ptr[q], cand_ptr[q + 1]
        guess = np.empty(last - first)
        for c in range(last - first):
            guess[c] = _path_cost(xt, _block(ybuf, yoff, cand[first + c], d))
        order = np.argsort(guess, kind="mergesort")
        best = group_dtw(xt, _block(ybuf, yoff, cand[first + order[0]], d), np.inf)
        done = 1
        for c in order[1:]:
            r = cand[first + c]
            value = staged_cost(xt, xr, _block(ybuf, yoff, r, d), _block(lobuf, boff, r, d),
                                _block(hibuf, boff, r, d), best)
            if value < np.inf:
                done += 1
            best = min(best, value)
        out_value[q] = best
        out_done[q] = done


def reverse_references(y: np.ndarray) -> np.ndarray:
    """(N, T, D) -> (N, D, T) float32 reversed in time, the layout of ``group_dtw``'s second sequence."""
    return np.ascontiguousarray(np.swapaxes(np.asarray(y)[:, ::-1], 1, 2), dtype=np.float32)


def pack(items: np.ndarray | list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One flat float32 buffer of C-contiguous items and the ``(N + 1,)`` offsets of each item's
    values: an ``(N, ...)`` array is packed without a copy, a list of arrays of any shapes with one."""
    if isinstance(items, np.ndarray):
        items = np.ascontiguousarray(items, dtype=np.float32)
        size = int(np.prod(items.shape[1:]))
        return items.reshape(-1), np.arange(len(items) + 1, dtype=np.int64) * size
    if not items:
        return np.zeros(0, np.float32), np.zeros(1, np.int64)
    flat = np.concatenate([np.asarray(a, dtype=np.float32).reshape(-1) for a in items])
    return flat, np.concatenate([[0], np.cumsum([a.size for a in items])]).astype(np.int64)


def _packed_references(references: np.ndarray | list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Packed reversed references, their block minima and maxima, and the offsets of both."""
    if isinstance(references, np.ndarray):
        lo, hi = reference_boxes(references)
        reversed_refs = reverse_references(references)
    else:
        boxes = [reference_boxes(np.asarray(y)[None]) for y in references]
        lo, hi = [b[0][0] for b in boxes], [b[1][0] for b in boxes]
        reversed_refs = [reverse_references(np.asarray(y)[None])[0] for y in references]
    (ybuf, yoff), (lobuf, boff), (hibuf, _) = pack(reversed_refs), pack(lo), pack(hi)
    return ybuf, yoff, lobuf, hibuf, boff


def min_group_dtw(
    queries: np.ndarray | list[np.ndarray], references: np.ndarray | list[np.ndarray], cand_ptr: np.ndarray,
    cand: np.ndarray, chunk: int = 0, progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Min over candidates of the FRD pair cost, for many queries.

    ``queries``: (Q, T1, 25), or a list of Q ``(T1_q, 25)`` arrays of any lengths; ``references``:
    (R, T2, 25) or a list of ``(T2_r, 25)``. Query ``q`` is compared with
    ``references[cand[cand_ptr[q]:cand_ptr[q+1]]]`` (CSR layout, at least one candidate each).
    Returns (minimum (Q,), candidates not pruned (Q,)). ``chunk`` > 0 runs the queries in chunks
    (with a progress bar if ``progress``).
    """
    nq = len(queries)
    cand_ptr = np.ascontiguousarray(cand_ptr, dtype=np.int64)
    cand = np.ascontiguousarray(cand, dtype=np.int64)
    if len(cand_ptr) != nq + 1 or np.any(np.diff(cand_ptr) < 1):
        raise ValueError("cand_ptr must have one entry per query plus one, each query >= 1 candidate")
    qbuf, qoff = pack(queries)
    ybuf, yoff, lobuf, hibuf, boff = _packed_references(references)
    value = np.empty(nq)
    done = np.zeros(nq, dtype=np.int64)
    step = chunk if chunk > 0 else max(nq, 1)
    starts = range(0, nq, step)
    if progress:
        from react.utils.progress import progress

        starts = progress(starts, desc="FRD", unit="chunk")
    with numba.parallel_chunksize(1):
        for start in starts:
            stop = min(start + step, nq)
            _min_over_candidates(qbuf, qoff, ybuf, yoff, lobuf, hibuf, boff, cand_ptr, cand, start, stop,
                                 value, done)
    return value, done


def pair_cost(x: np.ndarray, y: np.ndarray) -> float:
    """FRD cost of two (T, 25) sequences."""
    xt = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)
    return float(group_dtw(xt, reverse_references(np.asarray(y)[None])[0], np.inf))


def set_threads(workers: int | None) -> int:
    """Use ``workers`` numba threads (``None``: all available); returns the number used."""
    n = min(workers or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    return n
