"""Put feature sequences of any rate onto the video frame grid (frame ``i`` at time ``i / fps``).

numpy inside (the torch-free inference path uses it too); torch tensors in give torch tensors out.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def align_to_frames(values: Any, times: Any, num_frames: int, fps: float) -> Any:
    """Average the rows of ``values`` (``T x D``, row ``t`` centred at ``times[t]`` seconds) per frame.

    Frame ``i`` collects the rows whose time lies in ``[(i - 0.5) / fps, (i + 0.5) / fps)``; a frame
    that collects none (a source slower than ``fps``, or past its end) takes the row nearest in time.
    Returns ``num_frames x D`` of the kind (numpy array or torch tensor) and dtype of ``values``.
    """
    if values.ndim != 2 or tuple(times.shape) != tuple(values.shape[:1]):
        raise ValueError(f"expected values T x D and times T, got {tuple(values.shape)} and "
                         f"{tuple(times.shape)}")
    if len(times) == 0:
        raise ValueError("no feature rows to align")
    src = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    bins = np.floor(times * fps + 0.5).astype(np.int64)
    inside = (bins >= 0) & (bins < num_frames)
    sums = np.zeros((num_frames, src.shape[1]))
    np.add.at(sums, bins[inside], src[inside])
    counts = np.bincount(bins[inside], minlength=num_frames).astype(np.float64)
    empty = counts == 0
    if empty.any():
        frame_times = np.arange(num_frames, dtype=np.float64)[empty] / fps
        right = np.minimum(np.searchsorted(times, frame_times), len(times) - 1)
        left = np.maximum(right - 1, 0)
        left_closer = np.abs(frame_times - times[left]) <= np.abs(times[right] - frame_times)
        sums[empty] = src[np.where(left_closer, left, right)]
        counts[empty] = 1.0
    out = sums / counts[:, None]
    if isinstance(values, np.ndarray):
        return out.astype(values.dtype)
    import torch

    return torch.from_numpy(out).to(values.dtype)
