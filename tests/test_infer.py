"""Inference from raw clips of any length: deploy folder (no torch) and checkpoint paths agree,
outputs are result-<k>.pth/.csv per sample plus pictures; the ONNX path runs with torch blocked."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers.deploy_data import FEATURES, ROOT, tiny_checkpoint, write_clip, write_truncated_clip

from features.config import FeatureConfig
from react.config import load_config
from react.reaction.data import react_layout as L
from react.reaction.deploy.export import export_deploy
from react.reaction.deploy.networks import TorchBackend, build_networks
from react.reaction.deploy.runtime import DeployBackend
from react.reaction.infer import infer_clip, main
from react.reaction.stages import main as stages_main

BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "timm", "transformers"):
            raise ImportError(name + " is blocked")
sys.meta_path.insert(0, Block())
from react.reaction.infer import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(code)
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("infer")
    features = load_config(FEATURES, ["split=all", "type=all", "data.root=."], schema=FeatureConfig)
    checkpoint = tiny_checkpoint(folder / "ckpt")
    nets = build_networks(checkpoint, features)
    export_deploy(nets, folder / "deploy")
    return folder, checkpoint, nets


@pytest.mark.parametrize("frames", [37, 90])
def test_any_length_onnx_equals_pytorch(setup, tmp_path, frames):
    folder, _, nets = setup
    video, audio = write_clip(tmp_path, frames)
    onnx = infer_clip(DeployBackend(folder / "deploy"), video, audio, tmp_path / "onnx", render=False)
    pt = infer_clip(TorchBackend(nets), video, audio, tmp_path / "pt", render=False)
    assert onnx["frames"] == pt["frames"] == frames and onnx["samples"] == 10
    for k in range(10):
        a = torch.load(tmp_path / "onnx" / f"result-{k}.pth", weights_only=True)
        b = torch.load(tmp_path / "pt" / f"result-{k}.pth", weights_only=True)
        assert a.shape == (frames, 25) and torch.allclose(a, b, atol=1e-4)
        csv = np.loadtxt(tmp_path / "onnx" / f"result-{k}.csv", delimiter=",", skiprows=1)
        assert np.allclose(csv, a.numpy(), atol=1e-5)


def test_pictures_are_drawn(setup, tmp_path):
    video, audio = write_clip(tmp_path, 30)
    info = infer_clip(DeployBackend(setup[0] / "deploy"), video, audio, tmp_path / "out", samples=3)
    assert {"viz/au_heatmap.png", "viz/face.mp4", "viz/diversity.png"} <= set(info["pictures"])
    assert all((tmp_path / "out" / p).stat().st_size > 0 for p in info["pictures"])
    assert json.loads((tmp_path / "out" / "info.json").read_text())["samples"] == 3


def test_checkpoint_path_and_errors(setup, tmp_path, capsys):
    folder, checkpoint, _ = setup
    video, audio = write_clip(tmp_path, 20)
    clip = ["--video", str(video), "--audio", str(audio)]
    assert main(["--checkpoint", str(checkpoint), "--features", str(FEATURES), *clip,
                 "--out-dir", str(tmp_path / "o"), "--no-render", "--samples", "2"]) == 0
    assert (tmp_path / "o" / "result-1.pth").is_file()
    missing_video = ["--video", str(tmp_path / "missing.mp4"), "--audio", str(audio)]
    assert main(["--deploy", str(folder / "deploy"), *missing_video, "--out-dir", str(tmp_path / "x")]) == 2
    assert main(["--deploy", str(tmp_path), "--video", str(video), "--audio", str(audio),
                 "--out-dir", "x"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert "missing.mp4" in err[0] and "network_info.json" in err[1]


@pytest.mark.slow
def test_onnx_path_runs_with_torch_blocked(setup, tmp_path):
    video, audio = write_clip(tmp_path, 60)
    command = [sys.executable, "-c", BLOCK_TORCH, "--deploy", str(setup[0] / "deploy"), "--video", str(video),
               "--audio", str(audio), "--out-dir", str(tmp_path / "o"), "--no-video"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(tmp_path / "o" / "result-9.pth", weights_only=True).shape == (60, 25)
    assert (tmp_path / "o" / "viz" / "au_heatmap.png").is_file()


def test_a_30_fps_clip_is_resampled_to_the_deployment_rate(setup, tmp_path):
    video, audio = write_clip(tmp_path, 60, fps=30)  # 2 s: 50 frames at the deployment's 25 fps
    backend = DeployBackend(setup[0] / "deploy")
    info = infer_clip(backend, video, audio, tmp_path / "o", samples=2, render=False)
    assert (info["frames"], info["fps"], info["video_fps"]) == (50, 25, 30)
    assert torch.load(tmp_path / "o" / "result-1.pth", weights_only=True).shape == (50, 25)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_corrupt_deploy_folder_is_one_line(setup, tmp_path, capsys):
    video, audio = write_clip(tmp_path, 20)
    broken = tmp_path / "deploy"
    shutil.copytree(setup[0] / "deploy", broken)
    clip = ["--deploy", str(broken), "--video", str(video), "--audio", str(audio),
            "--out-dir", str(tmp_path / "o")]
    (broken / "generator.onnx").write_bytes(b"not a model")
    assert main(clip) == 2
    assert "generator.onnx: not a loadable ONNX model" in _one_error_line(capsys)
    (broken / "network_info.json").write_text('{"fps": 25,\n')
    assert main(clip) == 2
    assert "network_info.json: not valid JSON" in _one_error_line(capsys)


def test_stage_infer_turns_bad_clips_into_one_line(setup, tmp_path, capsys):
    shutil.copytree(setup[0] / "deploy", tmp_path / "t" / "deploy")
    video, audio = write_clip(tmp_path, 50)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 4096)
    short = tmp_path / "short.wav"
    sf.write(str(short), np.zeros(4410), 44100)  # 0.1 s for 2 s of video
    stage = ["infer", "--config", str(ROOT / "configs" / "stages" / "tiny.yaml"), f"runs_dir={tmp_path}",
             "name=t", "infer.render=false"]
    assert stages_main([*stage, f"infer.video={garbage}", f"infer.audio={audio}"]) == 2
    assert "garbage.mp4" in _one_error_line(capsys)
    assert stages_main([*stage, f"infer.video={video}", f"infer.audio={short}"]) == 2
    assert "short.wav: audio too short" in _one_error_line(capsys)


def test_a_standard_751_frame_clip_gives_the_750_rows_the_evaluation_scores(setup, tmp_path):
    video, audio = write_clip(tmp_path, 751, size=32)
    backend = DeployBackend(setup[0] / "deploy")
    info = infer_clip(backend, video, audio, tmp_path / "o", samples=1, render=False)
    assert info["frames"] == 750 and info["video_frames"] == 751
    assert torch.load(tmp_path / "o" / "result-0.pth", weights_only=True).shape == (750, 25)


def test_out_naming_a_file_is_refused_before_any_work(setup, tmp_path, capsys):
    video, audio = write_clip(tmp_path, 20)
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    assert main(["--deploy", str(setup[0] / "deploy"), "--video", str(video), "--audio", str(audio),
                 "--out-dir", str(taken)]) == 2
    assert f"--out-dir {taken}: is a file" in _one_error_line(capsys) and taken.read_text() == "keep me"


@pytest.mark.parametrize("flag", ["--samples", "--chunk"])
def test_a_count_below_one_is_refused(setup, tmp_path, capsys, flag):
    video, audio = write_clip(tmp_path, 20)
    assert main(["--deploy", str(setup[0] / "deploy"), "--video", str(video), "--audio", str(audio),
                 "--out-dir", str(tmp_path / "o"), flag, "-2"]) == 2
    assert f"{flag} -2: must be at least 1" in _one_error_line(capsys)


def test_a_truncated_clip_is_an_error_naming_it(setup, tmp_path, capsys):
    video = write_truncated_clip(tmp_path / "cut.mp4", 60)
    _, audio = write_clip(tmp_path, 60)
    assert main(["--deploy", str(setup[0] / "deploy"), "--video", str(video), "--audio", str(audio),
                 "--out-dir", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys)
    assert f"{video}: " in line and ("truncated" in line or "cannot decode frame" in line), line
    assert not (tmp_path / "o" / "result-0.pth").exists()


def test_a_reused_out_folder_keeps_no_outputs_of_the_previous_run(setup, tmp_path):
    video, audio = write_clip(tmp_path, 20)
    out = tmp_path / "o"
    (out / "viz").mkdir(parents=True)
    for old in ("result-7.pth", "result-7.csv", "viz/face.mp4"):
        (out / old).write_text("old run")
    (out / "notes.txt").write_text("mine")
    infer_clip(DeployBackend(setup[0] / "deploy"), video, audio, out, samples=2, render=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "info.json", "notes.txt", "result-0-constrained.csv", "result-0.csv", "result-0.pth",
        "result-1-constrained.csv", "result-1.csv", "result-1.pth"]


def test_raw_results_for_evaluation_and_a_constrained_csv_for_export(setup, tmp_path):
    video, audio = write_clip(tmp_path, 20)
    backend = DeployBackend(setup[0] / "deploy")
    info = infer_clip(backend, video, audio, tmp_path / "o", samples=1, render=False)
    raw = torch.load(tmp_path / "o" / "result-0.pth", weights_only=True).numpy()
    constrained = np.loadtxt(tmp_path / "o" / "result-0-constrained.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(constrained, L.constrained_attributes(raw), atol=1e-5)
    assert info["constrained"] == ["result-0-constrained.csv"]
