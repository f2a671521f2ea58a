"""The exported networks as plain ``nn.Module`` wrappers with numpy-friendly inputs and outputs.

- :class:`ReactionGenerator`: speaker windows and latent noise -> reactions. The noise is an input,
  so the ONNX graph and PyTorch give the same ``S`` samples for the same noise. The motor
  processor's inverse is a fixed-point loop; for export it is unrolled ``iters`` times, its early
  stop kept as masks that freeze a converged group, and the spectral norms of the Lipschitz bound
  (weights only, an SVD that ONNX lacks) are computed once and stored as constants.
- :class:`VideoBackbone`: uint8 cropped frames ``(B, H, W, 3)`` -> per-frame features (the
  normalisation of :class:`features.video.VideoExtractor` is inside the graph).
- :class:`AudioBackbone`: waveforms ``(B, samples)`` -> hidden-state rows ``(B, rows, dim)``, the
  chosen layers averaged (as :class:`features.audio.AudioExtractor` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from react.models.regnn import REGNN


@contextmanager
def constant_weight_norms() -> Iterator[None]:
    """While tracing for export, evaluate ``torch.linalg.matrix_norm`` outside the trace, so its
    value enters the graph as a constant (ONNX has no SVD). Valid because the motor layers take
    spectral norms of their weights only; the parity check vouches for it."""
    original = torch.linalg.matrix_norm

    def constant(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)
        try:
            return original(x.detach(), *args, **kwargs)
        finally:
            torch._C._set_tracing_state(state)

    torch.linalg.matrix_norm = constant
    try:
        yield
    finally:
        torch.linalg.matrix_norm = original


class ReactionGenerator(nn.Module):
    """``video (W, T, dv)``, ``audio (W, T, da)``, ``noise (W, S, nodes, T)`` -> ``(W, S, T, nodes)``.

    ``noise`` is the latent offset of each sample from the cognitive centre, as
    :meth:`REGNN.noise` draws it (scaled). At most ``iters`` fixed-point iterations per layer;
    ``tol > 0`` stops early as :meth:`REGNN.sample` does, by masks, so the traced graph computes
    the same.
    """

    def __init__(self, model: REGNN, iters: int, tol: float = 0.0):
        super().__init__()
        if iters < 1:
            raise ValueError(f"inverse iterations must be >= 1, got {iters}")
        self.model, self.iters, self.tol = model, iters, tol
        self.eval()

    def forward(self, video: torch.Tensor, audio: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        m = self.model
        centre, edges = m.condition(video, audio)
        s = noise.shape[1]
        latent = (centre[:, None] + noise).flatten(0, 1)
        edges = edges[:, None].expand(-1, s, -1, -1, -1).flatten(0, 1)
        return m.invert(latent, edges, s, self.iters, self.tol)


class VideoBackbone(nn.Module):
    """uint8 ``(B, H, W, 3)`` -> ``(B, dim)``: ``(x / 255 - mean) / std`` then the Swin."""

    def __init__(self, swin: nn.Module, mean: float, std: float):
        super().__init__()
        self.swin, self.mean, self.std = swin, mean, std
        self.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float()
        return self.swin(x * (1.0 / (255.0 * self.std)) - self.mean / self.std)


class AudioBackbone(nn.Module):
    """``(B, samples)`` -> ``(B, rows, dim)``: the mean of the chosen hidden states."""

    def __init__(self, ssl: nn.Module, layers: list[int]):
        super().__init__()
        self.ssl, self.layers = ssl, list(layers)
        self.eval()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        states = self.ssl(wave, output_hidden_states=True).hidden_states
        return torch.stack([states[i] for i in self.layers]).mean(0)
