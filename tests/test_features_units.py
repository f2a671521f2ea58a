"""Feature-extraction building blocks against hand-computed values, and config errors."""

import hashlib

import numpy as np
import pytest
import torch
from helpers.features_data import tiny_cfg
from transformers import Wav2Vec2Config, Wav2Vec2Model

from features.align import align_to_frames
from features.audio import fit_to_frames, ssl_frame_times
from features.extract import parse_args
from features.sidecar import is_up_to_date, weights_fingerprint, write_sidecar
from features.video import VideoExtractor, resize_and_crop
from react.config import ConfigError


def test_align_averages_rows_per_frame_interval():
    times = torch.arange(10) * 0.02 + 0.01  # a 50 Hz source: 0.01, 0.03, ..., 0.19 s
    values = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 2)
    out = align_to_frames(values, times, num_frames=5, fps=25)
    # frame i covers [0.04 i - 0.02, 0.04 i + 0.02): {0}, {1, 2}, {3, 4}, {5, 6}, {7, 8} (9 is past frame 4)
    assert torch.equal(out[:, 0], torch.tensor([0.0, 1.5, 3.5, 5.5, 7.5]))
    assert out.shape == (5, 2)


def test_align_fills_frames_without_rows_from_the_nearest_row():
    times = torch.tensor([0.0, 0.1, 0.2])  # 10 Hz: slower than the frames
    values = torch.tensor([[1.0], [2.0], [3.0]])
    out = align_to_frames(values, times, num_frames=8, fps=25)  # frames at 0, .04, .08, ..., .28 s
    # rows land in frames 0, 3 (0.1 s * 25 = 2.5 rounds up) and 5; the others copy the nearest row in time
    assert out[:, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    with pytest.raises(ValueError, match="expected values T x D"):
        align_to_frames(values[:, 0], times, 8, 25)


def test_resize_and_crop():
    frame = np.arange(256 * 256 * 3, dtype=np.uint32).reshape(256, 256, 3).astype(np.uint8)
    assert np.array_equal(resize_and_crop(frame, 256, 224), frame[16:240, 16:240])  # no resize needed
    wide = np.full((300, 400, 3), 77, np.uint8)
    wide[:, :200] = 10  # left half dark: after scaling to 256 x 341 and cropping cols 58..282 half is dark
    out = resize_and_crop(wide, 256, 224)
    assert out.shape == (224, 224, 3)
    assert (out[:, :100] == 10).all() and (out[:, 120:] == 77).all()


def test_normalise_maps_uint8_to_minus_one_one(tmp_path):
    extractor = VideoExtractor(tiny_cfg(tmp_path, tmp_path, "type=video"))  # the model is not built yet
    assert extractor.model is None
    batch = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 1, 1, 3)
    out = extractor.normalise(batch)
    assert out.shape == (1, 3, 1, 1)
    torch.testing.assert_close(out.flatten(), torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))


def test_fit_to_frames_cuts_pads_and_rejects_truncated_audio():
    sr = 16000
    assert len(fit_to_frames(np.ones(2 * sr, np.float32), 25, 25, sr, 0.1)) == sr  # cut to 1 s
    padded = fit_to_frames(np.ones(int(0.95 * sr), np.float32), 25, 25, sr, 0.1)
    assert len(padded) == sr and padded[-1] == 0 and padded[0] == 1
    with pytest.raises(ValueError, match=r"\(truncated\?\): 0.50 s, but 25 frames at 25 fps need 1.00 s"):
        fit_to_frames(np.ones(sr // 2, np.float32), 25, 25, sr, 0.1)


def test_ssl_frame_times_of_wav2vec2():
    model = Wav2Vec2Model(Wav2Vec2Config(hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                         intermediate_size=8, conv_dim=(8,) * 7, num_conv_pos_embeddings=4,
                                         num_conv_pos_embedding_groups=2))
    times = ssl_frame_times(model, 3, 16000)  # receptive field 400 samples, hop 320 (20 ms)
    torch.testing.assert_close(times, torch.tensor([199.5, 519.5, 839.5], dtype=torch.float64) / 16000)
    with torch.inference_mode():
        rows = model(torch.zeros(1, 16000)).last_hidden_state.shape[1]
    assert rows == (16000 - 400) // 320 + 1


def test_weights_fingerprint_of_file_and_directory(tmp_path):
    ckpt = tmp_path / "w.pth"
    ckpt.write_bytes(b"weights")
    assert weights_fingerprint(ckpt) == "sha256:" + hashlib.sha256(b"weights").hexdigest()
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"a")
    (folder / "README.md").write_text("ignored")
    first = weights_fingerprint(folder)
    (folder / "README.md").write_text("changed")
    assert weights_fingerprint(folder) == first
    (folder / "model.safetensors").write_bytes(b"b")
    assert weights_fingerprint(folder) != first
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no weight or config files"):
        weights_fingerprint(tmp_path / "empty")


def test_up_to_date_needs_features_and_matching_sidecar(tmp_path):
    target = tmp_path / "clip.pth"
    settings = {"backbone": "b", "layers": (1, 2)}
    assert not is_up_to_date(target, settings)
    torch.save(torch.zeros(2, 3), target)
    assert not is_up_to_date(target, settings)  # no sidecar
    write_sidecar(target, settings, (2, 3), "x.mp4")
    assert is_up_to_date(target, settings)
    assert not is_up_to_date(target, {**settings, "layers": (1,)})
    target.with_suffix(".json").write_text("{not json")
    assert not is_up_to_date(target, settings)


@pytest.mark.parametrize("argv, message", [
    (["--type", "audio", "audio.kind=mfcc"], "audio.kind='mfcc' is not valid"),
    (["--type", "video", "video.colour=1"], "unknown config key 'video.colour'"),
    (["--type", "all", "--weights", "w.pth"], "need --type video or --type audio"),
    (["--type", "video", "video.crop=300"], "video.crop=300 exceeds video.resize=256"),
    (["--type", "audio", "audio.backbone=whisper"], "audio.backbone='whisper' is not valid"),
    (["--type", "video", "frames=-1"], "frames=-1 must be >= 0"),
])
def test_bad_options_are_config_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        parse_args(["--split", "test", "--data-dir", "d"] + argv)


def test_flags_map_onto_the_chosen_type():
    cfg = parse_args(["--split", "val", "--type", "audio", "--data-dir", "d", "--backbone", "hubert",
                      "--weights", "w", "--batch-size", "2", "--workers", "0", "audio.layers=[3]"])
    assert (cfg.audio.backbone, cfg.audio.weights, cfg.audio.batch_size) == ("hubert", "w", 2)
    assert cfg.out_dir == "" and cfg.workers == 0 and list(cfg.audio.layers) == [3]
    assert cfg.video.weights == "" and cfg.video.batch_size == 32


def test_backbone_arch_typos_are_errors():
    from omegaconf import OmegaConf

    from features.video import build_swin
    from react.pretrained import pretrained_ssl_encoder

    with pytest.raises(ValueError, match="unknown config field.*hiden_size"):
        pretrained_ssl_encoder("wav2vec2", None, True, hiden_size=16)
    cfg = OmegaConf.create({"weights": "", "random_init": True, "arch": {"embed_dm": 8}, "crop": 112,
                            "backbone": "swin_tiny_patch4_window7_224"})
    with pytest.raises(ValueError, match="video.arch .*embed_dm"):
        build_swin(cfg, seed=0)
