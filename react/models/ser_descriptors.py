"""Acoustic descriptors of speech in PyTorch (eGeMAPS-like low-level descriptors and their
functionals), computed from the waveform and the log-mel front end's power spectrum, so that a
model that uses them still runs in ``predict --stream`` and exports to ONNX (plain tensor ops).

Low-level descriptors, one per 10 ms log-mel frame (:data:`LLD_NAMES`): pitch in semitones (the
highest normalised autocorrelation over 60-500 Hz lags, Boersma's window correction, on the
waveform decimated to ~4 kHz, 45 ms Hann windows, parabolic interpolation), harmonics-to-noise
ratio from that peak, loudness (log
energy), alpha ratio (50-1000 Hz against 1-5 kHz), Hammarberg index (peak below 2 kHz against
2-5 kHz), spectral centroid, spectral flux of the log-mel, MFCC 1-4. Pitch and HNR are defined on
voiced frames only (their weights are 0 elsewhere); the rest on every valid frame.

Functionals (:func:`functionals`) of speaker-normalised descriptors over an utterance: weighted
mean, std, mean absolute frame-to-frame change and linear slope of each, the voiced share of the
frames and voiced onsets per second.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

LLD_NAMES = ("pitch", "hnr", "loudness", "alpha_ratio", "hammarberg", "centroid", "flux",
             "mfcc1", "mfcc2", "mfcc3", "mfcc4")
VOICED_ONLY = ("pitch", "hnr")
FUNCTIONALS = ("mean", "std", "delta", "slope")
N_FUNCTIONALS = len(LLD_NAMES) * len(FUNCTIONALS) + 2
PITCH_HZ = (60.0, 500.0)
VOICING_THRESHOLD = 0.5  # normalised cross-correlation above which a frame is voiced


def _lowpass(taps: int, cutoff: float) -> torch.Tensor:
    """Hann-windowed sinc low-pass kernel (1, 1, taps), ``cutoff`` as a fraction of the sample rate."""
    n = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hanning(taps)
    return torch.from_numpy((kernel / kernel.sum()).astype(np.float32)).view(1, 1, -1)


class PowerSpectrum(nn.Module):
    """Power spectra (B, T, n_fft // 2 + 1) of Hann-windowed frames of ``win`` samples (centred in
    ``n_fft``) every ``hop``: an FFT in PyTorch, a strided convolution with the same windowed DFT
    basis in an ONNX export (ONNX has no complex FFT)."""

    def __init__(self, n_fft: int, hop: int, win: int | None = None):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        win = win or n_fft
        window = torch.zeros(n_fft, dtype=torch.float64)
        start = (n_fft - win) // 2
        window[start:start + win] = torch.hann_window(win, periodic=True, dtype=torch.float64)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64).unsqueeze(1)
        angle = 2 * math.pi * k * n / n_fft
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window
        self.register_buffer("basis", basis.float().unsqueeze(1), persistent=False)
        self.register_buffer("window", window.float(), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, L) float32 -> (B, (L - n_fft) // hop + 1, n_fft // 2 + 1)."""
        if torch.onnx.is_in_onnx_export():
            spec = nn.functional.conv1d(wave.unsqueeze(1), self.basis, stride=self.hop)  # (B, 2F, T)
            real, imag = spec.chunk(2, dim=1)
            return (real.pow(2) + imag.pow(2)).transpose(1, 2)
        # an FFT is ~20x cheaper than the DFT convolution
        return torch.stft(wave, self.n_fft, self.hop, window=self.window, center=False,
                          return_complex=True).abs().pow(2).transpose(1, 2)


class Descriptors(nn.Module):
    """Frame-level descriptors aligned to a :class:`react.models.ser.LogMel`'s frames (no weights)."""

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int):
        super().__init__()
        self.decimate = max(1, round(sample_rate / 4000))
        rate = sample_rate / self.decimate
        self.rate = rate
        win = round(0.045 * rate)  # about three periods of the lowest pitch
        self.lags = (math.floor(rate / PITCH_HZ[1]), math.ceil(rate / PITCH_HZ[0]))
        size = 2 ** math.ceil(math.log2(win + self.lags[1] + 1))  # no circular wrap of the lags
        self.spectrum = PowerSpectrum(size, hop // self.decimate, win)
        # frame t of the log-mel is centred on sample t * hop + n_fft / 2
        self.pad_left = size // 2 - round(n_fft / 2 / self.decimate)
        self.register_buffer("lowpass", _lowpass(8 * self.decimate - 1, 0.45 / self.decimate),
                             persistent=False)
        # autocorrelation lags lo..hi from the power spectrum (an inverse real DFT), and the
        # window's own autocorrelation there (Boersma's normalisation)
        taus = torch.arange(self.lags[0] - 1, self.lags[1] + 2, dtype=torch.float64)
        k = torch.arange(size // 2 + 1, dtype=torch.float64).unsqueeze(1)
        scale = torch.full_like(k, 2.0)
        scale[0] = scale[-1] = 1.0
        self.register_buffer("inverse", (scale * torch.cos(2 * math.pi * k * taus / size) / size).float(),
                             persistent=False)
        self.register_buffer("zero_lag", (scale / size).float().squeeze(1), persistent=False)
        w = self.spectrum.window.double()
        w_acf = torch.stack([(w[: size - int(t)] * w[int(t):]).sum() for t in taus]) / w.pow(2).sum()
        self.register_buffer("window_acf", w_acf.float().clamp_min(1e-3), persistent=False)
        freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float32) * sample_rate / n_fft
        bands = {"low": (freqs >= 50) & (freqs < 1000), "high": (freqs >= 1000) & (freqs < 5000),
                 "below2k": freqs < 2000, "mid": (freqs >= 2000) & (freqs < 5000)}
        for name, band in bands.items():
            self.register_buffer(f"band_{name}", band.float(), persistent=False)
        self.register_buffer("freqs_khz", freqs / 1000, persistent=False)
        m = torch.arange(n_mels, dtype=torch.float32) + 0.5
        dct = torch.stack([torch.cos(math.pi * k * m / n_mels) for k in range(1, 5)], 1)
        self.register_buffer("dct", dct * math.sqrt(2 / n_mels), persistent=False)

    def pitch(self, wave: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pitch (semitones re 100 Hz) and normalised autocorrelation peak, (B, frames) each."""
        x = nn.functional.conv1d(wave.unsqueeze(1), self.lowpass, stride=self.decimate,
                                 padding=self.lowpass.shape[-1] // 2).squeeze(1)
        size = self.spectrum.n_fft
        x = nn.functional.pad(x, (self.pad_left, size))
        power = self.spectrum(x)[:, :frames]  # (B, T, F)
        acf = (power @ self.inverse) / ((power @ self.zero_lag).unsqueeze(-1) + 1e-10)
        nccf = (acf / self.window_acf).clamp(-1.0, 1.0)  # lags lo - 1 .. hi + 1
        inner = nccf[..., 1:-1]
        span = inner.shape[-1] - 1
        bias = 0.05 * torch.arange(span + 1, device=x.device, dtype=nccf.dtype) / span
        best = (inner - bias).argmax(-1, keepdim=True) + 1  # slightly preferring short lags: no octave drops
        a, b, c = nccf.gather(-1, torch.cat([best - 1, best, best + 1], -1)).unbind(-1)
        curve = a - 2 * b + c
        shift = torch.where(curve < -1e-6, 0.5 * (a - c) / curve.clamp_max(-1e-6), torch.zeros_like(b))
        lag = self.lags[0] - 1 + best.squeeze(-1).to(b.dtype) + shift.clamp(-0.5, 0.5)
        return 12 * torch.log2(self.rate / lag / 100.0), b.clamp(0, 1)

    @torch.no_grad()
    def forward(self, wave: torch.Tensor, power: torch.Tensor, logmel: torch.Tensor,
                fmask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``wave`` (B, L) with padding zeroed, its ``power`` spectrum (B, T, F), raw ``logmel``
        (B, T, n_mels) and frame mask (B, T) -> descriptors (B, T, D) and weights (B, T, D)."""
        pitch, peak = self.pitch(wave.float(), logmel.shape[1])
        hnr = 10 * torch.log10((peak + 1e-3) / (1 - peak + 1e-3))
        eps = 1e-6
        total = power.sum(-1)
        loudness = torch.log(total + eps)
        alpha = torch.log(power @ self.band_low + eps) - torch.log(power @ self.band_high + eps)
        hammarberg = (torch.log((power * self.band_below2k).amax(-1) + eps)
                      - torch.log((power * self.band_mid).amax(-1) + eps))
        centroid = (power @ self.freqs_khz) / (total + eps)
        diff = (logmel[:, 1:] - logmel[:, :-1]).abs().mean(-1)
        flux = torch.cat([torch.zeros_like(diff[:, :1]), diff], 1)
        lld = torch.cat([torch.stack([pitch, hnr, loudness, alpha, hammarberg, centroid, flux], -1),
                         logmel @ self.dct], -1)
        valid = fmask.unsqueeze(-1).expand_as(lld)
        voiced = (peak > VOICING_THRESHOLD) & fmask
        weights = torch.cat([voiced.unsqueeze(-1).expand(-1, -1, len(VOICED_ONLY)),
                             valid[..., len(VOICED_ONLY):]], -1)
        return lld * weights.to(lld.dtype), weights


def functionals(x: torch.Tensor, weights: torch.Tensor, frame_s: float = 0.01) -> torch.Tensor:
    """Utterance functionals (B, :data:`N_FUNCTIONALS`) of descriptors ``x`` (B, T, D) over frames
    of nonzero ``weights`` (B, T, D): per descriptor the mean, std, mean absolute change between
    consecutive weighted frames and the slope per second; then the voiced share and voiced onsets
    per second (from the weights of the first, voiced-only descriptor)."""
    w = weights.to(x.dtype)
    n = w.sum(1).clamp_min(1.0)
    mean = (x * w).sum(1) / n
    centred = (x - mean.unsqueeze(1)) * w
    std = (centred.pow(2).sum(1) / n + 1e-6).sqrt()
    pair = w[:, 1:] * w[:, :-1]
    delta = ((x[:, 1:] - x[:, :-1]).abs() * pair).sum(1) / pair.sum(1).clamp_min(1.0)
    t = torch.arange(x.shape[1], device=x.device, dtype=x.dtype).view(1, -1, 1) * frame_s
    t_mean = (t * w).sum(1) / n
    t_centred = (t - t_mean.unsqueeze(1)) * w
    slope = (t_centred * centred).sum(1) / (t_centred.pow(2).sum(1) + 1e-3)
    frames = w[..., -1].sum(1).clamp_min(1.0)  # every valid frame (the last descriptor is on all)
    voiced = w[..., 0]
    onsets = (voiced[:, 1:] - voiced[:, :-1]).clamp_min(0).sum(1) + voiced[:, 0]
    return torch.cat([mean, std, delta, slope, (voiced.sum(1) / frames).unsqueeze(1),
                      (onsets / (frames * frame_s)).unsqueeze(1)], 1)
