"""The face-sketch video: speaker | real listener | generated reaction, side by side, as H.264 mp4.

Each panel has a title bar, a ``size x size`` picture and a strip with the 8 expression
probabilities as bars and the valence/arousal point in a small square. Static text is drawn once
with matplotlib; every frame is then composed with numpy and encoded with PyAV.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from react.reaction.data import react_layout as L
from react.reaction.viz.face import EXPRESSION_COLORS, FaceRenderer, face_params
from react.reaction.viz.inputs import VizError

TITLE = 22  # pixels of a panel's title bar
STRIP = 72  # pixels of the bar strip under a picture
PROGRESS = 4  # pixels of the time bar along the bottom
HALF = 25  # half the side of the valence/arousal square (and half the bars' full height)
EXPRESSIONS = L.EMOTION_COLUMNS[L.NUM_AUS + 2:]
_RGB = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in EXPRESSION_COLORS]


@dataclass(frozen=True)
class Panel:
    """One column of the video: a title and either attributes (T, 25) to sketch or speaker frames."""

    title: str
    attributes: np.ndarray | None = None
    frames: Generator[np.ndarray, None, None] | None = None


def speaker_frames(path: str | os.PathLike, size: int) -> Generator[np.ndarray, None, None]:
    """``size x size`` RGB uint8 frames of an mp4 or a folder ``1.png .. T.png`` (centre square).

    The file is opened and checked now; frames are decoded as they are consumed.
    """
    path = Path(path)
    if path.is_dir():
        pngs = sorted((p for p in path.glob("*.png") if p.stem.isdigit()), key=lambda p: int(p.stem))
        if not pngs:
            raise VizError(f"{path}: folder holds no numbered png frames (1.png, 2.png, ...)")
        return (_square(_read_png(png), size) for png in pngs)
    if not path.is_file():
        raise VizError(f"{path}: speaker video not found")
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise VizError(f"{path}: cannot be opened as a video: {err}") from None
    if not container.streams.video:
        container.close()
        raise VizError(f"{path}: holds no video stream")
    return _decode(container, size)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _decode(container: Any, size: int) -> Generator[np.ndarray, None, None]:
    with container:
        for frame in container.decode(video=0):
            yield _square(frame.to_ndarray(format="rgb24"), size)


def _square(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre square of ``frame`` resampled (nearest neighbour) to ``size x size``."""
    h, w = frame.shape[:2]
    if h == w == size:
        return frame
    side = min(h, w)
    index = (np.arange(size) + 0.5) * side / size
    rows = (h - side) // 2 + index.astype(int)
    cols = (w - side) // 2 + index.astype(int)
    return frame[rows[:, None], cols[None, :]]


def _template(titles: list[str], size: int, sketched: list[bool]) -> np.ndarray:
    """The static frame: titles, expression labels and the valence/arousal square per face panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size * len(titles), TITLE + size + STRIP
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    for i, (title, face) in enumerate(zip(titles, sketched)):
        fig.text((i + 0.5) * size / width, 1 - TITLE / 2 / height, title, ha="center", va="center",
                 fontsize=10, weight="bold")
        if face:
            bars = _bar_slots(size)
            for (x0, x1), name in zip(bars, EXPRESSIONS):
                fig.text((i * size + (x0 + x1) / 2) / width, 11 / height, name[:3], ha="center",
                         va="center", fontsize=6.5)
            fig.text((i * size + size - 64 + HALF) / width, 11 / height, "val / aro", ha="center",
                     va="center", fontsize=6.5)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    for i, face in enumerate(sketched):
        if face:
            y0, x0 = TITLE + size + 4, i * size + size - 64
            box = image[y0:y0 + 2 * HALF, x0:x0 + 2 * HALF]
            box[:] = 245
            box[[0, -1], :] = box[:, [0, -1]] = 150
            box[HALF, :] = box[:, HALF] = 200
    return image


def _bar_slots(size: int) -> list[tuple[int, int]]:
    """Horizontal pixel spans of the 8 expression bars in a panel."""
    step = (size - 76) / len(EXPRESSIONS)
    return [(int(6 + k * step + 2), int(6 + (k + 1) * step - 2)) for k in range(len(EXPRESSIONS))]


def _draw_strip(frame: np.ndarray, x: int, size: int, values: np.ndarray) -> None:
    """Expression bars and the valence/arousal dot of one frame's attributes, panel at column ``x``."""
    top = TITLE + size + 4
    for (x0, x1), p, color in zip(_bar_slots(size), values[L.NUM_AUS + 2:], _RGB):
        h = int(round(np.clip(p, 0.0, 1.0) * 2 * HALF))
        frame[top + 2 * HALF - h:top + 2 * HALF, x + x0:x + x1] = color
    valence, arousal = np.clip(values[L.NUM_AUS:L.NUM_AUS + 2], -1.0, 1.0)
    cx = x + size - 64 + HALF + int(round((HALF - 4) * valence))
    cy = top + HALF - int(round((HALF - 4) * arousal))
    frame[cy - 3:cy + 4, cx - 3:cx + 4] = (214, 39, 40)


def write_face_video(path: str | os.PathLike, panels: list[Panel], size: int = 256, fps: int = L.FPS) -> int:
    """Encode the panels side by side as an H.264 mp4 at ``fps``; returns the frame count.

    The length is that of the sketched attributes; speaker frames are cut to it, or their last
    frame held when the video is shorter.
    """
    import av

    if size % 2 or size < 128:
        raise VizError(f"size must be an even number of pixels >= 128 (H.264 4:2:0), got {size}")
    lengths = {len(p.attributes) for p in panels if p.attributes is not None}
    if len(lengths) != 1:
        raise VizError(f"the sketched panels must have one common length, got {sorted(lengths)}")
    frames = lengths.pop()
    template = _template([p.title for p in panels], size, [p.attributes is not None for p in panels])
    renderer = FaceRenderer(size)
    params = [face_params(p.attributes) if p.attributes is not None else None for p in panels]
    held: list[np.ndarray | None] = [None] * len(panels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.width, stream.height = template.shape[1], template.shape[0]
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "superfast", "crf": "20"}
            for t in range(frames):
                frame = template.copy()
                for i, panel in enumerate(panels):
                    x = i * size
                    if panel.attributes is None:
                        held[i] = next(panel.frames, held[i])
                        picture = held[i] if held[i] is not None else np.zeros((size, size, 3), np.uint8)
                    else:
                        picture = renderer.draw(params[i], t)
                        _draw_strip(frame, x, size, panel.attributes[t])
                    frame[TITLE:TITLE + size, x:x + size] = picture
                frame[-PROGRESS:, :int(frame.shape[1] * (t + 1) / frames)] = (60, 60, 60)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        for panel in panels:
            if panel.frames is not None:
                panel.frames.close()  # closes the speaker video when it is longer than the sketch
    return frames
