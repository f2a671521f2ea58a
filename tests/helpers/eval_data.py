"""A hand-written 3-pair REACT layout for the evaluation tests (Emotion paths spelled out by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from react.reaction.data import react_layout as L

# (speaker_path, listener_path) rows and where the released data keeps each clip's Emotion CSV.
ROWS = [
    ("NoXI/010_2016-03-25_Paris/Expert_video/3", "NoXI/010_2016-03-25_Paris/Novice_video/3"),
    ("RECOLA/group-1/P25/2", "RECOLA/group-1/P26/2"),
    ("RECOLA/group-2/P41/1", "RECOLA/group-2/P42/1"),
]
EMOTION_FILES = {
    "NoXI/010_2016-03-25_Paris/Expert_video/3": "NoXI/010_2016-03-25_Paris/P1/3",
    "NoXI/010_2016-03-25_Paris/Novice_video/3": "NoXI/010_2016-03-25_Paris/P2/3",
    "RECOLA/group-1/P25/2": "RECOLA/group-1/P1/2",
    "RECOLA/group-1/P26/2": "RECOLA/group-1/P2/2",
    "RECOLA/group-2/P41/1": "RECOLA/group-2/P1/1",
    "RECOLA/group-2/P42/1": "RECOLA/group-2/P2/1",
}
CLIPS = [s for s, _ in ROWS] + [lst for _, lst in ROWS]  # the 2N order


def emotion_sequences(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 750, 25)`` smooth sequences in the Emotion value ranges; clip 0 has a constant AU."""
    rng = np.random.default_rng(seed)
    x = 0.5 + 2.0 * gaussian_filter1d(rng.normal(size=(n, L.NUM_FRAMES, L.EMOTION_DIM)), 8, axis=1)
    x = np.clip(x, 0.0, 1.0)
    x[..., 15:17] = 2 * x[..., 15:17] - 1
    x[0, :, 2] = 0.0  # an AU that never fires
    return np.round(x, 6).astype(np.float32)  # what a 6-decimal CSV round trip gives


def write_layout(root: Path, split: str = "val", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write split CSV, Emotion CSVs and matrix; return (emotions in clip order, matrix)."""
    (root / f"{split}.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / f"{split}.csv").write_text("index,speaker_path,listener_path\n"
                                       + "".join(f"{i},{s},{lst}\n" for i, (s, lst) in enumerate(ROWS)))
    emotions = emotion_sequences(len(CLIPS), seed)
    for clip, values in zip(CLIPS, emotions):
        L.write_emotion(root / split / "Emotion" / f"{EMOTION_FILES[clip]}.csv", values)
    matrix = np.eye(len(CLIPS), dtype=bool)
    matrix[0, [3, 4]] = matrix[4, 0] = matrix[2, 5] = matrix[1, 3] = True
    np.save(root / f"neighbour_emotion_{split}.npy", matrix.astype(np.float32))
    return emotions, matrix
