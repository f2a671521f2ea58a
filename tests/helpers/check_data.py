"""Small complete data sets for the layout-checker and matrix tests.

The REACT 2023/2024 set comes from the synthetic generator (Emotion CSVs, split lists, matrices);
its media are one constant 751-frame mp4 and one silent wav copied to every clip, which keeps it
quick to build while every file is real. The MARS set is written by hand in the 2025 layout.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from react.reaction.data import mars_layout as M
from react.reaction.data import react_layout as L

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import make_synthetic_react as gen  # noqa: E402


def write_video(path: Path, frames: int, size: int = L.VIDEO_SIZE) -> None:
    """A constant grey mp4 of ``frames`` frames."""
    gen.write_video(path, np.full((frames, size, size, 3), 128, np.uint8))


def react_set(out: Path, seed: int = 2) -> Path:
    """Four train dyads (NoXI and RECOLA), one val and one test dyad, with every file present."""
    gen.generate(out, pairs=4, eval_pairs=1, seed=seed, media=False)
    video, audio = out / "_video.mp4", out / "_audio.wav"
    write_video(video, L.NUM_VIDEO_FRAMES)
    sf.write(audio, np.zeros(round(L.NUM_VIDEO_FRAMES / L.FPS * L.AUDIO_SAMPLE_RATE), np.float32),
             L.AUDIO_SAMPLE_RATE)
    for name in L.SPLITS:
        for clip in L.read_split(out, name).clips:
            for target, source in ((L.video_path(out, name, clip), video),
                                   (L.audio_path(out, name, clip), audio)):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            face3d = L.face3d_path(out, name, clip)
            face3d.parent.mkdir(parents=True, exist_ok=True)
            np.save(face3d, np.zeros((L.NUM_FRAMES, 58), np.float32))
    video.unlink()
    audio.unlink()
    return out


MARS_CLIPS = {  # split -> session -> stems
    "train": {"session1": ["Camera-2024-06-21-103121-103102", "Camera-2024-06-21-104500-104441"],
              "session2": ["Camera-2024-06-22-090000-085941"]},
    "val": {"session3": ["Camera-2024-06-23-110000-105941"]},
    "test": {"session4": ["Camera-2024-06-24-120000-115941", "Camera-2024-06-24-121500-121441"]},
}


def mars_set(out: Path, seed: int = 0) -> Path:
    """Facial attributes and coefficients of every speaker/listener pair of :data:`MARS_CLIPS`."""
    rng = np.random.default_rng(seed)
    for split, sessions in MARS_CLIPS.items():
        for session, stems in sessions.items():
            for stem in stems:
                frames = int(rng.integers(58, 400))
                for role in M.ROLES:
                    clip = M.Clip(session, stem)
                    for modality, dim in ((M.FACIAL_ATTRIBUTES, 25), ("coefficients", M.COEFFICIENT_DIM)):
                        path = M.clip_path(out, split, modality, role, clip)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        np.save(path, rng.uniform(0, 1, (frames, dim)).astype(np.float32))
    return out
