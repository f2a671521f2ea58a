"""Official REGNN checkpoints (``torch.save(model)`` of the release) run here, read without running
their code: a file pickled in the release's layout gives the official code's reactions; a
look-alike whose pickle would run a command is refused and the command never runs."""

import os
import sys

import pytest
import torch

from react.engine import CheckpointError, load_checkpoint
from react.engine.checkpoint import load_state
from react.reaction.deploy.graph import ReactionGenerator
from react.reaction.official_regnn import is_official
from react.reaction.official_regnn import main as convert_main
from tests.helpers import official_regnn as O

FRAMES = 10


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    model = O.official_model()
    path = tmp_path_factory.mktemp("official") / "mhp-epoch95-seed1.pth"
    O.save_official(model, path)
    return model, path


def inputs(windows: int = 4, samples: int = 3):
    gen = torch.Generator().manual_seed(5)
    video = torch.randn(windows, FRAMES, 12, generator=gen)
    audio = torch.randn(windows, FRAMES, 8, generator=gen)
    noise = torch.randn(windows, samples, 25, FRAMES, generator=gen)
    return video, audio, noise * (0.06**0.5 / noise.abs().amax((0, 2, 3), keepdim=True))


def official_reactions(model, video, audio, noise) -> torch.Tensor:
    """``(W, S, T, 25)``: the official inverse, one call per sample over all windows (its test)."""
    with torch.no_grad():
        return torch.stack([model.reactions(video, audio, noise[:, s]) for s in range(noise.shape[1])], 1)


def test_official_file_runs_as_the_official_code(official):
    model, path = official
    assert is_official(path) and "models.mhp" not in sys.modules  # recognised by content, nothing imported
    _, replica, cfg = load_checkpoint(path, task="regnn")
    assert cfg.model.cognitive.shared_topk and cfg.model.cognitive.edge_graph == "summed"
    assert cfg.model.perceptual.dim == 8 and not cfg.model.perceptual.project_audio
    assert cfg.data.num_frames == FRAMES and bool(replica.motor.norms[0].initialised)
    video, audio, noise = inputs()
    expected = official_reactions(model, video, audio, noise)
    with torch.no_grad():
        got = ReactionGenerator(replica, replica.inverse_iters, replica.inverse_tol)(video, audio, noise)
    assert (got - expected).abs().max() < 1e-5
    assert (expected[:, 0] - expected[:, 1]).abs().max() > 1e-3  # the samples differ: a real test


def test_conversion_to_this_projects_format(official, tmp_path, capsys):
    model, path = official
    assert convert_main(["--checkpoint", str(path), "--out-dir", str(tmp_path / "converted")]) == 0
    state = torch.load(tmp_path / "converted" / "state.pt", weights_only=True)  # plain tensors and values
    assert state["config"]["model"]["cognitive"]["shared_topk"]
    _, replica, _ = load_checkpoint(tmp_path / "converted", task="regnn")
    video, audio, noise = inputs()
    with torch.no_grad():
        got = ReactionGenerator(replica, 5, 1e-3)(video, audio, noise)
    assert (got - official_reactions(model, video, audio, noise)).abs().max() < 1e-5
    assert convert_main(["--checkpoint", str(tmp_path / "converted" / "state.pt"),
                         "--out-dir", str(tmp_path / "x")]) == 2
    assert "not an official REGNN checkpoint" in capsys.readouterr().err


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def look_alike(tmp_path):
    """An official-looking file (an MHP) whose pickle would run ``touch MARKER``."""
    model = O.official_model()
    model.no_inverse = Payload(tmp_path / "MARKER")
    path = tmp_path / "mhp-epoch95-seed1.pth"
    O.save_official(model, path)
    return path


def test_look_alike_is_refused_and_runs_nothing(tmp_path, capsys):
    from react.generate import main as generate_main
    from train import main as train_main

    path = look_alike(tmp_path)
    assert is_official(path)
    with pytest.raises(CheckpointError) as err:
        load_state(path)
    message = str(err.value)
    assert str(path) in message and "system" in message and "\n" not in message
    assert generate_main(["--checkpoint", str(path), "--pred-dir", str(tmp_path / "p")]) == 2
    assert train_main(["--config", "configs/regnn_official_tiny.yaml", "mode=test", f"checkpoint={path}",
                       f"out_dir={tmp_path / 'run'}"]) == 2
    assert convert_main(["--checkpoint", str(path), "--out-dir", str(tmp_path / "c")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(str(path) in line for line in errors)
    assert not (tmp_path / "MARKER").exists()


class CallsAnAllowedName:
    def __reduce__(self):  # a call of a function the release only names (MHP.cal_dist)
        return torch.nn.functional.mse_loss, (torch.zeros(1), torch.ones(1))


def test_a_call_of_a_named_function_is_refused(tmp_path):
    model = O.official_model()
    model.no_inverse = CallsAnAllowedName()
    path = tmp_path / "calls.pth"
    O.save_official(model, path)
    with pytest.raises(CheckpointError, match="calls.pth: refused.*not callable"):
        load_state(path)


def test_unknown_release_class_is_refused(tmp_path):
    model = O.official_model()
    model.extra = torch.nn.Bilinear(2, 2, 2)  # a torch class the release does not use
    path = tmp_path / "odd.pth"
    O.save_official(model, path)
    with pytest.raises(CheckpointError, match="Bilinear"):
        load_state(path)


def test_official_file_through_train_test_and_generate(tmp_path):
    from react.generate import main as generate_main
    from tests.helpers.regnn_data import AUDIO_DIM, VIDEO_DIM, synthetic_react, write_features
    from train import main as train_main

    data = synthetic_react(tmp_path / "data", pairs=2, eval_pairs=1, seed=1)
    write_features(data)
    model = O.official_model(video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM, frames=50)  # 6-d audio: projected
    path = tmp_path / "mhp-epoch95-seed1.pth"
    O.save_official(model, path)
    assert train_main(["--config", "configs/regnn_official_tiny.yaml", "mode=test", f"checkpoint={path}",
                       f"data.root={data}", f"out_dir={tmp_path / 'run'}", "generate.samples=2",
                       "generate.metrics=false"]) == 0
    assert "official REGNN checkpoint" in (tmp_path / "run" / "log.txt").read_text()
    assert generate_main(["--checkpoint", str(path), "--data-dir", str(data), "--pred-dir",
                          str(tmp_path / "pred"), "--samples", "2"]) == 0
    first = sorted((tmp_path / "run" / "pred").rglob("result-0.pth"))[0]
    again = tmp_path / "pred" / first.relative_to(tmp_path / "run" / "pred")
    torch.testing.assert_close(torch.load(first), torch.load(again))  # the same model either way


TINY_VIDEO = ["video.arch.embed_dim=32", "video.arch.depths=[1,1]", "video.arch.num_heads=[1,2]",
              "video.arch.patch_size=8", "video.resize=128", "video.crop=112"]


def test_official_file_deploys_with_the_official_features(official, tmp_path, capsys):
    """The export command of an official file with configs/features_official.yaml (backbones random
    and the Swin shrunk: the real-size export takes a minute): generator.onnx gives the official
    code's reactions for the same features and noise."""
    import onnxruntime

    from react.reaction.deploy.export import main as export_main

    model = O.official_model(video_dim=64, audio_dim=128, frames=FRAMES)  # the tiny Swin's 64-d features
    path = tmp_path / "mhp-epoch95-seed1.pth"
    O.save_official(model, path)
    out = tmp_path / "deploy"
    assert export_main(["--checkpoint", str(path), "--features", "configs/features_official.yaml",
                        "--out-dir", str(out), "video.random_init=true", "audio.random_init=true",
                        *TINY_VIDEO]) == 0
    info = (out / "network_info.json").read_text()
    assert '"backbone": "vggish"' in info and '"postprocess": "pca-uint8"' in info
    assert '"row_stride": 640' in info  # one row per 0.04 s example
    gen = torch.Generator().manual_seed(2)
    video, audio = torch.randn(5, FRAMES, 64, generator=gen), torch.randn(5, FRAMES, 128, generator=gen)
    noise = torch.randn(5, 3, 25, FRAMES, generator=gen)
    noise = noise * (0.06**0.5 / noise.abs().amax((0, 2, 3), keepdim=True))
    session = onnxruntime.InferenceSession(str(out / "generator.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"video": video.numpy(), "audio": audio.numpy(), "noise": noise.numpy()})[0]
    assert abs(got - official_reactions(model, video, audio, noise).numpy()).max() < 1e-4


def test_vggish_deploy_rows_are_the_feature_extractors_examples():
    from omegaconf import OmegaConf

    from features import vggish as fv
    from react.reaction.deploy.networks import vggish_backbone

    cfg = OmegaConf.create({"seed": 0, "audio": {"weights": "", "random_init": True, "vggish_hop_s": 0.04,
                                                 "vggish_postprocess": False, "vggish_pca": "",
                                                 "sample_rate": 16000}})
    backbone = vggish_backbone(cfg)
    wave = torch.randn(1, 16000 * 2, generator=torch.Generator().manual_seed(0)).numpy() * 0.1
    with torch.no_grad():
        rows = backbone(torch.from_numpy(wave))[0]
        examples = fv.clip_examples(wave[0], 50, 25, 16000, 0.04)  # 2 s at 25 fps: one per frame
        expected = backbone.vggish(examples)
    # the extractor adds one example at 2.0 s (clamped to the end); the graph stops at the last full one
    assert rows.shape == (50, 128) and len(expected) == 51
    torch.testing.assert_close(rows, expected[:50], atol=1e-4, rtol=1e-3)


def test_a_cuda_saved_official_file_loads_on_the_cpu(official, tmp_path, monkeypatch):
    model, _ = official
    path = tmp_path / "cuda.pth"
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")  # as saved on a GPU
    O.save_official(model, path)
    monkeypatch.undo()
    if not torch.cuda.is_available():
        with O.official_modules(), pytest.raises(RuntimeError, match="CUDA"):  # it does ask for a GPU
            torch.load(path, weights_only=False)  # (the stand-in classes of this test: nothing foreign)
    _, replica, _ = load_checkpoint(path, task="regnn")
    video, audio, noise = inputs()
    with torch.no_grad():
        got = ReactionGenerator(replica, 5, 1e-3)(video, audio, noise)
    assert (got - official_reactions(model, video, audio, noise)).abs().max() < 1e-5
