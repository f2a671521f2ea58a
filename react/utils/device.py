"""The one device choice: ``auto`` | ``cpu`` | ``cuda``."""

from __future__ import annotations

import torch

from react.config import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; ``cuda`` without a CUDA device is an error."""
    if name not in DEVICES:
        raise ConfigError(f"device: unknown '{name}'. Valid: {', '.join(DEVICES)}")
    has_cuda = torch.cuda.is_available()
    if name == "cuda" and not has_cuda:
        raise ConfigError("device=cuda but torch sees no CUDA device")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and has_cuda) else "cpu")
