"""The REACT 2025/2026 (MARS) layout end to end: the synthetic generator's layout and relation, the
session rule, windows over clips of different lengths (some shorter than a window), the metrics on
unequal lengths against the per-pair reference, then training -> generation (one process and two
under ``accelerate launch``, the same files) -> evaluation with the 2025 metric set."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.launch import assert_same_files, launch_two_processes
from helpers.regnn_data import AUDIO_DIM, VIDEO_DIM, one_thread, tiny_overrides  # noqa: F401 - autouse

from evaluation import compute_metrics, reference
from evaluation.cli import main as evaluate
from evaluation.dtw import min_group_dtw, pair_cost
from evaluation.dtw_torch import min_group_dtw_torch
from react.data.proxy_features import write_proxy_features
from react.engine import run
from react.generate import main as generate
from react.reaction.data import layouts
from react.reaction.data import mars_layout as M
from react.reaction.data import react_layout as L
from react.reaction.data.dyadic import DyadicWindows
from react.reaction.generation import CLIP_MARKER
from react.tasks import load_task_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "regnn_tiny.yaml"
sys.path.insert(0, str(ROOT / "scripts"))
import make_synthetic_react as gen  # noqa: E402

WINDOW = 96  # data.num_frames here: clips of 56..200 frames, several shorter than one window
SEED = 3  # train and test both hold clips shorter than a window with this seed


@pytest.fixture(scope="module")
def mars(tmp_path_factory) -> Path:
    root = gen.generate_mars(tmp_path_factory.mktemp("mars") / "data", sessions=5, recordings=3,
                             min_frames=56, max_frames=200, seed=SEED, media=False)
    write_proxy_features(root, VIDEO_DIM, AUDIO_DIM)
    return root


def windows(root: Path, split: str, **kw) -> DyadicWindows:
    return DyadicWindows(root, split, video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM, num_frames=WINDOW,
                         stride=WINDOW // 2, **kw)


def test_synthetic_mars_layout_and_relation(mars):
    from react.reaction.data.check import check

    assert layouts.detect(mars) == "mars" and (mars / gen.COMPLETE).is_file()
    sessions = {s: {c.split("/")[1] for c in M.read_split(mars, s).clips} for s in L.SPLITS}
    assert [len(sessions[s]) for s in L.SPLITS] == [3, 1, 1]  # 60/20/20 by session: no one in two splits
    assert not (sessions["train"] & sessions["val"] or sessions["train"] & sessions["test"])
    split = M.read_split(mars, "train")
    assert split.speakers[0] == "speaker/session0/Camera-2024-06-01-090000-085941"
    emotions = M.read_emotions(split)
    n = len(split.speakers)
    lengths = [len(e) for e in emotions]
    assert lengths[:n] == lengths[n:] and len(set(lengths)) > 5 and min(lengths) < WINDOW
    assert all(56 <= t <= 200 for t in lengths)
    # The listener reacts: its valence follows its own speaker's REACTION_DELAY frames later.
    def corr(i, j, lag=gen.REACTION_DELAY):
        a, b = emotions[i][:, 15], emotions[j][:, 15]
        m = min(len(a), len(b))
        return np.corrcoef(a[: m - lag], b[lag:m])[0, 1]
    paired = np.mean([corr(i, i + n) for i in range(n)])
    unpaired = np.mean([corr(i, (i + 1) % n + n) for i in range(n)])
    assert paired > 0.5 and paired > unpaired + 0.3
    report = check(mars, "2025")  # the project's feature folders are allowed beside the modalities
    assert report.ok, report.render()


def test_session_rule_and_input_clips(mars):
    split = layouts.read_split(mars, "train")
    matrix = layouts.read_appropriateness(split)
    keys = [M.parse_clip_id(c) for c in split.clips]
    for k, (role, clip) in enumerate(keys):
        # The reaction to clip j is its partner: it suits k when j has k's role and session.
        assert matrix[k].tolist() == [r == role and c.session == clip.session for r, c in keys]
        assert split.listener_index(k) == (k + len(split.speakers)) % len(split)
    assert layouts.input_clips(split, "speaker") == list(range(len(split.speakers)))
    assert layouts.input_clips(split, "both") == list(range(len(split)))
    path = M.file_path(mars, "train", M.FACIAL_ATTRIBUTES, split.listeners[0])
    path.rename(mars / "moved.npy")
    try:
        with pytest.raises(L.LayoutError, match=r"1 clip\(s\) without a partner .*, e.g. speaker/session0/"):
            M.read_split(mars, "train")
    finally:
        (mars / "moved.npy").rename(path)


def test_windows_stay_inside_clips_and_reactions_cover_them(mars):
    ds = windows(mars, "train")
    lengths = ds.lengths.tolist()
    short = [c for c in range(len(lengths)) if lengths[c] < WINDOW]
    assert short and not set(short) & set(ds.items[:, 0].tolist())  # no training window in a short clip
    for i in range(len(ds)):
        item = ds[i]
        clip, start, end = item["clip"], item["start"], item["start"] + WINDOW
        assert end <= lengths[clip] and end <= lengths[ds.split.listener_index(clip)]
        cover = [j for j in ds.neighbours[clip, : ds.counts[clip]].tolist() if lengths[j] >= end]
        assert ds.reaction_indices(clip, end).tolist() == cover and cover[0] == ds.split.listener_index(clip)
        expected = np.stack([layouts.read_emotion(ds.split, ds.split.clips[j])[start:end] for j in cover])
        np.testing.assert_array_equal(item["reactions"].numpy(), expected)
    assert windows(mars, "train", targets=False).lengths.tolist() == lengths  # generation reads no attributes
    # generation: one window; frames past the end repeat the last
    video = ds.clip_conditions(short[0], ("video",))["video"]
    t = lengths[short[0]]
    assert video.shape == (1, WINDOW, VIDEO_DIM)
    assert torch.equal(video[0, t:], video[0, t - 1:t].expand(WINDOW - t, -1))


def test_feature_extraction_finds_every_mars_clip_at_its_own_length(tmp_path):
    from features.config import FeatureConfig, validate
    from features.extract import extract
    from react.config import load_config

    root = gen.generate_mars(tmp_path / "media", sessions=3, recordings=1, min_frames=56, max_frames=72,
                             seed=SEED, video_size=64, workers=1)
    overrides = [f"data.root={root}", f"out_dir={tmp_path / 'f'}", "split=all", "type=audio",
                 "audio.kind=logmel", "workers=0"]
    cfg = load_config(ROOT / "configs" / "features_tiny.yaml", overrides, schema=FeatureConfig)
    validate(cfg)
    reports = extract(cfg)
    assert {k: (len(r.done), len(r.failed)) for k, r in reports.items()} == {
        f"{s} audio": (2, 0) for s in L.SPLITS}  # both roles of the one recording of each split's session
    for split in L.SPLITS:
        info = M.read_split(root, split)
        for clip, emotion in zip(info.clips, M.read_emotions(info)):
            path = L.feature_path(tmp_path / "f", split, "audio", clip)
            assert torch.load(path).shape == (len(emotion), 128)  # one row per video frame, 30 fps
            sidecar = json.loads(path.with_suffix(".json").read_text())
            assert sidecar["fps"] == M.FPS and sidecar["frames"] == 0


def ragged_set(seed=0, lengths=(60, 75, 60, 90), samples=2):
    rng = np.random.default_rng(seed)
    speaker = [rng.random((t, 25), dtype=np.float32) for t in lengths]
    listener = [speaker[(k + 2) % len(lengths)] for k in range(len(lengths))]
    pred = [(0.5 * listener[k][:t] if len(listener[k]) >= t else rng.random((t, 25), dtype=np.float32))
            + 0.5 * rng.random((samples, t, 25), dtype=np.float32) for k, t in enumerate(lengths)]
    appropriate = rng.random((len(lengths), len(lengths))) < 0.6
    np.fill_diagonal(appropriate, True)
    return [p.astype(np.float32) for p in pred], listener, speaker, appropriate


def test_metrics_on_unequal_lengths_match_the_per_pair_reference():
    pred, listener, speaker, appropriate = ragged_set()
    got = compute_metrics(pred, listener, speaker, appropriate, metric_set="2025")
    cands = [np.flatnonzero(row) for row in appropriate]
    common = lambda p, g: min(len(p), len(g))  # noqa: E731 - FRC and MAE: the common length
    frc = np.mean([sum(max(reference.ccc(listener[j][:common(p, listener[j])], p[:common(p, listener[j])])
                           for j in cands[k]) for p in pred[k]) for k in range(4)])
    # Whole sequences; pair_cost is the per-pair DTW that test_eval_dtw checks against tslearn.
    frd = np.mean([sum(min(pair_cost(p, listener[j]) for j in cands[k]) for p in pred[k]) for k in range(4)])
    mae = [np.abs(p[:common(p, listener[j]), 15:] - listener[j][:common(p, listener[j]), 15:]).mean()
           for k in range(4) for p in pred[k] for j in cands[k]]
    expected = {"FRC": frc, "FRD": frd, "MAE": np.mean(mae),
                "TLCC": np.mean([reference.tlcc_offset(pred[k][0], speaker[k]) for k in range(4)]),
                "S-MSE": np.mean([reference.s_mse(p[None]) for p in pred]),
                "FRVar": np.mean([reference.fr_var(p[None]) for p in pred])}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key
    queries = [q for p in pred for q in p]
    ptr = np.concatenate([[0], np.cumsum([len(cands[k]) for k in range(4) for _ in range(2)])])
    cand = np.concatenate([cands[k] for k in range(4) for _ in range(2)])
    np.testing.assert_allclose(min_group_dtw_torch(queries, listener, ptr, cand),
                               min_group_dtw(queries, listener, ptr, cand)[0], rtol=1e-6)
    with pytest.raises(ValueError, match="FRDvs .* needs clips of one length"):
        compute_metrics(pred, listener, speaker, appropriate, metric_set="2024")
    with pytest.raises(ValueError, match=r"pred\[1\] has 60 frames but its speaker 75"):
        compute_metrics([pred[0], pred[0], *pred[2:]], listener, speaker, appropriate, metric_set="2025")


def test_lists_of_one_length_score_as_arrays():
    pred, listener, speaker, appropriate = ragged_set(lengths=(70, 70, 70))
    as_lists = compute_metrics(pred, listener, speaker, appropriate)
    as_arrays = compute_metrics(np.stack(pred), np.stack(listener), np.stack(speaker), appropriate)
    assert {k: as_lists[k] for k in as_arrays if k != "seconds"} == {
        k: v for k, v in as_arrays.items() if k != "seconds"}


@pytest.fixture(scope="module")
def trained(mars, tmp_path_factory) -> Path:
    """A few training steps on MARS windows; validation generates and scores whole val clips."""
    out = tmp_path_factory.mktemp("run")
    cfg = load_task_config(TINY, [*tiny_overrides(mars, out), f"data.num_frames={WINDOW}",
                                  f"data.stride={WINDOW // 2}", "train.epochs=1", "train.batch_size=8",
                                  "train.max_steps_per_epoch=2", "train.val_every=1", "val.max_clips=4",
                                  "train.test_at_end=false", "generate.workers=1"])
    metrics = run(cfg)
    assert {"val/FRC", "val/FRD", "val/MAE"} <= set(metrics) and "val/FRDvs" not in metrics  # the 2025 set
    assert all(np.isfinite(v) for v in metrics.values())
    return out


def test_generate_and_evaluate_whole_clips(mars, trained, tmp_path, capsys):
    pred = tmp_path / "pred"
    assert generate(["--checkpoint", str(trained), "--pred-dir", str(pred), "--split", "test"]) == 0
    assert "6 generated, 0 already there" in capsys.readouterr().out
    split = M.read_split(mars, "test")
    for clip, emotion in zip(split.clips, M.read_emotions(split)):
        files = [L.prediction_path(pred, "test", clip, k) for k in range(10)]
        reactions = [torch.load(f, weights_only=True) for f in files]
        assert all(r.shape == emotion.shape for r in reactions)  # whole clips, one shorter than a window
        assert not torch.equal(reactions[0], reactions[1])
        assert (files[0].parent / CLIP_MARKER).is_file()
    assert min(len(e) for e in M.read_emotions(split)) < WINDOW
    out = tmp_path / "metrics.json"
    common = ["--data-dir", str(mars), "--pred-dir", str(pred), "--split", "test"]
    assert evaluate([*common, "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["metric_set"] == "2025" and metrics["layout"] == "mars" and metrics["clips"] == 6
    assert "FRDvs" not in metrics and all(np.isfinite(metrics[k]) for k in ("FRC", "FRD", "TLCC", "S-MSE",
                                                                           "FRVar", "MAE"))
    assert "| MAE:" in capsys.readouterr().out
    out = tmp_path / "speakers.json"
    assert evaluate([*common, "--out", str(out), "--directions", "speaker"]) == 0
    assert json.loads(out.read_text())["clips"] == 3
    L.prediction_path(pred, "test", split.clips[1], 4).unlink()
    assert evaluate(common) == 2
    assert f"{split.clips[1]}/result-4.pth" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_generate_exactly_the_files_of_one(mars, trained, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["--checkpoint", str(trained), "--split", "test", "--samples", "3", "--threads", "1"]
    assert generate([*args, "--pred-dir", str(one)]) == 0
    done = launch_two_processes(29587, "-m", "react.generate", *args, "--pred-dir", str(two))
    # the main process reports, with how the clips were shared
    assert done.stdout.count("6 generated by 2 processes, 3 clips each, 0 already there") == 1
    names = assert_same_files(one, two)
    assert len(names) == 6 * 4 + 1  # 3 reactions and a marker per clip, the split's summary
    capsys.readouterr()
    # A restart finds every clip finished, whichever process wrote it; a lost file is made again.
    lost = next(two.rglob("result-2.pth"))
    lost.unlink()
    assert generate([*args, "--pred-dir", str(two)]) == 0
    assert "1 generated, 5 already there" in capsys.readouterr().out
    assert torch.equal(torch.load(lost), torch.load(one / lost.relative_to(two)))
