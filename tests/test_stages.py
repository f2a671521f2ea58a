"""Stages over the one config system: base config + overrides, each stage finds the previous one
by run name with a one-line error when it has not run, and `all` chains the four on raw media."""

import json
import sys

import pytest
import torch
from helpers.features_data import react_dataset

from react.config import ConfigError
from react.reaction.data import mars_layout as M
from react.reaction.stages import default_clip, feature_config, is_done, load_stages_config, main, record_done

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "stages" / "tiny.yaml"
sys.path.insert(0, str(ROOT / "scripts"))
import make_synthetic_react as gen  # noqa: E402


def test_stage_config_layers_and_errors(tmp_path, capsys):
    cfg = load_stages_config(TINY, ["name=x", "train.set.train.epochs=1", "deploy.inverse_iters=5"])
    assert cfg.train.set == {"train": {"epochs": 1, "val_every": 2, "ckpt_every": 2}}
    assert cfg.deploy.inverse_iters == 5
    assert cfg.preproc.config == str(ROOT / "configs" / "features_tiny.yaml")  # relative to tiny.yaml
    with pytest.raises(ConfigError, match="deploy.nope"):
        load_stages_config(TINY, ["deploy.nope=1"])
    assert main(["deploy", "--config", str(TINY), f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "preproc/features.yaml" in err and "run the preproc stage" in err
    assert not any(tmp_path.iterdir())  # a failed call leaves no run folder with only stages.yaml


def test_paths_in_a_stage_config_are_relative_to_its_file(tmp_path, monkeypatch):
    (tmp_path / "project" / "stages").mkdir(parents=True)
    (tmp_path / "project" / "base.yaml").write_text("name: b\ndata: {root: data/react}\nruns_dir: runs\n")
    (tmp_path / "project" / "stages" / "mine.yaml").write_text(
        "base: ../base.yaml\npreproc: {config: ../features.yaml}\ntrain: {config: /abs/regnn.yaml}\n"
        "infer: {video: clips/me.mp4}\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_stages_config("project/stages/mine.yaml", ["infer.audio=me.wav"])
    project = tmp_path / "project"
    assert (cfg.data.root, cfg.runs_dir) == (str(project / "data" / "react"), str(project / "runs"))
    assert (cfg.preproc.config, cfg.train.config) == (str(project / "features.yaml"), "/abs/regnn.yaml")
    assert cfg.infer.video == str(project / "stages" / "clips" / "me.mp4")
    assert cfg.infer.audio == "me.wav"  # the command line's paths stay relative to the working directory
    cfg = load_stages_config("project/stages/mine.yaml", ["data.root=here"])
    assert cfg.data.root == "here" and cfg.infer.audio == ""


@pytest.mark.slow
def test_all_stages_on_raw_media(tmp_path_factory, tmp_path):
    data = react_dataset(tmp_path_factory)
    overrides = [
        f"runs_dir={tmp_path}",
        "name=t",
        f"data.root={data}",
        f"preproc.config={ROOT}/configs/features_tiny.yaml",
        f"train.config={ROOT}/configs/regnn_tiny.yaml",
        "train.set.train.epochs=1",
        "train.set.val.samples=0",
        "train.set.generate.metrics=false",
        "deploy.inverse_iters=10",
        "deploy.atol=0.01",
        "infer.samples=2",
    ]
    assert main(["all", "--config", str(TINY), *overrides]) == 0
    run = tmp_path / "t"
    assert json.loads((run / "preproc" / "summary.json").read_text())["video_dim"] == 64
    assert (run / "train" / "checkpoints" / "best" / "state.pt").is_file()
    info = json.loads((run / "deploy" / "network_info.json").read_text())
    assert all(n["parity_max_abs"] < 0.01 for n in info["networks"].values())
    assert torch.load(run / "infer" / "result-1.pth", weights_only=True).shape == (760, 25)
    assert (run / "infer" / "viz" / "face.mp4").is_file() and (run / "stages.yaml").is_file()
    outputs = [run / "deploy" / "generator.onnx", run / "infer" / "result-1.pth"]
    stamps = [p.stat().st_mtime_ns for p in outputs]
    assert main(["all", "--config", str(TINY), *overrides]) == 0  # everything done: nothing redone
    assert [p.stat().st_mtime_ns for p in outputs] == stamps
    # new settings: redone (without the pictures, drawn and checked above)
    rerun = [*overrides[:-1], "infer.samples=3", "infer.render=false"]
    assert main(["infer", "--config", str(TINY), *rerun]) == 0
    assert (run / "infer" / "result-2.pth").is_file()


def test_mars_data_gets_its_30_fps_and_its_own_default_clip(tmp_path):
    root = gen.generate_mars(tmp_path / "mars", sessions=3, recordings=1, min_frames=56, max_frames=60,
                             seed=3, media=False)
    cfg = load_stages_config(TINY, [f"data.root={root}", f"runs_dir={tmp_path}"])
    features = feature_config(cfg)
    assert (features.layout, features.fps, features.frames) == ("mars", M.FPS, 0)  # what deploy records
    clip = M.read_split(root, "test").clips[0]
    assert default_clip(cfg) == (M.file_path(root, "test", "video-face-crop", clip),
                                 M.file_path(root, "test", "audio", clip))


def test_a_stage_whose_output_was_corrupted_or_deleted_is_not_up_to_date(tmp_path):
    run, stamp = tmp_path / "deploy", {"settings": {"opset": 17}, "inputs": []}
    (run / "sub").mkdir(parents=True)
    (run / "generator.onnx").write_bytes(b"model")
    (run / "sub" / "x.json").write_text("{}")
    record_done(run, stamp)
    assert is_done(run, stamp) and not is_done(run, {**stamp, "settings": {"opset": 18}})
    (run / "generator.onnx").write_bytes(b"garbage")
    assert not is_done(run, stamp)
    record_done(run, stamp)
    (run / "sub" / "x.json").unlink()
    assert not is_done(run, stamp)
