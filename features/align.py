"""Put feature sequences of any rate onto the video frame grid (frame ``i`` at time ``i / fps``)."""

from __future__ import annotations

import torch


def align_to_frames(values: torch.Tensor, times: torch.Tensor, num_frames: int, fps: float) -> torch.Tensor:
    """Average the rows of ``values`` (``T x D``, row ``t`` centred at ``times[t]`` seconds) per frame.

    Frame ``i`` collects the rows whose time lies in ``[(i - 0.5) / fps, (i + 0.5) / fps)``; a frame
    that collects none (a source slower than ``fps``, or past its end) takes the row nearest in time.
    Returns ``num_frames x D`` in the dtype of ``values``.
    """
    if values.ndim != 2 or times.shape != values.shape[:1]:
        raise ValueError(f"expected values T x D and times T, got {tuple(values.shape)} and "
                         f"{tuple(times.shape)}")
    if len(times) == 0:
        raise ValueError("no feature rows to align")
    src = values.double()
    times = times.double()
    bins = torch.floor(times * fps + 0.5).long()
    inside = (bins >= 0) & (bins < num_frames)
    sums = torch.zeros(num_frames, src.shape[1], dtype=torch.float64).index_add_(0, bins[inside], src[inside])
    counts = torch.zeros(num_frames, dtype=torch.float64).index_add_(
        0, bins[inside], torch.ones(int(inside.sum()), dtype=torch.float64))
    empty = counts == 0
    if empty.any():
        frame_times = torch.arange(num_frames, dtype=torch.float64)[empty] / fps
        right = torch.searchsorted(times.contiguous(), frame_times).clamp(max=len(times) - 1)
        left = (right - 1).clamp(min=0)
        left_closer = (frame_times - times[left]).abs() <= (times[right] - frame_times).abs()
        nearest = torch.where(left_closer, left, right)
        sums[empty] = src[nearest]
        counts[empty] = 1.0
    return (sums / counts[:, None]).to(values.dtype)
