"""The six metrics: values by hand, agreement with the per-pair reference, backends, bad input."""

import numpy as np
import pytest
import torch

from evaluation import compute_metrics, reference
from evaluation import metrics as M

T = 60  # frames: more than the 49 TLCC lags


def smooth(rng, shape, sigma=4.0):
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(rng.normal(size=shape), sigma, axis=-2).astype(np.float32)


def random_set(seed=0, c=6, s=3, t=T):
    rng = np.random.default_rng(seed)
    speaker = smooth(rng, (c, t, 25))
    speaker[0, :, 3] = 0.0  # constant column: TLCC's worst offset
    listener = np.roll(speaker, c // 2, axis=0)
    pred = (listener[:, None] + 0.3 * smooth(rng, (c, s, t, 25))).astype(np.float32)
    pred[1, 0, :, 5] = 1.0
    appropriate = rng.random((c, c)) < 0.4
    np.fill_diagonal(appropriate, True)
    return pred, listener, speaker, appropriate


def test_ccc_by_hand():
    t = np.linspace(0, 1, T)[:, None].repeat(25, 1).astype(np.float32)
    p = 2 * t  # r = 1, s_p = 2 s_t, means differ by m_t
    var = t[:, 0].astype(np.float64).var()
    mean = t[:, 0].astype(np.float64).mean()
    expected = 2 * 2 * var / (var + 4 * var + mean**2 + M.CCC_EPS)
    pred = p[None, None]
    one = np.ones((1, 1), bool)
    assert M.frc(pred, t[None], one) == pytest.approx(expected, rel=1e-12)
    assert reference.ccc(t, p) == pytest.approx(expected, rel=1e-12)
    t_const = t.copy()
    t_const[:, :5] = 0.3  # r := 0 on constant columns: 20 of 25 columns left
    assert M.frc(pred, t_const[None], one) == pytest.approx(expected * 20 / 25, rel=1e-12)


def test_diversity_metrics_by_hand():
    pred = np.zeros((2, 2, T, 25), np.float32)
    pred[0, 1] = 1.0  # clip 0: samples differ by 1 everywhere; clip 1: identical samples
    assert M.s_mse(pred) == pytest.approx((1.0 + 0.0) / 2)  # mean over clips of 2*T*25 / (2*1*T*25)
    # FRDvs: sample 0 equal across clips, sample 1 differs by 1: 2 ordered pairs * T*25 / (2*1*2) / (T*25)
    assert M.frdvs(pred) == pytest.approx(0.5)
    alternating = np.zeros((1, 1, 4, 25), np.float32)
    alternating[0, 0, 1::2] = 1.0  # 0, 1, 0, 1: unbiased variance 1/3
    assert M.fr_var(alternating) == pytest.approx(1 / 3)


def test_reference_stats_by_hand_across_blocks():
    # 3 references of 4 frames, statistics a block of 2 references at a time.
    x = np.zeros((3, 4, 25), np.float32)
    x[0, :, 0] = [0, 1, 0, 1]  # mean 0.5, population variance 0.25
    x[1, :, 1] = [2, 2, 2, 2]  # constant column
    x[2, :, 2] = [1, 2, 3, 4]  # mean 2.5, variance 1.25 (the second block)
    rows, mean, var, const = M._reference_stats(x, block=2)
    np.testing.assert_array_equal(rows, x.transpose(0, 2, 1))
    assert (mean[0, 0], var[0, 0], mean[1, 1], var[1, 1]) == (0.5, 0.25, 2, 0)
    assert (mean[2, 2], var[2, 2]) == (2.5, 1.25)
    assert const[1, 1] and const[0, 3] and not const[0, 0] and not const[2, 2]
    # The samples are centred, so FRC from uncentred reference rows is the reference CCC.
    pred = np.random.default_rng(0).random((1, 2, 4, 25), dtype=np.float32)
    expected = max(reference.ccc(x[j], pred[0, 0]) for j in range(3)) + max(
        reference.ccc(x[j], pred[0, 1]) for j in range(3))
    assert M.frc_per_clip(pred, x, np.ones((1, 3), bool))[0] == pytest.approx(expected, rel=1e-12)


def test_tlcc_by_hand():
    rng = np.random.default_rng(0)
    speaker = smooth(rng, (1, 300, 25))
    pred = np.roll(speaker, 7, axis=1)[:, None]  # the prediction follows the speaker 7 frames later
    assert M.tlcc(pred, speaker) == (7.0, 0)
    assert reference.tlcc(pred, speaker) == 7.0
    pred[0, 0, :, 4] = 0.5  # a column that never moves: every lag is NaN, the first one wins
    assert M.tlcc(pred, speaker) == (49.0, 1)
    assert reference.tlcc(pred, speaker) == 49.0


def test_tlcc_first_or_all_samples():
    pred, _, speaker, _ = random_set(1)
    first, _ = M.tlcc(pred, speaker, "first")
    every, _ = M.tlcc(pred, speaker, "all")
    assert first == reference.tlcc(pred, speaker, "first")
    assert every == reference.tlcc(pred, speaker, "all")
    with pytest.raises(ValueError, match="first"):
        M.tlcc(pred, speaker, "some")


def test_lagged_correlations_match_corrcoef():
    pred, _, speaker, _ = random_set(2)
    pred[2, 0, :30, 7] = 0.25  # constant over part of the clip: NaN for some lags only
    r = M.lagged_correlations(pred[:, 0], speaker, max_lag=49)
    for n, lag, col in [(2, 0, 7), (2, 40, 7), (2, -40, 7), (3, 12, 0), (4, -49, 24), (0, 5, 3)]:
        a, b = reference._shift(pred[n, 0, :, col], speaker[n, :, col], lag)
        constant = a.min() == a.max() or b.min() == b.max()
        expected = np.nan if constant else np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1]
        assert r[n, lag + 49, col] == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_all_metrics_match_the_reference(seed):
    pred, listener, speaker, appropriate = random_set(seed)
    ours = compute_metrics(pred, listener, speaker, appropriate, workers=2)
    ref = reference.compute_metrics(pred, listener, speaker, appropriate)
    assert set(M.METRIC_KEYS) <= set(ours)
    for key in M.METRIC_KEYS:
        assert ours[key] == pytest.approx(ref[key], rel=1e-6), key
    assert ours["TLCC_worst_clips"] == 2  # clip 0 (constant speaker column), clip 1 (constant prediction)
    assert ours["frd_pairs"] == appropriate.sum() * pred.shape[1]


def test_torch_backend_and_tensor_inputs():
    pred, listener, speaker, appropriate = random_set(3)
    numba_path = compute_metrics(pred, listener, speaker, appropriate)
    tensors = [torch.from_numpy(a) for a in (pred, listener, speaker, appropriate)]
    torch_path = compute_metrics(*tensors, backend="torch", device="cpu")
    for key in M.METRIC_KEYS:
        assert torch_path[key] == pytest.approx(numba_path[key], rel=1e-6), key


def test_bad_inputs_are_named():
    pred, listener, speaker, appropriate = random_set(4)
    with pytest.raises(ValueError, match="listener"):
        compute_metrics(pred, listener[:, :-1], speaker, appropriate)
    with pytest.raises(ValueError, match="appropriate"):
        compute_metrics(pred, listener, speaker, appropriate[:-1])
    bad = pred.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="pred contains NaN"):
        compute_metrics(bad, listener, speaker, appropriate)
    empty = appropriate.copy()
    empty[2] = False
    with pytest.raises(ValueError, match=r"clips \[2\] have no appropriate listener"):
        compute_metrics(pred, listener, speaker, empty)
    with pytest.raises(ValueError, match="backend"):
        compute_metrics(pred, listener, speaker, appropriate, backend="jax")


def test_single_sample_leaves_s_mse_undefined():
    pred, listener, speaker, appropriate = random_set(5)
    out = compute_metrics(pred[:, :1], listener, speaker, appropriate)
    assert np.isnan(out["S-MSE"]) and np.isfinite(out["FRD"])


def test_mae_by_hand_over_all_pairs():
    pred = np.full((2, 2, T, 25), 7.0, np.float32)  # AU columns 0:15 differ wildly: ignored
    pred[0, 0, :, 15:] = 0.0
    pred[0, 1, :, 15:] = 1.0
    pred[1, :, :, 15:] = 0.25
    listener = np.zeros((2, T, 25), np.float32)
    listener[0, :, 15:] = 0.5
    listener[1, :, 15:] = 1.0
    appropriate = np.array([[True, True], [False, True]])
    # clip 0: |0-.5| + |0-1| + |1-.5| + |1-1| = 2 over 4 pairs; clip 1: 2 x |.25-1| = 1.5 over 2 pairs.
    assert M.mae(pred, listener, appropriate) == pytest.approx(3.5 / 6, rel=1e-12)
    sums, pairs = M.mae_per_clip(pred, listener, appropriate)
    np.testing.assert_allclose(sums, [2.0, 1.5])
    np.testing.assert_array_equal(pairs, [4, 2])


def test_metric_set_2025_keys_order_and_frdvs_option():
    pred, listener, speaker, appropriate = random_set(6)
    old = compute_metrics(pred, listener, speaker, appropriate)
    new = compute_metrics(pred, listener, speaker, appropriate, metric_set="2025")
    assert [k for k in new if k in M.METRIC_SETS["2025"] or k == "FRDvs"] == list(M.METRIC_SETS["2025"])
    for key in ("FRC", "FRD", "TLCC", "S-MSE", "FRVar"):
        assert new[key] == old[key], key
    brute = [np.abs(pred[k, i, :, 15:] - listener[j, :, 15:]).mean()
             for k in range(len(pred)) for i in range(pred.shape[1]) for j in np.flatnonzero(appropriate[k])]
    assert new["MAE"] == pytest.approx(np.mean(brute), rel=1e-6)
    with_frdvs = compute_metrics(pred, listener, speaker, appropriate, metric_set="2025", frdvs=True)
    assert with_frdvs["FRDvs"] == old["FRDvs"]
    with pytest.raises(ValueError, match="metric_set"):
        compute_metrics(pred, listener, speaker, appropriate, metric_set="2026")


def test_parts_merge_into_the_whole():
    pred, listener, speaker, appropriate = random_set(7)
    whole = compute_metrics(pred, listener, speaker, appropriate, metric_set="2025", frdvs=True)
    parts = [M.score_clips(pred[idx], idx, listener, speaker, appropriate, metric_set="2025", frdvs=True)
             for idx in (np.array([4, 1]), np.array([0, 2, 5]), np.array([3]))]
    merged = M.combine(parts)
    for key in (*M.METRIC_SETS["2025"], "FRDvs", "TLCC_worst_clips", "frd_pairs"):
        assert merged[key] == pytest.approx(whole[key], rel=1e-12), key
    with pytest.raises(ValueError, match="twice"):
        M.combine(parts + parts[:1])


@pytest.mark.parametrize("n, processes", [(6, 1), (6, 4), (3, 4), (1601, 8)])
def test_process_shares_cover_the_clips_once(n, processes):
    from react.utils.distributed import share

    shares = [share(n, p, processes) for p in range(processes)]
    assert [i for s in shares for i in s] == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_pooled_reference_runs_the_official_way_and_agrees():
    pred, listener, speaker, appropriate = random_set(seed=5, c=4, s=2)
    rows = np.array([1, 3])
    values, seconds = reference.pooled(pred[rows], listener, speaker[rows], appropriate[rows], processes=2)
    for i, k in enumerate(rows):
        one = pred[k:k + 1]
        assert values["FRC"][i] == pytest.approx(reference.frc(one, listener, appropriate[[k]]), rel=1e-12)
        assert values["FRD"][i] == pytest.approx(reference.frd(one, listener, appropriate[[k]]), rel=1e-12)
        assert values["TLCC"][i] == reference.tlcc(one, speaker[[k]], "first")
    sub = pred[rows]  # the diversity metrics in float32 torch, as the official script
    assert values["S-MSE"] == pytest.approx(reference.s_mse(sub), rel=1e-5)
    assert values["FRVar"] == pytest.approx(reference.fr_var(sub), rel=1e-5)
    assert values["FRDvs"] == pytest.approx(reference.frdvs(sub), rel=1e-5)
    assert set(seconds) == {"FRC", "FRD", "TLCC", "diversity"}


def test_synthetic_prediction_kinds():
    from evaluation.synthetic import KINDS, make_kind

    rng = np.random.default_rng(0)
    listener = rng.random((6, 80, 25), dtype=np.float32)
    appropriate = np.eye(6, dtype=bool)[:3]
    preds = {kind: make_kind(kind, listener, appropriate, seed=1) for kind in KINDS}
    for kind, p in preds.items():
        assert p.shape == (3, 10, 80, 25) and p.dtype == np.float32, kind
        assert p.min() >= -1 and p.max() <= 1
    assert M.s_mse(preds["mean-like"]) < 0.1 * M.s_mse(preds["random"])  # low diversity
    np.testing.assert_allclose(preds["mean-like"].mean(axis=(0, 1)), listener.mean(0), atol=0.05)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_kind("copies", listener, appropriate)
