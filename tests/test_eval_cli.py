"""``evaluation.py`` and ``load_split`` on a hand-written layout: P1/P2 mapping, output, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.eval_data import CLIPS, write_layout
from helpers.launch import launch_two_processes

from evaluation import EvalInputError, load_split, reference
from evaluation.cli import main
from evaluation.metrics import METRIC_KEYS
from evaluation.synthetic import make_predictions, write_predictions
from react.reaction.data import react_layout as L

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("react_eval")
    emotions, matrix = write_layout(root, "val")
    split = L.read_split(root, "val")
    listener = emotions[[split.listener_index(j) for j in range(len(split))]]
    pred = make_predictions(listener, matrix, seed=1)
    write_predictions(root / "pred", split, pred)
    return root, emotions, matrix, pred


def args(root, *extra):
    return ["--data-dir", str(root), "--pred-dir", str(root / "pred"), "--split", "val", *extra]


def test_load_split_order_and_emotion_mapping(layout):
    root, emotions, matrix, pred = layout
    p, listener, speaker, appropriate = load_split(root, root / "pred", "val")
    assert L.read_split(root, "val").clips == CLIPS
    # speaker[k] is clip k's own Emotion, read from the P1/P2 file the hand-written table names.
    np.testing.assert_array_equal(speaker, emotions)
    # listener[j] is the other person of clip j's row: clip j + N (mod 2N).
    np.testing.assert_array_equal(listener, emotions[[3, 4, 5, 0, 1, 2]])
    np.testing.assert_array_equal(appropriate, matrix)
    np.testing.assert_array_equal(p, pred)


def test_cli_prints_table_and_writes_json(layout, tmp_path, capsys):
    root, emotions, matrix, pred = layout
    out = tmp_path / "metrics.json"
    assert main(args(root, "--out", str(out), "--workers", "1")) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "-----------------Evaluating Metric-----------------"
    metrics = json.loads(out.read_text())
    assert list(metrics)[:6] == list(METRIC_KEYS)
    assert printed[1] == "Metric: | " + " | ".join(f"{k}: {metrics[k]:.5f}" for k in METRIC_KEYS)
    latex = f"Latex-friendly --> model_name & {metrics['FRC']:.2f} & {metrics['FRD']:.2f} & "
    assert printed[2].startswith(latex)
    assert printed[2].endswith(f"& - & {metrics['TLCC']:.2f} \\\\")
    listener = emotions[[3, 4, 5, 0, 1, 2]]
    ref = reference.compute_metrics(pred, listener, emotions, matrix)
    for key in METRIC_KEYS:
        assert metrics[key] == pytest.approx(ref[key], rel=1e-6), key
    assert metrics["clips"] == 6 and metrics["samples"] == 10 and metrics["split"] == "val"


def test_cli_all_tlcc_samples(layout, tmp_path):
    root, emotions, matrix, pred = layout
    out = tmp_path / "all.json"
    assert main(args(root, "--out", str(out), "--tlcc-samples", "all")) == 0
    assert json.loads(out.read_text())["TLCC"] == reference.tlcc(pred, emotions, "all")


def broken_copy(root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(root), str(copy)], check=True)
    return copy


def run_expecting_failure(root: Path, tmp_path: Path, capsys) -> str:
    out = tmp_path / "never.json"
    assert main(args(root, "--out", str(out))) == 2
    assert not out.exists()  # no partial JSON
    return capsys.readouterr().err


def test_every_missing_prediction_is_listed(layout, tmp_path, capsys):
    root = broken_copy(layout[0], tmp_path)
    gone = [L.prediction_path(root / "pred", "val", CLIPS[1], 3),
            L.prediction_path(root / "pred", "val", CLIPS[4], 9)]
    for path in gone:
        path.unlink()
    err = run_expecting_failure(root, tmp_path, capsys)
    for path in gone:
        assert f"missing prediction file: {path}" in err


def test_a_missing_prediction_folder_is_one_line_and_floods_are_cut(layout, tmp_path, capsys):
    root = layout[0]
    assert main(["--data-dir", str(root), "--pred-dir", str(tmp_path / "nowhere"), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "nowhere: prediction folder not found" in err and err.count("\n") <= 3
    copy = broken_copy(root, tmp_path)
    for path in sorted((copy / "pred").rglob("result-*.pth"))[:25]:
        path.unlink()
    err = run_expecting_failure(copy, tmp_path, capsys)
    assert "25 problem(s)" in err and "... and 15 more" in err and err.count("missing prediction file") == 10


def test_an_up_to_date_metrics_file_is_not_recomputed(layout, tmp_path, capsys):
    root = broken_copy(layout[0], tmp_path)
    out = tmp_path / "metrics.json"
    assert main(args(root, "--out", str(out))) == 0
    first = out.read_text()
    capsys.readouterr()
    assert main(args(root, "--out", str(out))) == 0
    captured = capsys.readouterr()
    assert "up to date" in captured.err and "Metric: |" in captured.out and out.read_text() == first
    path = L.prediction_path(root / "pred", "val", CLIPS[0], 0)
    torch.save(torch.zeros(750, 25), path)  # a changed prediction: scored again
    assert main(args(root, "--out", str(out))) == 0
    assert "up to date" not in capsys.readouterr().err and out.read_text() != first


def test_wrong_shape_and_nan_name_the_file(layout, tmp_path, capsys):
    root = broken_copy(layout[0], tmp_path)
    short = L.prediction_path(root / "pred", "val", CLIPS[0], 0)
    torch.save(torch.zeros(700, 25), short)
    nan = L.prediction_path(root / "pred", "val", CLIPS[2], 5)
    values = torch.zeros(750, 25)
    values[10, 3] = float("nan")
    torch.save(values, nan)
    err = run_expecting_failure(root, tmp_path, capsys)
    assert f"{short}: expected shape (750, 25), got (700, 25)" in err
    assert f"{nan}: contains 1 NaN/inf value(s)" in err


def test_matrix_size_mismatch_is_explained(layout, tmp_path, capsys):
    root = broken_copy(layout[0], tmp_path)
    np.save(root / "neighbour_emotion_val.npy", np.eye(8, dtype=np.float32))
    err = run_expecting_failure(root, tmp_path, capsys)
    assert "matrix is (8, 8) but val.csv lists 3 rows, i.e. 6 clips in both directions, " \
        "so it must be (6, 6)" in err


def test_missing_emotion_file_is_reported(layout, tmp_path, capsys):
    root = broken_copy(layout[0], tmp_path)
    (root / "val" / "Emotion" / "RECOLA" / "group-1" / "P2" / "2.csv").unlink()
    err = run_expecting_failure(root, tmp_path, capsys)
    assert "P2/2.csv: Emotion file not found" in err


def test_load_split_raises_with_every_problem(layout, tmp_path):
    root = broken_copy(layout[0], tmp_path)
    L.prediction_path(root / "pred", "val", CLIPS[5], 0).unlink()
    np.save(root / "neighbour_emotion_val.npy", np.eye(4, dtype=np.float32))
    with pytest.raises(EvalInputError) as info:
        load_split(root, root / "pred", "val")
    assert len(info.value.problems) == 2


def test_bad_flag_values_exit_2(layout, capsys):
    root = layout[0]
    with pytest.raises(SystemExit) as info:
        main(args(root, "--device", "tpu"))
    assert info.value.code == 2
    assert main(args(root, "--workers", "-1")) == 2
    assert "workers must be >= 0" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(args(root, "--device", "cuda")) == 2
        assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.slow
def test_script_runs_as_a_command(layout, tmp_path):
    root = layout[0]
    out = tmp_path / "cmd.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "evaluation.py"), *args(root, "--out", str(out))],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Metric: | FRC:" in done.stdout
    assert set(METRIC_KEYS) <= set(json.loads(out.read_text()))


def test_cli_takes_a_yaml_config_and_overrides(layout, tmp_path, capsys):
    root, *_ = layout
    yaml = tmp_path / "eval.yaml"
    yaml.write_text(f"data:\n  root: {root}\npred_dir: {root / 'pred'}\nsplit: val\nworkers: 1\n")
    out = tmp_path / "m.json"
    assert main(["--config", str(yaml), f"out={out}", "tlcc_samples=all"]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["tlcc_samples"] == "all" and metrics["split"] == "val"
    assert main(["--config", str(yaml), "--split", "test", f"out={tmp_path / 'x.json'}"]) == 2  # flag wins
    assert main(["--config", str(yaml), "tlcc_sample=all"]) == 2
    assert "unknown config key 'tlcc_sample'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_metric_set_2025_printout_and_json(layout, tmp_path, capsys):
    root, emotions, matrix, pred = layout
    out = tmp_path / "m2025.json"
    assert main(args(root, "--out", str(out), "--metric-set", "2025")) == 0
    printed = capsys.readouterr().out.splitlines()
    metrics = json.loads(out.read_text())
    keys = ["FRC", "FRD", "TLCC", "S-MSE", "FRVar", "MAE"]
    assert printed[1] == "Metric: | " + " | ".join(f"{k}: {metrics[k]:.5f}" for k in keys)
    assert "FRDvs" not in metrics and metrics["metric_set"] == "2025"
    listener = emotions[[3, 4, 5, 0, 1, 2]]
    brute = [np.abs(pred[k, i, :, 15:] - listener[j, :, 15:]).mean()
             for k in range(6) for i in range(10) for j in np.flatnonzero(matrix[k])]
    assert metrics["MAE"] == pytest.approx(np.mean(brute), rel=1e-6)
    assert main(args(root, "--out", str(tmp_path / "f.json"), "--metric-set", "2025", "--frdvs")) == 0
    assert "| FRDvs: " in capsys.readouterr().out
    assert json.loads((tmp_path / "f.json").read_text())["FRDvs"] == pytest.approx(reference.frdvs(pred))


def test_prediction_files_are_read_without_torch(tmp_path):
    from react.reaction.data.react_layout import read_prediction
    from react.utils.pth import read_tensor_file

    base = torch.rand(25, 750)
    cases = {"float": base.T.contiguous(), "view": base.T, "double": base.T.double(),
             "offset": torch.rand(800, 25)[50:]}
    for name, value in cases.items():
        path = tmp_path / f"{name}.pth"
        torch.save(value, path)
        np.testing.assert_array_equal(read_tensor_file(path), value.numpy())
        np.testing.assert_array_equal(read_prediction(path, 750), value.float().numpy())
    torch.save(base.T.numpy(), tmp_path / "numpy.pth")  # anything else: torch.load and its errors
    with pytest.raises(L.LayoutError, match="cannot be read as a tensor file"):
        read_prediction(tmp_path / "numpy.pth", 750)
    torch.save({"x": base}, tmp_path / "dict.pth")
    with pytest.raises(L.LayoutError, match="expected a float tensor, got dict"):
        read_prediction(tmp_path / "dict.pth", 750)


@pytest.mark.slow
def test_command_does_not_import_torch(layout):
    root = layout[0]
    code = ("import sys; from evaluation.cli import main; "
            f"assert main({args(root)!r}) == 0; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("False")


@pytest.mark.slow
def test_two_processes_give_the_metrics_of_one(layout, tmp_path):
    root = layout[0]
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main(args(root, "--out", str(one), "--metric-set", "2025", "--frdvs")) == 0
    done = launch_two_processes(29587, str(ROOT / "evaluation.py"),
                                *args(root, "--out", str(two), "--metric-set", "2025"), "--frdvs",
                                cwd=tmp_path)
    assert done.stdout.count("Metric: |") == 1  # the main process prints for both
    assert done.stderr.count("scored by 2 processes, 3 clips each") == 1
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert b["processes"] == 2 and a["processes"] == 1
    for key in ("FRC", "FRD", "TLCC", "S-MSE", "FRVar", "MAE", "FRDvs", "TLCC_worst_clips", "frd_pairs"):
        assert b[key] == pytest.approx(a[key], rel=1e-12), key


def test_an_out_folder_is_refused_before_scoring(layout, tmp_path, capsys, monkeypatch):
    root = layout[0]
    monkeypatch.setattr("evaluation.cli._score", lambda cfg: pytest.fail("scored before checking --out"))
    assert main(args(root, "--out", str(tmp_path))) == 2
    assert f"--out {tmp_path}: is a folder" in capsys.readouterr().err


def test_metrics_file_records_the_predictions_and_per_clip_scores(layout, tmp_path):
    root = layout[0]
    out = tmp_path / "metrics.json"
    assert main(args(root, "--out", str(out), "--workers", "1")) == 0
    metrics = json.loads(out.read_text())
    assert metrics["pred_dir"] == str((root / "pred").resolve())
    per_clip = metrics["per_clip"]
    assert per_clip["clip"] == list(CLIPS) and len(per_clip["FRD"]) == 6
    assert np.mean(per_clip["FRC"]) == pytest.approx(metrics["FRC"])
    assert np.mean(per_clip["FRD"]) == pytest.approx(metrics["FRD"])
