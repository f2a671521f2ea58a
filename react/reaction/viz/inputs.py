"""Read what the pictures show: a clip's ``result-<k>.pth`` samples and its ground-truth attributes.

Only reading ``.pth`` files needs torch; everything else in ``react.reaction.viz`` works on numpy arrays.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from react.reaction.data import react_layout as L

_RESULT = re.compile(r"result-(\d+)\.pth$")


class VizError(ValueError):
    """An input of a picture or report that is missing or has the wrong form."""


def find_samples(paths: list[str | os.PathLike]) -> list[Path]:
    """``result-<k>.pth`` files in k order: each path is such a file or a folder holding them."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = [p for p in path.iterdir() if _RESULT.search(p.name)]
            if not inside:
                raise VizError(f"{path}: folder holds no result-<k>.pth files")
            found += sorted(inside, key=lambda p: int(_RESULT.search(p.name).group(1)))
        elif path.is_file():
            found.append(path)
        else:
            raise VizError(f"{path}: prediction file or folder not found")
    return found


def load_samples(paths: list[Path]) -> np.ndarray:
    """The samples as float32 ``(S, T, 25)``; all files must hold float ``(T, 25)`` tensors."""
    import torch

    samples = []
    for path in paths:
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is reported by name
            raise VizError(f"{path}: cannot be read as a tensor file: {type(err).__name__}: {err}") from None
        array = value.numpy() if isinstance(value, torch.Tensor) else value
        if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[1] != L.EMOTION_DIM:
            shape = getattr(array, "shape", type(value).__name__)
            raise VizError(f"{path}: expected a (frames, {L.EMOTION_DIM}) tensor, got {shape}")
        if samples and array.shape != samples[0].shape:
            raise VizError(f"{path}: shape {array.shape} differs from {paths[0]}: {samples[0].shape}")
        if not np.isfinite(array).all():
            raise VizError(f"{path}: contains NaN or inf")
        samples.append(array.astype(np.float32))
    if not samples:
        raise VizError("no prediction files given")
    return np.stack(samples)


def load_attributes(path: str | os.PathLike, frames: int) -> np.ndarray:
    """Facial attributes ``(frames, 25)`` from an Emotion CSV or a ``.npy`` (REACT 2025 layout)."""
    path = Path(path)
    if path.suffix != ".npy":
        return L.read_emotion(path, num_frames=frames)
    if not path.is_file():
        raise VizError(f"{path}: attribute file not found")
    values = np.load(path, allow_pickle=False)
    if values.ndim != 2 or values.shape[1] != L.EMOTION_DIM or values.shape[0] < frames:
        raise VizError(f"{path}: expected at least {frames} rows x {L.EMOTION_DIM} columns, "
                       f"got {values.shape}")
    return values[:frames].astype(np.float32)
