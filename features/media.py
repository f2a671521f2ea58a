"""Torch-free media helpers shared by batch extraction and raw-clip inference (:mod:`react.reaction.infer`):
decode frames, resize and crop them, fit a waveform to a frame count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

# what PyAV raises for a file it cannot decode (its errors subclass OSError or ValueError)
DECODE_ERRORS = (OSError, ValueError)


class MediaError(ValueError):
    """A video that cannot be decoded as a whole; the message names the file."""


def decode_reason(err: BaseException) -> str:
    """PyAV's message without the file name it appends (callers name the file once)."""
    return str(getattr(err, "strerror", None) or err).split(": '")[0]


def count_video_frames(path: Path) -> int:
    """Frames of an mp4 (container metadata, else a decode) or of a png folder."""
    if path.is_dir():
        return sum(1 for _ in path.glob("*.png"))
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.frames or sum(1 for _ in container.decode(stream))


def iter_rgb_frames(path: Path) -> Iterator[np.ndarray]:
    """``H x W x 3`` uint8 RGB frames in order, from an mp4 or a folder ``1.png .. T.png``; a file that
    fails to decode, or decodes fewer frames than its header declares, is a :class:`MediaError`."""
    if path.is_dir():
        from PIL import Image

        pngs = sorted(path.glob("*.png"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
        if not pngs or not pngs[0].stem.isdigit():
            raise ValueError("not a folder of numbered png frames (1.png, 2.png, ...)")
        for png in pngs:
            with Image.open(png) as image:
                yield np.asarray(image.convert("RGB"))
        return
    if not path.is_file():
        raise FileNotFoundError("video file not found")
    import av

    decoded = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1  # the forward pass has the other cores
            declared = stream.frames
            for frame in container.decode(stream):
                decoded += 1
                yield frame.to_ndarray(format="rgb24")
    except DECODE_ERRORS as err:
        where = f"frame {decoded + 1}" if decoded else "the video"
        raise MediaError(f"{path}: cannot decode {where} ({decode_reason(err)})") from None
    if declared and decoded < declared:
        raise MediaError(f"{path}: truncated: its header declares {declared} frames, only {decoded} decode")


def video_fps(path: Path) -> float | None:
    """The frame rate an mp4's container records; ``None`` for a png folder (which records none) or
    a file that cannot be opened (decoding it then says why)."""
    if path.is_dir():
        return None
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
    except DECODE_ERRORS:
        return None
    return float(rate) if rate else None


def frames_at(path: Path, fps: float) -> Iterator[np.ndarray]:
    """The frames of :func:`iter_rgb_frames` on an ``fps`` grid: as decoded when the clip has that
    rate (or records none), else the nearest decoded frame at each time ``k / fps``."""
    source = video_fps(path) if path.exists() else None
    frames = iter_rgb_frames(path)
    if source is None or abs(source - fps) < 1e-3:
        yield from frames
        return
    k = 0
    for i, frame in enumerate(frames):
        while round(k * source / fps) <= i:
            yield frame
            k += 1


def resize_and_crop(frame: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """Scale the shorter side to ``resize`` (bilinear) and cut the centre ``crop x crop``."""
    h, w = frame.shape[:2]
    if min(h, w) != resize:
        from PIL import Image

        scale = resize / min(h, w)
        size = (max(resize, round(w * scale)), max(resize, round(h * scale)))
        frame = np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))
        h, w = frame.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    return frame[top:top + crop, left:left + crop]


def fit_to_frames(wave: np.ndarray, num_frames: int, fps: float, sample_rate: int,
                  max_shortfall_s: float) -> np.ndarray:
    """Cut or zero-pad to exactly ``num_frames / fps`` seconds; much shorter audio is an error."""
    needed = round(num_frames / fps * sample_rate)
    if len(wave) < needed - max_shortfall_s * sample_rate:
        raise ValueError(f"audio too short (truncated?): {len(wave) / sample_rate:.2f} s, but {num_frames} "
                         f"frames at {fps} fps need {needed / sample_rate:.2f} s")
    return np.pad(wave[:needed], (0, max(0, needed - len(wave))))
