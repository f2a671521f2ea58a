"""Small REACT datasets with features for the REGNN tests.

The synthetic generator (``scripts/make_synthetic_react.py``) writes Emotion CSVs whose speaker
attributes drive the listener's. Decoding its videos is too slow for unit tests, so the "features"
of a clip are a fixed random read-out of that person's own Emotion (a perfect facial-attribute
extractor) plus noise; audio is written at twice the video frame rate so that resampling is used.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from react.data import react_layout as L

ROOT = Path(__file__).resolve().parents[2]
VIDEO_DIM, AUDIO_DIM = 12, 6


def synthetic_react(out: Path, pairs: int, eval_pairs: int, seed: int = 0) -> Path:
    """Emotion CSVs, split lists and matrices (no media) of the synthetic generator."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_synthetic_react import generate

    return generate(out, pairs, seed=seed, media=False, eval_pairs=eval_pairs)


def write_features(root: Path, video_dim: int = VIDEO_DIM, audio_dim: int = AUDIO_DIM, noise: float = 0.05,
                   audio_rate: int = 2, seed: int = 0) -> None:
    """``<root>/<split>/{Video,Audio}_features/<clip>.pth`` derived from each clip's own Emotion."""
    rng = np.random.default_rng(seed)
    proj_v = rng.normal(0, 1 / 5, (L.EMOTION_DIM, video_dim))
    proj_a = rng.normal(0, 1 / 5, (L.EMOTION_DIM, audio_dim))
    for split in L.SPLITS:
        clips = L.read_split(root, split)
        for clip, emotion in zip(clips.clips, L.read_emotions(clips)):
            frames = np.concatenate([emotion, emotion[-1:]])  # 751 video frames
            video = np.tanh(frames @ proj_v) + noise * rng.normal(size=(len(frames), video_dim))
            t_audio = np.arange(len(frames) * audio_rate) / audio_rate
            audio = np.stack([np.interp(t_audio, np.arange(len(frames)), col)
                              for col in (frames @ proj_a).T], 1)
            audio += noise * rng.normal(size=audio.shape)
            for kind, values in (("video", video), ("audio", audio)):
                path = L.feature_path(root, split, kind, clip)
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(torch.from_numpy(values).float(), path)


def tiny_overrides(root: Path, out_dir: Path) -> list[str]:
    """``key=value`` overrides that point ``configs/regnn_tiny.yaml`` at a test dataset."""
    return [f"data.root={root}", f"out_dir={out_dir}", f"model.perceptual.video_dim={VIDEO_DIM}",
            f"model.perceptual.audio_dim={AUDIO_DIM}"]
