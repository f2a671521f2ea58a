"""All pictures of one clip into one folder: the four plots and, optionally, the face-sketch video.

The pictures draw the constrained form of the samples (AUs clipped to [0, 1], expressions
renormalised to sum 1; :func:`react.reaction.data.react_layout.constrained_attributes`) and say so; a
model's raw output, which the evaluation scores, can leave those ranges."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from react.reaction.data.react_layout import constrained_attributes
from react.reaction.viz import plots
from react.reaction.viz.inputs import VizError
from react.reaction.viz.video import Panel, speaker_frames, write_face_video

PLOTS = {  # file name -> what it shows
    "au_heatmap.png": "AU occurrence over time",
    "valence_arousal.png": "valence-arousal trajectories",
    "expressions.png": "expression probabilities over time (samples renormalised)",
    "diversity.png": "all attributes, every sample, mean +/- std",
}
VIDEO = "face.mp4"


def render_clip(samples: np.ndarray, out_dir: str | os.PathLike, truth: np.ndarray | None = None,
                speaker_video: str | os.PathLike | None = None, sample: int = 0, video: bool = True,
                size: int = 256) -> list[Path]:
    """Write the plots (and ``face.mp4`` when ``video``) of ``samples`` ``(S, T, 25)``; returns the paths.

    ``truth``: the real listener ``(T, 25)``; ``speaker_video``: an mp4 or png folder shown left of
    the sketches; ``sample``: the sample drawn in the single-sample plots and the video.
    """
    if samples.ndim != 3 or samples.shape[0] == 0:
        raise VizError(f"samples must be (S, T, 25) with S >= 1, got {samples.shape}")
    if not 0 <= sample < len(samples):
        raise VizError(f"sample {sample} does not exist: the clip has {len(samples)} sample(s)")
    if truth is not None and truth.shape != samples.shape[1:]:
        raise VizError(f"ground truth is {truth.shape} but the samples are {samples.shape[1:]}")
    samples = constrained_attributes(samples)
    panels = [Panel("speaker", frames=speaker_frames(speaker_video, size))] if video and speaker_video else []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots.plot_au_heatmap(samples, truth, out / "au_heatmap.png", sample)
    plots.plot_valence_arousal(samples, truth, out / "valence_arousal.png")
    plots.plot_expressions(samples, truth, out / "expressions.png", sample)
    plots.plot_diversity(samples, truth, out / "diversity.png")
    written = [out / name for name in PLOTS]
    if video:
        if truth is not None:
            panels.append(Panel("real listener", truth))
        panels.append(Panel(f"sample {sample}", samples[sample]))
        write_face_video(out / VIDEO, panels, size=size)
        written.append(out / VIDEO)
    return written
