"""TransVAE and BeLFusion through deployment (ONNX, parity with PyTorch, the contract in the info
file), raw-clip inference and the online mode, with tiny random-weight checkpoints on the tiny
feature backbones' sizes."""

import json

import numpy as np
import pytest
import torch
from helpers.deploy_data import AUDIO_DIM, FEATURES, VIDEO_DIM, tiny_generator_checkpoint, write_clip

from react.engine import load_checkpoint
from react.reaction.contract import CONDITIONS
from react.reaction.deploy.export import main as deploy
from react.reaction.deploy.runtime import INFO, DeployBackend, draw_noise
from react.reaction.infer import main as infer

DIMS = [f"model.video_dim={VIDEO_DIM}", f"model.audio_dim={AUDIO_DIM}"]
CHECKPOINTS = {  # config, overrides, (inputs, causal, feedback) the info file must record
    "transvae_online": ("transvae_online.yaml", DIMS, (["video", "audio"], True, 8)),
    "belfusion": ("belfusion.yaml", [], (["speaker"], False, 0)),
}


@pytest.fixture(scope="module", params=sorted(CHECKPOINTS))
def deployed(request, tmp_path_factory):
    """``(name, checkpoint, deploy folder)``: a tiny random-weight model deployed with react deploy."""
    config, overrides, _ = CHECKPOINTS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    checkpoint = tiny_generator_checkpoint(folder / "run", config, "deterministic=true", *overrides)
    torch.set_num_threads(1)
    assert deploy(["--checkpoint", str(checkpoint), "--features", str(FEATURES),
                   "--out-dir", str(folder / "deploy")]) == 0
    return request.param, checkpoint, folder / "deploy"


def test_the_deployed_generator_is_the_model_on_the_same_noise(deployed):
    name, checkpoint, folder = deployed
    info = json.loads((folder / INFO).read_text())
    inputs, causal, feedback = CHECKPOINTS[name][2]
    assert (info["inputs"], info["causal"], info["feedback"]) == (inputs, causal, feedback)
    generator = info["networks"]["generator"]
    assert generator["format"] == "onnx" and generator["parity_max_abs"] < 1e-4
    _, model, _ = load_checkpoint(checkpoint)
    model.eval()
    rng = np.random.default_rng(1)
    dims = {"video": VIDEO_DIM, "audio": AUDIO_DIM, "speaker": 25}
    conditions = {k: rng.standard_normal((2, model.frames, dims[k])).astype(np.float32) for k in inputs}
    assert set(conditions) <= set(CONDITIONS)
    arrays = list(conditions.values())
    if feedback:
        arrays.append(rng.standard_normal((2, 3, feedback, 25)).astype(np.float32))
    noise = draw_noise(info, 2, 3, seed=4)
    got = DeployBackend(folder).generate(*arrays, noise)
    torch_conditions = {k: torch.from_numpy(v) for k, v in conditions.items()}
    if feedback:
        torch_conditions["past"] = torch.from_numpy(arrays[-1])
    with torch.no_grad():
        expected = model.generate(torch_conditions, torch.from_numpy(noise)).numpy()
    assert got.shape == (2, 3, model.frames, 25) and np.abs(got - expected).max() < 1e-4


def test_raw_clip_inference_offline_and_online(deployed, tmp_path, capsys):
    """TransVAE online reacts to a raw clip (offline and frame by frame); BeLFusion, which reads the
    speaker's facial attributes, is refused in one line without them."""
    name, _, folder = deployed
    video, audio = write_clip(tmp_path, 40)
    args = ["--deploy", str(folder), "--video", str(video), "--audio", str(audio), "--no-render",
            "--samples", "2"]
    if name == "belfusion":
        assert infer([*args, "--out-dir", str(tmp_path / "off")]) == 2
        assert "reads the speaker's facial attributes" in capsys.readouterr().err
        return
    for mode, extra in (("off", []), ("on", ["--online"])):
        assert infer([*args, "--out-dir", str(tmp_path / mode), *extra]) == 0
        results = sorted((tmp_path / mode).glob("result-?.csv"))
        assert len(results) == 2 and len(list((tmp_path / mode).glob("result-?-constrained.csv"))) == 2
        values = np.loadtxt(results[0], delimiter=",", skiprows=1)
        assert values.shape[1] == 25 and np.isfinite(values).all()
