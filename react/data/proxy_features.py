"""Stand-in per-frame features for a REACT or MARS layout, for tests and benchmarks without media decoding.

The features of a clip are a fixed random read-out of that person's own Emotion (a perfect
facial-attribute extractor) plus noise: video ``tanh(E @ P_v)``, audio ``E @ P_a`` at ``audio_rate``
times the video frame rate (so that resampling is exercised). They are written where feature
extraction writes real ones (:func:`react.reaction.data.react_layout.feature_path`), as float32 tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from react.reaction.data import layouts
from react.reaction.data import react_layout as L


def write_proxy_features(root: str | os.PathLike, video_dim: int, audio_dim: int, noise: float = 0.05,
                         audio_rate: int = 2, seed: int = 0, splits: tuple[str, ...] = L.SPLITS) -> None:
    """``<root>/<split>/{Video,Audio}_features/<clip>.pth`` for every clip of ``splits``, one row per
    video frame (751 per REACT 2023/2024 clip, one per facial-attribute row in MARS)."""
    rng = np.random.default_rng(seed)
    proj_v = rng.normal(0, 1 / 5, (L.EMOTION_DIM, video_dim))
    proj_a = rng.normal(0, 1 / 5, (L.EMOTION_DIM, audio_dim))
    extra = layouts.extra_video_frames(layouts.detect(root))
    for split in splits:
        clips = layouts.read_split(root, split)
        for clip, emotion in zip(clips.clips, layouts.read_emotions(clips)):
            frames = np.concatenate([emotion, emotion[-1:].repeat(extra, axis=0)])
            video = np.tanh(frames @ proj_v) + noise * rng.normal(size=(len(frames), video_dim))
            t_audio = np.arange(len(frames) * audio_rate) / audio_rate
            audio = np.stack([np.interp(t_audio, np.arange(len(frames)), col)
                              for col in (frames @ proj_a).T], 1)
            audio += noise * rng.normal(size=audio.shape)
            for kind, values in (("video", video), ("audio", audio)):
                path = L.feature_path(Path(root), split, kind, clip)
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(torch.from_numpy(values).float(), path)
