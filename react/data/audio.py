"""The one audio decoder: any soundfile-readable file -> mono float32 at a sample rate."""

from __future__ import annotations

import os
from math import gcd
from pathlib import Path

import numpy as np

from react.errors import LayoutError


class AudioError(LayoutError):
    """An audio file that is missing, unreadable, empty or not finite."""


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` (polyphase resampling); clear errors."""
    import soundfile as sf
    from scipy.signal import resample_poly

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        reason = str(err).split(":")[-1].strip() or type(err).__name__
        raise AudioError(f"{path}: cannot decode audio ({reason})") from None
    wave = data.mean(axis=1)
    if wave.size == 0:
        raise AudioError(f"{path}: empty audio")
    if not np.isfinite(wave).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        wave = resample_poly(wave, sample_rate // g, rate // g).astype(np.float32)
    return wave
