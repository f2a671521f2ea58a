"""The REACT dyadic dataset layout (docs/data.md): the one place that knows its files.

A split lists N rows ``index,speaker_path,listener_path``. Both directions are samples, so the
clip list of a split is ``[all speaker_path] + [all listener_path]`` (2N clips) and the real
listener of clip ``i`` is clip ``(i + N) % 2N``. ``neighbour_emotion_<split>.npy`` is 2N x 2N in
that order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from react.errors import LayoutError

SPLITS = ("train", "val", "test")
FPS = 25
NUM_FRAMES = 750  # frames of an Emotion CSV / a prediction
NUM_VIDEO_FRAMES = 751  # frames of a 30 s video clip
VIDEO_SIZE = 256
AUDIO_SAMPLE_RATE = 44100
NUM_AUS = 15
EMOTION_DIM = 25  # [0:15) AUs, [15:17) valence/arousal, [17:25) 8 expression probabilities
EMOTION_COLUMNS = (
    ["AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17", "AU23",
     "AU24", "AU25", "AU26"]
    + ["Valence", "Arousal"]
    + ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
)
NUM_PREDICTIONS = 10

# Released-data quirk: persons under Emotion/ are renamed P1 / P2.
EMOTION_PERSON = {
    "Expert_video": "P1", "Novice_video": "P2",  # NoXI
    "P25": "P1", "P41": "P1", "P45": "P1",  # RECOLA
    "P26": "P2", "P42": "P2", "P46": "P2",
}


@dataclass(frozen=True)
class Split:
    """The clips of one split in the official order (``layout``: ``react`` for REACT 2023/2024,
    ``mars`` for :mod:`react.reaction.data.mars_layout`, whose clip ids are ``<role>/<session>/<stem>``)."""

    data_dir: Path
    name: str
    speakers: tuple[str, ...]
    listeners: tuple[str, ...]
    layout: str = "react"

    @property
    def clips(self) -> list[str]:
        """2N clip paths: all speakers, then all listeners."""
        return list(self.speakers) + list(self.listeners)

    def __len__(self) -> int:
        return 2 * len(self.speakers)

    def listener_index(self, i: int) -> int:
        """Index of the clip that is the real listener of clip ``i``."""
        return (i + len(self.speakers)) % len(self)


def read_split(data_dir: str | os.PathLike, split: str) -> Split:
    """Read ``<data_dir>/<split>.csv``: a header row, then ``index,speaker_path,listener_path``."""
    path = Path(data_dir) / f"{split}.csv"
    if not path.is_file():
        raise LayoutError(f"{path}: split file not found")
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    speakers, listeners = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            raise LayoutError(f"{path}:{lineno}: expected index,speaker_path,listener_path")
        speakers.append(parts[-2].strip("/"))
        listeners.append(parts[-1].strip("/"))
    if not speakers:
        raise LayoutError(f"{path}: no clips listed")
    return Split(Path(data_dir), split, tuple(speakers), tuple(listeners))


def emotion_clip_path(clip: str) -> str:
    """Map a CSV clip path to its path under ``Emotion/`` (the P1/P2 renaming)."""
    parts = clip.split("/")
    if len(parts) >= 3 and parts[0] in ("NoXI", "RECOLA"):
        parts[2] = EMOTION_PERSON.get(parts[2], parts[2])
    return "/".join(parts)


def emotion_path(data_dir: str | os.PathLike, split: str, clip: str) -> Path:
    return Path(data_dir) / split / "Emotion" / f"{emotion_clip_path(clip)}.csv"


def video_path(data_dir: str | os.PathLike, split: str, clip: str) -> Path:
    """The clip's mp4, or its folder of ``1.png..751.png`` (REACT 2023) when there is no mp4."""
    base = Path(data_dir) / split / "Video_files" / clip
    mp4 = base.with_name(base.name + ".mp4")
    return mp4 if mp4.exists() or not base.is_dir() else base


def audio_path(data_dir: str | os.PathLike, split: str, clip: str) -> Path:
    return Path(data_dir) / split / "Audio_files" / f"{clip}.wav"


def face3d_path(data_dir: str | os.PathLike, split: str, clip: str) -> Path:
    return Path(data_dir) / split / "3D_FV_files" / f"{clip}.npy"


def feature_path(root: str | os.PathLike, split: str, kind: str, clip: str) -> Path:
    """``<root>/<split>/{Video,Audio}_features/<clip>.pth``; ``kind`` is ``video`` or ``audio``."""
    return Path(root) / split / FEATURE_FOLDERS[kind] / f"{clip}.pth"


FEATURE_FOLDERS = {"video": "Video_features", "audio": "Audio_features"}  # written by feature extraction


def prediction_path(pred_dir: str | os.PathLike, split: str, clip: str, k: int) -> Path:
    return Path(pred_dir) / split / clip / f"result-{k}.pth"


def read_prediction(path: str | os.PathLike, frames: int | None = NUM_FRAMES) -> np.ndarray:
    """One ``result-<k>.pth`` as float32 ``(frames, 25)`` (``frames`` None: any positive count),
    checked; :class:`LayoutError` otherwise.

    A plain tensor file is read without importing torch (:mod:`react.utils.pth`); anything else
    is read by ``torch.load(weights_only=True)``, whose failure is the error reported."""
    from react.utils.pth import read_tensor_file

    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"{path}: prediction file not found")
    try:
        value = read_tensor_file(path)
    except Exception:  # noqa: BLE001 - not a plain tensor file: torch reads it and names the problem
        value = _torch_load(path)
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
        got = type(value).__name__ + (f" of {value.dtype}" if hasattr(value, "dtype") else "")
        raise LayoutError(f"{path}: expected a float tensor, got {got}")
    rows = frames if frames is not None else max(1, value.shape[0]) if value.ndim == 2 else 1
    if value.ndim != 2 or value.shape != (rows, EMOTION_DIM):
        raise LayoutError(f"{path}: expected shape ({frames or 'T'}, {EMOTION_DIM}), "
                          f"got {tuple(value.shape)}")
    array = value.astype(np.float32)
    if not np.isfinite(array).all():
        raise LayoutError(f"{path}: contains {int((~np.isfinite(array)).sum())} NaN/inf value(s)")
    return array


def _torch_load(path: Path) -> object:
    """``torch.load`` of a file that is not a plain tensor file; tensors come back as numpy."""
    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is one clear error
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LayoutError(f"{path}: cannot be read as a tensor file ({reason})") from None
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float().numpy()
    return value


def appropriateness_path(data_dir: str | os.PathLike, split: str) -> Path:
    return Path(data_dir) / f"neighbour_emotion_{split}.npy"


def constrained_attributes(x: np.ndarray) -> np.ndarray:
    """The constrained form of facial attributes ``(..., 25)`` for export and pictures: AUs clipped to
    [0, 1], valence/arousal to [-1, 1], expressions clipped at 0 and renormalised to sum 1 (uniform
    when nothing is left). A model's raw output can leave these ranges; the evaluation scores the raw
    output, as the official numbers do."""
    y = np.array(x, dtype=np.float32)
    y[..., :NUM_AUS] = np.clip(y[..., :NUM_AUS], 0.0, 1.0)
    y[..., NUM_AUS:NUM_AUS + 2] = np.clip(y[..., NUM_AUS:NUM_AUS + 2], -1.0, 1.0)
    expr = np.clip(y[..., NUM_AUS + 2:], 0.0, None)
    total = expr.sum(axis=-1, keepdims=True)
    uniform = np.full_like(expr, 1.0 / expr.shape[-1])
    y[..., NUM_AUS + 2:] = np.where(total > 0, expr / np.where(total > 0, total, 1.0), uniform)
    return y


def read_emotion(path: str | os.PathLike, num_frames: int | None = NUM_FRAMES) -> np.ndarray:
    """Read an Emotion CSV (header + frames x 25) as float32 ``(num_frames, 25)`` (None: every row)."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"{path}: Emotion file not found")
    try:
        values = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    except ValueError as err:
        raise LayoutError(f"{path}: not a numeric Emotion CSV: {err}") from None
    if values.shape[1] != EMOTION_DIM or values.shape[0] < (num_frames or 1):
        raise LayoutError(
            f"{path}: expected at least {num_frames or 1} rows x {EMOTION_DIM} columns, got {values.shape}")
    values = values[:num_frames]
    if not np.isfinite(values).all():
        raise LayoutError(f"{path}: contains NaN or inf")
    return values


def write_emotion(path: str | os.PathLike, values: np.ndarray) -> None:
    """Write an Emotion CSV with the header row the released data has."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, values, delimiter=",", fmt="%.6f", header=",".join(EMOTION_COLUMNS), comments="")


def read_emotions(split: Split) -> np.ndarray:
    """All 2N Emotion arrays of a split in clip order, ``(2N, 750, 25)`` float32."""
    return np.stack([read_emotion(emotion_path(split.data_dir, split.name, c)) for c in split.clips])


def load_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    """A ``.npy`` array (no pickles), or a :class:`LayoutError` naming the file and ``what`` it is."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"{path}: {what} not found")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise LayoutError(f"{path}: not a readable .npy {what}: {err}") from None


def read_appropriateness(split: Split) -> np.ndarray:
    """The 2N x 2N appropriateness matrix as bool, checked against the split's clip count."""
    path = appropriateness_path(split.data_dir, split.name)
    matrix = load_npy(path, "appropriateness matrix")
    if matrix.ndim != 2 or not (np.issubdtype(matrix.dtype, np.number) or matrix.dtype == bool):
        raise LayoutError(f"{path}: expected a 2-D numeric matrix, got {matrix.dtype} of shape "
                          f"{matrix.shape}")
    n = len(split)
    if matrix.shape != (n, n):
        raise LayoutError(
            f"{path}: matrix is {matrix.shape} but {split.name}.csv lists {n // 2} rows, i.e. "
            f"{n} clips in both directions, so it must be ({n}, {n})")
    return matrix.astype(bool)


# Dataset-wide appropriateness files of the official tools (the matrix name is misspelt as released).
DATASET_MATRIX = "Approprirate_facial_reaction.npy"
DATA_INDICES = "data_indices.csv"
MEDIA_FOLDERS = ("Video_files", "Audio_files", "Emotion", "3D_FV_files")  # per split, as released


def dyad_key(clip: str) -> tuple[str, str, str]:
    """``(SITE, session, clip number)`` naming the dyad of a clip path, as the official tools key it.

    ``site/group/person/clip`` gives ``(SITE, group, clip)``; the longer UDIVA paths
    ``site/a/b/person/clip`` give ``(SITE, b_a, clip)``.
    """
    parts = clip.split("/")
    if len(parts) < 4:
        raise LayoutError(f"{clip!r}: expected a clip path site/group/person/clip")
    if len(parts) > 4:
        return parts[0].upper(), f"{parts[2]}_{parts[1]}", parts[4]
    return parts[0].upper(), parts[1], parts[3]
