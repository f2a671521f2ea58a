"""Perceptual processor: a MULT-style cross-modal transformer fusing video and audio per frame.

Each modality is projected to ``dim`` channels, then attends to the other one's projected features
through a stack of cross-modal blocks: with ``fusion="both"`` video <- audio and audio <- video, the
two streams concatenated; with ``fusion="video"`` (the official REGNN) only video <- audio. The
fused stream is refined by self-attention ("memory") blocks, and a head maps every frame to
``out_dim`` (64) channels: an MLP, or (``residual_head``, as MULT) ``out(h + MLP(h))``.

The maths are those of ``nn.MultiheadAttention`` and ``nn.Dropout``, computed for speed on the
CPU: attention batch-first as the plain product ``softmax(q k^T / sqrt(d)) v`` (:func:`attend`), and
dropout by positions drawn as geometric gaps between dropped entries (:func:`dropped_positions`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def sinusoidal_positions(frames: int, dim: int, device: torch.device) -> torch.Tensor:
    """The transformer's fixed sine/cosine position code, ``(frames, dim)``."""
    position = torch.arange(frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim))
    code = torch.zeros(frames, dim, device=device)
    code[:, 0::2] = torch.sin(position * freq)
    code[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return code


def geometric(count: int, p: float) -> torch.Tensor:
    """``count`` Geometric(``p``) draws (float64, support 1, 2, ...): the values and random stream of
    ``Tensor.geometric_``, whose per-element transformation ``ceil(log(u) / log(1 - p))`` runs
    here vectorised (twice as fast)."""
    return torch.rand(count, dtype=torch.float64).log_().div_(math.log1p(-p)).ceil_()


def dropped_positions(n: int, p: float) -> torch.Tensor:
    """The flat positions (ascending, int64) that dropout with probability ``p`` zeroes among ``n`` entries.

    Drawn as the running sums of i.i.d. Geometric(``p``) gaps, which is the same Bernoulli process
    as one draw per entry, from about ``p * n`` random numbers instead of ``n`` (on the CPU, drawing
    the numbers is most of dropout's cost).
    """
    draws = int(n * p + 6 * math.sqrt(n * p) + 16)
    ends = geometric(draws, p).cumsum_(0)  # 1-based drop positions
    while ends[-1] <= n:  # the gaps fell short of the end (rare): continue the same process
        ends = torch.cat([ends, geometric(draws, p).cumsum_(0) + ends[-1]])
    return ends[: int(torch.searchsorted(ends, float(n), right=True))].long() - 1


def scaled_with_zeros(x: torch.Tensor, scale: float, positions: torch.Tensor) -> torch.Tensor:
    """A new contiguous ``x * scale`` whose flat ``positions`` are 0."""
    out = (x * scale).contiguous()
    out.view(-1).index_fill_(0, positions, 0)
    return out


class DropPositions(torch.autograd.Function):
    """Dropout by positions: ``x / (1 - p)`` with the ``dropped`` entries zeroed, the gradient likewise.
    Keeps only the positions for the backward pass (no full-size mask is built, stored or read)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dropped: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(dropped)
        ctx.scale = scale
        return scaled_with_zeros(x, scale, dropped)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (dropped,) = ctx.saved_tensors
        return scaled_with_zeros(grad, ctx.scale, dropped), None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` (same distribution), by :func:`dropped_positions` on the CPU for
    ``p <= 0.3``, where that is the cheaper draw; otherwise, and on accelerators, the stock one."""
    if not training or not 0 < p <= 0.3 or x.device.type != "cpu":
        return F.dropout(x, p, training)  # (which also rejects a p outside [0, 1])
    return DropPositions.apply(x, dropped_positions(x.numel(), p), 1 / (1 - p))


class Dropout(nn.Dropout):
    """:class:`nn.Dropout` through :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if self.inplace else dropout(x, self.p, self.training)


def attend(attn: nn.MultiheadAttention, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """``attn(x, context, context, need_weights=False)[0]`` for batch-first ``attn`` (``context``
    None: ``x``), with the same parameters and maths but without its sequence-first layout copies.
    Only the plain layout is supported: one packed input projection with biases, no ``bias_k`` /
    ``bias_v``, no ``add_zero_attn``."""
    plain = attn.in_proj_weight is not None and attn.in_proj_bias is not None
    if not plain or attn.bias_k is not None or attn.add_zero_attn:
        raise ValueError("attend: nn.MultiheadAttention with kdim/vdim, bias=False, add_bias_kv or "
                         "add_zero_attn is not supported")
    dim, heads = attn.embed_dim, attn.num_heads
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    if context is None:
        q, k, v = F.linear(x, weight, bias).chunk(3, -1)
    else:
        q = F.linear(x, weight[:dim], bias[:dim])
        k, v = F.linear(context, weight[dim:], bias[dim:]).chunk(2, -1)
    q, k, v = (t.unflatten(-1, (heads, dim // heads)).transpose(1, 2) for t in (q, k, v))
    p = attn.dropout if attn.training else 0.0
    if q.device.type == "cpu":  # windows of 50 frames: plain products beat the fused CPU kernel
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
        out = dropout(weights, p, attn.training) @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    return attn.out_proj(out.transpose(1, 2).flatten(2))


class CrossModalBlock(nn.Module):
    """Pre-norm transformer block: queries from ``x``, keys/values from ``context`` (cross-modal)
    or from ``x`` itself (``cross=False``, self-attention)."""

    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float, cross: bool = True):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), Dropout(dropout),
                                nn.Linear(4 * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        x = x + self.drop(attend(self.attn, q, None if self.norm_kv is None else self.norm_kv(context)))
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
        self.input_drop = Dropout(input_dropout)

        def stack(width: int, depth: int, cross: bool) -> nn.ModuleList:
            return nn.ModuleList(CrossModalBlock(width, heads, dropout, attn_dropout, cross)
                                 for _ in range(depth))

        width = 2 * dim if fusion == "both" else dim
        self.v_from_a = stack(dim, layers, True)
        self.a_from_v = stack(dim, layers, True) if fusion == "both" else None
        self.memory = stack(width, memory_layers, False)
        self.norm = nn.LayerNorm(width)
        head_out = width if residual_head else out_dim
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), Dropout(dropout),
                                  nn.Linear(width, head_out))
        self.out = nn.Linear(width, out_dim) if residual_head else None

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if video.shape[:2] != audio.shape[:2]:
            raise ValueError(f"video {tuple(video.shape)} and audio {tuple(audio.shape)} must share (B, T)")
        if video.shape[-1] != self.video_dim or audio.shape[-1] != self.audio_dim:
            raise ValueError(f"expected feature dims video {self.video_dim} / audio {self.audio_dim}, "
                             f"got {video.shape[-1]} / {audio.shape[-1]}")
        pos = sinusoidal_positions(video.shape[1], self.proj_v.out_channels, video.device)
        # the 1x1 convolutions as linear maps of the batch-first features: no transposed activations
        v = self.input_drop(self.scale * F.linear(video, self.proj_v.weight.squeeze(-1)) + pos)
        a = self.input_drop(self.scale * F.linear(audio, self.proj_a.weight.squeeze(-1)) + pos)
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
