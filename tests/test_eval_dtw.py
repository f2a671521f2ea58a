"""The FRD DTW kernels against tslearn, values by hand, the pruned minimum and the torch path."""

import math

import numpy as np
import pytest
import torch
from tslearn.metrics import dtw

from evaluation import dtw as D
from evaluation.dtw_torch import batch_group_dtw, min_group_dtw_torch


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


def test_staged_cost_terms():
    rng = np.random.default_rng(2)
    x, y = rng.random((2, 200, 25), dtype=np.float32)
    xt, yr = np.ascontiguousarray(x.T), D.reverse_references(y[None])[0]
    va = D.va_term(xt, yr, np.inf, 0.0)
    assert va == pytest.approx(dtw(x[:, 15:17], y[:, 15:17]), rel=1.1e-6)
    expr = dtw(x[:, 17:], y[:, 17:]) / 8
    assert D.expression_term(xt, yr, np.inf, 1.5) == pytest.approx(1.5 + expr, rel=1e-6)
    assert D.au_term(xt, yr, np.inf, 0.0) == pytest.approx(dtw(x[:, :15], y[:, :15]) / 15, rel=1.1e-6)
    full = D.group_dtw(xt, yr, np.inf)
    xr = np.ascontiguousarray(xt[:, ::-1])
    lo, hi = (b[0] for b in D.reference_boxes(y[None]))
    assert D.staged_cost(xt, xr, yr, lo, hi, np.inf) == pytest.approx(full, rel=1e-12)
    assert D.staged_cost(xt, xr, yr, lo, hi, full * (1 + 1e-9)) == pytest.approx(full, rel=1e-12)
    assert D.staged_cost(xt, xr, yr, lo, hi, 0.5 * va) == np.inf  # the first term alone passes the threshold
    assert D.staged_cost(xt, xr, yr, lo, hi, 0.999 * full) == np.inf


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
