"""REGNN through the training engine: losses by hand, exact resume, 2-process CPU DDP via
``accelerate launch``, test-mode generation of 10 reactions per clip, and learning on the synthetic
set (generated reactions beat random and mean-reaction predictions in FRC and FRD)."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.launch import launch_two_processes
from helpers.regnn_data import one_thread, synthetic_with_features, tiny_overrides  # noqa: F401 - autouse

from react.config import ConfigError
from react.engine import checkpoint_file, load_checkpoint, run
from react.generate import main
from react.reaction.data import react_layout as L
from react.reaction.generation import generate_split
from react.reaction.losses import LossConfig, TauGate, regnn_losses
from react.reaction.task import Task
from react.tasks import RunPaths, load_task_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "regnn_tiny.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synthetic_with_features(tmp_path_factory, pairs=8, eval_pairs=4, seed=1)


def test_losses_match_hand_computation():
    # One window, two appropriate reactions, 1 node x 2 frames.
    out = {"centre": torch.zeros(1, 1, 2), "latent": torch.tensor([[[[1.0, 1.0]], [[3.0, 3.0]]]]),
           "logdet": torch.tensor([[5.0, 7.0]]), "decoded": torch.tensor([[[0.0], [2.0]]])}
    reactions = torch.tensor([[[[0.0], [0.0]], [[1.0], [1.0]]]])
    cfg = LossConfig(recon=1.0, dist=1.0, threshold=2.0, mid=0.1, logdet=0.5, smooth=0.1)
    total, parts = regnn_losses(out, reactions, torch.tensor([[True, True]]), cfg, "all")
    # latent MSEs to the centre: 1 and 9 -> min 1 + mean(relu(1-2), relu(9-2)) = 1 + 3.5
    expected = {"dist": 4.5, "mid": 1.0, "logdet": -3.0, "recon": 1.0, "smooth": 2.0}
    assert {k: v.item() for k, v in parts.items()} == pytest.approx(expected)
    assert total.item() == pytest.approx(1.0 + 4.5 + 0.1 - 1.5 + 0.2)
    _, parts = regnn_losses(out, reactions, torch.tensor([[True, False]]), cfg, "all")
    assert parts["dist"].item() == 1.0 and parts["mid"].item() == 0.0 and parts["recon"].item() == 2.0
    _, parts = regnn_losses(out, reactions, torch.tensor([[True, True]]), cfg, "nearest")
    assert parts["dist"].item() == 1.0 and "mid" not in parts


def test_official_loss_matches_hand_computation():
    # Two windows, 1 node x 2 frames; window 0 has two appropriate reactions, window 1 one.
    out = {"centre": torch.zeros(2, 1, 2),
           "latent": torch.tensor([[[[1.0, 1.0]], [[3.0, 3.0]]], [[[0.5, 0.5]], [[0.0, 0.0]]]]),
           "decoded": torch.ones(2, 2, 1), "logdet": torch.ones(2, 2)}  # ignored by the official loss
    reactions, mask = torch.zeros(2, 2, 2, 1), torch.tensor([[True, True], [True, False]])
    cfg = LossConfig(kind="official", dist=1.0, mid=1.0)
    total, parts = regnn_losses(out, reactions, mask, cfg, "all", torch.tensor(0.0))
    # per-window minima: min(1, 9) = 1 and 0.25; mid: window 0 mean 2 -> (1 + 1) / 2 per latent, window 1: 0
    assert set(parts) == {"dist", "mid"}
    assert parts["dist"].item() == pytest.approx((1 + 0.25) / 2)
    assert parts["mid"].item() == pytest.approx((1 + 1 + 0) / 3)
    assert total.item() == pytest.approx(0.625 + 2 / 3)
    _, parts = regnn_losses(out, reactions, mask, cfg, "all", torch.tensor(0.25))  # at or below tau: zeroed
    assert parts["dist"].item() == pytest.approx(1 / 2)
    gate = TauGate()
    for value in (0.3, 0.9):
        gate.update(torch.tensor(value), steps_per_epoch=2)
    assert gate.tau.item() == pytest.approx(0.6 / 3) and gate.count.item() == 0
    gate.update(torch.tensor(5.0), steps_per_epoch=2)  # mid-epoch: tau stays until the epoch ends
    assert gate.tau.item() == pytest.approx(0.2) and "tau" in dict(gate.named_buffers())


def _config(data: Path, out: Path, *extra: str):
    return load_task_config(TINY, [*tiny_overrides(data, out), *extra])


@pytest.mark.parametrize("override, message", [
    ("data.neighbour_pattern=random", "data.neighbour_pattern: unknown 'random'"),
    ("val.samples=1", "at least 2 samples per clip"),
    ("val.max_clips=1", "at least 2 clips"),
    ("generate.tlcc_samples=some", "first or all"),
])
def test_bad_settings_are_rejected(data, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        Task(_config(data, tmp_path, override), RunPaths(tmp_path))


def test_training_step_on_a_batch(data, tmp_path):
    task = Task(_config(data, tmp_path), RunPaths(tmp_path))
    model, dataset = task.build_model(), task.train_dataset()
    batch = task.collate([dataset[i] for i in (0, 40, 300)])
    loss, scalars = task.training_step(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and set(scalars) == {"dist", "mid", "logdet", "recon", "smooth"}
    assert all(p.grad is not None for p in model.parameters())


def test_resume_after_checkpoint_matches_uninterrupted_run(data, tmp_path, monkeypatch):
    # one core for the engine's thread share: a bitwise comparison must not depend on how a loaded
    # machine splits the reductions between threads
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    short = ["train.max_steps_per_epoch=3", "train.batch_size=8", "train.test_at_end=false", "val.samples=0",
             "val.max_clips=2", "train.milestones=[2]"]
    run(_config(data, tmp_path / "full", *short, "train.epochs=3"))
    run(_config(data, tmp_path / "cut", *short, "train.epochs=2"))
    run(_config(data, tmp_path / "cut", *short, "train.epochs=3", "resume=auto"))
    full = torch.load(checkpoint_file(tmp_path / "full" / "checkpoints" / "last"), weights_only=False)
    cut = torch.load(checkpoint_file(tmp_path / "cut" / "checkpoints" / "last"), weights_only=False)
    assert full["epoch"] == cut["epoch"] == 3 and full["step"] == cut["step"] == 9
    for key, value in full["model"].items():
        torch.testing.assert_close(cut["model"][key], value, rtol=0, atol=0)
    assert "resumed from" in (tmp_path / "cut" / "log.txt").read_text()


@pytest.mark.slow
def test_two_process_cpu_ddp_with_accelerate_launch(data, tmp_path):
    done = launch_two_processes(29571, str(ROOT / "train.py"), "--config", str(TINY),
                                *tiny_overrides(data, tmp_path), "train.epochs=1",
                                "train.max_steps_per_epoch=3", "train.batch_size=8",
                                "train.test_at_end=false", "val.samples=0", "val.max_clips=2",
                                "train.log_sample_indices=true", timeout=240)
    seen = {}
    for rank in (0, 1):
        log = tmp_path / "sample_indices" / f"rank{rank}.jsonl"
        rows = [json.loads(x) for x in log.read_text().splitlines()]
        assert len(rows) == 3 and {r["world"] for r in rows} == {2}
        seen[rank] = {i for r in rows for i in r["index"]}
    assert len(seen[0]) == len(seen[1]) == 24 and not seen[0] & seen[1]
    assert "world size 2" in (tmp_path / "log.txt").read_text()
    assert done.stderr.count("world size 2") == 1  # the main process alone logs
    assert (tmp_path / "checkpoints" / "last" / "rng_rank1.pt").is_file()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A short CPU training, then mode=test on the held-out test split."""
    out = tmp_path_factory.mktemp("run")
    common = ["train.epochs=5", "train.milestones=[4]", "train.val_every=5", "val.max_clips=4",
              "generate.workers=1"]
    val = run(_config(data, out, *common, "train.test_at_end=false"))
    summary = run(_config(data, out, *common, "mode=test", f"checkpoint={out}/checkpoints/best"))
    return out, val, summary


def _predictions(pred_dir: Path, split: L.Split) -> torch.Tensor:
    return torch.stack([torch.stack([torch.load(L.prediction_path(pred_dir, "test", c, k), weights_only=True)
                                     for k in range(10)]) for c in split.clips])


def test_generation_writes_ten_distinct_reproducible_reactions_per_clip(data, trained):
    out, val, summary = trained
    assert {"val/loss", "val/FRC", "val/FRD"} <= set(val)
    split = L.read_split(data, "test")
    assert summary["clips"] == len(split) == 8 and summary["samples"] == 10
    preds = _predictions(out / "pred", split)
    assert preds.shape == (8, 10, 750, 25) and preds.dtype == torch.float32
    gaps = (preds[:, :, None] - preds[:, None]).abs().flatten(3).amax(-1)  # (clip, k, k')
    assert (gaps + torch.eye(10) > 1e-3).all()  # every pair of a clip's samples differs
    _, model, cfg = load_checkpoint(out / "checkpoints" / "best")
    dataset = Task(cfg, RunPaths(out)).dataset("test")
    again = generate_split(model, dataset, out / "again", seed=cfg.generate.seed, progress=False)
    assert torch.equal(again, preds) and torch.equal(_predictions(out / "again", split), preds)
    stamp = out / "again" / "test" / ".generation.json"
    before = stamp.stat().st_mtime_ns
    assert torch.equal(generate_split(model, dataset, out / "again", seed=cfg.generate.seed), preds)
    assert stamp.stat().st_mtime_ns == before  # same weights and settings: read back, not redone


def test_generate_command(data, trained, tmp_path, capsys):
    out, _, _ = trained
    assert main(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "--split", "test"]) == 0
    split = L.read_split(data, "test")
    assert torch.equal(_predictions(tmp_path, split), _predictions(out / "pred", split))
    assert main(["--checkpoint", str(tmp_path / "nowhere"), "--pred-dir", str(tmp_path)]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert main(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "--data-dir", str(tmp_path)]) == 2
    assert "test.csv: split file not found" in capsys.readouterr().err


def test_generated_reactions_beat_random_and_mean_reaction(data, trained):
    out, _, summary = trained
    model_scores = summary["metrics"]
    task = Task(_config(data, out), RunPaths(out))
    dataset = task.dataset("test")
    train = L.read_split(data, "train")
    train_listeners = L.read_emotions(train)[[train.listener_index(i) for i in range(len(train))]]
    shape = (len(dataset.clips), 10, 750, 25)
    mean = torch.from_numpy(np.broadcast_to(train_listeners.mean((0, 1)), shape).copy())
    random = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    baselines = {"mean": task.score(dataset, mean), "random": task.score(dataset, random)}
    for scores in baselines.values():  # the listener reacts rather than mirrors: a harder relation
        assert model_scores["FRC"] > scores["FRC"] + 0.5  # FRC sums 10 samples' CCCs: > 0.05 each
        assert model_scores["FRD"] < 0.85 * scores["FRD"]


def test_generate_command_takes_config_overrides(data, trained, tmp_path, capsys):
    out, _, _ = trained
    assert main(["--checkpoint", str(out), "--pred-dir", str(tmp_path / "calm"), "--samples", "2",
                 "sampling.scale=0"]) == 0
    assert "sampling scale 0" in capsys.readouterr().out
    split = L.read_split(data, "test")
    clip = split.clips[0]
    calm = [torch.load(L.prediction_path(tmp_path / "calm", "test", clip, k), weights_only=True)
            for k in (0, 1)]
    assert torch.equal(calm[0], calm[1])  # no noise: both samples are the centre's reaction
    assert main(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "sampling.nope=1"]) == 2
    assert "sampling.nope" in capsys.readouterr().err
    assert main(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "sampling.scale"]) == 2


def test_sweep_writes_table_and_plot(data, trained, tmp_path):
    from react.reaction.sweep import main as sweep_main

    out, _, _ = trained
    assert sweep_main(["--checkpoint", str(out), "--scales", "0,1,4", "--out-dir", str(tmp_path),
                       "--samples", "2", "generate.workers=1"]) == 0
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert [float(r["scale"]) for r in rows] == [0.0, 1.0, 4.0]
    assert set(rows[0]) == {"scale", "FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC", "pred_dir"}
    s_mse = [float(r["S-MSE"]) for r in rows]
    assert s_mse[0] == 0.0 and s_mse[0] < s_mse[1] < s_mse[2]  # more noise, more diverse samples
    assert (tmp_path / "sweep.md").read_text().count("\n") == 5
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "scale_4" / "test" / L.read_split(data, "test").clips[0] / "result-1.pth").is_file()
    assert sweep_main(["--checkpoint", str(out), "--scales", "a,b", "--out-dir", str(tmp_path)]) == 2


def test_official_replica_trains_through_the_engine(data, tmp_path):
    cfg = load_task_config(ROOT / "configs" / "regnn_official_tiny.yaml",
                           [*tiny_overrides(data, tmp_path), "train.epochs=2", "train.max_steps_per_epoch=2",
                            "train.batch_size=8", "train.test_at_end=false", "val.samples=0",
                            "val.max_clips=2", "train.test_epoch=1"])
    run(cfg)
    tested = torch.load(checkpoint_file(tmp_path / "checkpoints" / "test"), weights_only=True)
    assert tested["epoch"] == 1  # train.test_epoch: the weights after that epoch, kept for the test
    state = torch.load(checkpoint_file(tmp_path / "checkpoints" / "last"), weights_only=False)["model"]
    assert state["tau_gate.tau"] > 0 and state["tau_gate.count"] == 0  # set after epoch 1 and 2
    assert bool(state["motor.norms.0.initialised"])
    log = (tmp_path / "log.txt").read_text()
    assert "tau=0 " in log and "dist=" in log and "recon" not in log


def test_same_seed_gives_identical_metrics_whatever_the_cores(data, tmp_path, monkeypatch):
    # deterministic=true: one thread per process, so the reductions (and the metrics) do not depend
    # on how many cores the machine (or a scheduler's cpuset) gives the run
    short = ["train.max_steps_per_epoch=2", "train.batch_size=16", "train.test_at_end=false",
             "train.epochs=1", "val.max_clips=2", "train.num_workers=1", "deterministic=true"]
    results = []
    for cores in ({0}, {0, 1}):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, cores=cores: cores)
        results.append(run(_config(data, tmp_path / str(len(cores)), *short)))
        assert "1 CPU threads per process" in (tmp_path / str(len(cores)) / "log.txt").read_text()
    assert results[0] == results[1] and "val/FRC" in results[0]
    # without it, a rerun on the same cores repeats the numbers too (seeded order, workers, noise)
    again = [run(_config(data, tmp_path / f"plain{i}", *short[:-1], "overwrite=true")) for i in range(2)]
    assert again[0] == again[1]


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path):
    with pytest.raises(L.LayoutError, match="split file not found"):
        run(_config(tmp_path / "no_data", tmp_path / "out"))
    assert not (tmp_path / "out").exists()
