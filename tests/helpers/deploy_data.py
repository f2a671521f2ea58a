"""Tiny untrained generator checkpoints on the tiny feature backbones' sizes, and short raw clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from react.tasks import RunPaths, build_task, load_task_config

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "configs" / "features_tiny.yaml"
VIDEO_DIM, AUDIO_DIM = 64, 32  # what configs/features_tiny.yaml's backbones give


def tiny_checkpoint(folder: Path, data_root: Path | str = "data/demo", iters: int = 12) -> Path:
    """``folder/state.pt``: the tiny REGNN with random weights, as the engine would save it."""
    return tiny_generator_checkpoint(folder, "regnn_tiny.yaml", f"data.root={data_root}",
                                     f"model.perceptual.video_dim={VIDEO_DIM}",
                                     f"model.perceptual.audio_dim={AUDIO_DIM}",
                                     f"model.motor.inverse_iters={iters}")


def tiny_generator_checkpoint(folder: Path, config: str, *overrides: str) -> Path:
    """``folder/state.pt``: the model of ``configs/<config>`` (any registered generator) with random
    weights, as the engine would save it."""
    cfg = load_task_config(ROOT / "configs" / config, overrides)
    torch.manual_seed(0)
    model = build_task(cfg, RunPaths(folder)).build_model(pretrained=False)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": OmegaConf.to_container(cfg)}, folder / "state.pt")
    return folder / "state.pt"


def write_clip(
    folder: Path, frames: int, fps: int = 25, size: int = 96, rate: int = 44100, seed: int = 0
) -> tuple[Path, Path]:
    """A ``frames``-frame mp4 (moving colours) and its wav (a gliding tone with noise)."""
    import av
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    video, audio = folder / f"clip{frames}.mp4", folder / f"clip{frames}.wav"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), (i * 5) % 255, dtype=np.uint8)
            image[size // 4 : size // 2, :, 1] = rng.integers(0, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    t = np.arange(round(frames / fps * rate)) / rate
    sf.write(
        str(audio), (0.3 * np.sin(2 * np.pi * (200 + 50 * t) * t) + 0.01 * rng.standard_normal(len(t))), rate
    )
    return video, audio


def write_truncated_clip(path: Path, frames: int, kept: float = 0.5, size: int = 32) -> Path:
    """A faststart mp4 (index before the data) of ``frames`` noise frames cut to its first ``kept``
    fraction of bytes: the header still declares ``frames`` frames, the file holds fewer."""
    import av

    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: round(len(data) * kept)])
    return path
