"""Perceptual processor: a MULT-style cross-modal transformer fusing video and audio per frame.

Each modality is projected to ``dim`` channels, then attends to the other one's projected features
through a stack of cross-modal blocks: with ``fusion="both"`` video <- audio and audio <- video, the
two streams concatenated; with ``fusion="video"`` (the official REGNN) only video <- audio. The
fused stream is refined by self-attention ("memory") blocks, and a head maps every frame to
``out_dim`` (64) channels: an MLP, or (``residual_head``, as MULT) ``out(h + MLP(h))``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(frames: int, dim: int, device: torch.device) -> torch.Tensor:
    """The transformer's fixed sine/cosine position code, ``(frames, dim)``."""
    position = torch.arange(frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim))
    code = torch.zeros(frames, dim, device=device)
    code[:, 0::2] = torch.sin(position * freq)
    code[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return code


class CrossModalBlock(nn.Module):
    """Pre-norm transformer block: queries from ``x``, keys/values from ``context`` (cross-modal)
    or from ``x`` itself (``cross=False``, self-attention)."""

    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float, cross: bool = True):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        kv = q if self.norm_kv is None else self.norm_kv(context)
        x = x + self.drop(self.attn(q, kv, kv, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm_ff(x)))


class PerceptualProcessor(nn.Module):
    """``(B, T, video_dim)`` + ``(B, T, audio_dim)`` -> fused ``(B, T, out_dim)``."""

    def __init__(self, video_dim: int, audio_dim: int, dim: int = 128, heads: int = 4, layers: int = 5,
                 memory_layers: int = 2, dropout: float = 0.1, attn_dropout: float = 0.1, out_dim: int = 64,
                 fusion: str = "both", input_dropout: float = 0.0, residual_head: bool = False):
        super().__init__()
        if fusion not in ("both", "video"):
            raise ValueError(f"fusion must be 'both' or 'video', got '{fusion}'")
        self.video_dim, self.audio_dim = video_dim, audio_dim
        self.proj_v = nn.Conv1d(video_dim, dim, kernel_size=1, bias=False)
        self.proj_a = nn.Conv1d(audio_dim, dim, kernel_size=1, bias=False)
        self.scale = math.sqrt(dim)
        self.input_drop = nn.Dropout(input_dropout)

        def stack(width: int, depth: int, cross: bool) -> nn.ModuleList:
            return nn.ModuleList(CrossModalBlock(width, heads, dropout, attn_dropout, cross)
                                 for _ in range(depth))

        width = 2 * dim if fusion == "both" else dim
        self.v_from_a = stack(dim, layers, True)
        self.a_from_v = stack(dim, layers, True) if fusion == "both" else None
        self.memory = stack(width, memory_layers, False)
        self.norm = nn.LayerNorm(width)
        head_out = width if residual_head else out_dim
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(width, head_out))
        self.out = nn.Linear(width, out_dim) if residual_head else None

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if video.shape[:2] != audio.shape[:2]:
            raise ValueError(f"video {tuple(video.shape)} and audio {tuple(audio.shape)} must share (B, T)")
        if video.shape[-1] != self.video_dim or audio.shape[-1] != self.audio_dim:
            raise ValueError(f"expected feature dims video {self.video_dim} / audio {self.audio_dim}, "
                             f"got {video.shape[-1]} / {audio.shape[-1]}")
        pos = sinusoidal_positions(video.shape[1], self.proj_v.out_channels, video.device)
        v = self.input_drop(self.scale * self.proj_v(video.transpose(1, 2)).transpose(1, 2) + pos)
        a = self.input_drop(self.scale * self.proj_a(audio.transpose(1, 2)).transpose(1, 2) + pos)
        h = v
        for block in self.v_from_a:  # as in MULT: the source (keys, values) stays low-level
            h = block(h, a)
        if self.a_from_v is not None:
            ha = a
            for block in self.a_from_v:
                ha = block(ha, v)
            h = torch.cat([h, ha], dim=-1)
        for block in self.memory:
            h = block(h)
        h = self.norm(h)
        return self.head(h) if self.out is None else self.out(h + self.head(h))
