"""The training engine on a small regression task: checkpoints, resume, DDP, test mode, CLI errors."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from react.config import ConfigError
from react.engine import checkpoint_file, load_checkpoint, run
from react.tasks import load_task_config

ROOT = Path(__file__).resolve().parents[1]
TOY = "helpers.toy_task"
BASE = [f"task={TOY}", "train.batch_size=8", "train.lr=0.05", "train.milestones=[3]", "train.gamma=0.5",
        "train.scheduler=warmup_multistep", "train.warmup_epochs=1"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}", "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1"}


def _train(out: Path, *extra: str) -> dict:
    cfg = load_task_config(None, [*BASE, f"out_dir={out}", *extra])
    return run(cfg)


def test_training_writes_config_checkpoints_and_learns(tmp_path):
    metrics = _train(tmp_path, "train.epochs=4", "train.ckpt_every=2")
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best", "epoch_0002", "epoch_0004", "last"]
    assert (tmp_path / "config.yaml").read_text().count("lr: 0.05") == 1
    assert (tmp_path / "log.txt").is_file() and any((tmp_path / "tb").iterdir())
    last = torch.load(checkpoint_file(tmp_path / "checkpoints" / "last"), weights_only=True)
    assert last["epoch"] == 4 and last["step"] == 4 * 8
    tested = json.loads((tmp_path / "test_results.json").read_text())["val/loss"]
    assert metrics["val/loss"] < 0.3 and tested == pytest.approx(last["best"])  # tested with best
    _, model, cfg = load_checkpoint(tmp_path / "checkpoints" / "best")
    assert cfg.task == TOY and not model.training


def test_patience_stops_when_validation_stops_improving(tmp_path):
    # lr 0: the validation loss never changes, so only the first validation improves.
    _train(tmp_path, "train.epochs=8", "train.lr=0.0", "train.patience=2", "train.val_every=1")
    last = torch.load(checkpoint_file(tmp_path / "checkpoints" / "last"), weights_only=True)
    assert last["epoch"] == 3 and last["stale"] == 2
    log = (tmp_path / "log.txt").read_text()
    assert "early stop before epoch 4: val/loss did not improve in 2 validations" in log
    tested = (tmp_path / "test_results.json").stat().st_mtime_ns
    _train(tmp_path, "train.epochs=8", "train.lr=0.0", "train.patience=2", "train.val_every=1", "resume=auto")
    last = torch.load(checkpoint_file(tmp_path / "checkpoints" / "last"), weights_only=True)
    assert last["epoch"] == 3 and (tmp_path / "test_results.json").stat().st_mtime_ns == tested


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_continues_identically(tmp_path, workers):
    extra = [f"train.num_workers={workers}"]
    _train(tmp_path / "full", "train.epochs=5", *extra)
    _train(tmp_path / "cut", "train.epochs=2", *extra)
    _train(tmp_path / "cut", "train.epochs=5", "resume=auto", *extra)
    full = torch.load(checkpoint_file(tmp_path / "full" / "checkpoints" / "last"), weights_only=True)
    cut = torch.load(checkpoint_file(tmp_path / "cut" / "checkpoints" / "last"), weights_only=True)
    assert cut["epoch"] == full["epoch"] == 5 and cut["step"] == full["step"]
    for key, value in full["model"].items():
        torch.testing.assert_close(cut["model"][key], value, rtol=0, atol=0)
    assert cut["optimizer"]["state"][0]["exp_avg"].equal(full["optimizer"]["state"][0]["exp_avg"])


@pytest.mark.parametrize("override, message", [
    ("train.lrr=0.1", "unknown config key 'train.lrr'. Valid keys here: batch_size"),
    ("train.epochs=many", "bad value for 'train.epochs'"),
    ("mode=predict", "mode: unknown 'predict'"),
])
@pytest.mark.slow
def test_cli_rejects_bad_config(tmp_path, override, message):
    cmd = [sys.executable, str(ROOT / "train.py"), *BASE, f"out_dir={tmp_path}", override]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr


def test_test_mode_needs_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        run(load_task_config(None, [*BASE, f"out_dir={tmp_path}", "mode=test"]))


def test_lr_scales_and_schedule():
    from react.engine.optim import build_optimizer, build_scheduler

    cfg = load_task_config(None, [*BASE, "train.lr_scales={'0.': 0.1}", "train.epochs=6"])
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    optimizer = build_optimizer(model, cfg.train)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.005, 0.05])
    scheduler = build_scheduler(optimizer, cfg.train)
    lrs = []
    for _ in range(5):
        lrs.append(max(g["lr"] for g in optimizer.param_groups))
        optimizer.step()
        scheduler.step()
    # warm-up 1 epoch (half lr), then full lr, halved from milestone epoch 3 on
    assert lrs == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.025])
    bad = load_task_config(None, [*BASE, "train.lr_scales={encoder: 0.1}"])
    with pytest.raises(ConfigError, match="no trainable parameter starts with encoder"):
        build_optimizer(model, bad.train)


def test_fused_optimizer_makes_the_updates_of_the_plain_loop():
    from react.engine.optim import build_optimizer, param_groups

    cfg = load_task_config(None, [*BASE, "train.weight_decay=0.01"])
    torch.manual_seed(0)
    fused_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    plain_model = copy.deepcopy(fused_model)
    initial = [p.detach().clone() for p in fused_model.parameters()]
    fused = build_optimizer(fused_model, cfg.train)
    plain = torch.optim.Adam(param_groups(plain_model, cfg.train), lr=cfg.train.lr,
                             weight_decay=cfg.train.weight_decay, foreach=False)
    assert fused.defaults["fused"]
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    for _ in range(5):
        for model, optimizer in ((fused_model, fused), (plain_model, plain)):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    for a, b, start in zip(fused_model.parameters(), plain_model.parameters(), initial):
        assert (a - start).abs().min() > 1e-3  # every entry moved (lr 0.05, 5 steps) ...
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # ... and both loops moved it alike


def test_resume_survives_an_interrupted_checkpoint_swap(tmp_path):
    _train(tmp_path, "train.epochs=2", "train.test_at_end=false")
    last = tmp_path / "checkpoints" / "last"
    assert sorted(p.name for p in last.iterdir()) == ["rng_rank0.pt", "state.pt"]
    last.rename(last.with_name(".last.old"))  # crash between moving the old one away and the new one in
    (last.with_name(".last.tmp")).mkdir()  # and a half-written staging folder
    _train(tmp_path, "train.epochs=3", "resume=auto", "train.test_at_end=false")
    assert "resumed from" in (tmp_path / "log.txt").read_text() and ".last.old at epoch 2" in (
        tmp_path / "log.txt").read_text()
    assert torch.load(checkpoint_file(last), weights_only=True)["epoch"] == 3
    assert not last.with_name(".last.tmp").exists() and not last.with_name(".last.old").exists()


def test_a_task_written_from_the_protocol_alone_trains(tmp_path):
    """The toy task is written from react/tasks/protocol.py alone; the engine trains and tests it."""
    from helpers.toy_task import Task as ToyTask

    from react.tasks import RunPaths, TestableTask
    from react.tasks import Task as TaskProtocol

    cfg = load_task_config(None, [*BASE, f"out_dir={tmp_path}", "train.epochs=2"])
    task = ToyTask(cfg, RunPaths(tmp_path))
    assert isinstance(task, TaskProtocol) and isinstance(task, TestableTask)
    assert not isinstance(object(), TaskProtocol)
    run(cfg)
    assert json.loads((tmp_path / "test_results.json").read_text())["val/loss"] < 1.0


@pytest.mark.slow
def test_resume_with_another_number_of_processes(tmp_path):
    """One process trains two epochs, two processes (DDP) continue to four, one process to five."""
    _train(tmp_path, "train.epochs=2", "train.test_at_end=false")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29537",
           str(ROOT / "train.py"), *BASE, f"out_dir={tmp_path}", "train.epochs=4", "resume=auto",
           "train.test_at_end=false"]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(checkpoint_file(tmp_path / "checkpoints" / "last"), weights_only=True)
    assert state["epoch"] == 4 and state["step"] == 2 * 8 + 2 * 4  # 8 steps alone, then 4 per rank
    assert (tmp_path / "checkpoints" / "last" / "rng_rank1.pt").is_file()
    _train(tmp_path, "train.epochs=5", "resume=auto", "train.test_at_end=false")
    assert torch.load(checkpoint_file(tmp_path / "checkpoints" / "last"), weights_only=True)["epoch"] == 5


def test_resume_refuses_other_settings_and_keeps_the_config(tmp_path):
    _train(tmp_path, "train.epochs=2")
    written = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"model.hidden: 16 -> 32.*overwrite=true"):
        _train(tmp_path, "train.epochs=3", "model.hidden=32", "resume=auto")
    with pytest.raises(ConfigError, match=r"already complete.*train.lr: 0.05 -> 0.01"):
        _train(tmp_path, "train.epochs=2", "train.lr=0.01", "resume=auto")
    assert (tmp_path / "config.yaml").read_text() == written  # still describes its checkpoints
    last = checkpoint_file(tmp_path / "checkpoints" / "last")
    state = torch.load(last, weights_only=True)
    del state["config"]["deterministic"]  # a run saved before that setting existed
    torch.save(state, last)
    _train(tmp_path, "train.epochs=3", "resume=auto")  # more epochs of the same run: continued
    assert "epochs: 3" in (tmp_path / "config.yaml").read_text()
