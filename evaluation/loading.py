"""Read a split's ground truth and predictions from disk for the metrics, checking everything.

Every problem found is collected before failing, so one run lists all missing prediction files,
every file with a wrong shape or non-finite values, and a matrix that does not fit the CSV.

Prediction files are read by ``react_layout.read_prediction``, without importing torch for plain
tensor files (:mod:`react.utils.pth`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from react.data import react_layout as L


class EvalInputError(L.LayoutError):
    """Ground truth or predictions that cannot be evaluated; ``problems`` lists every one, the
    message the first :data:`SHOWN` and how many more."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = len(problems) - SHOWN
        shown = problems[:SHOWN] + ([f"... and {more} more"] if more > 0 else [])
        super().__init__(f"{len(problems)} problem(s) with the evaluation input:\n  " + "\n  ".join(shown))


SHOWN = 10
def load_predictions(pred_dir: str | os.PathLike, split: L.Split, samples: int = L.NUM_PREDICTIONS,
                     frames: int = L.NUM_FRAMES, progress: bool = False,
                     indices: Sequence[int] | None = None) -> np.ndarray:
    """``(2N, samples, frames, 25)`` float32 from ``<pred_dir>/<split>/<clip>/result-<k>.pth``; only
    the clips ``indices`` (in that order) when given."""
    for folder in (Path(pred_dir), Path(pred_dir) / split.name):
        if not folder.is_dir():
            raise EvalInputError([f"{folder}: prediction folder not found (expected "
                                  f"{Path(pred_dir) / split.name}/<clip path>/result-<k>.pth)"])
    clips = split.clips if indices is None else [split.clips[i] for i in indices]
    pred = np.empty((len(clips), samples, frames, L.EMOTION_DIM), dtype=np.float32)
    missing: list[str] = []
    problems: list[str] = []
    items = enumerate(clips)
    if progress:
        from react.utils.progress import progress

        items = progress(items, total=len(clips), desc="predictions", unit="clip")
    for c, clip in items:
        for k in range(samples):
            path = L.prediction_path(pred_dir, split.name, clip, k)
            if not path.is_file():
                missing.append(str(path))
                continue
            try:
                pred[c, k] = L.read_prediction(path, frames)
            except L.LayoutError as err:
                problems.append(str(err))
    problems = [f"missing prediction file: {m}" for m in missing] + problems
    if problems:
        raise EvalInputError(problems)
    return pred


def load_ground_truth(split: L.Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(listener (2N, T, 25), speaker (2N, T, 25), appropriate (2N, 2N) bool) of a split.

    ``speaker[k]`` is the Emotion of clip k, ``listener[j]`` that of the real listener of clip j.
    """
    problems: list[str] = []
    emotions = []
    for clip in split.clips:
        try:
            emotions.append(L.read_emotion(L.emotion_path(split.data_dir, split.name, clip)))
        except L.LayoutError as err:
            problems.append(str(err))
    try:
        appropriate = L.read_appropriateness(split)
        empty = [split.clips[k] for k in np.flatnonzero(~appropriate.any(axis=1))]
        if empty:
            problems.append(f"{L.appropriateness_path(split.data_dir, split.name)}: {len(empty)} row(s) "
                            f"mark no appropriate listener, e.g. clip {empty[0]}")
    except L.LayoutError as err:
        problems.append(str(err))
    if problems:
        raise EvalInputError(problems)
    speaker = np.stack(emotions)
    listener = speaker[[split.listener_index(j) for j in range(len(split))]]
    return listener, speaker, appropriate


def load_split(data_dir: str | os.PathLike, pred_dir: str | os.PathLike, split: str,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(pred, listener, speaker, appropriate)`` of a split, ready for ``compute_metrics``.

    Raises :class:`EvalInputError` listing every problem (ground truth and predictions together).
    """
    info = L.read_split(data_dir, split)
    problems: list[str] = []
    ground_truth = pred = None
    try:
        ground_truth = load_ground_truth(info)
    except EvalInputError as err:
        problems += err.problems
    try:
        pred = load_predictions(pred_dir, info, progress=progress)
    except EvalInputError as err:
        problems += err.problems
    if problems:
        raise EvalInputError(problems)
    listener, speaker, appropriate = ground_truth
    return pred, listener, speaker, appropriate
