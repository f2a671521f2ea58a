"""The pipeline reads a model only through the generator contract (react.reaction.contract): a fake
generator written here (a learnt gain on the speaker's own attributes, plus a tenth of its last
generated frame, plus noise; causal, with feedback) is registered, trained by the reaction task
through the engine, generates 10 reactions per test clip with `react generate` (windows in order,
its past fed back) and is scored by the evaluation, with no line of the pipeline written for it."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.deploy_data import write_clip
from helpers.fake_generator import FEEDBACK, FakeConfig, FakeGenerator, registered
from helpers.regnn_data import one_thread, synthetic_with_features  # noqa: F401 - autouse
from torch import nn

from evaluation.cli import main as evaluate
from react.engine import load_checkpoint, run
from react.generate import main as generate
from react.reaction.contract import ReactionGenerator, training_loss
from react.reaction.data import layouts
from react.reaction.data import react_layout as L
from react.reaction.data.react_layout import write_emotion
from react.reaction.deploy.export import main as deploy
from react.reaction.deploy.networks import noise_law
from react.reaction.deploy.runtime import INFO, DeployBackend, DeployError, draw_noise
from react.reaction.generation import CLIP_MARKER, clip_seed
from react.reaction.infer import main as infer
from react.reaction.online import main as online
from react.tasks import load_task_config

FRAMES, SAMPLES = 50, 10
FEATURES = str(Path(__file__).resolve().parents[1] / "configs" / "features_tiny.yaml")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synthetic_with_features(tmp_path_factory, pairs=4, eval_pairs=2, seed=3)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """The fake generator, registered as task ``fake`` and trained for two epochs."""
    with registered():
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
    with registered():
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
    with registered():
        assert generate(["--checkpoint", str(out), "--pred-dir", str(tmp_path), "--split", "test"]) == 0
    assert marker.read_text() != before and "1 generated" in capsys.readouterr().out
    assert evaluate(["--data-dir", str(data), "--pred-dir", str(tmp_path), "--split", "test",
                     "--workers", "1"]) == 0
    assert "FRC" in capsys.readouterr().out


def test_any_generator_deploys_to_onnx_with_parity(trained, tmp_path, capsys):
    """The fake generator's ``generate`` (speaker, past, noise) exported to ONNX: its info records the
    contract and the noise law (std 0.1, measured from draw_noise), and the graph is the model's."""
    out, _ = trained
    folder = tmp_path / "dp"
    with registered():
        assert deploy(["--checkpoint", str(out), "--features", FEATURES, "--out-dir", str(folder)]) == 0
        _, model, _ = load_checkpoint(out / "checkpoints" / "best")
    assert "generator.onnx: onnx, max |deployed - PyTorch|" in capsys.readouterr().out
    info = json.loads((folder / INFO).read_text())
    gen = info["networks"]["generator"]
    assert gen["format"] == "onnx" and gen["parity_max_abs"] < 1e-5 and "inverse_iters" not in gen
    contract = (info["model"], info["inputs"], info["causal"], info["feedback"])
    assert contract == ("fake", ["speaker"], True, FEEDBACK)
    assert info["noise_shape"] == [FRAMES, 25] and list(gen["inputs"]) == ["speaker", "past", "noise"]
    assert info["noise"]["std"] == pytest.approx(0.1) and info["noise"]["clip"] == info["noise"]["max"] == 0
    noise = draw_noise(info, 3, 4, seed=5)
    assert noise.shape == (3, 4, FRAMES, 25) and np.array_equal(noise, draw_noise(info, 3, 4, seed=5))
    assert noise.std() == pytest.approx(0.1, rel=0.05)
    rng = np.random.default_rng(0)
    speaker = rng.standard_normal((3, FRAMES, 25)).astype(np.float32)
    past = rng.standard_normal((3, 4, FEEDBACK, 25)).astype(np.float32)
    expected = model.gain.item() * speaker[:, None] + 0.1 * past[:, :, -1:] + noise  # by hand
    assert np.abs(DeployBackend(folder).generate(speaker, past, noise) - expected).max() < 1e-5


def test_deploy_records_a_scaled_standard_normal_and_refuses_other_noise():
    assert noise_law(FakeGenerator(FakeConfig(noise=0.3), FRAMES), "fake") == {"std": pytest.approx(0.3),
                                                                              "clip": 0.0, "max": 0.0}
    model = FakeGenerator(FakeConfig(), FRAMES)
    model.draw_noise = lambda w, s, generator=None: torch.rand(model.noise_shape(w, s), generator=generator)
    with pytest.raises(DeployError, match="model 'fake': its draw_noise is not a scaled standard normal"):
        noise_law(model, "fake")


def test_online_mode_of_a_causal_feedback_generator_is_its_offline_generation(trained, tmp_path, capsys):
    """`react online` runs the fake's windows in order, emitting each frame from the partly filled
    window: the reactions are those of `react generate` (same clip noise), whatever the chunk."""
    out, _ = trained
    with registered():
        assert generate(["--checkpoint", str(out), "--pred-dir", str(tmp_path / "off")]) == 0
        for chunk in ("7", "50"):
            args = ["--checkpoint", str(out), "--pred-dir", str(tmp_path / chunk), "--chunk", chunk]
            assert online(args) == 0
    assert "FRC=" in capsys.readouterr().out
    files = sorted((tmp_path / "off" / "test").rglob("result-*.pth"))
    assert len(files) == 4 * SAMPLES
    for file in files:
        offline = torch.load(file, weights_only=True)
        for chunk in ("7", "50"):
            got = torch.load(tmp_path / chunk / file.relative_to(tmp_path / "off"), weights_only=True)
            assert torch.allclose(got, offline, atol=1e-5), (file, chunk)


def test_online_mode_refuses_a_feedback_generator_that_is_not_causal(trained, tmp_path, capsys):
    out, _ = trained
    with registered("NonCausalFake"):
        assert online(["--checkpoint", str(out), "--pred-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model 'fake' reads its own past output but is not causal" in err


def test_raw_clip_inference_refuses_a_generator_that_reads_the_speakers_attributes(trained, tmp_path, capsys):
    out, _ = trained
    video, audio = write_clip(tmp_path, 10)
    args = ["--checkpoint", str(out), "--features", FEATURES, "--video", str(video), "--audio", str(audio),
            "--out-dir", str(tmp_path / "out"), "--no-render"]
    with registered():
        assert infer(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "model 'fake' reads the speaker's facial attributes, which raw clips do not give; pass them " \
        "with --speaker-attributes CSV" in errors[0]
    assert not (tmp_path / "out" / "info.json").exists()


def test_raw_clip_inference_with_the_speakers_attributes(trained, tmp_path, capsys):
    """`react infer --speaker-attributes` on a 73-frame clip with 72 rows (the last repeated): by hand
    (windows in order, window w's noise from the seed (seed, w)), the same online; too few rows: one line."""
    out, _ = trained
    video, audio = write_clip(tmp_path, 73)
    rows = np.random.default_rng(4).standard_normal((72, 25)).astype(np.float32)
    write_emotion(tmp_path / "speaker.csv", rows)
    with registered():
        assert deploy(["--checkpoint", str(out), "--features", FEATURES, "--out-dir", str(tmp_path / "dp")]) \
            == 0
        _, model, _ = load_checkpoint(out / "checkpoints" / "best")
    base = ["--deploy", str(tmp_path / "dp"), "--video", str(video), "--audio", str(audio), "--samples", "3",
            "--no-render", "--speaker-attributes", str(tmp_path / "speaker.csv")]
    assert infer([*base, "--out-dir", str(tmp_path / "off")]) == 0
    assert infer([*base, "--out-dir", str(tmp_path / "on"), "--online", "--chunk", "5"]) == 0
    info = json.loads((tmp_path / "dp" / INFO).read_text())
    speaker = rows[np.minimum(np.arange(100), 71)]  # two windows of 50; frames past the end repeat the last
    last, parts = np.zeros((3, 1, 25), np.float32), []
    for w in range(2):
        noise = draw_noise(info, 1, 3, (0, w))[0]
        part = model.gain.item() * speaker[w * 50:(w + 1) * 50] + 0.1 * last + noise
        parts.append(part)
        last = part[:, -1:]
    expected = np.concatenate(parts, 1)[:, :73]
    for k in range(3):
        offline = torch.load(tmp_path / "off" / f"result-{k}.pth", weights_only=True).numpy()
        online_ = torch.load(tmp_path / "on" / f"result-{k}.pth", weights_only=True).numpy()
        assert np.abs(offline - expected[k]).max() < 1e-4 and np.abs(online_ - expected[k]).max() < 1e-4
    write_emotion(tmp_path / "short.csv", rows[:60])
    capsys.readouterr()
    assert infer([*base[:-1], str(tmp_path / "short.csv"), "--out-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    short = tmp_path / "short.csv"
    assert err == f"error: {short}: 60 rows of facial attributes, but the clip has at least 73 frames\n"


def test_a_causal_feedback_generator_on_a_raw_clip_online_equals_offline(trained, tmp_path):
    """The fake reading the speaker's video, deployed: `react infer` of a raw clip (two windows, the
    second cut) gives the same reactions offline (windows in order) and online (frame by frame)."""
    out, _ = trained
    video, audio = write_clip(tmp_path, 73)
    with registered("VideoFake"):
        assert deploy(["--checkpoint", str(out), "--features", FEATURES, "--out-dir", str(tmp_path / "dp")]) \
            == 0
    base = ["--deploy", str(tmp_path / "dp"), "--video", str(video), "--audio", str(audio), "--samples", "3",
            "--no-render"]
    assert infer([*base, "--out-dir", str(tmp_path / "off")]) == 0
    assert infer([*base, "--out-dir", str(tmp_path / "on"), "--online", "--chunk", "4"]) == 0
    for k in range(3):
        offline = torch.load(tmp_path / "off" / f"result-{k}.pth", weights_only=True)
        online_ = torch.load(tmp_path / "on" / f"result-{k}.pth", weights_only=True)
        assert offline.shape == (73, 25) and torch.allclose(online_, offline, atol=1e-4)
