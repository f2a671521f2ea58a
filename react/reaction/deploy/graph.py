"""The exported networks as plain ``nn.Module`` wrappers with numpy-friendly inputs and outputs.

- :class:`ContractGenerator`: any generator of the contract (:mod:`react.reaction.contract`) as a
  network of positional inputs: its conditions in ``model.inputs`` order, ``past`` (models with
  ``feedback``), ``noise`` -> reactions ``(W, S, frames, nodes)``, i.e. ``model.generate``.
- :class:`ReactionGenerator`: REGNN's own: speaker windows and latent noise -> reactions. The noise
  is an input, so the ONNX graph and PyTorch give the same ``S`` samples for the same noise. The motor
  processor's inverse is a fixed-point loop; for export it is unrolled ``iters`` times, its early
  stop kept as masks that freeze a converged group, and the spectral norms of the Lipschitz bound
  (weights only, an SVD that ONNX lacks) are computed once and stored as constants.
- :class:`VideoBackbone`: uint8 cropped frames ``(B, H, W, 3)`` -> per-frame features (the
  normalisation of :class:`features.video.VideoExtractor` is inside the graph).
- :class:`AudioBackbone`: waveforms ``(B, samples)`` -> hidden-state rows ``(B, rows, dim)``, the
  chosen layers averaged (as :class:`features.audio.AudioExtractor` does).
- :class:`VggishBackbone`: waveforms ``(B, samples)`` -> one VGGish embedding per example hop
  ``(B, rows, 128)``: the log-mel front end of :mod:`features.vggish` inside the graph.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from react.reaction.models.regnn import REGNN


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


def generator_inputs(model: nn.Module) -> tuple[str, ...]:
    """The generator network's input names, in order: the model's conditions, ``past`` (with
    ``feedback``), ``noise``."""
    return (*model.inputs, *(("past",) if model.feedback else ()), "noise")


class ContractGenerator(nn.Module):
    """``model.generate`` with positional inputs (:func:`generator_inputs`), at ``scale`` 1."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.names = model, generator_inputs(model)[:-1]
        self.eval()

    def forward(self, *arrays: torch.Tensor) -> torch.Tensor:
        *conditions, noise = arrays
        return self.model.generate(dict(zip(self.names, conditions)), noise)


def generator_network(model: nn.Module, iters: int = 0) -> nn.Module:
    """The network that deployment exports for ``model``: REGNN's unrolled inverse with ``iters``
    iterations per layer (0: the model's own) and its tolerance; any other model's ``generate``."""
    if isinstance(model, REGNN):
        return ReactionGenerator(model, iters or model.inverse_iters, model.inverse_tol)
    return ContractGenerator(model)


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


class VggishBackbone(nn.Module):
    """``(B, samples)`` -> ``(B, rows, 128)``: row ``i`` is the VGGish embedding of the 0.96 s example
    centred at ``i * hop`` log-mel frames, as :func:`features.vggish.clip_examples` cuts them.

    The front end is a convolution: a periodic Hann window of ``window`` samples times the cosine
    and sine of each FFT bin (``fft`` points), every ``stride`` samples; the magnitude spectrum
    times the mel matrix ``mel`` ``(bins, 64)``, ``log(mel + offset)``; padded by half an example
    of silence (``log(offset)``) at both ends.
    """

    def __init__(self, vggish: nn.Module, mel: torch.Tensor, window: int, stride: int, fft: int, hop: int,
                 example: int, offset: float):
        super().__init__()
        n = torch.arange(window, dtype=torch.float64)
        bins = torch.arange(fft // 2 + 1, dtype=torch.float64)[:, None]
        hann = 0.5 - 0.5 * torch.cos(2 * math.pi * n / window)
        angle = 2 * math.pi * bins * n / fft
        basis = torch.cat([torch.cos(angle) * hann, -torch.sin(angle) * hann])[:, None]
        self.register_buffer("basis", basis.float())
        self.register_buffer("mel", mel.float())
        self.vggish, self.stride, self.hop, self.example, self.offset = vggish, stride, hop, example, offset
        self.eval()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        re, im = F.conv1d(wave[:, None], self.basis, stride=self.stride).chunk(2, 1)  # (B, bins, frames)
        logmel = torch.log((re * re + im * im).sqrt().transpose(1, 2) @ self.mel + self.offset)
        half = self.example // 2
        silence = torch.full_like(logmel[:, :half], math.log(self.offset))
        padded = torch.cat([silence, logmel, silence], 1)
        rows = torch.div(logmel.shape[1], self.hop, rounding_mode="floor") + 1
        index = torch.arange(rows, device=wave.device)[:, None] * self.hop + torch.arange(self.example,
                                                                                        device=wave.device)
        examples = padded[:, index]  # (B, rows, example, 64)
        embeddings = self.vggish(examples.flatten(0, 1)[:, None])
        return embeddings.view(wave.shape[0], -1, embeddings.shape[-1])
