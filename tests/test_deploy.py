"""Deployment: ONNX export of the generator and both backbones, parity with PyTorch (the same noise
gives the same samples as REGNN.sample), the numpy helpers equal to the PyTorch ones, .pth writing."""

import json

import numpy as np
import pytest
import torch
from helpers.deploy_data import FEATURES, ROOT, tiny_checkpoint

from features.config import FeatureConfig
from react.config import load_config
from react.reaction.contract import sample
from react.reaction.data.dyadic import window_starts as torch_window_starts
from react.reaction.deploy.export import export_deploy, main
from react.reaction.deploy.networks import build_networks
from react.reaction.deploy.runtime import INFO, DeployBackend, blend, scale_noise, window_starts
from react.reaction.generation import blend_windows
from react.utils.pth import save_pth


@pytest.fixture(scope="module")
def features():
    return load_config(FEATURES, ["split=all", "type=all", "data.root=."], schema=FeatureConfig)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, features):
    folder = tmp_path_factory.mktemp("deploy")
    nets = build_networks(tiny_checkpoint(folder / "ckpt"), features)
    info = export_deploy(nets, folder / "deploy", iters=0)
    return folder / "deploy", nets, info


def test_folder_describes_every_network_and_matches_pytorch(deployed):
    folder, _, info = deployed
    assert json.loads((folder / INFO).read_text()) == info
    assert (folder / "README.md").is_file() and info["format"] == "onnx"
    assert {info[k] for k in ("fps", "window", "stride", "samples", "nodes")} >= {25, 50, 10}
    for name in ("generator", "video", "audio"):
        net = info["networks"][name]
        assert (folder / net["file"]).is_file() and net["parity_max_abs"] < 1e-4, (
            name,
            net["parity_max_abs"],
        )
    assert info["networks"]["video"]["weights"] == {"weights": "random", "seed": 0}
    assert info["networks"]["generator"]["weights"]["sha256"].startswith("sha256:")
    assert info["networks"]["generator"]["inputs"]["noise"] == ["windows", "samples", 25, 50]


def test_same_noise_gives_the_samples_of_regnn_sample(deployed):
    folder, nets, _ = deployed
    model, backend = nets.model, DeployBackend(folder)
    gen = torch.Generator().manual_seed(3)
    video, audio = torch.randn(4, 50, 64, generator=gen), torch.randn(4, 50, 32, generator=gen)
    expected = sample(model, {"video": video, "audio": audio}, 10, torch.Generator().manual_seed(7))
    z = torch.randn((4, 10, 25, 50), generator=torch.Generator().manual_seed(7)).numpy()
    noise = scale_noise(z, {"std": model.noise_std, "clip": model.noise_clip, "max": model.noise_max})
    got = backend.generate(video.numpy(), audio.numpy(), noise)
    assert np.abs(got - expected.numpy()).max() < 1e-4
    assert np.abs(got[:, 0] - got[:, 1]).max() > 1e-3  # different noise, different samples


@pytest.mark.parametrize(
    "noise",
    [
        {"std": 0.3, "clip": 0.0, "max": 0.0},
        {"std": 0.1, "clip": 1.0, "max": 0.0},
        {"std": 0.1, "clip": 0.0, "max": 2.5},
    ],
)
def test_numpy_noise_windows_and_blend_equal_pytorch(deployed, noise):
    model = deployed[1].model
    model.noise_std, model.noise_clip, model.noise_max = noise["std"], noise["clip"], noise["max"]
    z = torch.randn((3, 4, 25, 50), generator=torch.Generator().manual_seed(1))
    expected = model.draw_noise(3, 4, torch.Generator().manual_seed(1))
    assert np.allclose(scale_noise(z.numpy(), noise), expected.numpy(), atol=1e-6)
    for total in (50, 51, 750, 1234):
        starts = window_starts(total, 50, 25)
        assert starts.tolist() == torch_window_starts(total, 50, 25).tolist()
        windows = torch.randn(2, len(starts), 50, 25)
        assert np.allclose(
            blend(windows.numpy(), starts, total),
            blend_windows(windows, torch.from_numpy(starts), total).numpy(),
            atol=1e-5,
        )


def test_pth_without_torch_loads_as_a_tensor(tmp_path):
    values = np.random.default_rng(0).standard_normal((37, 25)).astype(np.float32)
    save_pth(values, tmp_path / "result-0.pth")
    loaded = torch.load(tmp_path / "result-0.pth", weights_only=True)
    assert isinstance(loaded, torch.Tensor) and loaded.dtype == torch.float32
    assert np.array_equal(loaded.numpy(), values)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert (
        main(["--checkpoint", str(tmp_path / "none"), "--features", str(FEATURES),
              "--out-dir", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "none" in err and len(err.strip().splitlines()) == 1


def test_folder_is_named_in_its_readme_and_readable_by_others(deployed):
    from react.utils.io import UMASK

    folder = deployed[0]
    readme = (folder / "README.md").read_text()
    assert f"--deploy {folder.name} " in readme and "--deploy ." not in readme
    assert folder.stat().st_mode & 0o777 == 0o777 & ~UMASK


def test_a_checkpoint_trained_on_mars_deploys_at_30_fps(tmp_path, features):
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_synthetic_react import generate_mars

    mars = generate_mars(tmp_path / "mars", sessions=3, recordings=1, min_frames=56, max_frames=60, seed=3,
                         media=False)
    nets = build_networks(tiny_checkpoint(tmp_path / "ck", mars), features)  # layout auto, data.root "."
    assert nets.info["fps"] == 30
