"""TransVAE through the framework (tiny configs on a small synthetic set): trained by the reaction
task with ``python train.py`` (and ``accelerate launch``, 2 processes), 10 reactions per test clip
with ``python -m react.generate`` (the online model window by window, its past fed back), scored by
``evaluation.py``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.launch import launch_two_processes
from helpers.regnn_data import AUDIO_DIM, VIDEO_DIM, one_thread, synthetic_with_features  # noqa: F401

from evaluation.cli import main as evaluate
from react.engine import load_checkpoint
from react.generate import main as generate
from react.reaction.data import layouts
from react.reaction.data import react_layout as L
from react.reaction.models.transvae import TransVAE
from react.reaction.online import main as online

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"offline": ROOT / "configs" / "transvae.yaml", "online": ROOT / "configs" / "transvae_online.yaml"}


def overrides(data: Path, out: Path, *extra: str) -> list[str]:
    """The tiny configs on the test set, briefly; one thread (many small steps: threads only contend)."""
    return ["deterministic=true", f"data.root={data}", f"out_dir={out}", f"model.video_dim={VIDEO_DIM}",
            f"model.audio_dim={AUDIO_DIM}",
            "train.epochs=2", "train.max_steps_per_epoch=4", "train.batch_size=16", "train.val_every=2",
            "val.max_clips=4", "val.samples=0", "generate.workers=1", *extra]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synthetic_with_features(tmp_path_factory, pairs=4, eval_pairs=2, seed=3)


@pytest.fixture(scope="module", params=["offline", "online"])
def trained(request, data, tmp_path_factory):
    """``(mode, run folder, test summary)``: train.py's run, tested at its end on the test split."""
    out = tmp_path_factory.mktemp(request.param)
    config = str(CONFIGS[request.param])
    command = [sys.executable, str(ROOT / "train.py"), "--config", config, *overrides(data, out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return request.param, out, json.loads((out / "test_results.json").read_text())


def predictions(pred_dir: Path, data: Path) -> torch.Tensor:
    split = layouts.read_split(data, "test")
    load = lambda clip, k: torch.load(L.prediction_path(pred_dir, "test", clip, k), weights_only=True)  # noqa: E731
    return torch.stack([torch.stack([load(clip, k) for k in range(10)]) for clip in split.clips])


def test_trains_through_the_reaction_task(trained):
    mode, out, summary = trained
    _, model, cfg = load_checkpoint(out / "checkpoints" / "best")
    assert isinstance(model, TransVAE) and cfg.task == "transvae" and model.causal == (mode == "online")
    assert (model.frames, model.feedback) == ((32, 8) if mode == "online" else (50, 0))
    log = (out / "log.txt").read_text()
    assert "rec" in log and "kl" in log and "div" in log  # the model's own loss parts
    assert summary["clips"] == 4 and summary["samples"] == 10
    assert all(torch.isfinite(torch.tensor(summary["metrics"][k])) for k in ("FRC", "FRD", "S-MSE"))


def test_generate_writes_ten_reactions_per_test_clip_and_evaluation_scores_them(data, trained, tmp_path,
                                                                                  capsys):
    _, out, _ = trained
    command = ["--checkpoint", str(out), "--pred-dir", str(tmp_path), "--split", "test", "--threads", "1"]
    assert generate(command) == 0
    preds = predictions(tmp_path, data)
    assert preds.shape == (4, 10, 750, 25) and torch.isfinite(preds).all()
    assert torch.equal(preds, predictions(out / "pred", data))  # the same seed, the same reactions
    gaps = (preds[:, :, None] - preds[:, None]).abs().flatten(3).amax(-1)
    assert (gaps + torch.eye(10) > 1e-4).all()  # every pair of a clip's samples differs
    capsys.readouterr()
    assert evaluate(["--data-dir", str(data), "--pred-dir", str(tmp_path), "--split", "test",
                     "--workers", "1"]) == 0
    assert "FRC" in capsys.readouterr().out


@pytest.mark.slow
def test_two_process_cpu_ddp_with_accelerate_launch(data, tmp_path):
    launch_two_processes(29583, str(ROOT / "train.py"), "--config", str(CONFIGS["online"]),
                         *overrides(data, tmp_path, "train.epochs=1", "train.max_steps_per_epoch=2",
                                    "train.test_at_end=false", "val.samples=0", "val.max_clips=2"),
                         timeout=240)
    assert "world size 2" in (tmp_path / "log.txt").read_text()
    _, model, _ = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert isinstance(model, TransVAE) and model.causal


def test_the_online_variant_runs_in_the_online_mode_and_is_scored(data, trained, tmp_path, capsys):
    """`react online` streams the causal TransVAE frame by frame over the test split (10 reactions per
    clip, scored); the offline variant, not causal, is not refused (a window ends at each frame)."""
    mode, out, _ = trained
    assert online(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "--chunk", "25"]) == 0
    assert "FRC=" in capsys.readouterr().out
    preds = predictions(tmp_path, data)
    assert preds.shape == (4, 10, 750, 25) and torch.isfinite(preds).all()
