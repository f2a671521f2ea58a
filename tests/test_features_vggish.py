"""VGGish audio features: the log-mel front end as VGGish defines it, the architecture and its
torchvggish key names, the weight loader, and extraction onto the video frame grid with sidecars."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.features_data import FRAMES, react_dataset, tiny_cfg
from omegaconf import OmegaConf

from features import vggish as fv
from features.extract import extract
from react.models.vggish import TINY, VGGish
from react.pretrained import load_vggish_weights, pretrained_vggish
from react.reaction.data.react_layout import feature_path, read_split


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return react_dataset(tmp_path_factory)


def test_mel_matrix_and_log_mel_front_end():
    weights = fv.mel_matrix(257)
    assert weights.shape == (257, 64) and (weights[0] == 0).all() and weights.max() <= 1.0
    hz = np.linspace(0, 8000, 257)
    assert hz[weights.sum(1) > 0].min() > 125 and hz[weights.sum(1) > 0].max() < 7500
    t = np.arange(16000) / 16000
    logmel = fv.log_mel(np.sin(2 * np.pi * 1000 * t))
    assert logmel.shape == (1 + (16000 - 400) // 160, 64)  # 25 ms frames every 10 ms, no padding
    low, high = fv.hertz_to_mel(125), fv.hertz_to_mel(7500)
    centre_mels = low + np.arange(1, 65) * (high - low) / 65
    assert abs(centre_mels[logmel.mean(0).argmax()] - fv.hertz_to_mel(1000)) < 60  # the 1 kHz band lights up
    assert np.allclose(fv.log_mel(np.zeros(16000)), np.log(0.01))


def test_examples_are_centred_on_their_times():
    logmel = np.arange(300, dtype=np.float64)[:, None].repeat(64, 1)  # row r holds r
    ex = fv.examples(logmel, count=4, hop_s=0.5)
    assert ex.shape == (4, 96, 64)
    assert ex[0, 48, 0] == 0 and ex[1, 48, 0] == 50 and ex[2, 48, 0] == 100  # row at 0, 0.5, 1.0 s
    assert ex[0, 0, 0] == pytest.approx(np.log(0.01))  # padded with silence before the start


def test_architecture_matches_torchvggish():
    model = VGGish()
    assert sum(p.numel() for p in model.parameters()) == 72_141_184
    names = {k.rsplit(".", 1)[0] for k in model.state_dict()}
    assert names == {f"features.{i}" for i in (0, 3, 6, 8, 11, 13)} | {f"embeddings.{i}" for i in (0, 2, 4)}
    tiny = VGGish(**TINY)
    out = tiny(torch.randn(3, 1, 96, 64))
    assert out.shape == (3, 128) and (out >= 0).all()
    with pytest.raises(ValueError, match="log-mel examples"):
        tiny(torch.randn(3, 1, 64, 96))


def test_weight_loader(tmp_path):
    source = VGGish(**TINY)
    state = {**source.state_dict(), "pproc._pca_means": torch.zeros(128, 1)}  # PCA entries are ignored
    torch.save(state, tmp_path / "vggish.pth")
    loaded = load_vggish_weights(VGGish(**TINY), tmp_path / "vggish.pth")
    x = torch.randn(2, 1, 96, 64)
    torch.testing.assert_close(loaded(x), source(x))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="torchvggish layout"):
        load_vggish_weights(VGGish(**TINY), tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="random_init"):
        pretrained_vggish(tmp_path / "missing.pth", random_init=False)


def test_postprocess_is_the_release_pca_and_8_bit_quantisation(tmp_path):
    torch.manual_seed(0)
    source = VGGish(**TINY)
    matrix, means = 20 * torch.randn(128, 128), torch.rand(128) / 10
    state = {**source.state_dict(), "pproc._pca_matrix": matrix.double(), "pproc._pca_means": means}
    torch.save(state, tmp_path / "vggish.pth")
    post = load_vggish_weights(VGGish(**TINY, postprocess=True), tmp_path / "vggish.pth")
    x = torch.randn(4, 1, 96, 64)
    whitened = (source(x) - means[None]) @ matrix.T  # M (e - mean), per example
    levels = torch.floor((whitened.clamp(-2, 2) + 2) * (255 / 4))  # TF: uint8((x + 2) * 255 / 4)
    assert levels.min() == 0 and levels.max() == 255  # both clipping ends are exercised
    torch.testing.assert_close(post(x), levels * (4 / 255) + (4 / 512 - 2))  # YouTube-8M's Dequantize
    torch.save(source.state_dict(), tmp_path / "no_pca.pth")
    with pytest.raises(ValueError, match="PCA parameters"):
        load_vggish_weights(VGGish(**TINY, postprocess=True), tmp_path / "no_pca.pth")
    # the release's separate PCA file (vggish_pca_params-*.pth, unprefixed keys) beside the weights
    pca = tmp_path / "pca.pth"
    torch.save({"pca_eigen_vectors": matrix.double(), "pca_means": means.double()[:, None]}, pca)
    separate = load_vggish_weights(VGGish(**TINY, postprocess=True), tmp_path / "no_pca.pth", pca)
    torch.testing.assert_close(separate(x), post(x))
    random = pretrained_vggish(None, random_init=True, postprocess=True)  # identity whitening, 8 bits
    pproc, random.pproc = random.pproc, None
    raw = random(x)
    random.pproc = pproc
    expected = ((raw.clamp(-2, 2) + 2) * 255 / 4).to(torch.uint8).float() * 4 / 255 + 4 / 512 - 2
    torch.testing.assert_close(random(x), expected)
    cfg = OmegaConf.create({"seed": 0, "audio": {"weights": "", "random_init": True, "vggish_hop_s": 0.04,
                                                 "vggish_postprocess": False, "vggish_pca": ""}})
    assert "postprocess" not in fv.describe(cfg, {})  # raw embeddings: the sidecars of before
    cfg.audio.vggish_postprocess = True
    assert fv.describe(cfg, {})["postprocess"] == "pca-uint8"
    cfg.audio.vggish_pca = str(tmp_path / "pca.pth")
    assert fv.describe(cfg, {})["pca"].startswith("sha256:")


def test_extraction_on_the_frame_grid_with_sidecars(data, tmp_path):
    cfg = tiny_cfg(data, tmp_path, "type=audio", "audio.kind=vggish", "audio.random_init=true",
                   "audio.vggish_hop_s=0.2", "audio.batch_size=16")
    reports = extract(cfg)
    assert not reports["test audio"].failed
    clip = read_split(data, "test").clips[0]
    features = torch.load(feature_path(tmp_path, "test", "audio", clip))
    assert features.shape == (FRAMES, 128) and torch.isfinite(features).all()
    side = json.loads(feature_path(tmp_path, "test", "audio", clip).with_suffix(".json").read_text())
    assert side["kind"] == "vggish" and side["backbone"] == "vggish" and side["weights"] == "random"
    assert side["hop_s"] == 0.2 and side["shape"] == [FRAMES, 128]
    assert not extract(cfg)["test audio"].done  # same settings: nothing to redo
