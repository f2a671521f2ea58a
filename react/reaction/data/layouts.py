"""Which layout a data set has, and the few operations whose files differ between layouts.

``react``: REACT 2023/2024 (:mod:`react.reaction.data.react_layout`: split CSVs, Emotion CSVs of 750 rows,
matrix files); ``mars``: REACT 2025/2026 (:mod:`react.reaction.data.mars_layout`: split folders,
facial-attributes ``.npy`` of any length, the session rule). Both give a
:class:`~react.reaction.data.react_layout.Split` of 2N clips (speakers, then their listeners), so windows,
generation, prediction files and features (``<root>/<split>/{Video,Audio}_features/<clip>.pth``)
are shared; only reading the ground truth and the appropriate reactions differ, and they are here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from react.reaction.data import mars_layout as M
from react.reaction.data import react_layout as L

LAYOUTS = ("react", "mars")
DIRECTIONS = ("both", "speaker")  # which clips are inputs: both directions of each pair, or speakers
METRIC_SET = {"react": "2024", "mars": "2025"}  # the metric set each release's scripts compute


def detect(data_dir: str | os.PathLike) -> str:
    """``react`` when split CSVs are there, ``mars`` when a split folder holds a MARS modality
    folder, else ``react`` (whose reader then names the missing split file)."""
    root = Path(data_dir)
    if any((root / f"{s}.csv").is_file() for s in L.SPLITS):
        return "react"
    if any((root / s / m).is_dir() for s in L.SPLITS for m in M.MODALITIES):
        return "mars"
    return "react"


def resolve(data_dir: str | os.PathLike, layout: str = "auto") -> str:
    """``layout``, or the detected one for ``auto``; :class:`LayoutError` for an unknown name."""
    if layout == "auto":
        return detect(data_dir)
    if layout not in LAYOUTS:
        raise L.LayoutError(f"layout must be auto or one of {', '.join(LAYOUTS)}, got {layout!r}")
    return layout


def read_split(data_dir: str | os.PathLike, split: str, layout: str = "auto") -> L.Split:
    """The 2N clips of ``split`` in either layout."""
    reader = M.read_split if resolve(data_dir, layout) == "mars" else L.read_split
    return reader(data_dir, split)


def input_clips(split: L.Split, directions: str = "both") -> list[int]:
    """Indices of the clips that are inputs: all 2N (``both``) or the N speaker clips (``speaker``,
    the default of the REACT 2025/2026 scripts)."""
    if directions not in DIRECTIONS:
        raise ValueError(f"directions must be one of {', '.join(DIRECTIONS)}, got {directions!r}")
    return list(range(len(split) if directions == "both" else len(split.speakers)))


def emotion_path(split: L.Split, clip: str) -> Path:
    """The file with the facial attributes of ``clip`` (Emotion CSV or facial-attributes ``.npy``)."""
    if split.layout == "mars":
        return M.attributes_path(split, clip)
    return L.emotion_path(split.data_dir, split.name, clip)


def read_emotion(split: L.Split, clip: str) -> np.ndarray:
    """Float32 ``(T, 25)`` facial attributes of one clip (750 rows in REACT 2023/2024)."""
    path = emotion_path(split, clip)
    return M.read_facial_attributes(path) if split.layout == "mars" else L.read_emotion(path)


def read_emotions(split: L.Split) -> list[np.ndarray]:
    """The facial attributes of every clip of ``split``, in its order."""
    return [read_emotion(split, clip) for clip in split.clips]


def media_paths(split: L.Split, clip: str) -> tuple[Path, Path]:
    """The video (face crop) and audio files of ``clip``."""
    if split.layout == "mars":
        return (M.file_path(split.data_dir, split.name, "video-face-crop", clip),
                M.file_path(split.data_dir, split.name, "audio", clip))
    return L.video_path(split.data_dir, split.name, clip), L.audio_path(split.data_dir, split.name, clip)


def read_appropriateness(split: L.Split) -> np.ndarray:
    """The 2N x 2N bool matrix of appropriate reactions: the split's matrix file (REACT 2023/2024)
    or the session rule (MARS)."""
    return M.appropriateness(split) if split.layout == "mars" else L.read_appropriateness(split)


def ground_truth_files(split: L.Split) -> list[Path]:
    """Every file the ground truth of ``split`` is read from (for input stamps)."""
    files = [emotion_path(split, clip) for clip in split.clips]
    if split.layout == "react":
        files += [split.data_dir / f"{split.name}.csv", L.appropriateness_path(split.data_dir, split.name)]
    return files


def extra_video_frames(layout: str) -> int:
    """Video frames a clip has beyond its facial-attribute rows (751 vs 750 in REACT 2023/2024)."""
    return L.NUM_VIDEO_FRAMES - L.NUM_FRAMES if layout == "react" else 0
