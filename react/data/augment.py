"""Audio augmentations for training: noise at a target SNR, gain, pitch shift, time stretch
(waveform level, :class:`WaveAugment`), plus the settings of SpecAugment, which the models apply
(:class:`react.models.specaugment.SpecAugment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from react.data.ser_corpus import AudioCache, scan_noise_dir


@dataclass
class AugmentConfig:
    """Each waveform augmentation fires with its own probability (0 disables it)."""

    p_noise: float = 0.5
    noise_dir: str = ""  # MUSAN layout (noise/ speech/ music/); "" = gaussian noise
    snr_db: list[float] = field(default_factory=lambda: [10.0, 30.0])
    p_gain: float = 0.5
    gain_db: list[float] = field(default_factory=lambda: [-6.0, 6.0])
    p_pitch: float = 0.3
    semitones: list[float] = field(default_factory=lambda: [-2.0, 2.0])
    p_stretch: float = 0.3
    stretch_rate: list[float] = field(default_factory=lambda: [0.85, 1.15])
    # SpecAugment on the encoder's feature sequence (log-mel, or SSL layer features)
    p_specaug: float = 0.5
    time_masks: int = 2
    time_mask_frac: float = 0.08  # max width of a time mask, as a fraction of the valid length
    freq_masks: int = 2
    freq_mask_width: int = 8  # max width of a frequency (channel) mask


def gain(wave: torch.Tensor, db: float) -> torch.Tensor:
    """Scale by ``db`` decibels."""
    return wave * 10.0 ** (db / 20.0)


def add_noise(wave: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """Add ``noise`` (tiled/cropped to the wave's length) scaled so that the SNR is ``snr_db``."""
    if noise.numel() < wave.numel():
        noise = noise.repeat(math.ceil(wave.numel() / noise.numel()))
    noise = noise[: wave.numel()]
    p_signal = wave.pow(2).mean()
    p_noise = noise.pow(2).mean().clamp_min(1e-12)
    scale = torch.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return wave + scale * noise


def resample_length(wave: torch.Tensor, length: int) -> torch.Tensor:
    """Band-limited (FFT) resampling of a 1-D signal to ``length`` samples."""
    n = wave.numel()
    if length == n:
        return wave
    spec = torch.fft.rfft(wave)
    bins = length // 2 + 1
    spec = spec[:bins] if bins <= spec.numel() else torch.cat([spec, spec.new_zeros(bins - spec.numel())])
    return torch.fft.irfft(spec, n=length) * (length / n)


def _nearest_peak(magnitude: torch.Tensor) -> torch.Tensor:
    """For each (bin, frame) of ``magnitude`` (F, T), the index of the nearest spectral peak."""
    n_bins = magnitude.shape[0]
    padded = torch.nn.functional.pad(magnitude.T, (1, 1), value=-1.0).T
    is_peak = (magnitude > padded[:-2]) & (magnitude >= padded[2:])
    k = torch.arange(n_bins, device=magnitude.device).unsqueeze(1).expand_as(magnitude)
    big = 2 * n_bins
    prev = torch.where(is_peak, k, torch.full_like(k, -big)).cummax(0).values
    nxt = torch.where(is_peak, k, torch.full_like(k, 3 * big)).flip(0).cummin(0).values.flip(0)
    return torch.where((k - prev) <= (nxt - k), prev, nxt).clamp(0, n_bins - 1)


def time_stretch(wave: torch.Tensor, rate: float, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    """Phase-vocoder time stretch with identity phase locking (Laroche & Dolson):
    ``rate`` > 1 is faster (shorter), pitch unchanged."""
    window = torch.hann_window(n_fft, device=wave.device)
    spec = torch.stft(wave, n_fft, hop, window=window, return_complex=True)  # (F, T)
    n_bins, n_frames = spec.shape
    steps = torch.arange(0, n_frames - 1, rate, device=wave.device)
    lo = steps.floor().long()
    alpha = (steps - lo).unsqueeze(0)
    c0, c1 = spec[:, lo], spec[:, lo + 1]
    magnitude = (1 - alpha) * c0.abs() + alpha * c1.abs()
    expected = torch.linspace(0, math.pi * hop, n_bins, device=wave.device).unsqueeze(1)
    dphase = c1.angle() - c0.angle() - expected
    dphase = dphase - 2 * math.pi * torch.round(dphase / (2 * math.pi))
    advance = expected + dphase
    phase = spec[:, :1].angle() + torch.cumsum(torch.cat([torch.zeros_like(advance[:, :1]),
                                                           advance[:, :-1]], dim=1), dim=1)
    # lock every bin to its peak's propagated phase, keeping the analysis phase offsets
    peak = _nearest_peak(magnitude)
    analysis = c0.angle()
    phase = phase.gather(0, peak) + analysis - analysis.gather(0, peak)
    out = torch.polar(magnitude, phase)
    length = round(wave.numel() / rate)
    return torch.istft(out, n_fft, hop, window=window, length=length)


def pitch_shift(wave: torch.Tensor, semitones: float) -> torch.Tensor:
    """Shift pitch by ``semitones`` keeping the duration: stretch, then resample back."""
    factor = 2.0 ** (semitones / 12.0)
    return resample_length(time_stretch(wave, 1.0 / factor), wave.numel())


class WaveAugment:
    """Random waveform augmentations, each applied with its probability (training data only).

    Draws from torch's global RNG, so the engine's seeding and resume make it reproducible.
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int):
        self.cfg = cfg
        self.noise_files = scan_noise_dir(cfg.noise_dir) if cfg.noise_dir else []
        self.noise_cache = AudioCache(sample_rate)

    def _noise(self, n: int) -> torch.Tensor:
        if not self.noise_files:
            return torch.randn(n)
        noise = self.noise_cache(self.noise_files[int(torch.randint(len(self.noise_files), ()))])
        start = int(torch.randint(max(1, noise.size - n + 1), ()))
        return torch.from_numpy(noise[start:start + n])

    @staticmethod
    def _fires(p: float) -> bool:
        return p > 0 and float(torch.rand(())) < p

    @staticmethod
    def _uniform(bounds: list[float]) -> float:
        lo, hi = bounds
        return lo + (hi - lo) * float(torch.rand(()))

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if self._fires(cfg.p_stretch):
            wave = time_stretch(wave, self._uniform(cfg.stretch_rate))
        if self._fires(cfg.p_pitch):
            wave = pitch_shift(wave, self._uniform(cfg.semitones))
        if self._fires(cfg.p_gain):
            wave = gain(wave, self._uniform(cfg.gain_db))
        if self._fires(cfg.p_noise):
            wave = add_noise(wave, self._noise(wave.numel()), self._uniform(cfg.snr_db))
        return wave
