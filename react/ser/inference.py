"""Batched speech-emotion inference: the one loop from waveforms to class probabilities."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from react.data.ser_dataset import pad_batch


@torch.no_grad()
def classify(model: nn.Module, waves: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """Class probabilities ``(N, C)`` of mono waveforms at the model's sample rate, in input order.

    Waves are batched by similar length, so padding stays small (group-norm SSL encoders see it)."""
    device = next(model.parameters()).device
    order = np.argsort([w.size for w in waves], kind="stable")
    chunks = []
    for start in range(0, len(order), batch_size):
        wave, mask = pad_batch([torch.from_numpy(np.ascontiguousarray(waves[i], dtype=np.float32))
                                for i in order[start:start + batch_size]])
        logits = model(wave.to(device), mask.to(device))["logits"]
        chunks.append(torch.softmax(logits.float(), -1).cpu().numpy())
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    probs = np.empty((len(waves), chunks[0].shape[1]), dtype=np.float32)
    probs[order] = np.concatenate(chunks)
    return probs
