"""Magic XRoom data stages: readers, label intervals, pre-processing, splits, scalers, bad input,
handcrafted features, the reference configuration.json, and the synthetic generator's relation."""

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from features.handcrafted import HandcraftedConfig, extract_handcrafted, feature_names, spectral_features
from features.handcrafted import statistical_features as stat_feats
from react.config import ConfigError
from react.data import windows as W
from react.data import xroom as X
from react.tools.config import load_tools_config
from react.tools.xr2learn import map_xr2learn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_synthetic_xroom as gen  # noqa: E402
import make_synthetic_xroom_alt as gen_alt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """8 participants x 1 session; the five format variants cycle over the participants."""
    root = tmp_path_factory.mktemp("xroom") / "XRoom"
    return gen.generate(root, participants=8, sessions=1, levels=8, seed=1)


def run(root: Path, out: Path, seed: int = 0, **changes) -> W.PreprocessResult:
    cfg = replace(W.PreprocessConfig(), **changes)
    return W.preprocess(W.DatasetConfig("XRoom", str(root), str(out)), cfg, seed, log=lambda _: None)


def ticks(seconds: float) -> int:
    return X.TICKS_AT_UNIX_EPOCH + int(round(seconds * 1e7))


# ---------------------------------------------------------------- readers


def test_every_format_variant_reads_to_one_time_base(tmp_path):
    for s, variant in enumerate(gen.VARIANTS):
        gen.write_session(tmp_path / "P1", seed=0, p=1, s=s, levels=2, variant=variant)
    sessions = X.discover_sessions(tmp_path)
    assert len(sessions) == len(gen.VARIANTS)
    for files, variant in zip(sessions, gen.VARIANTS):
        start = (int(files.session) - X.TICKS_AT_UNIX_EPOCH) / 1e7
        shimmer, vr = X.read_shimmer(files.path("SHIMMER")), X.read_vr(files.path("VR"))
        events = X.read_events(files.path("PROGRESS_EVENT"))
        assert shimmer.channels == X.SHIMMER_CHANNELS and vr.channels == X.VR_CHANNELS, variant
        assert abs(shimmer.t[0] - start) < 0.01 and abs(vr.t[0] - start) < 0.05, variant  # Unix ms +1 h too
        assert np.all(np.diff(shimmer.t) > 0) and 45 < len(shimmer.t) / (shimmer.t[-1] - shimmer.t[0]) < 55
        assert 4 < shimmer.x[:, 3].mean() < 20 and 1.5 < vr.x[:, 1].mean() < 2.0  # gsr, head_posY
        assert list(events.columns) == ["t", "event_type", "info"] and events["t"].iloc[0] - start == 1.0
    typo = (tmp_path / "P1").glob(f"*{sessions[3].session}_VR_.csv")
    assert "lcontroller_pposY" in next(typo).read_text().splitlines()[0]


@pytest.mark.parametrize("writer, rest_s", [(gen.write_session, 48.0), (gen_alt.write_session, 62.0)])
def test_both_generators_write_every_format_with_a_calibration_rest(tmp_path, writer, rest_s):
    for s, variant in enumerate(gen.VARIANTS):
        writer(tmp_path / "P1", 0, 1, s, 2, variant)
    for files in X.discover_sessions(tmp_path):
        session = X.load_session(files, ["SHIMMER", "VR"])
        frames = W.session_frames(session, W.PreprocessConfig(modalities=["bio", "body"]))
        assert frames.calibration_period["source"] == "before the first level"
        assert frames.calibration_period["end_s"] == pytest.approx(rest_s, abs=1.0)
        assert len(session.intervals) >= 1 and frames.x.shape[1] == 2 + len(X.VR_CHANNELS)
        assert np.isfinite(frames.x).all() and 0.5 < session.streams["SHIMMER"].x[:, 3].mean() < 40  # gsr, µS


def test_timestamps_ticks_and_unix_ms():
    assert X.to_seconds(np.array([X.TICKS_AT_UNIX_EPOCH + 15_000_000]), "f") == pytest.approx([1.5])
    assert X.to_seconds(np.array([1_705_392_000_000]), "f", 1.0) == pytest.approx([1_705_392_000 + 3600])
    with pytest.raises(X.XRoomError, match="neither C# ticks nor Unix milliseconds"):
        X.to_seconds(np.array([12345]), "f")


def test_fractional_unix_milliseconds_are_read(tmp_path):
    # Shimmer software writes calibrated timestamps with a fractional millisecond part
    seconds = X.to_seconds(np.array([1_706_270_400_123.456]), "f", 1.0)
    assert seconds == pytest.approx([1_706_270_400.123456 + 3600], abs=1e-6)
    path = tmp_path / "data_collection_1_SHIMMER_.csv"
    rows = [f"{1_706_270_400_000 + 100.25 * i:.3f},0,0,1,{5 + i},{500 + i},70" for i in range(5)]
    path.write_text("timestamp,accel_x,accel_y,accel_z,gsr,ppg,hr\n" + "\n".join(rows) + "\n")
    stream = X.read_shimmer(path, 0.0)
    assert np.diff(stream.t) == pytest.approx([0.10025] * 4) and stream.t[0] == pytest.approx(1_706_270_400.0)


def write_events(path: Path, rows: list[tuple[float, str, str]], header: bool = True) -> Path:
    df = pd.DataFrame({"timestamp": [ticks(1.7e9 + t) for t, _, _ in rows],
                       "event_type": [r[1] for r in rows], "info": [r[2] for r in rows]})
    df.to_csv(path, index=False, header=header)
    return path


def test_label_intervals_hand_computed(tmp_path):
    rows = [(0, "TELEPORT_IN", "room"), (1, "BORED", "900"),  # a report before any level: nothing
            (2, "LEVEL_STARTED", "0"), (20, "LEVEL_COMPLETED", "0"), (23, "BORED", "1200"),
            (25, "LEVEL_STARTED", "1"), (40, "LEVEL_FAILED", "1"),  # gap 5 s to the next: merged
            (45, "LEVEL_STARTED", "2"), (60, "LEVEL_COMPLETED", "2"), (62, "ENGAGED", "800"),
            (80, "LEVEL_STARTED", "3"), (100, "LEVEL_COMPLETED", "3"),  # gap 15 s: not merged
            (115, "LEVEL_STARTED", "4"), (130, "LEVEL_COMPLETED", "4"), (131, "FRUSTRATED", "700"),
            (140, "LEVEL_STARTED", "5"), (150, "LEVEL_COMPLETED", "5"), (161, "BORED", "1"),  # 11 s: late
            (170, "LEVEL_STARTED", "6"), (180, "LEVEL_COMPLETED", "6"), (182, "SKIP", "1"),
            (190, "LEVEL_STARTED", "7"), (200, "LEVEL_FAILED", "7"), (201, "FEEDBACK_RECEIVED", "0.5"),
            (210, "LEVEL_STARTED", "8"), (220, "LEVEL_COMPLETED", "8"), (221, "FEEDBACK_RECEIVED", "0.4"),
            (230, "LEVEL_STARTED", "9"), (240, "LEVEL_COMPLETED", "9"), (241, "FEEDBACK_RECEIVED", "0.6"),
            (250, "LEVEL_STARTED", "10"), (260, "LEVEL_COMPLETED", "10"), (269.9, "FEEDBACK_RECEIVED", "0.1"),
            (270, "SCENARIO_ENDED", "room"), (270, "TELEPORT_OUT", "room")]  # equal times are fine
    for header in (True, False):
        events = X.read_events(write_events(tmp_path / f"e{header}.csv", rows, header))
        got = [(round(i.start - 1.7e9, 3), round(i.end - 1.7e9, 3), i.label)
               for i in X.label_intervals(events)]
        assert got == [(2, 20, "BORED"), (25, 60, "ENGAGED"), (115, 130, "FRUSTRATED"), (190, 200, "ENGAGED"),
                       (210, 220, "ENGAGED"), (230, 240, "FRUSTRATED"), (250, 260, "BORED")]
    with pytest.raises(X.XRoomError, match=r"bad.csv: FEEDBACK_RECEIVED value 1.5 is not"):
        X.label_intervals(X.read_events(write_events(tmp_path / "bad.csv", [
            (0, "LEVEL_STARTED", "0"), (5, "LEVEL_COMPLETED", "0"), (6, "FEEDBACK_RECEIVED", "1.5")])))


# ---------------------------------------------------------------- pre-processing


def test_preprocess_layout_stats_and_windows(dataset, tmp_path):
    res = run(dataset, tmp_path, get_ssl=True, test_fraction=0.2, val_fraction=0.2)
    out = tmp_path / "XRoom" / "bio"
    assert res.out_dir == out and not res.skipped
    assert {p.name for p in out.iterdir()} == {"standardize", "ssl_standardize", "train.csv", "val.csv",
                                               "test.csv", "ssl_train.csv", "ssl_val.csv", "ssl_test.csv",
                                               "stats_biomeasurements.csv", "preprocess.json"}
    stats = pd.read_csv(out / "stats_biomeasurements.csv")
    assert tuple(stats.columns) == W.STATS_COLUMNS and len(stats) == 8
    assert (stats["avg_actual_frequency"].between(49, 51)).all()
    per_label = stats.filter(like="length_seconds_").sum(1)
    assert np.allclose(stats["length_labeled_intervals"], per_label, atol=0.01)
    train = pd.read_csv(out / "train.csv", dtype={"session": str})
    assert list(train.columns) == ["files", "labels", "label_name", "participant", "session", "start_time"]
    first = np.load(out / "standardize" / train["files"][0])
    assert first.shape == (50, 2) and first.dtype == np.float32
    assert all(f.endswith(f"_emotion_0{lab + 1}.npy") for f, lab in zip(train["files"], train["labels"]))
    # overlap 0.8: consecutive windows of a level start 1 s apart
    steps = np.diff(train["start_time"].to_numpy())
    assert np.isclose(steps, 1.0).mean() > 0.8
    meta = json.loads((out / "preprocess.json").read_text())
    assert meta["channels"] == ["gsr", "ppg"] and meta["window_frames"] == 50 and meta["hop_frames"] == 10
    assert sum(res.counts[f"ssl_{s}"] for s in W.SPLITS) > sum(res.counts[s] for s in W.SPLITS)


def test_body_and_early_fusion_share_the_grid(dataset, tmp_path):
    body = run(dataset, tmp_path, modalities=["body"], seq_len=1.0, overlap=0.5, create_splits=False)
    x = W.load_windows(body.out_dir, "train", "standardize").x
    assert body.out_dir.name == "body" and x.shape[1:] == (10, 21)
    fused = run(dataset, tmp_path, modalities=["bio", "body"], create_splits=False)
    both = W.load_windows(fused.out_dir, "train", "standardize")
    bio = W.load_windows(run(dataset, tmp_path, create_splits=False).out_dir, "train", "standardize")
    assert fused.out_dir.name == "bio+body" and both.x.shape[1:] == (50, 23)
    # the fused grid covers the time both streams cover, so bio windows are the same where both exist
    key = ["participant", "session", "start_time"]
    merged = both.table.reset_index().merge(bio.table.reset_index(), on=key, suffixes=("_f", "_b"))
    assert len(merged) > 0.9 * len(both.table)
    assert (merged["labels_f"] == merged["labels_b"]).all()


def test_splits_disjoint_seeded_and_scaler_never_sees_test_data(dataset, tmp_path):
    first = run(dataset, tmp_path / "a", seed=3, test_fraction=0.25, val_fraction=0.25)
    again = run(dataset, tmp_path / "b", seed=3, test_fraction=0.25, val_fraction=0.25)
    assert first.splits == again.splits
    sets = [set(first.splits[s]) for s in W.SPLITS]
    assert sum(map(len, sets)) == len(set.union(*sets)) == 8 and all(sets)
    for split, people in first.splits.items():
        assert set(pd.read_csv(first.out_dir / f"{split}.csv")["participant"]) == set(people)
    meta = json.loads((first.out_dir / "preprocess.json").read_text())
    assert meta["scaler"]["fitted_on"] == first.splits["train"]
    # wreck the held-out participants' signals: the scaler and the training windows do not change
    wrecked = tmp_path / "wrecked"
    shutil.copytree(dataset, wrecked)
    for p in first.splits["val"] + first.splits["test"]:
        for f in (wrecked / p).glob("*SHIMMER_.csv"):
            header = not f.read_text().startswith("6")
            df = pd.read_csv(f, header=0 if header else None)
            df.iloc[:, -3:-1] = df.iloc[:, -3:-1] * 100 + 7  # gsr, ppg
            df.to_csv(f, index=False, header=header)
    moved = run(wrecked, tmp_path / "c", seed=3, test_fraction=0.25, val_fraction=0.25)
    assert json.loads((moved.out_dir / "preprocess.json").read_text())["scaler"] == meta["scaler"]
    a, b = (W.load_windows(r.out_dir, "train", "standardize").x for r in (first, moved))
    np.testing.assert_array_equal(a, b)
    t1, t2 = (W.load_windows(r.out_dir, "test", "standardize").x for r in (first, moved))
    assert not np.allclose(t1, t2)


@pytest.mark.parametrize("overlap", [0.5, 0.0])
def test_labelled_intervals_group_the_windows_of_one_self_report(dataset, tmp_path, overlap):
    res = run(dataset, tmp_path, seed=0, val_fraction=0.0, test_fraction=0.25, overlap=overlap,
              get_stats=False)
    table = pd.read_csv(res.out_dir / "train.csv", dtype={"session": str, "participant": str})
    ids = W.labelled_intervals(res.out_dir, "train")
    assert len(ids) == len(table)
    intervals = {(f.participant, f.session): X.load_session(f, ["SHIMMER"]).intervals
                 for f in X.discover_sessions(dataset)}
    # the interval of each window, from the session's own labels: the one containing its start
    truth = [next(i for i, iv in enumerate(intervals[(r.participant, r.session)])
                  if iv.start - 0.2 <= r.start_time <= iv.end) for r in table.itertuples()]
    keys = list(zip(table.participant, table.session, truth))
    assert len(set(ids)) == len(set(keys))  # one id per (session, interval) ...
    assert all(len({k for k, i in zip(keys, ids) if i == g}) == 1 for g in set(ids))  # ... and never two


def test_explicit_splits_and_the_transductive_scaler_is_explicit_and_labelled(dataset, tmp_path):
    res = run(dataset, tmp_path, val_participants=["P2"], test_participants=["P7", "P8"],
              scaler="transductive")
    assert res.splits == {"train": ["P1", "P3", "P4", "P5", "P6"], "val": ["P2"], "test": ["P7", "P8"]}
    meta = json.loads((res.out_dir / "preprocess.json").read_text())
    assert meta["protocol"]["name"] == "transductive" and "test sessions included" in meta["protocol"]["rule"]
    assert set(pd.read_csv(res.out_dir / "stats_biomeasurements.csv")["scaler"]) == {"transductive"}
    # each session by its whole recording: every session's frames have mean 0 and sd 1 per channel
    files = X.discover_sessions(dataset)[6]  # P7, a test participant
    frames = W.session_frames(X.load_session(files, ["SHIMMER"]), W.PreprocessConfig())
    mean, sd = frames.x[frames.valid].mean(0), frames.x[frames.valid].std(0)
    test = pd.read_csv(res.out_dir / "test.csv", dtype={"session": str})
    row = test[test.participant == "P7"].iloc[0]
    k = int(np.flatnonzero(np.isclose(frames.t, row.start_time, rtol=0, atol=1e-3))[0])
    window = np.load(res.out_dir / "standardize" / row.files)
    np.testing.assert_allclose(window, (frames.x[k:k + 50] - mean) / sd, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="former 'session' is 'transductive'"):
        run(dataset, tmp_path, scaler="session")
    with pytest.raises(ValueError, match="both val and test"):
        run(dataset, tmp_path, val_participants=["P2"], test_participants=["P2"])
    with pytest.raises(ValueError, match="overlap"):
        run(dataset, tmp_path, overlap=1.0)


def test_calibration_scaler_uses_only_the_rest_before_the_first_level(dataset, tmp_path):
    """Hand computation: each session's windows are (x - mean) / sd over the frames before its first
    LEVEL_STARTED; wrecking everything after that changes the windows but not the scaling."""
    res = run(dataset, tmp_path / "a", seed=0, scaler="calibration", get_stats=False)
    meta = json.loads((res.out_dir / "preprocess.json").read_text())
    assert meta["protocol"]["name"] == "inductive (calibration)"
    files = X.discover_sessions(dataset)[0]
    session = X.load_session(files, ["SHIMMER"])
    frames = W.session_frames(session, W.PreprocessConfig())
    events = X.read_events(files.path("PROGRESS_EVENT"))
    first_level = events.t[events.event_type == "LEVEL_STARTED"].min()
    rest = frames.x[(frames.t < first_level) & frames.valid]
    assert len(rest) > 300  # the generator's 45 s rest at 10 Hz
    record = next(c for c in meta["calibration"] if c["participant"] == "P1")
    assert record["source"] == "before the first level"
    assert record["end_s"] == pytest.approx(first_level - frames.t[0], abs=1e-3)
    np.testing.assert_allclose(record["center"], rest.mean(0), rtol=1e-9)
    np.testing.assert_allclose(record["scale"], rest.std(0), rtol=1e-9)
    split = next(s for s, people in res.splits.items() if "P1" in people)
    table = pd.read_csv(res.out_dir / f"{split}.csv", dtype={"session": str})
    row = table[table.participant == "P1"].iloc[0]
    k = int(np.flatnonzero(np.isclose(frames.t, row.start_time, rtol=0, atol=1e-3))[0])
    np.testing.assert_allclose(np.load(res.out_dir / "standardize" / row.files),
                               (frames.x[k:k + 50] - rest.mean(0)) / rest.std(0), rtol=1e-4, atol=1e-4)
    # triple GSR and PPG after the calibration period, in every session: the scaling stays
    wrecked = tmp_path / "wrecked"
    shutil.copytree(dataset, wrecked)
    for f in X.discover_sessions(wrecked):
        shimmer = f.path("SHIMMER")
        header = not shimmer.read_text().startswith("6")
        df = pd.read_csv(shimmer, header=0 if header else None)
        ev = X.read_events(f.path("PROGRESS_EVENT"))
        after = X.read_shimmer(shimmer).t >= ev.t[ev.event_type == "LEVEL_STARTED"].min()
        df.iloc[after, -3:-1] = df.iloc[after, -3:-1] * 3 + 5
        df.to_csv(shimmer, index=False, header=header)
    moved = json.loads((run(wrecked, tmp_path / "b", seed=0, scaler="calibration", get_stats=False).out_dir
                        / "preprocess.json").read_text())
    assert moved["calibration"] == meta["calibration"]
    a, b = (W.load_windows(out / "XRoom" / "bio", "train", "standardize").x for out in (tmp_path / "a",
                                                                                         tmp_path / "b"))
    assert a.shape == b.shape and not np.allclose(a, b)


def test_calibration_falls_back_to_the_first_seconds_without_a_rest(tmp_path):
    gen.write_session(tmp_path / "P1", seed=0, p=1, s=0, levels=2)
    files = X.discover_sessions(tmp_path)[0]
    session = X.load_session(files, ["SHIMMER"])
    cfg = W.PreprocessConfig(calibration_min_s=100.0, calibration_s=12.0)
    frames = W.session_frames(session, cfg)
    assert frames.calibration_period == {"start_s": 0.0, "end_s": 12.0, "source": "first 12 s"}
    assert frames.calibration.sum() == 120  # 10 Hz
    with pytest.raises(X.XRoomError, match="calibration period .* has 1 valid frames"):
        W.session_frames(session, W.PreprocessConfig(calibration_min_s=100.0, calibration_s=0.05))


def corrupt(root: Path, participant: str, kind: str, edit) -> Path:
    path = next((root / participant).glob(f"*_{kind}_.csv"))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def test_bad_sessions_skipped_with_named_reasons(dataset, tmp_path):
    root = tmp_path / "XRoom"
    shutil.copytree(dataset, root)
    next((root / "P1").glob("*_SHIMMER_.csv")).unlink()
    bad = {
        "P1": ("SHIMMER", "file missing"),
        "P2": (corrupt(root, "P2", "SHIMMER",
                       lambda ls: ls[:5] + [ls[5].rsplit(",", 3)[0] + ",abc,1,2"] + ls[6:]),
               "column gsr, data row 6: not a number ('abc')"),  # P2 has no header row
        "P3": (corrupt(root, "P3", "VR", lambda ls: ls[:9] + [ls[8]] + ls[9:]),
               "duplicate timestamp at data row 9"),
        "P4": (corrupt(root, "P4", "SHIMMER", lambda ls: ls[:3] + [ls[4], ls[3]] + ls[5:]),
               "timestamps go backwards at data row 4"),
        "P5": (corrupt(root, "P5", "PROGRESS_EVENT", lambda ls: [ln for ln in ls if not any(
            k in ln for k in X.REPORT_EVENTS)]), "no labels"),
        "P6": (corrupt(root, "P6", "SHIMMER",
                       lambda ls: [ls[0] + ",temperature"] + [ln + ",36.6" for ln in ls[1:]]),
               "unknown column(s) temperature"),
    }
    res = run(root, tmp_path / "out", modalities=["bio", "body"], create_splits=False)
    assert [s.participant for s in res.skipped] == list(bad)
    for s in res.skipped:
        target, reason = bad[s.participant]
        assert reason in s.reason, s
        assert (target in s.path) if isinstance(target, str) else Path(s.path) == target
        assert s.path in str(s) and s.session in str(s)
    assert res.splits["train"] == ["P7", "P8"]
    written = {f.split("_")[0] for f in pd.read_csv(res.out_dir / "train.csv")["files"]}
    assert written == {"P7", "P8"}
    assert {f.name.split("_")[0] for f in (res.out_dir / "standardize").iterdir()} == written
    meta = json.loads((res.out_dir / "preprocess.json").read_text())
    assert [s["participant"] for s in meta["skipped"]] == list(bad)
    assert not [p for p in res.out_dir.rglob(".*")]


def test_failed_run_leaves_previous_outputs(dataset, tmp_path, monkeypatch):
    res = run(dataset, tmp_path, create_splits=False)
    before = {p.relative_to(res.out_dir): p.read_bytes() for p in res.out_dir.rglob("*") if p.is_file()}
    calls, save = [], np.save

    def failing_save(path, arr):
        calls.append(path)
        if len(calls) > 20:
            raise OSError("disk full")
        save(path, arr)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        run(dataset, tmp_path, create_splits=False, overlap=0.5)
    after = {p.relative_to(res.out_dir): p.read_bytes() for p in res.out_dir.rglob("*") if p.is_file()}
    assert after == before and not [p for p in res.out_dir.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------- handcrafted features


def test_statistical_and_spectral_values():
    t = np.arange(50) / 10.0
    x = np.stack([2.0 * t + 1, np.sin(2 * np.pi * 2.0 * t)], axis=1)[None]  # ramp, 2 Hz sine
    names = feature_names("statistical", ["ramp", "sine"], [])
    stat = dict(zip(names, stat_feats(x, 10.0)[0]))
    assert stat["ramp.slope"] == pytest.approx(2.0) and stat["ramp.mean_abs_diff"] == pytest.approx(2.0)
    assert stat["ramp.min"] == pytest.approx(1.0) and stat["sine.mean"] == pytest.approx(0.0, abs=1e-9)
    edges = [0.0, 1.0, 3.0, 5.0]
    spec = dict(zip(feature_names("spectral", ["ramp", "sine"], edges), spectral_features(x, 10.0, edges)[0]))
    assert spec["sine.dominant_freq"] == pytest.approx(2.0) and spec["sine.band_1_3Hz"] > 0.95
    assert sum(spec[f"sine.band_{a:g}_{b:g}Hz"] for a, b in zip(edges[:-1], edges[1:])) == pytest.approx(1.0)


def handcrafted_xy(out_dir: Path, split: str, names: dict) -> tuple[np.ndarray, np.ndarray]:
    """The statistical and spectral features of a split side by side, and the labels."""
    parts = [W.load_windows(out_dir, split, kind) for kind in ("statistical", "spectral")]
    assert all(p.x.shape[1] == len(names[k]) for p, k in zip(parts, ("statistical", "spectral")))
    return np.concatenate([p.x for p in parts], axis=1), parts[0].y


def test_synthetic_relation_is_learnable_and_the_modalities_complement_each_other(dataset, tmp_path):
    """Held-out participants, the inductive default (a scaler fitted on the training participants),
    handcrafted features and a linear model: bio-signals (arousal) tell BORED from the rest but
    confuse ENGAGED and FRUSTRATED, body tracking (agitation) tells FRUSTRATED from the rest but
    confuses BORED and ENGAGED, and the two together separate all three. (Measured: bio 0.55, body
    0.81, bio + body 0.88; under the calibration scaler 0.59, 0.91, 0.85.)"""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, recall_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    uar, recall = {}, {}
    for modalities in (["bio"], ["body"], ["bio", "body"]):
        res = run(dataset, tmp_path / "_".join(modalities), seed=0, val_fraction=0.0, test_fraction=0.25,
                  scaler="train", modalities=modalities, get_stats=False)
        written = extract_handcrafted(res.out_dir, HandcraftedConfig())
        assert written["statistical"] == written["spectral"] == sum(res.counts.values())
        names = json.loads((res.out_dir / "handcrafted.json").read_text())["features"]

        (xtr, ytr), (xte, yte) = (handcrafted_xy(res.out_dir, split, names) for split in ("train", "test"))
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(xtr, ytr)
        predicted = model.predict(xte)
        name = "+".join(modalities)
        uar[name] = balanced_accuracy_score(yte, predicted)
        recall[name] = dict(zip(X.LABELS, recall_score(yte, predicted, average=None, labels=[0, 1, 2])))
    assert min(uar.values()) > 0.5, uar  # chance: 1/3
    assert recall["bio"]["BORED"] > recall["bio"]["FRUSTRATED"] + 0.2, recall
    assert recall["body"]["FRUSTRATED"] > recall["body"]["BORED"] + 0.1, recall
    assert uar["bio+body"] > max(uar["bio"], uar["body"]) + 0.05, uar


# ---------------------------------------------------------------- configs


def test_default_configs_are_inductive():
    for path in sorted((ROOT / "configs/tools").glob("*.yaml")):
        cfg = load_tools_config(path)
        assert W.SCALERS[cfg.preprocess.scaler][0] == "inductive", path.name


def test_yaml_configs_load():
    bio = OmegaConf.to_object(load_tools_config(ROOT / "configs/tools/xroom_bio.yaml"))
    body = OmegaConf.to_object(load_tools_config(ROOT / "configs/tools/xroom_body.yaml", ["seed=4"]))
    b, p = bio.preprocess, body.preprocess
    assert (b.seq_len, b.frequency, b.overlap, b.bio_channels) == (5.0, 10.0, 0.8, ["gsr", "ppg"])
    assert (p.modalities, p.seq_len, p.frequency, p.overlap) == (["body"], 1.0, 10.0, 0.5)
    assert len(body.preprocess.body_channels) == 21 and body.seed == 4
    with pytest.raises(ConfigError, match="preprocess.windowing"):
        load_tools_config(ROOT / "configs/tools/xroom_bio.yaml", ["preprocess.windowing=3"])


REFERENCE = {
    "dataset_config": {"dataset_name": "XRoom", "modality": "shimmer", "number_of_labels": 3},
    "inference_config": {"features": "SSL_features"},
    "pre_processing_config": {"process": "normalize", "create_splits": True, "get_stats": True,
                              "get_ssl": True,
                              "use_sensors": ["gsr", "ppg", "hr"], "seq_len": 5, "frequency": 10,
                              "overlap": 0.0, "resample_freq": 20},
    "encoder_config": {"class_name": "CNN1D", "kwargs": {"in_channels": 3, "len_seq": 100}},
    "ssl_config": {"ssl_framework": "SimCLR", "epochs": 1},
}


def test_reference_configuration_json(tmp_path):
    mapped = map_xr2learn(REFERENCE)
    assert mapped.data["bio"]["preprocess"] == {
        "modalities": ["bio"], "process": "normalize", "create_splits": True, "get_stats": True,
        "get_ssl": True,
        "bio_channels": ["gsr", "ppg", "hr"], "seq_len": 5, "overlap": 0.0, "frequency": 20}
    assert set(mapped.training["bio"]) == {"inference_config", "encoder_config", "ssl_config"}
    path = tmp_path / "configuration.json"
    path.write_text(json.dumps(REFERENCE))
    cfg = load_tools_config(ROOT / "configs/tools/xroom_bio.yaml", ["preprocess.overlap=0.5"], xr2learn=path)
    pre = cfg.preprocess
    assert (pre.frequency, pre.overlap, cfg.dataset.root) == (20.0, 0.5, "datasets/XRoom")
    multi = {"dataset_config": {"dataset_name": "XRoom", "modality": ["shimmer", "body-tracking"],
                                "number_of_labels": {"shimmer": 3, "body-tracking": 3}},
             "fusion_config": {"mode": "end-to-end"},
             "shimmer": {"pre_processing_config": {"seq_len": 5}},
             "body-tracking": {"pre_processing_config": {"seq_len": 1, "frequency": 10}, "sup_config": {}}}
    both = map_xr2learn(multi)
    assert both.data["body"]["preprocess"] == {"modalities": ["body"], "seq_len": 1, "frequency": 10}
    assert both.fusion == {"mode": "end-to-end"} and both.training["body"] == {"sup_config": {}}
    for broken, named in [({**REFERENCE, "extra_block": {}}, "extra_block"),
                          ({**REFERENCE, "pre_processing_config": {"sequence": 5}},
                           "pre_processing_config.sequence"),
                          ({**REFERENCE, "pre_processing_config": {"target_sr": 16000}}, "apply to audio"),
                          ({**multi, "shimmer": {"pre_processing_config": {}, "foo": 1}}, "shimmer.foo")]:
        with pytest.raises(ConfigError, match=named):
            map_xr2learn(broken)
