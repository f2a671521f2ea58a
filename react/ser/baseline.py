"""The classic speech-emotion baseline every test report carries: the 88 eGeMAPSv02 functionals
(openSMILE, :func:`features.audio.egemaps_functionals`) of each utterance, standardised, into a
multinomial logistic regression trained on the run's training speakers. Under the
speaker-adapted protocol a second variant first z-scores every utterance's functionals by the mean
and std of its speaker's enrolment recordings (:func:`speaker_standardised`).

Functionals are cached per file (``<cache_dir>/<key>.npy``, the key made of the file's path, size
and modification time, the sample rate and the openSMILE version), so a repeated run reads them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from react.utils.io import atomic_path

NAME = "eGeMAPS functionals + logistic regression"
NAME_SPEAKER = "eGeMAPS functionals z-scored per speaker (enrolment) + logistic regression"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/react/egemaps_functionals`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "react" / "egemaps_functionals"


class FunctionalsCache:
    """eGeMAPS functionals of audio files, computed once per file version and kept on disk."""

    def __init__(self, cache_dir: str | os.PathLike | None, sample_rate: int,
                 load: Callable[[str], np.ndarray]):
        import opensmile

        self.dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.sample_rate = sample_rate
        self.load = load  # path -> mono waveform at sample_rate
        self.version = opensmile.__version__

    def key(self, path: str) -> str:
        stat = Path(path).stat()
        ident = f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{self.sample_rate}:{self.version}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def __call__(self, path: str) -> np.ndarray:
        from features.audio import egemaps_functionals

        target = self.dir / f"{self.key(path)}.npy"
        if target.is_file():
            return np.load(target)
        values = egemaps_functionals(self.load(path), self.sample_rate)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, values)
        return values

    def many(self, paths: list[str]) -> np.ndarray:
        return np.stack([self(p) for p in paths])


def fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int,
                seed: int = 0) -> np.ndarray:
    """Standardised logistic regression on ``train_x``, fitted as the classic model fits
    (:meth:`react.ser.classic.ClassicSER.fit`, so the report's baseline row and a ``ser_classic``
    run are one computation); class probabilities ``(N, n_classes)`` of ``test_x`` (classes absent
    from training get 0)."""
    import torch

    from react.ser.classic import ClassicSER

    model = ClassicSER(n_classes, sample_rate=0).fit(train_x, train_y, seed)
    with torch.no_grad():
        logits = model.head(torch.from_numpy(np.nan_to_num(np.asarray(test_x, dtype=np.float64))))
    return torch.softmax(logits, 1).numpy()


def speaker_standardised(x: np.ndarray, actors: list[str], enrolment: dict[str, np.ndarray]) -> np.ndarray:
    """Each row of ``x`` z-scored by the mean and std (ddof 0, at least 1e-3, as
    :class:`react.ser.inference.RunningNorm`) of its actor's enrolment functionals
    ``enrolment[actor]`` (n, D)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    out = np.empty_like(x)
    for actor in set(actors):
        ref = np.nan_to_num(np.asarray(enrolment[actor], dtype=np.float64))
        std = np.sqrt(np.maximum(ref.var(0), 1e-6))
        rows = [i for i, a in enumerate(actors) if a == actor]
        out[rows] = (x[rows] - ref.mean(0)) / std
    return out
