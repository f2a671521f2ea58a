"""Real weights load through the user's path: a saved random model is read back and gives its own features."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from helpers.features_data import FRAMES, TINY, copy_media, react_dataset, tiny_cfg

from features.align import align_to_frames
from features.audio import WaveReader, ssl_frame_times
from features.extract import extract, main
from features.video import FrameReader
from react.pretrained import pretrained_ssl_encoder
from react.reaction.data.react_layout import audio_path, feature_path, read_split, video_path

BACKBONE = "swin_tiny_patch4_window7_224"
TINY_SWIN = {"embed_dim": 32, "depths": [1, 1], "num_heads": [1, 2], "patch_size": 8}  # as features_tiny.yaml


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Only the test split matters here: one pair."""
    return react_dataset(tmp_path_factory)


def _swin(seed: int, crop: int, num_classes: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(BACKBONE, pretrained=False, num_classes=num_classes, img_size=crop,
                             **TINY_SWIN).eval()


def _expected_video(model: torch.nn.Module, data: Path, clip: str, resize: int, crop: int) -> torch.Tensor:
    """The reference: decode the first frames independently and run the model by hand."""
    reader = FrameReader(resize, crop, FRAMES)
    frames = torch.cat(list(reader(_job(data, clip, video_path(data, "test", clip)))))
    x = frames.permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode():
        return model((x - 0.5) / 0.5)


def _job(data: Path, clip: str, source: Path):
    from features.runner import Job

    return Job(clip, source, Path("unused.pth"), video_path(data, "test", clip), FRAMES, data)


def test_video_checkpoint_file_with_classifier_loads(data, tmp_path):
    trained = _swin(seed=11, crop=112, num_classes=7)  # a checkpoint of a classifier: its head is dropped
    ckpt = tmp_path / "swin.pth"
    torch.save({"state_dict": trained.state_dict()}, ckpt)
    out = tmp_path / "feats"
    reports = extract(tiny_cfg(data, out, "type=video", "video.random_init=false", f"video.weights={ckpt}"))
    assert not reports["test video"].failed
    trained.reset_classifier(0)
    clip = read_split(data, "test").clips[0]
    got = torch.load(feature_path(out, "test", "video", clip))
    torch.testing.assert_close(got, _expected_video(trained, data, clip, 128, 112), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got, _expected_video(_swin(seed=12, crop=112), data, clip, 128, 112), atol=1e-3)
    side = json.loads(feature_path(out, "test", "video", clip).with_suffix(".json").read_text())
    assert side["weights"] == "sha256:" + hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert "seed" not in side


def test_video_hf_directory_loads(data, tmp_path):
    trained = _swin(seed=21, crop=224)  # with the default preprocessing: 224 px crops of 256 px frames
    hf_dir = tmp_path / "swin_hf"
    timm.models.save_for_hf(trained, str(hf_dir), safe_serialization=True)
    out = tmp_path / "feats"
    cfg = tiny_cfg(data, out, "type=video", "video.random_init=false", f"video.weights={hf_dir}", config=None)
    reports = extract(cfg)
    assert not reports["test video"].failed
    clip = read_split(data, "test").clips[1]
    torch.testing.assert_close(torch.load(feature_path(out, "test", "video", clip)),
                               _expected_video(trained, data, clip, 256, 224), rtol=1e-4, atol=1e-5)


def test_checkpoint_of_another_architecture_is_a_clear_error(data, tmp_path, capsys):
    ckpt = tmp_path / "other.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model(BACKBONE, pretrained=False, num_classes=0, embed_dim=16, depths=[1],
                                 num_heads=[1], patch_size=16).state_dict(), ckpt)
    rc = main(["--split", "test", "--type", "video", "--data-dir", str(data), "--out-dir", str(tmp_path),
               "--weights", str(ckpt), "--config", str(TINY), "video.random_init=false"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{ckpt}: checkpoint does not fit" in err


def test_audio_hf_directory_loads(data, tmp_path):
    torch.manual_seed(31)
    trained = pretrained_ssl_encoder("wav2vec2", None, random_init=True).eval()
    hf_dir = tmp_path / "w2v"
    trained.save_pretrained(hf_dir)
    out = tmp_path / "feats"
    copy = copy_media(data, tmp_path / "data")
    reports = extract(tiny_cfg(copy, out, "type=audio", "audio.random_init=false", f"audio.weights={hf_dir}",
                               "audio.layers=[1,2]"))
    assert not reports["test audio"].failed
    clip = read_split(copy, "test").clips[0]
    cfg = tiny_cfg(copy, out, "type=audio")
    wave = next(iter(WaveReader(cfg)(_job(copy, clip, audio_path(copy, "test", clip)))))
    with torch.inference_mode():
        states = trained(wave, output_hidden_states=True).hidden_states
    hidden = (states[1][0] + states[2][0]) / 2
    expected = align_to_frames(hidden, ssl_frame_times(trained, len(hidden), 16000), FRAMES, 25)
    got = torch.load(feature_path(out, "test", "audio", clip))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert np.isclose(float(wave.std()), 1.0, atol=1e-3)  # normalised waveform
