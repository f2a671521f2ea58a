"""VGGish audio features (the official REGNN's audio input): the VGGish log-mel front end, 0.96 s
examples every ``audio.vggish_hop_s`` seconds, 128-d embeddings averaged onto the video frames.

Front end as VGGish defines it (``vggish_input.py`` / ``mel_features.py`` of the original): mono
16 kHz, frames of 25 ms every 10 ms, periodic Hann window, magnitude spectrum of a 512-point FFT,
64 mel bands from 125 to 7500 Hz (HTK mel scale, triangles in the mel domain, DC bin zeroed),
``log(mel + 0.01)``, examples of 96 frames (0.96 s). Example ``i`` is centred at ``i * hop`` seconds
(the log-mel is padded by half an example of silence at both ends), so with the default hop of
0.04 s there is one example per 25 fps frame. The model is :class:`react.models.vggish.VGGish`
(weights through :func:`react.pretrained.pretrained_vggish`); ``audio.vggish_postprocess`` applies
the AudioSet release's PCA whitening and 8-bit quantisation from the weights file's ``pproc.*``
parameters (:class:`react.models.vggish.Postprocessor`), else the embeddings are the raw ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from features.align import align_to_frames
from features.sidecar import weights_fingerprint
from features.weights import resolve_weights, weights_settings

SAMPLE_RATE = 16000
WINDOW_S, HOP_S = 0.025, 0.010
MEL_BANDS, MEL_MIN_HZ, MEL_MAX_HZ = 64, 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s
CHUNK = 64  # examples per payload chunk of the reader (features.audio.VggishReader)


def hertz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(num_bins: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(num_bins, 64)`` weights from spectrum bins to VGGish's mel bands."""
    bins_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2, num_bins))
    edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), MEL_BANDS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((bins_mel[:, None] - lower) / (centre - lower),
                                         (upper - bins_mel[:, None]) / (upper - centre)))
    weights[0] = 0.0
    return weights


def log_mel(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(frames, 64)`` float64 VGGish log-mel spectrogram of a mono waveform at ``sample_rate``."""
    window = int(round(WINDOW_S * sample_rate))
    hop = int(round(HOP_S * sample_rate))
    fft = 2 ** int(np.ceil(np.log2(window)))
    if len(wave) < window:
        wave = np.pad(wave, (0, window - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave.astype(np.float64), window)[::hop]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)  # periodic
    spectrum = np.abs(np.fft.rfft(frames * hann, fft))
    return np.log(spectrum @ mel_matrix(fft // 2 + 1, sample_rate) + LOG_OFFSET)


def examples(logmel: np.ndarray, count: int, hop_s: float) -> np.ndarray:
    """``(count, 96, 64)``: example ``i`` centred at ``i * hop_s`` seconds of ``logmel`` (10 ms rows)."""
    half = EXAMPLE_FRAMES // 2
    padded = np.pad(logmel, ((half, half), (0, 0)), constant_values=np.log(LOG_OFFSET))
    starts = np.round(np.arange(count) * hop_s / HOP_S).astype(int)
    starts = np.minimum(starts, len(padded) - EXAMPLE_FRAMES)
    return padded[starts[:, None] + np.arange(EXAMPLE_FRAMES)]


def clip_examples(wave: np.ndarray, frames: int, fps: float, sample_rate: int, hop_s: float) -> torch.Tensor:
    """``(E, 1, 96, 64)`` float32 examples of a clip's fitted waveform, one every ``hop_s`` seconds
    from 0 to the clip's last frame."""
    count = int(np.floor(frames / fps / hop_s)) + 1
    return torch.from_numpy(examples(log_mel(wave, sample_rate), count, hop_s)).float()[:, None]


def describe(cfg: DictConfig, common: dict[str, Any]) -> dict[str, Any]:
    """Sidecar settings of the vggish kind."""
    a = cfg.audio
    front_end = f"logmel{MEL_BANDS} {MEL_MIN_HZ:g}-{MEL_MAX_HZ:g}Hz log+{LOG_OFFSET}"
    post = {}  # absent: raw embeddings (as before)
    if postprocess(cfg):
        post = {"postprocess": "pca-uint8",
                **({"pca": weights_fingerprint(a.vggish_pca)} if a.vggish_pca else {})}
    return {**common, "backbone": "vggish", **weights_settings(a.weights, a.random_init, "audio", cfg.seed),
            "hop_s": a.vggish_hop_s, "front_end": front_end, **post}


def postprocess(cfg: DictConfig) -> bool:
    """Whether ``audio.vggish_postprocess`` asks for the release's PCA + 8-bit post-processing."""
    return bool(cfg.audio.vggish_postprocess)


def build(cfg: DictConfig) -> torch.nn.Module:
    """The VGGish model through the project's loader (:mod:`react.pretrained`)."""
    from react.pretrained import pretrained_vggish

    a = cfg.audio
    weights = resolve_weights(a.weights, a.random_init, "audio")
    torch.manual_seed(cfg.seed)
    return pretrained_vggish(weights, a.random_init, postprocess(cfg), a.vggish_pca or None)


def finish(cfg: DictConfig, frames: int, rows: torch.Tensor) -> torch.Tensor:
    """Embeddings ``(E, 128)`` (example ``i`` at ``i * hop``) -> ``(frames, 128)`` on the video grid."""
    times = torch.arange(len(rows), dtype=torch.float64) * cfg.audio.vggish_hop_s
    return align_to_frames(rows.float(), times, frames, cfg.fps)
