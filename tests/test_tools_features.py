"""Robust features for new people (react/data/derive.py): values against hand computation, the
pre-processing options that apply them, and their errors."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from react.data import derive as D
from react.data import windows as W

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_synthetic_xroom as gen  # noqa: E402


def test_tonic_is_a_running_median_and_phasic_the_remainder():
    gsr = np.array([1.0, 1.0, 5.0, 1.0, 1.0, 2.0, 2.0])
    tonic, phasic = D.tonic_phasic(gsr, frequency=1.0, tonic_s=3.0)  # median of 3, edges repeated
    np.testing.assert_array_equal(tonic, [1, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(phasic, [0, 0, 4, 0, 0, 0, 0])  # the response, without the level


def test_derived_channels_and_their_names():
    x = np.array([[2.0, 10.0], [4.0, 10.0], [7.0, 13.0], [7.0, 16.0]])
    calib = np.array([True, True, False, False])
    out, names = D.derive_channels(x, ["gsr", "ppg"], ["diff", "calibration_relative"], 2.0, calib, 4.0)
    assert names == ["gsr", "ppg", "d_gsr", "d_ppg", "rel_gsr", "rel_ppg"]
    np.testing.assert_array_equal(out[:, 2:4], [[0, 0], [4, 0], [6, 6], [0, 6]])  # per second at 2 Hz
    np.testing.assert_array_equal(out[:, 4:], [[-1, 0], [1, 0], [4, 3], [4, 6]])  # minus median(2, 4)
    out, names = D.derive_channels(x, ["gsr", "ppg"], ["tonic_phasic"], 1.0, calib, 1.0)
    assert names == ["gsr_tonic", "gsr_phasic", "ppg"] and out.shape == (4, 3)
    np.testing.assert_array_equal(out[:, 1], 0.0)  # a median over one frame: all tonic
    out, names = D.derive_channels(x, ["head_posX", "head_posY"], ["tonic_phasic"], 1.0, calib, 1.0)
    assert names == ["head_posX", "head_posY"]  # no GSR, nothing to split


def test_window_scaling_robust_and_rank():
    w = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0], [10.0, 5.0]])
    robust = D.normalise_window(w, "robust")
    np.testing.assert_allclose(robust[:, 0], (w[:, 0] - 3.0) / 2.0)  # median 3, IQR 4 - 2
    np.testing.assert_array_equal(robust[:, 1], 0.0)  # no spread: only centred
    rank = D.normalise_window(w, "rank")
    np.testing.assert_allclose(rank[:, 0], [0, 0.25, 0.5, 0.75, 1.0])  # the outlier is just the largest
    np.testing.assert_allclose(rank[:, 1], 0.5)  # ties share the middle rank
    # a participant's offset and gain drop out of both
    for how in ("robust", "rank"):
        np.testing.assert_allclose(D.normalise_window(3 * w + 7, how), D.normalise_window(w, how), atol=1e-12)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("xroom") / "XRoom"
    return gen.generate(root, participants=3, sessions=1, levels=3, seed=2)


def test_preprocess_writes_derived_channels_per_modality(dataset, tmp_path):
    cfg = replace(W.PreprocessConfig(), modalities=["bio", "body"], body_channels=["head_posY"],
                  features=["tonic_phasic", "diff"], window_norm="robust", get_stats=False)
    res = W.preprocess(W.DatasetConfig("XRoom", str(dataset), str(tmp_path)), cfg, 0, log=lambda _: None)
    meta = json.loads((res.out_dir / "preprocess.json").read_text())
    assert meta["channels"] == ["gsr_tonic", "gsr_phasic", "ppg", "d_gsr_tonic", "d_gsr_phasic", "d_ppg",
                                "head_posY", "d_head_posY"]
    assert W.channel_groups(meta) == [6, 2]  # late fusion: one encoder per modality
    w = W.load_windows(res.out_dir, "train", "standardize").x
    assert w.shape[1:] == (50, 8)
    np.testing.assert_allclose(np.median(w, axis=1), 0.0, atol=1e-5)  # robust inside each window


@pytest.mark.parametrize("change, message", [
    ({"features": ["wavelets"]}, "features must be distinct names from tonic_phasic"),
    ({"features": ["diff", "diff"]}, "features must be distinct"),
    ({"window_norm": "zscore"}, "window_norm must be one of none, robust, rank"),
    ({"scaler": "test"}, "scaler must be one of train, calibration, transductive"),
    ({"tonic_s": 0.0}, "calibration_s and tonic_s must be > 0"),
])
def test_bad_feature_options_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        W.check_config(replace(W.PreprocessConfig(), **change))
