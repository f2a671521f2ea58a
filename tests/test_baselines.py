"""The naive baselines against hand-computed values, and the comparison table of several folders."""

import csv

import numpy as np
import pytest
import torch
from helpers.eval_data import CLIPS, write_layout

from evaluation import compute_metrics
from evaluation.compare import main as compare
from evaluation.loading import load_ground_truth, load_predictions
from evaluation.metrics import METRIC_KEYS
from evaluation.report import latex_row
from react.reaction import baselines
from react.reaction.data import react_layout as L

LISTENER = [3, 4, 5, 0, 1, 2]  # the real listener of each of the 6 clips


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("react_baselines")
    emotions, matrix = write_layout(root, "test", seed=0)
    train, _ = write_layout(root, "train", seed=7)
    write_layout(root, "val", seed=8)  # Linear chooses its penalty there
    assert baselines.main(["--data-dir", str(root), "--split", "test", "--out-dir", str(root / "base")]) == 0
    return root, emotions, train


def read(root, name):
    """``(6, 10, 750, 25)`` predictions of a baseline folder."""
    return np.stack([[L.read_prediction(L.prediction_path(root / "base" / name, "test", c, k))
                      for k in range(10)] for c in CLIPS])


def test_files_are_float32_in_the_evaluation_layout(data):
    root, *_ = data
    for name in baselines.BASELINES:
        value = torch.load(L.prediction_path(root / "base" / name, "test", CLIPS[4], 9), weights_only=True)
        assert value.dtype == torch.float32 and value.shape == (750, 25), name
        assert value.untyped_storage().nbytes() == 750 * 25 * 4  # one reaction, not a shared buffer


def test_gt_is_the_real_listener_and_mime_the_speaker(data):
    root, emotions, _ = data
    gt, mime = read(root, "GT"), read(root, "Mime")
    np.testing.assert_array_equal(gt, np.repeat(emotions[LISTENER][:, None], 10, axis=1))
    # The speaker's own Emotion, read through the P1/P2 file names.
    np.testing.assert_array_equal(mime, np.repeat(emotions[:, None], 10, axis=1))


def test_mean_baselines_are_the_training_means(data):
    root, _, train = data
    mean_seq = train.astype(np.float64).mean(axis=0)  # all 6 training clips, frame by frame
    mean_fr = train.astype(np.float64).mean(axis=(0, 1))
    seq, fr = read(root, "MeanSeq"), read(root, "MeanFr")
    np.testing.assert_allclose(seq, np.broadcast_to(mean_seq, seq.shape), atol=1e-6)
    np.testing.assert_allclose(fr, np.broadcast_to(mean_fr, fr.shape), atol=1e-6)
    assert (fr == fr[:, :, :1]).all()  # constant over time
    assert (seq == seq[:1, :1]).all()  # the same for every clip and sample
    assert not (seq == seq[:, :, :1]).all()  # but not constant over time


def test_random_is_uniform_and_seeded(data, tmp_path):
    root, *_ = data
    rand = read(root, "Random")
    assert rand.min() >= 0 and rand.max() < 1 and abs(rand.mean() - 0.5) < 0.01
    assert not np.array_equal(rand[0, 0], rand[0, 1]) and not np.array_equal(rand[0, 0], rand[1, 0])
    args = ["--data-dir", str(root), "--split", "test", "--baselines", "Random"]
    assert baselines.main([*args, "--out-dir", str(tmp_path / "a"), "--seed", "0"]) == 0
    assert baselines.main([*args, "--out-dir", str(tmp_path / "b"), "--seed", "1"]) == 0
    same = torch.load(L.prediction_path(tmp_path / "a" / "Random", "test", CLIPS[2], 3), weights_only=True)
    other = torch.load(L.prediction_path(tmp_path / "b" / "Random", "test", CLIPS[2], 3), weights_only=True)
    np.testing.assert_array_equal(same.numpy(), rand[2, 3])
    assert not torch.equal(same, other)


def test_complete_folders_are_skipped(data, tmp_path, capsys):
    root, *_ = data
    args = ["--data-dir", str(root), "--split", "test", "--out-dir", str(tmp_path),
            "--baselines", "GT,Random"]
    assert baselines.main(args) == 0
    probe = L.prediction_path(tmp_path / "GT", "test", CLIPS[0], 0)
    stamp = probe.stat().st_mtime_ns
    capsys.readouterr()
    assert baselines.main([*args, "--seed", "3"]) == 0  # the seed changes Random only
    out = capsys.readouterr().out
    assert "GT: " in out and "already complete with the same settings, skipped" in out.split("\n")[0]
    assert "Random: written to" in out
    assert probe.stat().st_mtime_ns == stamp
    L.prediction_path(tmp_path / "GT", "test", CLIPS[5], 7).unlink()
    assert baselines.main(args) == 0
    assert "GT: written to" in capsys.readouterr().out


def test_bad_baseline_name_and_missing_train_split_exit_2(data, tmp_path, capsys):
    root, *_ = data
    args = ["--data-dir", str(root), "--split", "test", "--out-dir", str(tmp_path)]
    assert baselines.main([*args, "--baselines", "GT,Mean"]) == 2
    assert "unknown baseline(s) Mean" in capsys.readouterr().err
    (tmp_path / "test.csv").write_text((root / "test.csv").read_text())
    assert baselines.main(["--data-dir", str(tmp_path), "--split", "test", "--out-dir", str(tmp_path / "o"),
                           "--baselines", "MeanFr"]) == 2
    assert "train.csv: split file not found" in capsys.readouterr().err


def test_comparison_table_matches_compute_metrics(data, tmp_path, capsys):
    root, *_ = data
    names = ["GT", "Mime", "MeanFr"]
    out = tmp_path / "table"
    preds = [f"B_{n}={root / 'base' / n}" for n in names]
    assert compare(["--data-dir", str(root), "--split", "test", "--pred-dir", *preds, "--out-dir", str(out),
                    "--workers", "1"]) == 0
    split = L.read_split(root, "test")
    listener, speaker, appropriate = load_ground_truth(split)
    expected = {n: compute_metrics(load_predictions(root / "base" / n, split), listener, speaker, appropriate)
                for n in names}
    assert expected["GT"]["FRD"] == 0.0
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [r["name"] for r in rows] == [f"B_{n}" for n in names]
    for row, name in zip(rows, names):
        assert row["pred_dir"] == str(root / "base" / name)
        for key in METRIC_KEYS:
            assert float(row[key]) == expected[name][key], (name, key)
        assert int(row["TLCC_worst_clips"]) == expected[name]["TLCC_worst_clips"]
    markdown = (out / "comparison.md").read_text().splitlines()
    assert markdown[0].startswith("|  | FRC ↑ | FRD ↓ | S-MSE ↑ | FRVar ↑ | FRDvs ↑ | TLCC ↓ |")
    assert len(markdown) == 2 + len(names)
    assert markdown[2].startswith(f"| B_GT | {expected['GT']['FRC']:.5f} | 0.00000 |")
    latex = (out / "comparison.tex").read_text().splitlines()
    official = [latex_row(expected[n], f"B\\_{n}") for n in names]
    assert latex[1:] == [row.removeprefix("Latex-friendly --> ") for row in official]
    assert latex[1].endswith(f"& - & {expected['GT']['TLCC']:.2f} \\\\")
    assert capsys.readouterr().out.count("Metric: | FRC:") == len(names)


def test_compare_names_every_missing_folder_and_exits_2(data, tmp_path, capsys):
    root, *_ = data
    out = tmp_path / "never"
    args = ["--data-dir", str(root), "--split", "test", "--out-dir", str(out), "--pred-dir",
            f"GT={root / 'base' / 'GT'}", f"Model={tmp_path / 'nowhere'}", f"Other={tmp_path / 'gone'}"]
    assert compare(args) == 2
    err = capsys.readouterr().err
    assert f"Model: prediction folder not found: {tmp_path / 'nowhere' / 'test'}" in err
    assert f"Other: prediction folder not found: {tmp_path / 'gone' / 'test'}" in err
    assert not out.exists()
    assert compare([*args[:7], "GT=a", "GT=b"]) == 2
    assert "names must be unique" in capsys.readouterr().err
    assert compare([*args[:7], "just-a-folder"]) == 2
    assert "--pred-dir expects NAME=DIR" in capsys.readouterr().err


def test_compare_reports_missing_files_before_scoring(data, tmp_path, capsys):
    root, *_ = data
    partial = tmp_path / "partial"
    for c in CLIPS[:5]:
        for k in range(10):
            path = L.prediction_path(partial, "test", c, k)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(L.prediction_path(root / "base" / "Mime", "test", c, k).read_bytes())
    assert compare(["--data-dir", str(root), "--split", "test", "--out-dir", str(tmp_path / "o"),
                    "--pred-dir", f"Part={partial}"]) == 2
    printed = capsys.readouterr()
    assert f"Part: 10 of 60 prediction files missing under {partial / 'test'}" in printed.err
    assert "Metric:" not in printed.out
