"""BeLFusion's two stages through the framework on the synthetic set: stage 1 and stage 2 by
``train.py`` (stage 2 starting from the stage-1 run; also under ``accelerate launch``, 2 processes),
10 reactions per test clip by ``python -m react.generate``, scored by ``evaluation.py``."""

import json
from pathlib import Path

import pytest
import torch
from helpers.launch import launch_two_processes
from helpers.regnn_data import AUDIO_DIM, VIDEO_DIM, one_thread, synthetic_with_features  # noqa: F401 - autouse

from evaluation.cli import main as evaluate
from react.engine import checkpoint_file, load_checkpoint
from react.generate import main as generate
from react.reaction.data import react_layout as L
from react.reaction.generation import generate_clip
from react.reaction.models.belfusion import BehaviouralVAE, BeLFusion
from react.reaction.task import Task
from react.tasks import RunPaths, load_task_config
from react.train import main as train

ROOT = Path(__file__).resolve().parents[1]
STAGE_ONE, STAGE_TWO = ROOT / "configs" / "belfusion_vae.yaml", ROOT / "configs" / "belfusion.yaml"
SHORT = ["train.epochs=1", "train.max_steps_per_epoch=2", "train.batch_size=16", "generate.workers=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synthetic_with_features(tmp_path_factory, pairs=8, eval_pairs=4, seed=1)


@pytest.fixture(scope="module")
def stage_one(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vae")
    assert train(["--config", str(STAGE_ONE), f"data.root={data}", f"out_dir={out}", *SHORT]) == 0
    return out


@pytest.fixture(scope="module")
def stage_two(data, stage_one, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ldm")
    assert train(["--config", str(STAGE_TWO), f"data.root={data}", f"out_dir={out}",
                  f"model.vae_checkpoint={stage_one}", "val.samples=0", *SHORT]) == 0
    return out


def test_stage_one_trains_the_behavioural_vae(stage_one):
    _, model, cfg = load_checkpoint(stage_one / "checkpoints" / "best")
    assert isinstance(model, BehaviouralVAE) and cfg.task == "belfusion_vae"
    log = (stage_one / "log.txt").read_text()
    assert "task belfusion_vae" in log and "val/mse=" in log and "val/kld=" in log


def test_stage_two_starts_from_stage_one_and_tests_ten_reactions_per_clip(data, stage_one, stage_two):
    _, model, cfg = load_checkpoint(stage_two / "checkpoints" / "best")
    assert isinstance(model, BeLFusion) and cfg.task == "belfusion"
    vae = torch.load(checkpoint_file(stage_one), weights_only=True)["model"]
    assert all(torch.equal(value, model.vae.state_dict()[key]) for key, value in vae.items())
    assert not torch.equal(model.stat_min, torch.full_like(model.stat_min, -1.0))  # statistics fitted
    summary = json.loads((stage_two / "test_results.json").read_text())
    assert summary["clips"] == len(L.read_split(data, "test")) == 8 and summary["samples"] == 10
    assert all(torch.isfinite(torch.tensor(summary["metrics"][k])) for k in ("FRC", "FRD", "S-MSE"))


def reactions(pred_dir: Path, split: L.Split) -> torch.Tensor:
    """The 10 written reactions of every clip of ``split``, ``(C, 10, T, 25)``."""
    return torch.stack([torch.stack([torch.load(L.prediction_path(pred_dir, "test", clip, k),
                                                weights_only=True) for k in range(10)])
                        for clip in split.clips])


def test_generate_writes_ten_reactions_per_clip_and_evaluation_scores_them(data, stage_two, tmp_path,
                                                                            capsys):
    assert generate(["--checkpoint", str(stage_two), "--pred-dir", str(tmp_path), "--split", "test"]) == 0
    split = L.read_split(data, "test")
    preds = reactions(tmp_path, split)
    assert preds.shape == (8, 10, 750, 25) and torch.isfinite(preds).all()
    gaps = (preds[:, :, None] - preds[:, None]).abs().flatten(3).amax(-1)
    assert (gaps + torch.eye(10) > 0).all()  # every pair of a clip's samples differs
    assert torch.equal(reactions(stage_two / "pred", split), preds)  # the test after training: same seed
    capsys.readouterr()
    out = tmp_path / "metrics.json"
    assert evaluate(["--data-dir", str(data), "--pred-dir", str(tmp_path), "--split", "test",
                     "--workers", "1", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["clips"] == 8 and metrics["samples"] == 10 and "FRC" in capsys.readouterr().out


def test_stage_two_on_video_and_audio_features(data, stage_one, tmp_path):
    """``condition: features``: the speaker's per-frame features instead of its attributes."""
    cfg = load_task_config(STAGE_TWO, [f"data.root={data}", f"out_dir={tmp_path}", "model.condition=features",
                                       f"model.video_dim={VIDEO_DIM}", f"model.audio_dim={AUDIO_DIM}",
                                       f"model.vae_checkpoint={stage_one}"])
    task = Task(cfg, RunPaths(tmp_path))
    model, dataset = task.build_model(), task.train_dataset()
    assert model.inputs == ("video", "audio")
    loss, _ = task.training_step(model, task.collate([dataset[i] for i in (0, 40, 100)]))
    loss.backward()
    assert all(p.grad is not None for p in model.features.parameters())
    reactions = generate_clip(model, task.dataset("test", targets=False), 0, samples=3, seed=0)
    assert reactions.shape == (3, 750, 25) and torch.isfinite(reactions).all()


@pytest.mark.parametrize("checkpoint, message", [
    ("", "model.vae_checkpoint: not set"),
    ("nowhere", "no checkpoint found"),
])
def test_stage_two_without_a_stage_one_run_is_a_one_line_error(data, tmp_path, capsys, checkpoint, message):
    out = tmp_path / "run"
    assert train(["--config", str(STAGE_TWO), f"data.root={data}", f"out_dir={out}",
                  f"model.vae_checkpoint={tmp_path / checkpoint if checkpoint else ''}", *SHORT]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_stage_two_under_accelerate_launch(data, stage_one, tmp_path):
    launch_two_processes(29583, str(ROOT / "train.py"), "--config", str(STAGE_TWO), f"data.root={data}",
                         f"out_dir={tmp_path}", f"model.vae_checkpoint={stage_one}", *SHORT,
                         "train.test_at_end=false", "val.samples=0", "val.max_clips=2", timeout=240)
    assert "world size 2" in (tmp_path / "log.txt").read_text()
    assert (tmp_path / "checkpoints" / "last" / "rng_rank1.pt").is_file()
