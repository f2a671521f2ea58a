"""The pipeline reads a model only through the generator contract (react.reaction.contract): a fake
generator written here (a learnt gain on the speaker's own attributes, plus a tenth of its last
generated frame, plus noise; causal, with feedback) is registered, trained by the reaction task
through the engine, generates 10 reactions per test clip with `react generate` (windows in order,
its past fed back) and is scored by the evaluation, with no line of the pipeline written for it."""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers.regnn_data import one_thread, synthetic_react, write_features  # noqa: F401 - autouse
from torch import nn

from evaluation.cli import main as evaluate
from react.engine import load_checkpoint, run
from react.generate import main as generate
from react.reaction.contract import ReactionGenerator, training_loss
from react.reaction.data import layouts
from react.reaction.data import react_layout as L
from react.reaction.deploy.export import main as deploy
from react.reaction.generation import CLIP_MARKER, clip_seed
from react.reaction.models import GENERATORS, Generator
from react.reaction.online import main as online
from react.tasks import TASKS, load_task_config

FRAMES, FEEDBACK, SAMPLES = 50, 2, 10


@dataclass
class FakeConfig:
    gain: float = 0.5
    noise: float = 0.1


class FakeGenerator(nn.Module):
    inputs = ("speaker",)
    causal = True
    feedback = FEEDBACK

    def __init__(self, cfg: FakeConfig, frames: int):
        super().__init__()
        self.frames, self.nodes, self.settings, self.noise = frames, 25, repr(cfg), cfg.noise
        self.gain = nn.Parameter(torch.tensor(float(cfg.gain)))

    def noise_shape(self, windows, samples):
        return (windows, samples, self.frames, self.nodes)

    def draw_noise(self, windows, samples, generator=None):
        return self.noise * torch.randn(self.noise_shape(windows, samples), generator=generator)

    def generate(self, conditions, noise, scale=1.0):
        last = conditions["past"][:, :, -1:]  # (W, S, 1, 25): the last frame generated before the window
        return self.gain * conditions["speaker"][:, None] + 0.1 * last + scale * noise

    def training_loss(self, batch):
        err = (self.gain * batch["speaker"][:, None] - batch["reactions"]).pow(2).mean((2, 3))  # (B, K)
        loss = (err * batch["mask"]).sum() / batch["mask"].sum()
        return loss, {"mse": loss}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = synthetic_react(tmp_path_factory.mktemp("syn"), pairs=4, eval_pairs=2, seed=3)
    write_features(root)
    return root


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """The fake generator, registered as task ``fake`` and trained for two epochs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(GENERATORS, "fake", Generator(__name__, "FakeGenerator", "FakeConfig"))
        patch.setitem(TASKS, "fake", "react.reaction.task")
        out = tmp_path_factory.mktemp("run")
        cfg = load_task_config(None, ["task=fake", f"data.root={data}", f"out_dir={out}", "train.epochs=2",
                                      "train.batch_size=16", "train.num_workers=0", "train.lr=0.05",
                                      "val.max_clips=4", "generate.workers=1"])
        run(cfg)
        yield out, json.loads((out / "test_results.json").read_text())


def test_fake_generator_fulfils_the_contract():
    assert isinstance(FakeGenerator(FakeConfig(), FRAMES), ReactionGenerator)


class Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: ``module`` inside, calls go through its ``forward``."""

    def __init__(self, module):
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, *args):
        self.calls += 1
        return self.module(*args)


def test_training_loss_goes_through_a_distributed_wrapper():
    model = FakeGenerator(FakeConfig(gain=2.0), FRAMES)
    model.forward = "a mixed-precision wrapper"  # set on the instance: kept
    speaker = torch.ones(1, FRAMES, 25)
    batch = {"speaker": speaker, "reactions": speaker[:, None].expand(1, 2, FRAMES, 25),
             "mask": torch.tensor([[True, False]])}
    wrapper = Wrapper(model)
    loss, parts = training_loss(wrapper, batch)
    assert wrapper.calls == 1 and loss.item() == pytest.approx(1.0) and parts["mse"] is loss  # (2 - 1)^2
    assert model.forward == "a mixed-precision wrapper"


def test_any_generator_trains_through_the_reaction_task(trained):
    out, summary = trained
    _, model, cfg = load_checkpoint(out / "checkpoints" / "best")
    assert isinstance(model, FakeGenerator) and cfg.task == "fake"
    assert float(model.gain.detach()) != 0.5  # the training step was the model's own loss
    assert summary["clips"] == 4 and summary["samples"] == SAMPLES  # tested at the end of training
    assert all(math.isfinite(summary["metrics"][k]) for k in ("FRC", "FRD", "S-MSE"))


def test_generation_feeds_back_the_past_and_evaluation_scores_it(data, trained, tmp_path, capsys):
    out, _ = trained
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(GENERATORS, "fake", Generator(__name__, "FakeGenerator", "FakeConfig"))
        patch.setitem(TASKS, "fake", "react.reaction.task")
        assert generate(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "--split", "test"]) == 0
        _, model, _ = load_checkpoint(out / "checkpoints" / "best")
    split = layouts.read_split(data, "test")
    clip = split.clips[0]
    # by hand: windows 0, 50, ... in order; each adds a tenth of the previous window's last frame
    speaker = torch.from_numpy(layouts.read_emotion(split, clip))
    windows = -(-len(speaker) // FRAMES)
    noise = model.draw_noise(windows, SAMPLES, torch.Generator().manual_seed(clip_seed(0, clip)))
    last, parts = torch.zeros(SAMPLES, 1, 25), []
    for w in range(windows):
        rows = torch.arange(w * FRAMES, (w + 1) * FRAMES).clamp(max=len(speaker) - 1)
        part = model.gain.detach() * speaker[rows] + 0.1 * last + noise[w]  # (S, F, 25)
        parts.append(part)
        last = part[:, -1:]
    expected = torch.cat(parts, 1)[:, :len(speaker)]
    got = torch.stack([torch.load(L.prediction_path(tmp_path, "test", clip, k), weights_only=True)
                       for k in range(SAMPLES)])
    assert torch.allclose(got, expected, atol=1e-5)
    # the speaker's attributes are an input: a newer attributes file makes the clip be redone
    marker = L.prediction_path(tmp_path, "test", clip, 0).with_name(CLIP_MARKER)
    before = marker.read_text()
    emotion = layouts.emotion_path(split, clip)
    os.utime(emotion, ns=(emotion.stat().st_atime_ns, emotion.stat().st_mtime_ns + 10**9))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(GENERATORS, "fake", Generator(__name__, "FakeGenerator", "FakeConfig"))
        patch.setitem(TASKS, "fake", "react.reaction.task")
        assert generate(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "--split", "test"]) == 0
    assert marker.read_text() != before and "1 generated" in capsys.readouterr().out
    assert evaluate(["--data-dir", str(data), "--pred-dir", str(tmp_path), "--split", "test",
                     "--workers", "1"]) == 0
    assert "FRC" in capsys.readouterr().out


def test_online_mode_and_deploy_refuse_other_generators_for_now(trained, tmp_path, capsys):
    """Online mode and deployment are REGNN's alone so far (docs/generators.md): one line, exit 2."""
    out, _ = trained
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(GENERATORS, "fake", Generator(__name__, "FakeGenerator", "FakeConfig"))
        patch.setitem(TASKS, "fake", "react.reaction.task")
        assert online(["--checkpoint", str(out), "--pred-dir", str(tmp_path)]) == 2
        assert "a 'fake' checkpoint, not a 'regnn' one" in capsys.readouterr().err
        features = str(Path(__file__).resolve().parents[1] / "configs" / "features_tiny.yaml")
        args = ["--checkpoint", str(out), "--features", features, "--out-dir", str(tmp_path / "dp")]
        assert deploy(args) == 2
        assert "a 'fake' checkpoint, not a 'regnn' one" in capsys.readouterr().err
