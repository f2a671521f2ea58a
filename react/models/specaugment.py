"""SpecAugment: time and feature-band masking of ``(B, T, F)`` feature sequences (a pure tensor op)."""

from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """Zero random time spans and feature bands of ``(B, T, F)`` features, valid frames only.

    Active only in training mode; each utterance is masked with probability ``p``.
    """

    def __init__(self, p: float, time_masks: int, time_mask_frac: float, freq_masks: int,
                 freq_mask_width: int):
        super().__init__()
        self.p, self.time_masks, self.time_mask_frac = p, time_masks, time_mask_frac
        self.freq_masks, self.freq_mask_width = freq_masks, freq_mask_width

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, F), ``mask`` (B, T) True on valid frames."""
        if not self.training or self.p <= 0:
            return x
        b, t, f = x.shape
        dev = x.device
        apply = (torch.rand(b, device=dev) < self.p).view(b, 1)
        lengths = mask.sum(1, keepdim=True).float()
        pos_t = torch.arange(t, device=dev).view(1, 1, t)
        width = (torch.rand(b, self.time_masks, device=dev) * self.time_mask_frac * lengths).floor()
        start = (torch.rand(b, self.time_masks, device=dev) * (lengths - width).clamp_min(0)).floor()
        drop_t = ((pos_t >= start.unsqueeze(-1)) & (pos_t < (start + width).unsqueeze(-1))).any(1)
        pos_f = torch.arange(f, device=dev).view(1, 1, f)
        fwidth = (torch.rand(b, self.freq_masks, device=dev) * (self.freq_mask_width + 1)).floor()
        fstart = (torch.rand(b, self.freq_masks, device=dev) * (f - fwidth).clamp_min(0)).floor()
        drop_f = ((pos_f >= fstart.unsqueeze(-1)) & (pos_f < (fstart + fwidth).unsqueeze(-1))).any(1)
        drop = (drop_t & mask).unsqueeze(-1) | (drop_f.unsqueeze(1) & mask.unsqueeze(-1))
        drop = drop & apply.unsqueeze(-1)
        return x.masked_fill(drop, 0.0)
