"""Batched speech-emotion inference: the one loop from waveforms to class probabilities, and the
speaker statistics that a ``normalization=speaker`` model takes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from react.data.ser_dataset import pad_batch


def _batches(waves: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Indices of ``waves`` in batches of similar length (padding stays small)."""
    order = np.argsort([w.size for w in waves], kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def _padded(waves: list[np.ndarray], index: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
    wave, mask = pad_batch([torch.from_numpy(np.ascontiguousarray(waves[i], dtype=np.float32))
                            for i in index])
    return wave.to(device), mask.to(device)


Frontend = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class RunningNorm:
    """Per-feature statistics of the raw frame features accumulated over a speaker's audio (a file
    set, or a live stream as it comes); ``frontend`` is :meth:`react.models.ser.SERModel.raw_features`
    or a ``Frontend.raw``: (B, L) waves and mask -> features (B, T, F) and frame weights (B, T, F)."""

    def __init__(self, frontend: Frontend, device: torch.device | str = "cpu"):
        self.frontend = frontend
        self.device = torch.device(device)
        self.total = self.total_sq = self.count = torch.zeros((), dtype=torch.float64)
        self.frames = 0  # valid frames seen

    @torch.no_grad()
    def update(self, waves: list[np.ndarray], batch_size: int = 16) -> RunningNorm:
        for index in _batches(waves, batch_size):
            feats, weights = self.frontend(*_padded(waves, index, self.device))
            w = weights.double()
            self.total = self.total + (feats.double() * w).sum((0, 1))
            self.total_sq = self.total_sq + (feats.double().pow(2) * w).sum((0, 1))
            self.count = self.count + w.sum((0, 1))
            self.frames += int(weights[..., 0].sum())
        return self

    def value(self) -> np.ndarray:
        """Mean and std ``(2, F)`` of every weighted frame seen so far (a feature without any, such
        as pitch in unvoiced audio, gets mean 0 and std 1e-3)."""
        if not self.frames:
            raise ValueError("speaker statistics need at least one waveform")
        mean = self.total / self.count.clamp_min(1.0)
        std = (self.total_sq / self.count.clamp_min(1.0) - mean.pow(2)).clamp_min(1e-6).sqrt()
        return torch.stack([mean, std]).float().cpu().numpy()


def speaker_norm(frontend: Frontend, waves: list[np.ndarray], batch_size: int = 16,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """Per-feature mean and std ``(2, F)`` of the raw frame features over all frames of ``waves``
    (one speaker's unlabelled audio): the ``norm`` of a ``normalization=speaker`` model."""
    return RunningNorm(frontend, device).update(waves, batch_size).value()


def model_speaker_norm(model: nn.Module, waves: list[np.ndarray]) -> np.ndarray | None:
    """``speaker_norm`` of ``waves`` for a ``normalization=speaker`` model, else None."""
    if not getattr(model, "speaker_norm", False):
        return None
    return speaker_norm(model.raw_features, waves, device=next(model.parameters()).device)


@torch.no_grad()
def classify(model: nn.Module, waves: list[np.ndarray], batch_size: int = 16,
             norms: list[np.ndarray] | None = None) -> np.ndarray:
    """Class probabilities ``(N, C)`` of mono waveforms at the model's sample rate, in input order;
    ``norms`` gives each wave its speaker's statistics (``normalization=speaker`` models).

    Waves are batched by similar length, so padding stays small (group-norm SSL encoders see it)."""
    device = next(model.parameters()).device
    if norms is not None and len(norms) != len(waves):
        raise ValueError(f"{len(norms)} speaker statistics for {len(waves)} waves")
    chunks, order = [], []
    for index in _batches(waves, batch_size):
        norm = None if norms is None else torch.from_numpy(np.stack([norms[i] for i in index])).to(device)
        logits = model(*_padded(waves, index, device), norm=norm)["logits"]
        chunks.append(torch.softmax(logits.float(), -1).cpu().numpy())
        order.extend(index)
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    probs = np.empty((len(waves), chunks[0].shape[1]), dtype=np.float32)
    probs[np.array(order)] = np.concatenate(chunks)
    return probs
