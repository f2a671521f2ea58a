"""Read a split's ground truth and predictions from disk for the metrics, checking everything.

Either layout (:mod:`react.reaction.data.layouts`): REACT 2023/2024 (arrays of 750 frames) or MARS (lists,
each clip its own length; a prediction has the length of its input clip).

Every problem found is collected before failing, so one run lists all missing prediction files,
every file with a wrong shape or non-finite values, and a matrix that does not fit the CSV.

Prediction files are read by ``react_layout.read_prediction``, without importing torch for plain
tensor files (:mod:`react.utils.pth`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from react.reaction.data import layouts
from react.reaction.data import react_layout as L


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
                     frames: int | Sequence[int | None] = L.NUM_FRAMES, progress: bool = False,
                     indices: Sequence[int] | None = None) -> np.ndarray | list[np.ndarray]:
    """Predictions ``<pred_dir>/<split>/<clip>/result-<k>.pth`` of the split's clips (only the clips
    ``indices``, in that order, when given): ``(C, samples, frames, 25)`` float32 when ``frames`` is
    one count, a list of ``(samples, T_c, 25)`` when it is one count per clip (``None``: any)."""
    for folder in (Path(pred_dir), Path(pred_dir) / split.name):
        if not folder.is_dir():
            raise EvalInputError([f"{folder}: prediction folder not found (expected "
                                  f"{Path(pred_dir) / split.name}/<clip path>/result-<k>.pth)"])
    clips = split.clips if indices is None else [split.clips[i] for i in indices]
    per_clip = list(frames) if isinstance(frames, Sequence) else [frames] * len(clips)
    if len(per_clip) != len(clips):
        raise ValueError(f"frames: {len(per_clip)} counts for {len(clips)} clips")
    read: list[list[np.ndarray | None]] = []
    missing: list[str] = []
    problems: list[str] = []
    items = enumerate(clips)
    if progress:
        from react.utils.progress import progress

        items = progress(items, total=len(clips), desc="predictions", unit="clip")
    for c, clip in items:
        row: list[np.ndarray | None] = []
        for k in range(samples):
            path = L.prediction_path(pred_dir, split.name, clip, k)
            if not path.is_file():
                missing.append(str(path))
                row.append(None)
                continue
            try:
                row.append(L.read_prediction(path, per_clip[c]))
            except L.LayoutError as err:
                problems.append(str(err))
                row.append(None)
        lengths = {len(a) for a in row if a is not None}
        if len(lengths) > 1:
            problems.append(f"{L.prediction_path(pred_dir, split.name, clip, 0).parent}: the samples of one "
                            f"clip differ in length ({sorted(lengths)} frames)")
        read.append(row)
    problems = [f"missing prediction file: {m}" for m in missing] + problems
    if problems:
        raise EvalInputError(problems)
    stacked = [np.stack(row) for row in read]
    if isinstance(frames, Sequence):
        return stacked
    return np.stack(stacked) if stacked else np.empty((0, samples, frames, L.EMOTION_DIM), np.float32)


def load_ground_truth(split: L.Split) -> tuple[np.ndarray | list, np.ndarray | list, np.ndarray]:
    """(listener, speaker, appropriate (2N, 2N) bool) of a split, either layout
    (:mod:`react.reaction.data.layouts`): ``(2N, 750, 25)`` arrays for REACT 2023/2024, lists of ``(T_i, 25)``
    for MARS.

    ``speaker[k]`` is the facial attributes of clip k, ``listener[j]`` those of the real listener of clip j.
    """
    problems: list[str] = []
    emotions = []
    for clip in split.clips:
        try:
            emotions.append(layouts.read_emotion(split, clip))
        except L.LayoutError as err:
            problems.append(str(err))
    try:
        appropriate = layouts.read_appropriateness(split)
        empty = [split.clips[k] for k in np.flatnonzero(~appropriate.any(axis=1))]
        if empty:
            problems.append(f"{L.appropriateness_path(split.data_dir, split.name)}: {len(empty)} row(s) "
                            f"mark no appropriate listener, e.g. clip {empty[0]}")
    except L.LayoutError as err:
        problems.append(str(err))
    if problems:
        raise EvalInputError(problems)
    speaker = np.stack(emotions) if split.layout == "react" else emotions
    listener = _pick(speaker, [split.listener_index(j) for j in range(len(split))])
    return listener, speaker, appropriate


def _pick(values: np.ndarray | list, idx: list[int]) -> np.ndarray | list:
    return values[idx] if isinstance(values, np.ndarray) else [values[i] for i in idx]


def expected_frames(split: L.Split, speaker: np.ndarray | list | None,
                    indices: Sequence[int]) -> int | list[int | None]:
    """Frames the predictions of clips ``indices`` must have: 750 (REACT 2023/2024), or each input
    clip's own length (MARS; any length when the ground truth could not be read)."""
    if split.layout == "react":
        return L.NUM_FRAMES
    return [None if speaker is None else len(speaker[i]) for i in indices]


def load_split(data_dir: str | os.PathLike, pred_dir: str | os.PathLike, split: str,
               progress: bool = False, layout: str = "auto",
               directions: str = "both") -> tuple[Any, Any, Any, np.ndarray]:
    """``(pred, listener, speaker, appropriate)`` of a split, ready for ``compute_metrics``
    (``pred`` holds the input clips of ``directions``, :func:`react.reaction.data.layouts.input_clips`).

    Raises :class:`EvalInputError` listing every problem (ground truth and predictions together).
    """
    info = layouts.read_split(data_dir, split, layout)
    clips = layouts.input_clips(info, directions)
    problems: list[str] = []
    ground_truth = pred = None
    try:
        ground_truth = load_ground_truth(info)
    except EvalInputError as err:
        problems += err.problems
    frames = expected_frames(info, None if ground_truth is None else ground_truth[1], clips)
    try:
        pred = load_predictions(pred_dir, info, progress=progress, frames=frames, indices=clips)
    except EvalInputError as err:
        problems += err.problems
    if problems:
        raise EvalInputError(problems)
    return (pred, *of_inputs(ground_truth, clips))


def of_inputs(ground_truth: tuple[Any, Any, np.ndarray], clips: Sequence[int]) -> tuple[Any, Any, np.ndarray]:
    """The ground truth of the input clips ``clips`` only: their listeners and speakers, and the
    appropriateness among them (the reactions to input clips are the candidates)."""
    listener, speaker, appropriate = ground_truth
    if len(clips) == len(appropriate):
        return listener, speaker, appropriate
    return _pick(listener, list(clips)), _pick(speaker, list(clips)), appropriate[np.ix_(clips, clips)]
