"""A 2D face sketch driven by one frame of facial attributes, drawn with numpy only.

``face_params`` turns AUs and expression probabilities into a few geometric controls (brow
heights, eye openness, mouth corners and opening); ``FaceRenderer`` rasterises them with
anti-aliased signed-distance shapes. Roughly 2-3 ms per 256 x 256 frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from react.reaction.data import react_layout as L

COLUMN = {name: i for i, name in enumerate(L.EMOTION_COLUMNS)}

SKIN = np.array([0.98, 0.84, 0.70], np.float32)
BACKGROUND = np.array([0.93, 0.93, 0.95], np.float32)
INK = np.array([0.22, 0.16, 0.14], np.float32)
MOUTH = np.array([0.45, 0.08, 0.12], np.float32)
LIP = np.array([0.72, 0.30, 0.30], np.float32)
BLUSH = np.array([0.95, 0.50, 0.50], np.float32)
WHITE = np.array([1.0, 1.0, 1.0], np.float32)
# One colour per expression (Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt), shared
# by the video's expression bars and the expression plots.
EXPRESSION_COLORS = ("#9e9e9e", "#f2b705", "#3b6fb6", "#e377c2", "#8c564b", "#2ca02c", "#d62728", "#9467bd")


@dataclass(frozen=True)
class FaceParams:
    """Geometric controls of one frame, each a float array over frames (0 = neutral)."""

    inner_brow: np.ndarray  # raise of the inner brow ends (AU1, sad, surprise, fear)
    outer_brow: np.ndarray  # raise of the outer brow ends (AU2, surprise)
    brow_lower: np.ndarray  # lowering and knitting (AU4, anger, disgust)
    eye_open: np.ndarray  # eye height factor, 1 = neutral (AU6/7/9 narrow; surprise, fear widen)
    smile: np.ndarray  # corners up (AU12, happy)
    contempt: np.ndarray  # right corner only up (contempt, AU14)
    frown: np.ndarray  # corners down (AU15, sad, disgust)
    mouth_open: np.ndarray  # lips apart and jaw drop (AU25, AU26, surprise, fear)
    upper_lip: np.ndarray  # upper lip raise (AU10, disgust)
    press: np.ndarray  # lips tightened and pressed (AU23, AU24)
    chin: np.ndarray  # chin raise pushing the lower lip up (AU17)
    cheek: np.ndarray  # cheek raise shown as blush (AU6, happy)
    wrinkle: np.ndarray  # nose wrinkle lines (AU9)


def _unit(v: np.ndarray) -> np.ndarray:
    return np.clip(v, 0.0, 1.0)


def face_params(frames: np.ndarray) -> FaceParams:
    """``(T, 25)`` attributes (AUs and expression probabilities in [0, 1]) -> :class:`FaceParams`."""
    x = np.clip(np.asarray(frames, np.float32), 0.0, 1.0)

    def c(name: str) -> np.ndarray:
        return x[:, COLUMN[name]]

    return FaceParams(
        inner_brow=_unit(c("AU1") + 0.5 * c("Sad") + 0.6 * c("Surprise") + 0.4 * c("Fear")),
        outer_brow=_unit(c("AU2") + 0.6 * c("Surprise")),
        brow_lower=_unit(c("AU4") + 0.6 * c("Anger") + 0.3 * c("Disgust")),
        eye_open=np.clip(1.0 + 0.6 * c("Surprise") + 0.4 * c("Fear") - 0.45 * c("AU6") - 0.35 * c("AU7")
                         - 0.2 * c("AU9"), 0.2, 1.6),
        smile=_unit(c("AU12") + 0.5 * c("Happy")),
        contempt=_unit(c("Contempt") + 0.3 * c("AU14")),
        frown=_unit(c("AU15") + 0.5 * c("Sad") + 0.3 * c("Disgust")),
        mouth_open=_unit(0.5 * c("AU25") + 0.8 * c("AU26") + 0.5 * c("Surprise") + 0.3 * c("Fear")),
        upper_lip=_unit(c("AU10") + 0.5 * c("Disgust")),
        press=_unit(0.6 * c("AU23") + 0.6 * c("AU24")),
        chin=c("AU17"),
        cheek=_unit(c("AU6") + 0.4 * c("Happy")),
        wrinkle=c("AU9"),
    )


Window = tuple[slice, slice]
JAW_STEPS = 16  # distinct jaw drops, so that the head outline is drawn at most 17 times


class FaceRenderer:
    """Draws ``size x size`` RGB uint8 face sketches; the pixel grid is built once.

    Each shape is evaluated only inside its bounding window, which keeps a frame at a few ms.
    """

    def __init__(self, size: int = 256):
        self.size = size
        grid = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.y, self.x = np.meshgrid(grid, grid, indexing="ij")
        self._heads: dict[int, np.ndarray] = {}

    def _window(self, x0: float, x1: float, y0: float, y1: float) -> Window:
        """Pixel slices covering the box ``[x0, x1] x [y0, y1]`` (image units) plus a margin."""
        def span(a: float, b: float) -> slice:
            return slice(max(int(a * self.size) - 2, 0), min(int(b * self.size) + 3, self.size))

        return span(y0, y1), span(x0, x1)

    def _paint(self, image: np.ndarray, win: Window, distance: np.ndarray, color: np.ndarray,
               alpha: float = 1.0) -> None:
        """Blend ``color`` where the signed distance (image units, < 0 inside) is negative."""
        cover = np.clip(0.5 - distance * self.size, 0.0, 1.0)
        if alpha != 1.0:
            cover *= alpha
        part = image[win]
        part += cover[..., None] * (color - part)

    def _ellipse(self, win: Window, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        r = np.sqrt(((self.x[win] - cx) / rx) ** 2 + ((self.y[win] - cy) / ry) ** 2)
        return (r - 1.0) * min(rx, ry)

    def _ellipse_window(self, cx: float, cy: float, rx: float, ry: float) -> Window:
        return self._window(cx - rx, cx + rx, cy - ry, cy + ry)

    def _segments(self, points: list[tuple[float, float]], width: float) -> tuple[Window, np.ndarray]:
        """Window and distance of a polyline of thickness ``2 * width``."""
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        win = self._window(min(xs) - width, max(xs) + width, min(ys) - width, max(ys) + width)
        x, y = self.x[win], self.y[win]
        distance = None
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            px, py, dx, dy = x - ax, y - ay, bx - ax, by - ay
            t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
            d = np.hypot(px - t * dx, py - t * dy) - width
            distance = d if distance is None else np.minimum(distance, d)
        return win, distance

    def draw(self, p: FaceParams, t: int) -> np.ndarray:
        """Frame ``t`` of ``p`` as ``(size, size, 3)`` uint8."""
        v = {name: float(getattr(p, name)[t]) for name in FaceParams.__dataclass_fields__}
        image = self._head(round(v["mouth_open"] * JAW_STEPS)).copy()
        for side in (-1.0, 1.0):
            if v["cheek"] > 0.02:
                cheek = (0.5 + 0.2 * side, 0.62, 0.055, 0.04)
                win = self._ellipse_window(*cheek)
                self._paint(image, win, self._ellipse(win, *cheek), BLUSH, 0.6 * v["cheek"])
            self._draw_eye(image, 0.5 + 0.145 * side, v)
            self._draw_brow(image, side, v)
        self._draw_nose(image, v)
        self._draw_mouth(image, v)
        return (image * 255.0 + 0.5).astype(np.uint8)

    def _head(self, jaw: int) -> np.ndarray:
        """Background, skin and outline with the jaw dropped by ``jaw / JAW_STEPS`` (cached)."""
        if jaw not in self._heads:
            image = np.empty((self.size, self.size, 3), np.float32)
            image[:] = BACKGROUND
            drop = 0.0125 * jaw / JAW_STEPS
            head = (0.5, 0.52 + drop, 0.36, 0.44 + drop)
            win = self._ellipse_window(*head)
            face = self._ellipse(win, *head)
            self._paint(image, win, face, SKIN)
            self._paint(image, win, np.abs(face) - 0.004, INK)
            self._heads[jaw] = image
        return self._heads[jaw]

    def _draw_eye(self, image: np.ndarray, cx: float, v: dict[str, float]) -> None:
        shape = (cx, 0.45, 0.062, 0.036 * v["eye_open"])
        win = self._ellipse_window(*shape)
        eye = self._ellipse(win, *shape)
        self._paint(image, win, eye, WHITE)
        iris = np.maximum(self._ellipse(win, cx, 0.45, 0.024, 0.024), eye)  # clipped by the lids
        self._paint(image, win, iris, INK)
        self._paint(image, win, np.abs(eye) - 0.003, INK)

    def _draw_brow(self, image: np.ndarray, side: float, v: dict[str, float]) -> None:
        lower, inner, outer = v["brow_lower"], v["inner_brow"], v["outer_brow"]
        points = [(0.5 + side * (0.065 - 0.035 * lower), 0.365 - 0.075 * inner + 0.05 * lower),
                  (0.5 + side * 0.14, 0.345 - 0.04 * (inner + outer) + 0.025 * lower),
                  (0.5 + side * 0.215, 0.37 - 0.075 * outer + 0.005 * lower)]
        self._paint(image, *self._segments(points, 0.01), INK)

    def _draw_nose(self, image: np.ndarray, v: dict[str, float]) -> None:
        self._paint(image, *self._segments([(0.5, 0.49), (0.475, 0.6), (0.52, 0.6)], 0.004), INK, 0.8)
        if v["wrinkle"] > 0.02:
            for side in (-1.0, 1.0):
                crease = [(0.5 + 0.03 * side, 0.53), (0.5 + 0.05 * side, 0.565)]
                self._paint(image, *self._segments(crease, 0.003), INK, 0.8 * v["wrinkle"])

    def _draw_mouth(self, image: np.ndarray, v: dict[str, float]) -> None:
        base = 0.745 + 0.012 * v["mouth_open"]
        half = 0.125 + 0.03 * v["smile"] - 0.035 * v["press"]
        lift = 0.055 * v["smile"] - 0.045 * v["frown"]
        left, right = base - lift, base - lift - 0.04 * v["contempt"]
        gap = (0.004 + 0.11 * v["mouth_open"]) * (1.0 - 0.7 * v["press"])
        top = base - 0.4 * gap - 0.02 * v["upper_lip"]
        bottom = base + 0.6 * gap - 0.015 * v["chin"]
        ys = (left, right, top, bottom)
        win = self._window(0.5 - half, 0.5 + half, min(ys) - 0.01, max(ys) + 0.01)
        x, y = self.x[win], self.y[win]
        s = np.clip((x - 0.5) / half, -1.0, 1.0)
        corner = left + (right - left) * (s + 1.0) / 2.0
        bulge = 1.0 - s * s
        upper, lower = corner + (top - corner) * bulge, corner + (bottom - corner) * bulge
        across = np.abs(x - 0.5) - half
        self._paint(image, win, np.maximum.reduce([upper - y, y - lower, across]), MOUTH)
        lip = 0.006 * (1.0 - 0.5 * v["press"])
        for edge in (upper, lower):
            self._paint(image, win, np.maximum(np.abs(y - edge) - lip, across), LIP)
