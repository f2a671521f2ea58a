"""The FRD DTW kernels against tslearn, values by hand, the pruned minimum and the torch path."""

import math

import numpy as np
import pytest
import torch
from tslearn.metrics import dtw

from evaluation import dtw as D
from evaluation.dtw_torch import batch_group_dtw, min_group_dtw_torch
from evaluation.synthetic import make_kind


def tslearn_cost(x: np.ndarray, y: np.ndarray) -> float:
    return dtw(x[:, :15], y[:, :15]) / 15 + dtw(x[:, 15:17], y[:, 15:17]) + dtw(x[:, 17:], y[:, 17:]) / 8


@pytest.mark.parametrize("t1,t2", [(1, 1), (1, 6), (7, 1), (40, 40), (129, 128), (300, 257), (750, 750)])
def test_pair_cost_matches_tslearn(t1, t2):
    rng = np.random.default_rng(t1 * 1000 + t2)
    x = rng.random((t1, 25), dtype=np.float32)
    y = rng.random((t2, 25), dtype=np.float32)
    assert D.pair_cost(x, y) == pytest.approx(tslearn_cost(x, y), rel=1.1e-6)
    assert D.pair_cost(y, x) == pytest.approx(tslearn_cost(x, y), rel=1.1e-6)


def test_pair_cost_by_hand():
    # Constant sequences: every cell costs the same, the cheapest path has max(T1, T2) cells.
    x = np.zeros((2, 25), np.float32)
    y = np.ones((3, 25), np.float32)
    expected = math.sqrt(3 * 15) / 15 + math.sqrt(3 * 2) + math.sqrt(3 * 8) / 8
    assert D.pair_cost(x, y) == pytest.approx(expected, rel=1e-12)
    # Warping absorbs a repeated frame: [a, a, b] vs [a, b] costs nothing.
    a, b = np.zeros(25, np.float32), np.full(25, 0.5, np.float32)
    assert D.pair_cost(np.stack([a, a, b]), np.stack([a, b])) == 0.0
    # One differing AU frame in the middle cannot be warped away: DTW_AU = 1 (diff 1 in one cell).
    z = np.zeros((5, 25), np.float32)
    w = z.copy()
    w[2, 0] = 1.0
    assert D.pair_cost(z, w) == pytest.approx(1 / 15, rel=1e-12)


def test_early_abandoning_only_above_threshold():
    rng = np.random.default_rng(1)
    xt = np.ascontiguousarray(rng.random((25, 300), dtype=np.float32))
    yr = np.ascontiguousarray(rng.random((25, 300), dtype=np.float32))
    full = D.group_dtw(xt, yr, np.inf)
    assert D.group_dtw(xt, yr, full) == full  # a threshold at the value never abandons
    assert D.group_dtw(xt, yr, 0.1 * full) == np.inf  # far below: abandoned


def test_group_terms():
    rng = np.random.default_rng(2)
    x, y = rng.random((2, 200, 25), dtype=np.float32)
    xt, yr = np.ascontiguousarray(x.T), D.reverse_references(y[None])[0]
    va = D.va_term(xt, yr, np.inf, 0.0)
    assert va == pytest.approx(dtw(x[:, 15:17], y[:, 15:17]), rel=1.1e-6)
    expr = dtw(x[:, 17:], y[:, 17:]) / 8
    assert D.expression_term(xt, yr, np.inf, 1.5) == pytest.approx(1.5 + expr, rel=1e-6)
    assert D.au_term(xt, yr, np.inf, 0.0) == pytest.approx(dtw(x[:, :15], y[:, :15]) / 15, rel=1.1e-6)
    assert D.va_term(xt, yr, 0.5 * va, 0.0) == np.inf  # abandoned once a finished row passes the threshold
    assert D.group_dtw(xt, yr, np.inf) == pytest.approx(D.au_term(xt, yr, np.inf, D.expression_term(
        xt, yr, np.inf, va)), rel=1e-12)


def test_reference_boxes_by_hand():
    y = np.arange(2 * 10 * 25, dtype=np.float32).reshape(2, 10, 25)
    y[1, 3, 4] = -5.0
    lo, hi = D.reference_boxes(y, block=4)  # blocks of frames 0-3, 4-7 and the shorter 8-9
    assert lo.shape == hi.shape == (2, 25, 3)
    np.testing.assert_array_equal(lo[0, 0], [0, 100, 200])
    np.testing.assert_array_equal(hi[0, 0], [75, 175, 225])
    assert lo[1, 4, 0] == -5.0 and hi[1, 4, 0] == y[1, 2, 4]
    lo, hi = D.reference_boxes(y, block=10)  # one box of the whole sequence
    np.testing.assert_array_equal(lo[:, :, 0], y.min(axis=1))
    np.testing.assert_array_equal(hi[:, :, 0], y.max(axis=1))


def _bounds(x: np.ndarray, y: np.ndarray, tier: int, g: int) -> float:
    """``_term_bound`` of a pair, as the search computes it."""
    xt = np.ascontiguousarray(x.T)
    xr, yr = np.ascontiguousarray(xt[:, ::-1]), D.reverse_references(y[None])[0]
    block = D.TIER_BLOCKS[tier]
    lo, hi = (b[0] for b in D.reference_boxes(y[None], block or len(y)))
    width = D._box_widths([lo], [hi])[0]
    return D._term_bound(tier, g, xt, xr, yr, D._boxes(xt, block), lo, hi, width)


def test_term_bounds_hold_and_take_the_narrow_side():
    rng = np.random.default_rng(8)
    smooth = np.cumsum(rng.normal(0, 0.05, (2, 300, 25)), axis=1).astype(np.float32) + 0.5
    noisy = rng.random((300, 25), dtype=np.float32)
    flat = np.full((300, 25), 0.5, np.float32) + rng.normal(0, 1e-3, (300, 25)).astype(np.float32)
    for x, y in ((smooth[0], smooth[1]), (noisy, smooth[0]), (flat, smooth[1]), (smooth[1], noisy)):
        for g, (d0, d1, div) in enumerate(((0, 15, 15), (17, 25, 8))):
            exact = dtw(x[:, d0:d1], y[:, d0:d1]) / div
            for tier in range(len(D.TIER_BLOCKS)):
                assert _bounds(x, y, tier, g) <= exact * (1 + 1e-6)
    # A query that barely moves: its own boxes give the bound, one box is nearly the whole value
    # (exact for a constant query: every warping path costs at least the sum over the reference).
    for g, (d0, d1, div) in enumerate(((0, 15, 15), (17, 25, 8))):
        exact = dtw(flat[:, d0:d1], smooth[1][:, d0:d1]) / div
        assert _bounds(flat, smooth[1], 0, g) > 0.99 * exact
        assert _bounds(flat, smooth[1], 2, g) > 0.99 * exact
        # a noisy query against a smooth reference: the reference's boxes are the narrow side
        exact = dtw(noisy[:, d0:d1], smooth[0][:, d0:d1]) / div
        assert _bounds(noisy, smooth[0], 3, g) > 0.5 * exact
    constant = np.full((50, 25), 0.3, np.float32)
    expected = math.sqrt(((smooth[1][:50, 17:] - 0.3) ** 2).sum(1, dtype=np.float64).sum()) / 8
    assert _bounds(constant, smooth[1][:50], 0, 1) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("t1,t2", [(1, 1), (5, 17), (40, 33), (200, 200)])
def test_block_lower_bound(t1, t2):
    rng = np.random.default_rng(t1 + 7 * t2)
    x = rng.random((t1, 25), dtype=np.float32)
    y = np.cumsum(rng.normal(0, 0.1, (t2, 25)), axis=0).astype(np.float32)  # smooth: tight boxes
    xr = np.ascontiguousarray(x.T[:, ::-1])
    exact = {(0, 15): dtw(x[:, :15], y[:, :15]) ** 2, (15, 17): dtw(x[:, 15:17], y[:, 15:17]) ** 2,
             (17, 25): dtw(x[:, 17:], y[:, 17:]) ** 2}
    for (d0, d1), value in exact.items():
        lo, hi = (b[0] for b in D.reference_boxes(y[None], block=1))  # boxes of one frame: the DTW itself
        assert D.block_lower_bound(xr, lo, hi, d0, d1) == pytest.approx(value, rel=1e-6)
        for block in (3, 8):
            lo, hi = (b[0] for b in D.reference_boxes(y[None], block=block))
            bound = D.block_lower_bound(xr, lo, hi, d0, d1)
            assert bound <= value * (1 + 1e-6) and (t1 < 40 or bound > 0.1 * value)  # float32 costs


def noisy_candidates(seed: int, t: int = 120):
    rng = np.random.default_rng(seed)
    refs = rng.random((10, t, 25), dtype=np.float32)
    owner = rng.integers(0, 10, 16)
    queries = np.clip(refs[owner] + 0.2 * rng.normal(size=(16, t, 25)), 0, 1).astype(np.float32)
    queries[:4] = rng.random((4, t, 25))  # unrelated queries: nothing to prune
    cands = [np.unique(np.append(rng.choice(10, rng.integers(1, 8), replace=False), owner[q]))
             for q in range(16)]
    ptr = np.concatenate([[0], np.cumsum([len(c) for c in cands])])
    return queries, refs, cands, ptr, np.concatenate(cands)


def test_min_over_candidates_is_exact_and_prunes():
    queries, refs, cands, ptr, cand = noisy_candidates(3)
    value, done = D.min_group_dtw(queries, refs, ptr, cand, chunk=5)
    brute = [min(D.pair_cost(queries[q], refs[j]) for j in c) for q, c in enumerate(cands)]
    np.testing.assert_allclose(value, brute, rtol=1e-12)
    ref = [min(tslearn_cost(queries[q], refs[j]) for j in c) for q, c in enumerate(cands[:6])]
    np.testing.assert_allclose(value[:6], ref, rtol=1.1e-6)
    assert done.sum() < len(cand)  # some candidates were abandoned


@pytest.mark.parametrize("kind", ["mixture", "mean-like", "random"])
def test_min_over_candidates_of_clips(kind):
    """Groups of queries with one candidate list (the samples of a clip), every prediction kind:
    the minimum is exact, and the low-diversity kind is pruned by the query-side bounds."""
    rng = np.random.default_rng(11)
    refs = (np.cumsum(rng.normal(0, 0.04, (12, 150, 25)), axis=1) + 0.5).astype(np.float32)
    cands = [np.sort(rng.choice(12, 6, replace=False)) for _ in range(3)]
    preds = make_kind(kind, refs, np.stack([np.isin(np.arange(12), c) for c in cands]), seed=3)
    queries = preds[:, :4].reshape(-1, 150, 25)
    lists = [c for c in cands for _ in range(4)]
    ptr = np.concatenate([[0], np.cumsum([len(c) for c in lists])])
    value, done = D.min_group_dtw(queries, refs, ptr, np.concatenate(lists), chunk=4)
    brute = [min(D.pair_cost(queries[q], refs[j]) for j in c) for q, c in enumerate(lists)]
    np.testing.assert_allclose(value, brute, rtol=1e-12)
    assert (done >= 1).all() and done.sum() < len(ptr) * 6 / 2
    # the packed references are kept for the same array; another array is packed anew
    other = refs[::-1].copy()
    value, _ = D.min_group_dtw(queries, other, ptr, np.concatenate(lists))
    brute = [min(D.pair_cost(queries[q], other[j]) for j in c) for q, c in enumerate(lists)]
    np.testing.assert_allclose(value, brute, rtol=1e-12)


def test_min_over_candidates_rejects_empty_lists():
    queries, refs, *_ = noisy_candidates(4)
    with pytest.raises(ValueError, match="candidate"):
        D.min_group_dtw(queries[:2], refs, np.array([0, 1, 1]), np.array([0]))


def test_torch_path_matches_numba_on_cpu():
    queries, refs, cands, ptr, cand = noisy_candidates(5, t=60)
    pair = batch_group_dtw(torch.from_numpy(queries[:3]).double(), torch.from_numpy(refs[:3]).double())
    expected = [D.pair_cost(queries[i], refs[i]) for i in range(3)]
    np.testing.assert_allclose(pair.numpy(), expected, rtol=1.1e-6)
    value, _ = D.min_group_dtw(queries, refs, ptr, cand)
    np.testing.assert_allclose(min_group_dtw_torch(queries, refs, ptr, cand, batch=7), value, rtol=1.1e-6)
