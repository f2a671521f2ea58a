"""What a new user hits on the first day: runs never silently overwritten, unsafe or broken files
refused in one line, Ctrl-C explained, readable outputs, absolute paths, bounded checkpoints."""

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from react.config import ConfigError, absolute_paths
from react.engine import CheckpointError, RunExistsError, TrainingInterrupted, run
from react.engine.checkpoint import load_state
from react.engine.trainer import cpu_threads
from react.errors import user_message
from react.tasks import load_task_config
from react.utils.io import UMASK, save_json
from react.utils.progress import LineProgress, progress

ROOT = Path(__file__).resolve().parents[1]
BASE = ["task=helpers.toy_task", "train.batch_size=8", "train.lr=0.05", "train.test_at_end=false"]


def _train(out: Path, *extra: str) -> dict:
    return run(load_task_config(None, [*BASE, f"out_dir={out}", *extra]))


def test_a_finished_run_is_never_silently_overwritten(tmp_path, capsys):
    _train(tmp_path, "train.epochs=3")
    before = load_state(tmp_path / "checkpoints" / "last")
    with pytest.raises(RunExistsError, match="resume=auto.*overwrite=true"):
        _train(tmp_path, "train.epochs=1")
    assert load_state(tmp_path / "checkpoints" / "last")["epoch"] == before["epoch"] == 3
    assert train.main([*BASE, f"out_dir={tmp_path}", "train.epochs=1"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    _train(tmp_path, "train.epochs=1", "overwrite=true")  # explicit: the old run goes, whole
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best", "epoch_0001", "last"] and load_state(tmp_path)["epoch"] == 1


def test_checkpoints_load_without_unpickling_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad = tmp_path / "evil" / "state.pt"
    bad.parent.mkdir()
    torch.save({"model": {}, "config": {}, "payload": Exploit()}, bad)
    with pytest.raises(CheckpointError, match="never unpickled"):
        load_state(bad)
    assert not (tmp_path / "pwned").exists()
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as err:
        load_state(junk)
    assert str(err.value).count("\n") == 0 and "junk.pth: not a readable checkpoint" in str(err.value)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a checkpoint of this framework"):
        load_state(plain)


def test_ctrl_c_says_where_the_checkpoint_is_and_resumes(tmp_path, capsys):
    with pytest.raises(TrainingInterrupted) as err:
        _train(tmp_path, "train.epochs=4", "data.interrupt_at=20")  # 8 steps per epoch: in epoch 3
    message = str(err.value)
    assert "during epoch 3" in message and "checkpoints/last (epoch 2)" in message
    assert "resume=auto" in message
    assert train.main([*BASE, f"out_dir={tmp_path}", "train.epochs=4", "data.interrupt_at=3",
                       "resume=auto"]) == 130
    assert "Traceback" not in capsys.readouterr().err
    _train(tmp_path, "train.epochs=4", "resume=auto")
    assert load_state(tmp_path)["epoch"] == 4


def test_loader_worker_errors_reach_the_user_as_one_line():
    wrapped = ValueError("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most "
                         "recent call last):\n  File \"x.py\", line 1, in f\nValueError: a.pth: expected 64 "
                         "features")
    assert user_message(wrapped) == "a.pth: expected 64 features"
    assert user_message(ConfigError("2 problems:\n  a\n  b")) == "2 problems:\n  a\n  b"  # lists stay whole


def test_outputs_respect_the_umask(tmp_path):
    save_json({"a": 1}, tmp_path / "m.json")
    mode = stat.S_IMODE((tmp_path / "m.json").stat().st_mode)
    assert mode == 0o666 & ~UMASK
    if UMASK == 0o022:
        assert mode == 0o644  # group and others can read results on a shared machine


def test_cpu_threads_are_shared_between_local_processes(monkeypatch):
    from types import SimpleNamespace

    cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
        assert cpu_threads(SimpleNamespace(device=torch.device("cpu"), num_processes=1)) == cores
        assert torch.get_num_threads() == cores  # even after OMP_NUM_THREADS=1 from accelerate launch
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert cpu_threads(SimpleNamespace(device=torch.device("cpu"), num_processes=2)) == max(1, cores // 2)
    finally:
        torch.set_num_threads(before)


def test_paths_are_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _train(Path("rel_run"), "train.epochs=1", "data.root=somewhere")
    stored = load_state(tmp_path / "rel_run")["config"]
    assert stored["out_dir"] == str(tmp_path / "rel_run")
    assert stored["data"]["root"] == str(tmp_path / "somewhere")
    cfg = absolute_paths(load_task_config(None, [*BASE, "resume=auto", "checkpoint="]))
    assert cfg.resume == "auto" and cfg.checkpoint == ""  # words and empty values stay


def test_numbered_checkpoints_are_bounded_and_disk_use_logged(tmp_path):
    _train(tmp_path, "train.epochs=5", "train.keep_last=2")
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best", "epoch_0004", "epoch_0005", "last"]
    assert "uses" in (tmp_path / "log.txt").read_text() and " MB" in (tmp_path / "log.txt").read_text()


def test_progress_is_plain_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress(range(5), desc="work", unit="clip", every=0.0)
    assert isinstance(bar, LineProgress)
    assert list(bar) == [0, 1, 2, 3, 4]
    with progress(total=3, desc="count", every=0.0) as counter:
        counter.update(3)
    assert counter.done == 3


def test_help_texts(capsys):
    with pytest.raises(SystemExit) as done:
        train.main(["--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "regnn, ser" in text and "train.keep_last" in text and "overwrite" in text
    script = subprocess.run(["bash", str(ROOT / "scripts" / "extract_features.sh"), "--help"],
                            capture_output=True, text=True)
    assert script.returncode == 0 and "usage:" in script.stdout
    from react import generate

    with pytest.raises(SystemExit):
        generate.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: react generate")


def test_ci_checks_lint_and_tests():
    steps = (ROOT / ".ci" / "run").read_text()
    assert "make lint" in steps and "make test" in steps
    assert "data/demo_ravdess" in (ROOT / "Makefile").read_text().split("clean:")[1]


def test_features_that_do_not_fit_the_model_stop_before_training(tmp_path, capsys):
    from helpers.regnn_data import synthetic_react, tiny_overrides, write_features

    data = synthetic_react(tmp_path / "syn", pairs=2, eval_pairs=2, seed=3)
    write_features(data)  # 12-d video, 6-d audio stand-in features
    args = ["--config", str(ROOT / "configs" / "regnn_tiny.yaml"), *tiny_overrides(data, tmp_path / "run"),
            "model.perceptual.video_dim=768", "train.num_workers=2"]
    assert train.main(args) == 2
    err = capsys.readouterr().err
    assert "4 feature file problem(s)" in err and "the model's video_dim" in err
    assert "Caught" not in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_several_datasets_in_one_run(tmp_path):
    """data.roots: one training over two REACT folders, validation metrics per dataset in the log
    and TensorBoard, test predictions per dataset."""
    from helpers.regnn_data import synthetic_react, tiny_overrides, write_features

    roots = []
    for name, seed in (("alpha", 4), ("beta", 5)):
        roots.append(synthetic_react(tmp_path / name, pairs=2, eval_pairs=2, seed=seed))
        write_features(roots[-1])
    out = tmp_path / "run"
    overrides = [o for o in tiny_overrides(roots[0], out) if not o.startswith("data.root=")]
    cfg = load_task_config(ROOT / "configs" / "regnn_tiny.yaml", [
        *overrides, f"data.roots=[{roots[0]},{roots[1]}]", "train.epochs=1", "train.max_steps_per_epoch=2",
        "val.samples=2", "generate.workers=1"])
    metrics = run(cfg)
    assert {"val/alpha/loss", "val/beta/loss", "val/loss", "val/alpha/FRD", "val/beta/FRD"} <= set(metrics)
    log = (out / "log.txt").read_text()
    assert "val/alpha/FRC=" in log and "val/beta/FRC=" in log
    events = b"".join(f.read_bytes() for f in (out / "tb").rglob("events.out.tfevents.*"))
    assert b"val/alpha/FRC" in events and b"val/beta/FRD" in events  # per-dataset TensorBoard scalars
    for name in ("alpha", "beta"):
        assert len(list((out / "pred" / name / "test").rglob("result-9.pth"))) == 4


def test_a_shared_job_says_how_the_work_was_split():
    from react.utils.distributed import share_summary

    assert share_summary(6, 2, "clips") == "2 processes, 3 clips each"
    assert share_summary(7, 2, "clips") == "2 processes, 4 or 3 clips each"
    assert share_summary(5, 1, "clips") == "1 process, 5 clips"


def test_warnings_are_printed_by_the_main_process_only(monkeypatch, capsys):
    from react.utils.logging import setup_logging, warn_random_init

    monkeypatch.setenv("RANK", "1")  # another process of an accelerate launch
    setup_logging()
    warn_random_init("video backbone swin_t")
    assert "RANDOMLY INITIALISED" not in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    setup_logging()
    warn_random_init("video backbone swin_t")
    assert capsys.readouterr().err.count("RANDOMLY INITIALISED") == 1  # once, not once per process
