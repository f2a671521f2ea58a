"""Audio augmentations: each one changes the signal as intended, and none runs at evaluation."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from react.data.augment import (
    AugmentConfig,
    WaveAugment,
    add_noise,
    gain,
    pitch_shift,
    resample_length,
    time_stretch,
)
from react.data.ser_corpus import AudioCache, parse_ravdess_name
from react.data.ser_dataset import SERDataset
from react.models.specaugment import SpecAugment

SR = 16000


def _sine(freq: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return torch.sin(2 * math.pi * freq * t)


def _peak_hz(wave: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(wave * torch.hann_window(wave.numel())).abs()
    return spectrum.argmax().item() * SR / wave.numel()


def test_gain_scales_rms_by_decibels():
    wave = _sine(300)
    out = gain(wave, -6.0)
    assert out.pow(2).mean().sqrt() / wave.pow(2).mean().sqrt() == pytest.approx(10 ** (-6 / 20), rel=1e-5)


@pytest.mark.parametrize("snr", [0.0, 12.0])
def test_add_noise_reaches_target_snr(snr):
    wave = _sine(300)
    noise = torch.randn(5000, generator=torch.Generator().manual_seed(0))  # shorter: tiled
    out = add_noise(wave, noise, snr)
    added = out - wave
    measured = 10 * math.log10(wave.pow(2).mean() / added.pow(2).mean())
    assert measured == pytest.approx(snr, abs=1e-3)


def test_time_stretch_changes_length_not_pitch():
    wave = _sine(440)
    for rate in (0.8, 1.25):
        out = time_stretch(wave, rate)
        assert out.numel() == round(SR / rate)
        assert _peak_hz(out) == pytest.approx(440, abs=2)
        assert out[2000:-2000].pow(2).mean().item() == pytest.approx(0.5, rel=0.05)  # no phasiness loss


def test_pitch_shift_changes_pitch_not_length():
    wave = _sine(300)
    for semitones in (-3.0, 2.0):
        out = pitch_shift(wave, semitones)
        assert out.numel() == wave.numel()
        assert _peak_hz(out) == pytest.approx(300 * 2 ** (semitones / 12), abs=2)


def test_resample_length_keeps_a_tone():
    out = resample_length(_sine(100), 8000)  # the same second at 8 kHz
    assert out.numel() == 8000
    assert torch.fft.rfft(out).abs().argmax().item() == 100


def test_specaugment_masks_valid_frames_only_and_only_in_training():
    torch.manual_seed(0)
    spec = SpecAugment(p=1.0, time_masks=2, time_mask_frac=0.3, freq_masks=2, freq_mask_width=4)
    x = torch.ones(4, 50, 16)
    mask = torch.arange(50).unsqueeze(0) < torch.tensor([[50], [40], [30], [20]])
    x = x * mask.unsqueeze(-1)
    out = spec.train()(x, mask)
    dropped = (out == 0) & mask.unsqueeze(-1)
    assert dropped.any()
    for b in range(4):
        whole_frames = dropped[b].all(-1)  # a time mask zeroes every channel of a frame
        whole_bands = dropped[b][mask[b]].all(0)  # a frequency mask zeroes a band on every valid frame
        assert (whole_frames.sum() > 0) or (whole_bands.sum() > 0)
        assert (whole_frames.sum() <= 2 * 0.3 * mask[b].sum()) and (whole_bands.sum() <= 2 * 4)
        assert (dropped[b] == ((out[b] == 0) & mask[b].unsqueeze(-1))).all()
    assert torch.equal(spec.eval()(x, mask), x)
    assert torch.equal(SpecAugment(0.0, 2, 0.3, 2, 4).train()(x, mask), x)


def test_wave_augment_probabilities_and_musan_noise(tmp_path):
    wave = _sine(300)
    none = AugmentConfig(p_noise=0, p_gain=0, p_pitch=0, p_stretch=0)
    assert torch.equal(WaveAugment(none, SR)(wave), wave)
    only_gain = AugmentConfig(p_noise=0, p_gain=1, gain_db=[6.0, 6.0], p_pitch=0, p_stretch=0)
    assert torch.allclose(WaveAugment(only_gain, SR)(wave), wave * 10 ** (6 / 20))
    (tmp_path / "noise").mkdir()
    hum = np.sin(2 * np.pi * 50 * np.arange(SR) / SR).astype(np.float32)
    sf.write(tmp_path / "noise" / "hum.wav", hum, SR)
    only_noise = AugmentConfig(p_noise=1, noise_dir=str(tmp_path), snr_db=[10.0, 10.0], p_gain=0, p_pitch=0,
                               p_stretch=0)
    added = WaveAugment(only_noise, SR)(wave) - wave
    assert _peak_hz(added) == pytest.approx(50, abs=2)  # the MUSAN file, not gaussian noise
    assert 10 * math.log10(wave.pow(2).mean() / added.pow(2).mean()) == pytest.approx(10.0, abs=1e-3)


def test_dataset_augments_training_items_only(tmp_path):
    path = tmp_path / "03-01-05-01-01-01-01.wav"
    sf.write(path, _sine(300, 1.5).numpy() * 0.3, SR)
    utterance = parse_ravdess_name(path)
    cache = AudioCache(SR)
    always = AugmentConfig(p_noise=1, p_gain=1, p_pitch=1, p_stretch=1)
    train = SERDataset([utterance], ("angry",), cache, WaveAugment(always, SR), crop_seconds=1.0)
    evaluation = SERDataset([utterance], ("angry",), cache)
    clean = torch.from_numpy(cache(str(path)))
    torch.manual_seed(0)
    item = train[0]
    assert item["wave"].numel() == SR and item["label"] == 0 and item["sex"] == 0
    assert not torch.allclose(item["wave"], clean[: SR])
    for _ in range(2):
        assert torch.equal(evaluation[0]["wave"], clean)  # whole file, untouched
