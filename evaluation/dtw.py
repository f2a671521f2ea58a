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
* exact pruning: FRD needs only the minimum over a clip's appropriate listeners. The samples of a
  clip are scored in order; each computes one candidate in full first (the smallest
  diagonal-path cost, or the previous sample's best when its diagonal path is nearly as cheap:
  samples of one clip often share their nearest reaction), then the others by increasing
  diagonal-path cost, term by term against the best so far: valence-arousal first (2 columns,
  yet usually most of the cost), abandoned early; then lower bounds of the expression and AU
  terms in tiers of growing cost and tightness (``TIER_BLOCKS``: one box of all frames, boxes of
  32, 8 and 4 frames), each a DTW between one sequence's frames and the other's boxes, with the
  boxes on the side where they are narrower: the prediction's when it barely moves (low-diversity
  predictions), the reference's when the prediction is noisy. A tier that prunes little in a
  clip is skipped there. Then expressions, then AUs, each with early abandoning. Every warping
  path crosses every row, so the smallest value of a finished row bounds a DTW from below. Every
  bound is computed with roundings that are monotone, so each holds in floating point, and a
  candidate stops only when its finished terms plus the bounds of the others exceed the best: the
  minimum is the one a full computation gives;
* threads: clips run in parallel (numba ``prange``); the references are packed once per array.

Kernels are compiled with ``cache=True`` so a new process loads them from disk.
"""

from __future__ import annotations

import math
import weakref

import numba
import numpy as np
from numba import njit, prange

STRIP = 128  # rows of the accumulated matrix per strip
# Frames per box of the four tiers of lower bounds of the expression and AU terms (0: one box of the
# whole sequence). Tier KEPT_TIER always runs; the others stop while they prune too little.
TIER_BLOCKS = (0, 32, 8, 4)
KEPT_TIER = 2
BLOCK = TIER_BLOCKS[KEPT_TIER]
GUESS_SLACK = 1.2  # the previous query's best goes first if its diagonal path costs at most this much more
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
    full = t // block
    lo, hi = [], []
    if full:
        blocks = y[:, :full * block].reshape(n, full, block, d)
        lo.append(blocks.min(axis=2))
        hi.append(blocks.max(axis=2))
    if full * block < t:  # a shorter last block
        lo.append(y[:, full * block:].min(axis=1, keepdims=True))
        hi.append(y[:, full * block:].max(axis=1, keepdims=True))
    return tuple(np.ascontiguousarray(np.concatenate(b, axis=1).transpose(0, 2, 1)) for b in (lo, hi))


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


@njit(cache=True, inline="always")
def _item(buf, off, q, rows):
    """Item ``q`` of a packed buffer (:func:`pack`) as a C-contiguous ``(rows, size / rows)`` array."""
    return buf[off[q]:off[q + 1]].reshape((rows, (off[q + 1] - off[q]) // rows))


@njit(cache=True, inline="always")
def _widths(lo, hi):
    """Mean widths (2,) of boxes (25, B), summed over the AU columns and over the expression columns."""
    w = np.zeros(2)
    for k in range(lo.shape[1]):
        for c in range(G0, G1):
            w[0] += hi[c, k] - lo[c, k]
        for c in range(G2, G3):
            w[1] += hi[c, k] - lo[c, k]
    return w / lo.shape[1]


@njit(cache=True, nogil=True)
def _boxes(xt, block):
    """Per-dimension minima and maxima (25, B) float32 of blocks of ``block`` frames of ``xt``
    (25, T) (0: one block), and their widths (:func:`_widths`)."""
    d, t = xt.shape
    block = block or t
    nb = (t + block - 1) // block
    lo = np.empty((d, nb), dtype=np.float32)
    hi = np.empty((d, nb), dtype=np.float32)
    for k in range(nb):
        for c in range(d):
            a = xt[c, k * block]
            m = a
            for i in range(k * block + 1, min(t, (k + 1) * block)):
                a = min(a, xt[c, i])
                m = max(m, xt[c, i])
            lo[c, k] = a
            hi[c, k] = m
    return lo, hi, _widths(lo, hi)


@njit(cache=True, inline="always")
def _box_sum(xt, forward, lo, hi, d0, d1):
    """Sum over the frames of ``xt`` (25, T) of the squared distance of dims ``d0:d1`` to one box
    (25, 1), in the frames' time order (``forward`` false: ``xt`` is reversed in time). Every
    warping path visits every frame, with a cost at least that distance: a lower bound of the
    squared DTW, with float32 costs summed in float64 in path order like the DTW itself."""
    t = xt.shape[1]
    zero = np.float32(0.0)
    total = 0.0
    for s in range(t):
        i = s if forward else t - 1 - s
        c = zero
        for d in range(d0, d1):
            e = max(lo[d, 0] - xt[d, i], zero) + max(xt[d, i] - hi[d, 0], zero)
            c += e * e
        total += c
    return total


@njit(cache=True, inline="always")
def _term_bound(tier, g, xt, xr, yr, q_boxes, r_lo, r_hi, r_width):
    """Lower bound of the AU (``g`` 0) or expression (``g`` 1) term of a pair.

    Tier 0: each sequence's frames against the other's one box of all frames, the larger of the two.
    Other tiers: ``block_lower_bound`` with the boxes on the side where they are narrower (the
    query's when it barely moves, the reference's when the query is noisy); DTW is symmetric, so
    either side bounds the same value.
    """
    d0, d1, div = (G0, G1, DIVISORS[0]) if g == 0 else (G2, G3, DIVISORS[2])
    q_lo, q_hi, q_width = q_boxes
    if tier == 0:
        value = max(_box_sum(xt, True, r_lo, r_hi, d0, d1), _box_sum(yr, False, q_lo, q_hi, d0, d1))
    elif q_width[g] < r_width[g]:
        value = block_lower_bound(yr, q_lo, q_hi, d0, d1)
    else:
        value = block_lower_bound(xr, r_lo, r_hi, d0, d1)
    return math.sqrt(value) / div


@njit(cache=True, nogil=True)
def _query_minimum(xt, refs, path, first, ybuf, yoff, box_lo, box_hi, box_off, box_width, tried, pruned):
    """Min over references ``refs`` of ``group_dtw`` for one query ``xt`` (25, T1), the index in
    ``refs`` of the minimum, and the candidates whose cost was computed to the end.

    ``refs[first]`` is computed in full; the others, by increasing diagonal-path cost ``path``,
    term by term against the best so far: the valence-arousal DTW (abandoned early); lower bounds
    of the expression and AU terms in the tiers of ``TIER_BLOCKS`` (:func:`_term_bound`; the
    references' boxes packed in ``box_*``, :func:`_pack_references`), each but ``KEPT_TIER``
    skipped once it pruned less than a quarter of at least 8 candidates (``tried``/``pruned``:
    counts per tier shared by the query's group); then the expression and AU DTWs, abandoned early.
    """
    d = G3
    xr = np.ascontiguousarray(xt[:, ::-1])
    best = group_dtw(xt, _item(ybuf, yoff, refs[first], d), np.inf)
    best_at, done = first, 1
    q_boxes = (_boxes(xt, TIER_BLOCKS[0]), _boxes(xt, TIER_BLOCKS[1]), _boxes(xt, TIER_BLOCKS[2]),
               _boxes(xt, TIER_BLOCKS[3]))
    for c in np.argsort(path, kind="mergesort"):
        if c == first:
            continue
        r = refs[c]
        yr = _item(ybuf, yoff, r, d)
        base = va_term(xt, yr, best, 0.0)
        if base > best:
            continue
        bounds = np.zeros(2)
        stop = False
        for tier in range(len(TIER_BLOCKS)):
            if tier != KEPT_TIER and tried[tier] >= 8 and 4 * pruned[tier] < tried[tier]:
                continue
            r_lo, r_hi = _item(box_lo, box_off[tier], r, d), _item(box_hi, box_off[tier], r, d)
            for g in (1, 0):  # expression, then AU
                bound = _term_bound(tier, g, xt, xr, yr, q_boxes[tier], r_lo, r_hi, box_width[tier, r])
                bounds[g] = max(bounds[g], bound)
                if base + bounds[1] + bounds[0] > best:
                    stop = True
                    break
            if tier != KEPT_TIER:
                tried[tier] += 1
                pruned[tier] += stop
            if stop:
                break
        if stop:
            continue
        value = expression_term(xt, yr, best, base)
        if value > best or value + bounds[0] > best:
            continue
        value = au_term(xt, yr, best, value)
        if value < np.inf:
            done += 1
        if value < best:
            best, best_at = value, c
    return best, best_at, done


@njit(cache=True, parallel=True)
def _search(qbuf, qoff, ybuf, yoff, box_lo, box_hi, box_off, box_width, cand_ptr, cand, group_ptr, start,
            stop, out_value, out_done):
    """:func:`_query_minimum` of the queries of groups ``start..stop-1``, the groups in parallel.

    A group holds consecutive queries with the same candidates (the samples of one clip), scored in
    order. A query first computes the candidate of smallest diagonal-path cost, or the previous
    query's best if its diagonal path costs at most ``GUESS_SLACK`` times more (samples of one clip
    often share their nearest reaction). References come packed (:func:`min_group_dtw`).
    """
    d = G3
    for g in prange(start, stop):
        tried = np.zeros(len(TIER_BLOCKS), np.int64)
        pruned = np.zeros(len(TIER_BLOCKS), np.int64)
        previous = -1
        for q in range(group_ptr[g], group_ptr[g + 1]):
            x = qbuf[qoff[q]:qoff[q + 1]].reshape(((qoff[q + 1] - qoff[q]) // d, d))
            xt = np.ascontiguousarray(x.T)
            refs = cand[cand_ptr[q]:cand_ptr[q + 1]]
            path = np.empty(len(refs))
            for c in range(len(refs)):
                path[c] = _path_cost(xt, _item(ybuf, yoff, refs[c], d))
            first = np.argmin(path)
            for c in range(len(refs)):
                if refs[c] == previous and path[c] <= GUESS_SLACK * path[first]:
                    first = c
            value, at, done = _query_minimum(xt, refs, path, first, ybuf, yoff, box_lo, box_hi, box_off,
                                             box_width, tried, pruned)
            previous = refs[at]
            out_value[q] = value
            out_done[q] = done


def _tier_boxes(references: np.ndarray | list[np.ndarray], block: int) -> tuple[list, list]:
    """Per-block minima and maxima ``(25, B)`` of each reference (``block`` 0: one box of the whole
    sequence), as two lists."""
    if isinstance(references, np.ndarray):
        lo, hi = reference_boxes(references, block or references.shape[1])
        return list(lo), list(hi)
    boxes = [reference_boxes(y[None], block or len(y)) for y in references]
    return [b[0][0] for b in boxes], [b[1][0] for b in boxes]


def _box_widths(lo: list[np.ndarray], hi: list[np.ndarray]) -> np.ndarray:
    """(R, 2) mean widths of each reference's boxes, summed over the AU and over the expression columns."""
    return np.array([_widths(w, h) for w, h in zip(lo, hi)]).reshape(-1, 2)


_packed: tuple = (None, None)  # (weak reference to the last references array, its packed form)


def _pack_references(references: np.ndarray | list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The references reversed in time and packed (:func:`pack`), and their boxes of every tier of
    ``TIER_BLOCKS`` in one buffer each for the minima and the maxima, with per-tier offsets
    ``(tiers, R + 1)`` and widths ``(tiers, R, 2)``. The last array's packing is kept: an evaluation
    scores its clips in chunks against one array of references."""
    global _packed
    if isinstance(references, np.ndarray) and _packed[0] is not None and _packed[0]() is references:
        return _packed[1]
    if isinstance(references, np.ndarray):
        ybuf, yoff = pack(reverse_references(references))
    else:
        references = [np.asarray(y, dtype=np.float32) for y in references]
        ybuf, yoff = pack([reverse_references(y[None])[0] for y in references])
    tiers = [_tier_boxes(references, block) for block in TIER_BLOCKS]
    box_lo, off = pack([b for lo, _ in tiers for b in lo])
    box_hi, _ = pack([b for _, hi in tiers for b in hi])
    n = len(references)
    box_off = np.stack([off[k * n:(k + 1) * n + 1] for k in range(len(tiers))])
    widths = np.stack([_box_widths(lo, hi) for lo, hi in tiers])
    packed = (ybuf, yoff, box_lo, box_hi, box_off, widths)
    if isinstance(references, np.ndarray):
        _packed = (weakref.ref(references), packed)
    return packed


def _groups(cand_ptr: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Offsets of the runs of consecutive queries with the same candidate list."""
    sizes = np.diff(cand_ptr)
    starts = [0]
    for q in range(1, len(sizes)):
        if sizes[q] != sizes[q - 1] or not np.array_equal(cand[cand_ptr[q - 1]:cand_ptr[q]],
                                                          cand[cand_ptr[q]:cand_ptr[q + 1]]):
            starts.append(q)
    return np.array([*starts, len(sizes)], dtype=np.int64)


def min_group_dtw(
    queries: np.ndarray | list[np.ndarray], references: np.ndarray | list[np.ndarray], cand_ptr: np.ndarray,
    cand: np.ndarray, chunk: int = 0, progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Min over candidates of the FRD pair cost, for many queries.

    ``queries``: (Q, T1, 25), or a list of Q ``(T1_q, 25)`` arrays of any lengths; ``references``:
    (R, T2, 25) or a list of ``(T2_r, 25)``. Query ``q`` is compared with
    ``references[cand[cand_ptr[q]:cand_ptr[q+1]]]`` (CSR layout, at least one candidate each).
    Returns (minimum (Q,), candidates whose cost was computed to the end (Q,)). ``chunk`` > 0 runs
    about that many queries at a time, whole groups and at least 8 per thread (with a progress bar if
    ``progress``).
    """
    nq = len(queries)
    cand_ptr = np.ascontiguousarray(cand_ptr, dtype=np.int64)
    cand = np.ascontiguousarray(cand, dtype=np.int64)
    if len(cand_ptr) != nq + 1 or np.any(np.diff(cand_ptr) < 1):
        raise ValueError("cand_ptr must have one entry per query plus one, each query >= 1 candidate")
    qbuf, qoff = pack(queries)
    packed = _pack_references(references)
    group_ptr = _groups(cand_ptr, cand)
    groups = len(group_ptr) - 1
    value = np.empty(nq)
    done = np.zeros(nq, dtype=np.int64)
    # whole groups per call, at least 8 per thread: a call waits for its slowest group
    step = max(8 * numba.get_num_threads(), round(chunk * groups / nq)) if chunk > 0 else groups
    starts = range(0, groups, step)
    if progress:
        from react.utils.progress import progress as bar

        starts = bar(starts, desc="FRD", unit="chunk")
    with numba.parallel_chunksize(1):
        for start in starts:
            _search(qbuf, qoff, *packed, cand_ptr, cand, group_ptr, start, min(start + step, groups),
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
