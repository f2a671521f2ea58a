"""Linear and NN against hand-computed values, in both layouts, from Emotion files or features."""

import json

import numpy as np
import pytest
from helpers.eval_data import CLIPS, EMOTION_FILES, write_layout

from react.data.proxy_features import write_proxy_features
from react.reaction import baselines
from react.reaction import fitted_baselines as F
from react.reaction.data import layouts
from react.reaction.data import mars_layout as M
from react.reaction.data import react_layout as L

SWAP = np.arange(25).reshape(-1, 5)[:, [1, 0, 3, 2, 4]].reshape(-1)  # an involution of the columns


def test_context_stacks_earlier_frames_and_repeats_the_first():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    z = F.with_context(x, (0, 2))
    np.testing.assert_array_equal(z[0], [0, 1, 0, 1])
    np.testing.assert_array_equal(z[1], [2, 3, 0, 1])
    np.testing.assert_array_equal(z[4], [8, 9, 4, 5])


def test_ridge_recovers_a_planted_linear_map_with_context():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 25)), rng.normal(size=(3, 25)), rng.normal(size=25)

    def pairs(n, seed):
        r = np.random.default_rng(seed)
        xs = [r.normal(size=(40, 3)) for _ in range(n)]
        return [(x, c + x @ a + F.with_context(x, (2,)) @ b) for x in xs]

    fit = F.fit_ridge(pairs(6, 1), pairs(3, 2), lags=(0, 2), grid=(1e-9, 1.0, 100.0))
    assert fit.lam == 1e-9 and fit.val_mse[1e-9] < 1e-12 < fit.val_mse[1.0] < fit.val_mse[100.0]
    x = np.random.default_rng(3).normal(size=(30, 3))
    np.testing.assert_allclose(fit.predict(x), c + x @ a + F.with_context(x, (2,)) @ b, atol=1e-5)


def test_validation_error_from_moments_equals_the_predictions_error():
    rng = np.random.default_rng(4)
    train = [(rng.normal(size=(50, 4)), rng.normal(size=(50, 25))) for _ in range(5)]
    val = [(rng.normal(size=(n, 4)), rng.normal(size=(n, 25))) for n in (30, 45)]
    grid = (0.01, 1.0, 30.0)
    fits = {lam: F.fit_ridge(train, val, lags=(0, 1), grid=(lam,)) for lam in grid}
    for lam, fit in fits.items():
        errors = np.concatenate([(fit.predict(x) - y).reshape(-1) for x, y in val]).astype(np.float64)
        assert fit.val_mse[lam] == pytest.approx(float(np.mean(errors**2)), rel=1e-5)
    chosen = F.fit_ridge(train, val, lags=(0, 1), grid=grid)
    assert chosen.lam == min(grid, key=lambda lam: fits[lam].val_mse[lam])


def test_nearest_clips_rank_by_standardised_distance():
    train = [np.full((6, 2), v, dtype=np.float32) * [1, 100] for v in (0.0, 1.0, 2.0, 3.0)]
    query = np.full((6, 2), 1.0, dtype=np.float32) * [1, 100] + [0.4, 0]
    np.testing.assert_array_equal(F.nearest_clips([query], train, 3), [[1, 2, 0]])
    np.testing.assert_array_equal(F.nearest_clips([query], train[:2], 3), [[1, 0, 1]])  # repeats
    ragged = [train[0][:4], train[3][:5]]  # common length decides
    np.testing.assert_array_equal(F.nearest_clips([query[:3] * 0 + 2.9 * np.array([1, 100])], ragged, 2),
                                  [[1, 0]])


def react_set(root):
    """Test split = training clips in another order, slightly perturbed; listener swaps columns."""
    train, _ = write_layout(root, "train", seed=1)
    write_layout(root, "val", seed=2)
    perm = [4, 0, 5, 1, 3, 2]  # test clip c looks like training clip perm[c]
    noise = np.random.default_rng(5).normal(0, 0.01, train.shape).astype(np.float32)
    test = train[perm] + noise
    write_layout(root, "test", seed=3)
    for clip, values in zip(CLIPS, test):
        L.write_emotion(root / "test" / "Emotion" / f"{EMOTION_FILES[clip]}.csv", values)
    return train, perm


def predictions(folder, split, clips):
    return np.stack([[L.read_prediction(L.prediction_path(folder, split.name, c, k), None) for k in range(10)]
                     for c in clips])


def test_nn_returns_the_nearest_training_clips_real_listeners(tmp_path):
    train, perm = react_set(tmp_path)
    out = tmp_path / "base"
    assert baselines.main(["--data-dir", str(tmp_path), "--split", "test", "--out-dir", str(out),
                           "--baselines", "NN"]) == 0
    split = L.read_split(tmp_path, "test")
    nn = predictions(out / "NN", split, CLIPS)
    listener = [3, 4, 5, 0, 1, 2]
    train_emotions = [L.read_emotion(L.emotion_path(tmp_path, "train", c)) for c in CLIPS]
    for c in range(6):
        np.testing.assert_array_equal(nn[c, 0], train_emotions[listener[perm[c]]])  # the nearest one
        ranked = F.nearest_clips([L.read_emotion(L.emotion_path(tmp_path, "test", CLIPS[c]))],
                                 train_emotions, 10)[0]
        for k in range(10):
            np.testing.assert_array_equal(nn[c, k], train_emotions[listener[ranked[k]]])
        assert len({int(r) for r in ranked[:6]}) == 6  # all six training clips, then again


def test_fitted_baselines_use_nothing_of_the_test_split_but_each_clips_input(tmp_path, capsys):
    react_set(tmp_path)
    args = ["--data-dir", str(tmp_path), "--split", "test", "--baselines", "Linear,NN"]
    assert baselines.main([*args, "--out-dir", str(tmp_path / "a")]) == 0
    assert "Linear: ridge penalty" in capsys.readouterr().out
    fit = json.loads((tmp_path / "a" / "Linear" / "test" / baselines.FIT_FILE).read_text())
    # Another Emotion for test clip 0, no test matrix: only clip 0's reactions change.
    (tmp_path / "neighbour_emotion_test.npy").unlink()
    path = L.emotion_path(tmp_path, "test", CLIPS[0])
    L.write_emotion(path, np.clip(L.read_emotion(path)[::-1] * 0.5, -1, 1))
    assert baselines.main([*args, "--out-dir", str(tmp_path / "b")]) == 0
    split = L.read_split(tmp_path, "test")
    for name in ("Linear", "NN"):
        a, b = (predictions(tmp_path / run / name, split, CLIPS) for run in ("a", "b"))
        np.testing.assert_array_equal(a[1:], b[1:])
        assert not np.array_equal(a[0], b[0])
    assert json.loads((tmp_path / "b" / "Linear" / "test" / baselines.FIT_FILE).read_text()) == fit


def test_linear_recovers_a_planted_map_through_the_command(tmp_path):
    """The listener is ``b - speaker[:, SWAP]`` in every split (an involution, so both directions of
    a pair follow it); with lag 0 only the fit is that map."""
    b = np.full(25, 0.3)
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        emotions, _ = write_layout(tmp_path, split, seed)
        for c in range(3):
            listener = (b - emotions[c][:, SWAP]).astype(np.float32)
            L.write_emotion(tmp_path / split / "Emotion" / f"{EMOTION_FILES[CLIPS[c + 3]]}.csv", listener)
    out = tmp_path / "base"
    assert baselines.main(["--data-dir", str(tmp_path), "--split", "test", "--out-dir", str(out),
                           "--baselines", "Linear", "--lags", "0"]) == 0
    split = L.read_split(tmp_path, "test")
    linear = predictions(out / "Linear", split, CLIPS)
    truth = np.stack([L.read_emotion(L.emotion_path(tmp_path, "test", CLIPS[split.listener_index(c)]))
                      for c in range(6)])
    assert (linear == linear[:, :1]).all()  # 10 copies
    np.testing.assert_allclose(linear[:, 0], truth, atol=2e-3)
    assert json.loads((out / "Linear" / "test" / baselines.FIT_FILE).read_text())["penalty"] == 1e-4


def write_mars(root, lengths_by_split, seed=0):
    """Facial attributes of ``session<K>`` recordings; the listener echoes the speaker (swapped columns)."""
    rng = np.random.default_rng(seed)
    for split, sessions in lengths_by_split.items():
        for session, lengths in sessions.items():
            for r, t in enumerate(lengths):
                x = rng.uniform(0, 1, (t, 25)).astype(np.float32)
                for role, values in (("speaker", x), ("listener", (1 - x[:, SWAP]).astype(np.float32))):
                    clip = M.Clip(f"session{session}", f"rec{r}")
                    path = M.clip_path(root, split, M.FACIAL_ATTRIBUTES, role, clip)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, values)


@pytest.mark.parametrize("inputs", ["emotion", "features"])
def test_linear_and_nn_on_the_mars_layout(tmp_path, inputs):
    write_mars(tmp_path, {"train": {1: [80, 60, 70], 2: [90, 55]}, "val": {3: [64, 72]},
                          "test": {4: [58, 100], 5: [66]}})
    if inputs == "features":
        write_proxy_features(tmp_path, 8, 4)
    out = tmp_path / "base"
    assert baselines.main(["--data-dir", str(tmp_path), "--split", "test", "--out-dir", str(out),
                           "--baselines", "Linear,NN,MeanFr,Random", "--inputs", inputs, "--lags", "0"]) == 0
    split = layouts.read_split(tmp_path, "test")
    train = layouts.read_split(tmp_path, "train")
    train_emotions = layouts.read_emotions(train)
    emotions = layouts.read_emotions(split)
    for c, clip in enumerate(split.clips):
        t = len(emotions[c])
        linear = np.stack([L.read_prediction(L.prediction_path(out / "Linear", "test", clip, k), None)
                           for k in range(10)])
        nn = np.stack([L.read_prediction(L.prediction_path(out / "NN", "test", clip, k), None)
                       for k in range(10)])
        assert linear.shape == nn.shape == (10, t, 25)
        if inputs == "emotion":  # the planted map, from the speaker's own attributes
            np.testing.assert_allclose(linear[0], emotions[split.listener_index(c)], atol=2e-3)
        own = F.speaker_inputs(split, inputs)[c]
        ranked = F.nearest_clips([own], F.speaker_inputs(train, inputs), 10)[0]
        for k in (0, 9):
            reaction = train_emotions[train.listener_index(int(ranked[k]))]
            np.testing.assert_array_equal(nn[k], F.fit_to_length(reaction, t))
    assert baselines.main(["--data-dir", str(tmp_path), "--split", "test", "--out-dir", str(out),
                           "--baselines", "MeanSeq"]) == 2


def test_missing_features_and_bad_lags_exit_2(tmp_path, capsys):
    react_set(tmp_path)
    args = ["--data-dir", str(tmp_path), "--split", "test", "--out-dir", str(tmp_path / "o"),
            "--baselines", "NN"]
    assert baselines.main([*args, "--inputs", "features"]) == 2
    assert "video features not found" in capsys.readouterr().err
    assert baselines.main([*args, "--lags", "2,4"]) == 2
    assert "--lags must be distinct non-negative frame counts including 0" in capsys.readouterr().err
