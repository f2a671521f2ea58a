"""The ``ser`` task end to end on a small synthetic RAVDESS corpus: corpus, splits, training step,
training through train.py, test report, inference CLI (file, stream), ONNX export CLI."""

import csv
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from react.config import ConfigError
from react.data.ser_corpus import CorpusError, scan_ravdess
from react.ser import export, predict
from react.ser.report import write_report
from react.tasks import RunPaths, load_task_config
from react.tasks.ser import Task

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_synthetic_ravdess as gen  # noqa: E402

import train  # noqa: E402

TINY = ["task=ser", "model.n_mels=16", "model.cnn_channels=[4,8]", "model.embed_dim=16",
        "model.hidden_dim=16",
        "model.aux_sex_weight=0.3", "data.max_seconds=1.5", "train.batch_size=16", "train.lr=3e-3",
        "report.eval_batch_size=64", "report.baseline=false"]
CPU = SimpleNamespace(device=torch.device("cpu"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ravdess")
    gen.generate(root, actors=6, repetitions=1)
    return root


def _f0(wave: np.ndarray, sr: int = 16000) -> float:
    """Median autocorrelation pitch of the loud 40 ms frames."""
    frame = 640
    frames = wave[: wave.size // frame * frame].reshape(-1, frame)
    frames = frames[frames.std(1) > 0.5 * frames.std(1).max()]
    estimates = []
    for f in frames:
        ac = np.correlate(f, f, "full")[frame - 1:]
        lo, hi = sr // 400, sr // 70
        estimates.append(sr / (lo + ac[lo:hi].argmax()))
    return float(np.median(estimates))


def test_synthetic_corpus_layout_and_prosody(corpus):
    utterances = scan_ravdess(corpus)
    assert len(utterances) == 6 * 30
    assert {u.actor for u in utterances} == {f"ravdess:{a:02d}" for a in range(1, 7)}
    assert not any(u.emotion == "neutral" and u.intensity == "02" for u in utterances)

    def stats(actor: int, emotion: int) -> tuple[float, float, float]:
        files = sorted((corpus / f"Actor_{actor:02d}").glob(f"03-01-{emotion:02d}-*"))
        waves = [sf.read(p)[0] for p in files]
        return (np.mean([np.sqrt(np.mean(w ** 2)) for w in waves]), np.mean([w.size / 16000 for w in waves]),
                np.mean([_f0(w) for w in waves]))

    for actor in (1, 2):
        angry, sad = stats(actor, 5), stats(actor, 4)
        assert angry[0] > 1.5 * sad[0]  # louder
        assert angry[1] < sad[1]  # faster
        assert angry[2] > sad[2]  # higher pitch
    assert stats(2, 1)[2] > 1.4 * stats(1, 1)[2]  # female voice higher than male in neutral
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*.wav")}
    gen.generate(corpus, actors=6, repetitions=1)  # existing files are kept
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*.wav")} == before


def test_task_splits_step_validate_and_report(corpus, tmp_path, caplog, monkeypatch):
    import features.audio

    def functionals(wave, sample_rate):  # stands in for openSMILE (tested on its own): level, length
        return np.array([np.log(np.mean(wave ** 2) + 1e-9), wave.size / sample_rate] * 44, dtype=np.float32)

    monkeypatch.setattr(features.audio, "egemaps_functionals", functionals)
    cfg = load_task_config(None, [*TINY, f"data.root={corpus}", f"out_dir={tmp_path}",
                                  "data.val_fraction=0.2", "data.test_fraction=0.2",
                                  "loss.class_weights=true", "report.baseline=true",
                                  f"report.baseline_cache_dir={tmp_path / 'cache'}"])
    task = Task(cfg, RunPaths(tmp_path))
    assert not (tmp_path / "splits.json").exists()  # nothing is read or written until data is needed
    actors = {k: {u.actor for u in v} for k, v in task.splits.items()}
    assert [len(actors[k]) for k in ("train", "val", "test")] == [4, 1, 1]
    assert not (actors["train"] & actors["val"]) and not (actors["train"] & actors["test"])
    assert not (actors["val"] & actors["test"])
    saved = json.loads((tmp_path / "splits.json").read_text())
    assert {k: set(v) for k, v in saved["actors"]["ravdess"].items()} == actors
    assert saved["params"] == {"seed": 0, "val_fraction": 0.2, "test_fraction": 0.2, "kfold": 0, "fold": 0,
                               "datasets": ["ravdess"]}
    # testing in this dir with another seed reuses the saved speakers, with a warning
    cfg2 = load_task_config(None, [*TINY, f"data.root={corpus}", f"out_dir={tmp_path}", "seed=99",
                                   "mode=test"])
    with caplog.at_level(logging.WARNING, logger="react"):
        assert {k: {u.actor for u in v} for k, v in Task(cfg2, RunPaths(tmp_path)).splits.items()} == actors
    assert "made with other settings" in caplog.text and "'seed': (0, 99)" in caplog.text
    # training on with other split settings would mix speakers: refused
    cfg3 = load_task_config(None, [*TINY, f"data.root={corpus}", f"out_dir={tmp_path}", "seed=99"])
    with pytest.raises(CorpusError, match="made with other settings"):
        Task(cfg3, RunPaths(tmp_path)).train_dataset()

    dataset = task.train_dataset()
    batch = task.collate([dataset[i] for i in range(5)])
    assert batch["wave"].shape == (5, 24000) and batch["mask"].shape == (5, 24000)
    assert batch["mask"].sum(1).tolist() == [min(24000, dataset.audio(u.path).size) for u in
                                             dataset.utterances[:5]]
    # RAVDESS has no strong neutral: half as many neutral files, twice the weight (mean weight 1)
    assert np.allclose(task.class_weights().numpy(), [16 / 9] + [8 / 9] * 7)
    model = task.build_model()
    loss, scalars = task.training_step(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and {"emotion_loss", "acc", "sex_loss"} <= set(scalars)
    model.eval()
    with torch.no_grad():
        metrics = task.validate(model, CPU)
        summary = task.test(model, CPU)
    assert set(metrics) == {"val/loss", "val/accuracy", "val/uar", "val/macro_f1"}
    assert summary["n"] == 30 and summary["test_actors"] == sorted(actors["test"])
    assert (tmp_path / "test_metrics.json").is_file() and (tmp_path / "report" / "roc.png").is_file()
    # the classic baseline, trained on the 4 training actors, sits beside the model
    classic = json.loads((tmp_path / "test_metrics.json").read_text())["baseline"]
    assert classic == summary["baseline"] and classic["n_train"] == 120
    assert {"accuracy", "uar", "macro_f1"} <= set(classic) and 0 <= classic["uar"] <= 1
    table = (tmp_path / "report" / "summary.md").read_text()
    assert "| model |" in table and "| eGeMAPS functionals + logistic regression |" in table
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 150  # one cached vector per file


def test_speaker_adapted_statistics_come_from_enrolment_never_from_evaluated_files(corpus, tmp_path):
    """Speaker-adapted: each actor's statistics from its own enrolment recordings only (the seeded
    draw), which are never evaluated; every item carries its own actor's statistics."""
    from react.data.ser_corpus import enrolment_split
    from react.models.ser import Frontend
    from react.models.ser_descriptors import LLD_NAMES
    from react.ser.inference import speaker_norm

    cfg = load_task_config(None, [*TINY, f"data.root={corpus}", f"out_dir={tmp_path}",
                                  "data.val_fraction=0.2", "data.test_fraction=0.2",
                                  "data.protocol=speaker-adapted", "data.enrol_per_speaker=3",
                                  "model.normalization=speaker", "model.descriptors=true"])
    task = Task(cfg, RunPaths(tmp_path))
    enrol = task.enrolment
    assert sorted(enrol) == [f"ravdess:{a:02d}" for a in range(1, 7)]
    assert all(len(v) == 3 for v in enrol.values())
    assert all(u.actor == a for a, us in enrol.items() for u in us)
    enrolled = {u.path for us in enrol.values() for u in us}
    for split in ("val", "test"):  # evaluated = the split less its enrolment, nothing else
        evaluated = {u.path for u in task.evaluated(split)}
        assert not evaluated & enrolled
        everything = {u.path for u in task.splits[split]}
        assert evaluated | (enrolled & everything) == everything
    assert len(task._dataset("test")) == 30 - 3 and len(task.train_dataset()) == 120  # training keeps all
    # the draw: seeded, per actor (another actor set leaves an actor's draw alone), of one emotion if asked
    test_actor = task.splits["test"][0].actor
    again, _ = enrolment_split([u for u in task.splits["test"]], 3, 0)
    assert again[test_actor] == enrol[test_actor]
    assert enrolment_split(task.splits["test"], 3, 1)[0][test_actor] != enrol[test_actor]
    neutral, rest = enrolment_split(task.splits["test"], 2, 0, "neutral")
    assert all(u.emotion == "neutral" for u in neutral[test_actor]) and len(rest) == 28
    with pytest.raises(CorpusError, match="fewer than the 3 enrolment recordings"):
        enrolment_split(task.splits["test"], 3, 0, "neutral")  # 2 neutral files per actor here

    norms = task.speaker_norms
    assert len(norms) == 6 and all(v.shape == (2, 16 + len(LLD_NAMES)) for v in norms.values())
    frontend = Frontend(16000, 16, descriptors=True).raw
    own = [task.audio(u.path) for u in enrol[test_actor]]
    assert np.allclose(norms[test_actor], speaker_norm(frontend, own), atol=1e-5)
    dataset = task.train_dataset()
    assert np.array_equal(dataset[3]["norm"].numpy(), norms[dataset.utterances[3].actor])
    test = task._dataset("test")
    assert all(np.array_equal(n, norms[u.actor]) for n, u in zip(test.speaker_norms(), test.utterances))
    protocol = task.protocol()
    assert protocol["name"] == "speaker-adapted" and protocol["enrolment"] == {
        test_actor: [u.path for u in enrol[test_actor]]}
    bad = load_task_config(None, [*TINY, f"data.root={corpus}", "model.normalization=speaker"])
    with pytest.raises(ConfigError, match="needs the speaker's enrolment recordings"):
        Task(bad, RunPaths(tmp_path))
    with pytest.raises(ConfigError, match="data.protocol 'transductive' not in"):
        Task(load_task_config(None, [*TINY, "data.protocol=transductive"]), RunPaths(tmp_path))


def _copy_corpus(corpus: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(corpus, target)
    return target


@pytest.mark.parametrize("protocol", ["inductive", "speaker-adapted"])
def test_no_prediction_uses_another_evaluated_utterance(corpus, tmp_path, monkeypatch, protocol):
    """Replace one evaluated test file by another sound: no other test prediction changes, neither
    the model's nor the classic baselines'. Under speaker-adapted, replacing an enrolment file does
    change the speaker's predictions (its statistics are used, and only they)."""
    import features.audio

    monkeypatch.setattr(features.audio, "egemaps_functionals", _fake_functionals)
    root = _copy_corpus(corpus, tmp_path / "corpus")
    extra = ["data.protocol=speaker-adapted", "data.enrol_per_speaker=3", "model.normalization=speaker"] \
        if protocol == "speaker-adapted" else ["model.normalization=population"]

    def evaluate(run: str) -> tuple[list[str], np.ndarray, dict]:
        """The test report's files, probabilities (report/predictions.csv) and summary."""
        out = tmp_path / run
        cfg = load_task_config(None, [*TINY, f"data.root={root}", f"out_dir={out}", "data.emotions=basic4",
                                      "data.val_fraction=0.2", "data.test_fraction=0.2",
                                      "report.baseline=true", f"report.baseline_cache_dir={out / 'c'}",
                                      *extra])
        task = Task(cfg, RunPaths(out))
        torch.manual_seed(0)
        summary = task.test(task.build_model().eval(), CPU)
        rows = list(csv.DictReader((out / "report" / "predictions.csv").open()))
        assert [r["file"] for r in rows] == [u.path for u in task.evaluated("test")]
        probs = np.array([[float(r[c]) for c in task.classes] for r in rows])
        return [r["file"] for r in rows], probs, summary

    files, before, summary = evaluate("a")
    assert summary["protocol"] == protocol
    assert "baseline" in summary
    assert ("baseline_speaker_adapted" in summary) == (protocol == "speaker-adapted")
    metrics = json.loads((tmp_path / "a" / "test_metrics.json").read_text())
    assert metrics["protocol"]["name"] == protocol
    assert f"Protocol: **{protocol}**" in (tmp_path / "a" / "report" / "summary.md").read_text()
    changed = files[0]
    noise = np.random.default_rng(1).normal(0, 0.3, 24000).astype(np.float32)
    sf.write(changed, noise, 16000)
    files_after, after, summary_after = evaluate("b")
    assert files_after == files
    assert not np.allclose(before[0], after[0], atol=1e-4)  # the changed file itself
    assert np.allclose(before[1:], after[1:], atol=1e-5)  # nobody else
    if protocol == "speaker-adapted":
        enrolment = metrics["protocol"]["enrolment"]
        actor = next(iter(enrolment))
        assert changed not in enrolment[actor]
        sf.write(enrolment[actor][0], noise, 16000)
        _, adapted, _ = evaluate("c")
        assert not np.allclose(after[1:], adapted[1:], atol=1e-4)


def test_report_metrics_by_hand(tmp_path):
    labels = ["a", "b", "c"]
    y_true = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    probs = np.full((6, 3), 0.1)
    probs[np.arange(6), pred] = 0.8
    files = []
    for i in range(6):
        files.append(str(tmp_path / f"f{i}.wav"))
        sf.write(files[-1], np.zeros(10, dtype=np.float32), 16000)
    m = write_report(tmp_path / "run", y_true, probs, labels, files, copy_misclassified=True,
                     protocol={"name": "inductive", "rule": "each on its own"})
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["uar"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    stored = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert {"accuracy", "uar", "macro_f1", "per_class", "confusion"} <= set(stored)
    report = tmp_path / "run" / "report"
    assert sorted(p.name for p in report.iterdir()) == ["confusion.png", "misclassified", "misclassified.csv",
                                                        "per_class.csv", "predictions.csv", "roc.png",
                                                        "summary.md"]
    assert stored["protocol"]["name"] == "inductive"
    assert "Protocol: **inductive**: each on its own." in (report / "summary.md").read_text()
    predictions = list(csv.DictReader((report / "predictions.csv").open()))
    assert [(r["true"], r["predicted"], r["b"]) for r in predictions[:2]] == [("a", "a", "0.100000"),
                                                                              ("a", "b", "0.800000")]
    rows = list(csv.DictReader((report / "misclassified.csv").open()))
    assert [(Path(r["file"]).name, r["true"], r["predicted"]) for r in rows] == [("f1.wav", "a", "b"),
                                                                               ("f5.wav", "c", "a")]
    assert (report / "misclassified" / "c_as_a" / "f5.wav").is_file()
    per_class = list(csv.DictReader((report / "per_class.csv").open()))
    assert [r["class"] for r in per_class] == labels and per_class[1]["recall"] == "1.0000"
    with pytest.raises(ValueError, match="probs must be"):
        write_report(tmp_path / "run", y_true, probs[:, :2], labels, files)


def _report_predictions(run: Path) -> dict[str, dict[str, float]]:
    """file -> class probabilities of a run's test report."""
    rows = csv.DictReader((run / "report" / "predictions.csv").open())
    return {r.pop("file"): {k: float(v) for k, v in r.items() if k not in ("true", "predicted")}
            for r in rows}


def _assert_predict_equals_report(run: Path, capsys, extra: list[str] | None = None,
                                  files: list[str] | None = None) -> None:
    """``react.ser.predict`` on the report's test files (or ``files``) gives the report's labels and
    probabilities."""
    report = _report_predictions(run)
    files = files or list(report)
    capsys.readouterr()
    assert predict.main([*files, "--checkpoint", str(run), "--json", *(extra or [])]) == 0
    out = json.loads(capsys.readouterr().out)
    out = out if isinstance(out, list) else [out]
    assert [r["file"] for r in out] == files
    for r in out:
        expected = report[r["file"]]
        assert r["label"] == max(expected, key=expected.get)
        assert np.allclose([r["probs"][c] for c in expected], list(expected.values()), atol=1e-4)


def test_train_test_predict_stream_export(corpus, tmp_path, capsys):
    """The inductive default (training-population normalisation, descriptor branch): predict on the
    test files one by one equals the report; it runs in --stream and ONNX with the wave alone."""
    run = tmp_path / "run"
    args = ["--config", str(ROOT / "configs" / "ser_tiny.yaml"), *TINY, f"data.root={corpus}",
            f"out_dir={run}", "train.epochs=1", "data.val_fraction=0.2", "data.test_fraction=0.2",
            "model.normalization=population", "model.descriptors=true"]
    assert train.main(args) == 0
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert {"accuracy", "uar", "macro_f1", "per_class", "confusion"} <= set(metrics)
    assert np.array(metrics["confusion"]).sum() == 30
    assert (run / "checkpoints" / "best" / "state.pt").is_file() and (run / "splits.json").is_file()
    first = metrics["accuracy"]
    assert train.main(args + ["mode=test"]) == 0  # same best weights, same saved test speakers
    assert json.loads((run / "test_metrics.json").read_text())["accuracy"] == pytest.approx(first)
    other = tmp_path / "other"  # testing the checkpoint elsewhere, another seed: its saved test speakers
    assert train.main(args + ["mode=test", f"checkpoint={run}", f"out_dir={other}", "seed=7"]) == 0
    tested = [json.loads((d / "test_results.json").read_text())["test_actors"] for d in (run, other)]
    assert tested[0] == tested[1]

    assert metrics["protocol"]["name"] == "inductive"
    _assert_predict_equals_report(run, capsys)
    wav = next(iter(sorted((corpus / "Actor_01").glob("*.wav"))))
    assert predict.main([str(wav), "--checkpoint", str(run), "--enrol", str(corpus / "Actor_01")]) == 2
    assert "an inductive checkpoint" in capsys.readouterr().err
    assert predict.main([str(wav), "--checkpoint", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["file"] == str(wav) and sum(out["probs"].values()) == pytest.approx(1, abs=1e-5)
    assert out["label"] == max(out["probs"], key=out["probs"].get) and len(out["probs"]) == 8

    speech = sf.read(wav, dtype="float32")[0]
    long = np.concatenate([speech, np.zeros(32000, dtype=np.float32), speech])
    sf.write(tmp_path / "long.wav", long, 16000)
    assert predict.main([str(tmp_path / "long.wav"), "--checkpoint", str(run), "--stream", "--window", "1.0",
                         "--hop", "0.5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["timeline"]
    assert len(rows) == len(predict.window_starts(long.size, 16000, 8000))
    assert rows[-1]["end"] == pytest.approx(long.size / 16000)
    gap = (speech.size / 16000, speech.size / 16000 + 2)
    silent = [r for r in rows if gap[0] <= r["start"] and r["end"] <= gap[1]]
    assert silent and all(r["label"] == "silence" for r in silent)
    assert predict.main([str(tmp_path / "missing.wav"), "--checkpoint", str(run)]) == 1
    assert "missing.wav: audio file not found" in capsys.readouterr().err
    sf.write(tmp_path / "blip.wav", speech[:1600], 16000)  # 0.1 s
    sf.write(tmp_path / "quiet.wav", np.zeros(32000, dtype=np.float32), 16000)  # 2 s of silence
    assert predict.main([str(tmp_path / "blip.wav"), str(tmp_path / "quiet.wav"), str(wav),
                         "--checkpoint", str(run)]) == 1
    captured = capsys.readouterr()
    assert "blip.wav: too short to classify: 0.10 s" in captured.err
    assert "quiet.wav: no speech detected" in captured.err and str(wav) in captured.out  # the rest is done
    assert predict.main([str(tmp_path / "blip.wav"), "--checkpoint", str(run), "--stream"]) == 1  # as plain
    assert "blip.wav: too short to classify: 0.10 s" in capsys.readouterr().err

    assert export.main(["--checkpoint", str(run), "--out", str(tmp_path / "ser.onnx")]) == 0
    assert "max |ONNX - PyTorch|" in capsys.readouterr().out and (tmp_path / "ser.onnx").is_file()
    import onnx

    graph = onnx.load(str(tmp_path / "ser.onnx"))
    assert [i.name for i in graph.graph.input] == ["wave"]
    assert {p.key: p.value for p in graph.metadata_props}["protocol"] == "inductive"
    assert export.main(["--checkpoint", str(run), "--out", str(tmp_path / "ser.onnx")]) == 0
    assert "already; kept" in capsys.readouterr().out

    # the export's consumer: an inductive export classifies a file with onnxruntime alone, as torch does
    capsys.readouterr()
    assert predict.main([str(wav), "--checkpoint", str(run), "--json"]) == 0
    torch_probs = json.loads(capsys.readouterr().out)["probs"]
    assert predict.main([str(wav), "--model", str(tmp_path / "ser.onnx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["probs"] == pytest.approx(torch_probs, abs=1e-4)
    norm = tmp_path / "norm.npy"
    np.save(norm, np.ones((2, 4), dtype=np.float32))
    assert predict.main([str(wav), "--model", str(tmp_path / "ser.onnx"), "--norm", str(norm)]) == 2
    assert "an inductive model: it takes no --norm" in capsys.readouterr().err
    assert predict.main(["--checkpoint", str(run), "--save-norm", str(norm)]) == 2
    assert "an inductive checkpoint; its export takes no --norm" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [(["--window", "0"], "--window 0"), (["--hop", "-1"], "--hop -1")])
def test_window_and_hop_must_be_positive(tmp_path, capsys, flags, message):
    assert predict.main([str(tmp_path / "a.wav"), "--checkpoint", str(tmp_path), "--stream", *flags]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}: must be a positive number of seconds"


def test_a_missing_input_device_is_one_line(monkeypatch):
    class PortAudioError(Exception):
        pass

    def no_device(**kwargs):
        raise PortAudioError("Error querying device -1")

    monkeypatch.setitem(sys.modules, "sounddevice", SimpleNamespace(InputStream=no_device))
    with pytest.raises(RuntimeError, match=r"--mic: no usable input device \(Error querying device -1\)"):
        predict._input_stream(16000)


def test_export_refuses_an_out_folder_at_once(tmp_path, capsys):
    assert export.main(["--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path}: is a folder" in capsys.readouterr().err


def test_speaker_adapted_run_predict_with_enrolment_equals_report(corpus, tmp_path, capsys):
    """Speaker-adapted: both classic baselines in the report; predict with ``--enrol`` (the report's
    enrolment files of the speaker) equals the report; without it, or with an evaluated file among
    the enrolment, a clear error; --stream and ONNX take the enrolment statistics."""
    run = tmp_path / "run"
    assert train.main([*TINY, f"data.root={corpus}", f"out_dir={run}", "train.epochs=1",
                       "data.emotions=basic4", "train.max_steps_per_epoch=2", "data.val_fraction=0.2",
                       "data.test_fraction=0.2",
                       "data.protocol=speaker-adapted", "data.enrol_per_speaker=3",
                       "model.normalization=speaker"]) == 0
    metrics = json.loads((run / "test_metrics.json").read_text())
    protocol = metrics["protocol"]
    assert protocol["name"] == "speaker-adapted" and metrics["n"] == 14 - 3
    (actor, enrol), = protocol["enrolment"].items()
    evaluated = list(_report_predictions(run))
    assert not set(enrol) & set(evaluated)
    _assert_predict_equals_report(run, capsys, ["--enrol", *enrol])
    folder = tmp_path / "enrol"
    folder.mkdir()
    for f in enrol:
        (folder / Path(f).name).write_bytes(Path(f).read_bytes())
    _assert_predict_equals_report(run, capsys, ["--enrol", str(folder)], evaluated[:2])
    assert predict.main([evaluated[0], "--checkpoint", str(run)]) == 2
    assert "a speaker-adapted checkpoint; give --enrol" in capsys.readouterr().err
    assert predict.main([evaluated[0], "--checkpoint", str(run), "--enrol", *enrol, evaluated[0]]) == 2
    assert "classified and used for enrolment" in capsys.readouterr().err
    assert predict.main([evaluated[0], "--checkpoint", str(run), "--enrol", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: enrolment file or folder not found" in capsys.readouterr().err
    stream = [evaluated[0], "--checkpoint", str(run), "--enrol", *enrol, "--stream", "--json"]
    assert predict.main(stream) == 0
    assert json.loads(capsys.readouterr().out)["timeline"]
    assert export.main(["--checkpoint", str(run), "--out", str(tmp_path / "ser.onnx")]) == 0
    import onnx

    graph = onnx.load(str(tmp_path / "ser.onnx"))
    assert [i.name for i in graph.graph.input] == ["wave", "norm"]
    assert {p.key: p.value for p in graph.metadata_props}["protocol"] == "speaker-adapted"
    # the enrolment statistics once from the checkpoint, then the export with onnxruntime alone
    norm = tmp_path / "norm.npy"
    assert predict.main(["--checkpoint", str(run), "--enrol", *enrol, "--save-norm", str(norm)]) == 0
    capsys.readouterr()
    assert predict.main([evaluated[0], "--checkpoint", str(run), "--enrol", *enrol, "--json"]) == 0
    torch_probs = json.loads(capsys.readouterr().out)["probs"]
    onnx_args = [evaluated[0], "--model", str(tmp_path / "ser.onnx")]
    assert predict.main([*onnx_args, "--norm", str(norm), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["probs"] == pytest.approx(torch_probs, abs=1e-4)
    assert predict.main(onnx_args) == 2
    assert "needs the speaker's enrolment statistics (--norm norm.npy" in capsys.readouterr().err


def _fake_functionals(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Stands in for openSMILE's 88 functionals (tested on its own): level, length, spectral balance."""
    spec = np.abs(np.fft.rfft(wave))
    return np.array([np.log(np.mean(wave ** 2) + 1e-9), wave.size / sample_rate,
                     np.log(spec[: spec.size // 4].sum() / spec.sum())] * 29 + [0.0], dtype=np.float32)


@pytest.mark.parametrize("protocol", ["inductive", "speaker-adapted"])
def test_classic_model_trains_reports_predicts_and_exports(corpus, tmp_path, capsys, monkeypatch,
                                                           protocol):
    """configs/ser_classic.yaml: fitted on the training speakers, its report equals the classic
    baseline's figures under the same protocol; predict file by file equals the report; --stream
    runs; the ONNX graph (after openSMILE) gives the model's probabilities."""
    import onnxruntime as ort

    import features.audio
    from react.ser.classic import ClassicSER

    monkeypatch.setattr(features.audio, "egemaps_functionals", _fake_functionals)
    run = tmp_path / "run"
    adapted = ["data.protocol=speaker-adapted", "data.enrol_per_speaker=3", "model.normalization=speaker"]
    assert train.main(["--config", str(ROOT / "configs" / "ser_classic.yaml"), f"data.root={corpus}",
                       f"out_dir={run}", "data.emotions=basic4", "data.val_fraction=0.2",
                       "data.test_fraction=0.2", f"report.baseline_cache_dir={tmp_path / 'cache'}",
                       *(adapted if protocol == "speaker-adapted" else [])]) == 0
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert metrics["protocol"]["name"] == protocol
    same = metrics["baseline_speaker_adapted" if protocol == "speaker-adapted" else "baseline"]
    assert abs(metrics["accuracy"] - same["accuracy"]) <= 1 / metrics["n"]  # the same model (float32 norm)
    if protocol == "inductive":  # the very same fit
        assert {k: metrics[k] for k in ("accuracy", "uar", "macro_f1")} == {
            k: same[k] for k in ("accuracy", "uar", "macro_f1")}
    enrol = [f for files in metrics["protocol"].get("enrolment", {}).values() for f in files]
    extra = ["--enrol", *enrol] if enrol else []
    _assert_predict_equals_report(run, capsys, extra)
    first = list(_report_predictions(run))[0]
    assert predict.main([first, "--checkpoint", str(run), "--stream", "--window", "1.0", "--json",
                         *extra]) == 0
    assert json.loads(capsys.readouterr().out)["timeline"]
    assert export.main(["--checkpoint", str(run), "--out", str(tmp_path / "ser.onnx")]) == 0
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "ser.onnx")).metadata_props}
    assert meta["protocol"] == protocol and meta["inputs"].startswith("functionals")
    model, _, _ = predict.load_ser_model(run)
    assert isinstance(model, ClassicSER)
    wave = torch.from_numpy(sf.read(first, dtype="float32")[0])[None]
    functionals = model.raw_features(wave, torch.ones_like(wave, dtype=torch.bool))[0][:, 0].float()
    inputs = {"functionals": functionals.numpy()}
    norm = None
    if enrol:
        from react.ser.inference import model_speaker_norm

        norm = model_speaker_norm(model, [sf.read(f, dtype="float32")[0] for f in enrol])[None]
        inputs["norm"] = norm
    got = ort.InferenceSession(str(tmp_path / "ser.onnx")).run(["probs"], inputs)[0]
    with torch.no_grad():
        logits = model(wave, norm=None if norm is None else torch.from_numpy(norm))["logits"]
    expected = torch.softmax(logits, -1)
    assert np.allclose(got, expected.numpy(), atol=1e-5)


def test_prediction_and_export_need_only_the_checkpoint(corpus, tmp_path, capsys):
    """An SSL model trained from a weights folder: the checkpoint alone rebuilds it."""
    from react.pretrained import pretrained_ssl_encoder

    weights = tmp_path / "hubert"
    pretrained_ssl_encoder("hubert", None, True).save_pretrained(weights)
    run = tmp_path / "run"
    assert train.main([*TINY, "model.encoder=hubert", f"model.weights={weights}", "model.encoder_mode=last_n",
                       "model.unfreeze_last_n=1", f"data.root={corpus}", f"out_dir={run}", "train.epochs=1",
                       "train.max_steps_per_epoch=2", "data.val_fraction=0.2", "data.test_fraction=0.2"]) == 0
    import shutil

    shutil.rmtree(weights)
    wav = next(iter(sorted((corpus / "Actor_01").glob("*.wav"))))
    capsys.readouterr()
    assert predict.main([str(wav), "--checkpoint", str(run), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["probs"]) == 8
    assert export.main(["--checkpoint", str(run), "--out", str(tmp_path / "ser.onnx")]) == 0


def test_classic_baseline_functionals_are_cached(corpus, tmp_path, monkeypatch):
    """Real openSMILE: 88 eGeMAPS functionals per file, computed once, then read from the cache."""
    import features.audio
    from react.data.ser_corpus import AudioCache
    from react.ser.baseline import FunctionalsCache, fit_predict

    files = [str(p) for p in sorted((corpus / "Actor_01").glob("*.wav"))[:2]]
    cache = FunctionalsCache(tmp_path, 16000, AudioCache(16000))
    first = cache.many(files)
    assert first.shape == (2, 88) and np.isfinite(first).all()
    monkeypatch.setattr(features.audio, "egemaps_functionals", lambda *a: pytest.fail("not cached"))
    assert np.array_equal(cache.many(files), first)
    x = np.random.default_rng(0).normal(size=(40, 88))
    y = np.repeat([0, 2], 20)
    x[y == 2] += 2.0
    probs = fit_predict(x, y, x, 3)
    assert probs.shape == (40, 3) and (probs[:, 1] == 0).all() and (probs.argmax(1) == y).mean() > 0.9
    with pytest.raises(ValueError, match="at least two emotions"):
        fit_predict(x, np.zeros(40, dtype=int), x, 3)


def test_microphone_live_path_with_a_simulated_stream(corpus, tmp_path, capsys):
    """--mic end to end without a sound card: a fake InputStream feeds a file in hops, the
    timeline is printed and redrawn into a PNG (headless)."""
    from react.models.ser import SERModel, SERModelConfig

    torch.manual_seed(0)
    model = SERModel(SERModelConfig(encoder="logmel_tdnn", n_mels=16, cnn_channels=[8, 8], embed_dim=8,
                                    hidden_dim=8, normalization="population", descriptors=True),
                     8, 16000).eval()
    speech = sf.read(next(iter(sorted((corpus / "Actor_01").glob("*.wav")))), dtype="float32")[0]
    audio = np.concatenate([speech, np.zeros(16000, dtype=np.float32), speech])

    class FakeStream:
        def __init__(self, sample_rate: int):
            assert sample_rate == 16000
            self.pos = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, frames: int):
            block = audio[self.pos:self.pos + frames]
            self.pos += frames
            return np.pad(block, (0, frames - block.size))[:, None], False

    plot = predict.TimelinePlot(tmp_path / "live.png", list(gen.EMOTIONS))
    shown = []
    rows = predict.run_microphone(model, 16000, list(gen.EMOTIONS), 1.0, 0.5, -55.0, audio.size / 16000,
                                  open_stream=FakeStream, display=lambda r: (shown.append(r), plot(r)))
    assert rows == shown and len(rows) == int(np.ceil(audio.size / 8000))
    assert rows[-1]["end"] == pytest.approx(len(rows) * 0.5)
    labelled = [r for r in rows if r["probs"] is not None]
    assert labelled and all(sum(r["probs"].values()) == pytest.approx(1, abs=1e-5) for r in labelled)
    assert all(r["latency_ms"] > 0 for r in rows)
    assert (tmp_path / "live.png").stat().st_size > 1000 and len(plot.rows) == len(rows)


def test_kfold_summary_by_hand():
    from react.ser.kfold import markdown, summarise

    folds = [{"accuracy": a, "uar": u, "macro_f1": f, "test_actors": [f"ravdess:{i:02d}"],
              "baseline": {"name": "classic", "accuracy": 0.5, "uar": b, "macro_f1": 0.5}}
             for i, (a, u, f, b) in enumerate([(0.8, 0.7, 0.6, 0.4), (0.6, 0.5, 0.4, 0.6)])]
    summary = summarise(folds)
    assert summary["model"]["uar"] == pytest.approx({"mean": 0.6, "std": np.std([0.7, 0.5], ddof=1),
                                                     "min": 0.5, "max": 0.7})
    assert summary["baseline"]["uar"]["mean"] == pytest.approx(0.5)
    assert summary["baseline"]["name"] == "classic"
    assert [f["model"]["accuracy"] for f in summary["folds"]] == [0.8, 0.6]
    text = markdown(summary)
    assert summary["protocol"] == "inductive" and "inductive protocol" in text.splitlines()[0]
    assert "| model | 0.7000 +- 0.1414 | 0.6000 +- 0.1414 | 0.5000 +- 0.1414 |" in text
    assert "| 1 | 01 | 0.5000 | 0.6000 |" in text
    assert "baseline" not in summarise([{k: v for k, v in f.items() if k != "baseline"} for f in folds])
    adapted = [{**f, "protocol": "speaker-adapted",
                "baseline_speaker_adapted": {**f["baseline"], "name": "z"}} for f in folds]
    both = summarise(adapted)
    assert both["protocol"] == "speaker-adapted" and both["baseline_speaker_adapted"]["uar"]["mean"] == 0.5
    assert "| z | " in markdown(both)
    with pytest.raises(ValueError, match="different protocols"):
        summarise([folds[0], adapted[1]])


@pytest.mark.slow
def test_kfold_runs_every_fold_and_resumes(corpus, tmp_path, capsys):
    out = tmp_path / "kf"
    args = [*TINY, f"data.root={corpus}", f"out_dir={out}", "data.kfold=3", "train.epochs=1",
            "train.max_steps_per_epoch=1", "data.val_fraction=0.2"]
    assert train.main([*args, "data.kfold=3"]) == 0  # fold -1: every fold in one command
    summary = json.loads((out / "kfold_summary.json").read_text())
    first = (out / "fold_0" / "test_results.json").stat().st_mtime_ns
    assert train.main(args) == 0  # finished folds are kept, the summary written again
    assert (out / "fold_0" / "test_results.json").stat().st_mtime_ns == first
    tested = [a for f in summary["folds"] for a in f["test_actors"]]
    assert len(summary["folds"]) == 3 and sorted(tested) == [f"ravdess:{a:02d}" for a in range(1, 7)]
    assert {"mean", "std"} <= set(summary["model"]["uar"]) and (out / "kfold_summary.md").is_file()
    stamp = (out / "fold_1" / "test_results.json").stat().st_mtime_ns
    capsys.readouterr()
    assert train.main(args) == 0  # finished folds are kept
    assert capsys.readouterr().out.count("done already") == 3
    assert (out / "fold_1" / "test_results.json").stat().st_mtime_ns == stamp
