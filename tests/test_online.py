"""Online (causal) generation: changing future input never changes past outputs, chunk size does
not change outputs, a streamed clip gives one reaction frame per video frame, and a split's
online reactions score with the evaluation's metrics."""

import json

import numpy as np
import pytest
import torch
from helpers.deploy_data import AUDIO_DIM, FEATURES, VIDEO_DIM, tiny_checkpoint, write_clip
from helpers.regnn_data import synthetic_react

from features.config import FeatureConfig
from react.config import load_config
from react.data.proxy_features import write_proxy_features
from react.reaction.deploy.networks import TorchBackend, build_networks
from react.reaction.online import CausalFeatures, CausalReactor, main, score_split, stream_clip


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    features = load_config(FEATURES, ["split=all", "type=all", "data.root=."], schema=FeatureConfig)
    return TorchBackend(build_networks(tiny_checkpoint(tmp_path_factory.mktemp("ck")), features))


def _run(backend, video, audio, chunk):
    reactor = CausalReactor(backend, samples=3, seed=1)
    return np.concatenate(
        [reactor.push(video[i : i + chunk], audio[i : i + chunk]) for i in range(0, len(video), chunk)],
        axis=1,
    )


def test_future_frames_do_not_change_past_outputs_and_chunks_do_not_matter(backend):
    rng = np.random.default_rng(0)
    video = rng.standard_normal((70, VIDEO_DIM)).astype(np.float32)
    audio = rng.standard_normal((70, AUDIO_DIM)).astype(np.float32)
    base = _run(backend, video, audio, 1)
    assert base.shape == (3, 70, 25)
    changed_v, changed_a = video.copy(), audio.copy()
    changed_v[40:] += 5.0
    changed_a[40:] -= 5.0
    other = _run(backend, changed_v, changed_a, 1)
    assert np.array_equal(base[:, :40], other[:, :40])
    assert np.abs(base[:, 40:] - other[:, 40:]).max() > 1e-3
    assert np.allclose(_run(backend, video, audio, 7), base, atol=1e-5)


def test_causal_features_ignore_the_future(backend):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (80, 80, 3), dtype=np.uint8) for _ in range(6)]
    wave = rng.standard_normal(16000).astype(np.float32) * 0.1

    def features(frames, wave):
        feats = CausalFeatures(backend, context_s=0.4)
        first = feats.push(frames[:3], wave[: round(3.5 * 640)])
        return first, feats.push(frames[3:], wave[round(3.5 * 640) :])

    (v1, a1), _ = features(frames, wave)
    future_frames = frames[:3] + [255 - f for f in frames[3:]]
    future_wave = wave.copy()
    future_wave[round(3.5 * 640) :] *= -3
    (v2, a2), (v3, _) = features(future_frames, future_wave)
    assert np.array_equal(v1, v2) and np.array_equal(a1, a2) and v3.shape == (3, VIDEO_DIM)


def test_stream_a_clip(backend, tmp_path):
    video, audio = write_clip(tmp_path, 33)
    reactions, timing = stream_clip(backend, video, audio, samples=2, chunk=4)
    assert reactions.shape == (2, 33, 25) and np.isfinite(reactions).all() and timing["ms_per_frame"] > 0


@pytest.mark.slow
def test_online_split_scores_with_the_metrics(tmp_path):
    root = synthetic_react(tmp_path / "data", pairs=2, eval_pairs=2, seed=2)
    write_proxy_features(root, VIDEO_DIM, AUDIO_DIM)
    checkpoint = tiny_checkpoint(tmp_path / "ck", root, iters=6)
    metrics = score_split(checkpoint, "test", tmp_path / "pred", samples=2, chunk=50)
    assert {"FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC"} <= set(metrics)
    files = sorted((tmp_path / "pred" / "test").rglob("result-*.pth"))
    assert len(files) == 4 * 2 and torch.load(files[0], weights_only=True).shape == (750, 25)


def test_readme_command_needs_no_pred_dir_and_says_what_it_does(tmp_path, capsys):
    root = synthetic_react(tmp_path / "data", pairs=2, eval_pairs=1, seed=2)
    write_proxy_features(root, VIDEO_DIM, AUDIO_DIM)
    checkpoint = tiny_checkpoint(tmp_path / "run", root, iters=3)
    assert main(["--checkpoint", str(checkpoint), "--split", "test", "--samples", "2", "--chunk", "250"]) == 0
    pred = tmp_path / "run" / "online"  # default: beside the checkpoint's run
    metrics = json.loads((pred / "metrics.json").read_text())  # the evaluation's file name
    assert metrics["pred_dir"] == str(pred.resolve()) and metrics["split"] == "test" and "FRC" in metrics
    assert len(sorted((pred / "test").rglob("result-*.pth"))) == 2 * 2
    err = capsys.readouterr().err
    assert "online generation of 2 clips x 2 samples" in err and f"{pred / 'metrics.json'}" in err
