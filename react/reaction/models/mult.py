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
    """The transformer's fixed sine/cosine position code, ``(frames, dim)``: positions 0, 1, ...,
    sines and cosines interleaved."""
    position = torch.arange(frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim))
    code = torch.zeros(frames, dim, device=device)
    code[:, 0::2] = torch.sin(position * freq)
    code[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return code


def fairseq_positions(x: torch.Tensor) -> torch.Tensor:
    """MULT's (fairseq's) position code for ``x`` ``(B, T, dim)``: frame ``t`` is position ``t + 1``,
    ``[sin(p f) | cos(p f)]`` halves with ``f_i = 10000^(-i / (dim/2 - 1))``; a frame whose first
    channel is exactly 0 counts as padding (position 0, a zero code), as the official code reads it."""
    dim, frames = x.shape[-1], x.shape[1]
    half = dim // 2
    freq = torch.exp(torch.arange(half, device=x.device, dtype=torch.float32) * -(math.log(1e4) / (half - 1)))
    angle = torch.arange(1, frames + 1, device=x.device, dtype=torch.float32)[:, None] * freq
    code = torch.cat([torch.sin(angle), torch.cos(angle)], 1)
    if dim % 2:
        code = torch.cat([code, code.new_zeros(frames, 1)], 1)
    return code * (x[..., :1] != 0).to(code.dtype)


POSITIONS = ("interleaved", "fairseq")


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


def attend(attn: nn.MultiheadAttention, x: torch.Tensor, context: torch.Tensor | None = None,
           values: torch.Tensor | None = None) -> torch.Tensor:
    """``attn(x, context, values, need_weights=False)[0]`` for batch-first ``attn`` (``context``
    None: ``x``; ``values`` None: ``context``), with the same parameters and maths but without its
    sequence-first layout copies.
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
    elif values is None:
        q = F.linear(x, weight[:dim], bias[:dim])
        k, v = F.linear(context, weight[dim:], bias[dim:]).chunk(2, -1)
    else:
        q = F.linear(x, weight[:dim], bias[:dim])
        k = F.linear(context, weight[dim:2 * dim], bias[dim:2 * dim])
        v = F.linear(values, weight[2 * dim:], bias[2 * dim:])
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
    or from ``x`` itself (``cross=False``, self-attention). ``shared_norm`` (MULT): keys and values
    are normalised by the queries' LayerNorm, and may come as two tensors (``values``)."""

    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float, cross: bool = True,
                 shared_norm: bool = False):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross and not shared_norm else None
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), Dropout(dropout),
                                nn.Linear(4 * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                values: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        norm = self.norm_q if self.norm_kv is None else self.norm_kv
        keys = None if context is None else norm(context)
        vals = None if values is None else norm(values)
        x = x + self.drop(attend(self.attn, q, keys, vals))
        return x + self.drop(self.ff(self.norm_ff(x)))

    def xavier_init(self) -> None:
        """MULT's initialisation: xavier-uniform weights and zero biases of the attention's input
        and output projections and of the feed-forward layers."""
        for weight, bias in ((self.attn.in_proj_weight, self.attn.in_proj_bias),
                             (self.attn.out_proj.weight, self.attn.out_proj.bias),
                             (self.ff[0].weight, self.ff[0].bias), (self.ff[3].weight, self.ff[3].bias)):
            nn.init.xavier_uniform_(weight)
            nn.init.zeros_(bias)


class PerceptualProcessor(nn.Module):
    """``(B, T, video_dim)`` + ``(B, T, audio_dim)`` -> fused ``(B, T, out_dim)``.

    MULT's encoder layout (the official REGNN) by options: ``positions="fairseq"``
    (:func:`fairseq_positions`); ``stack_embedding``: every stack starts from ``sqrt(dim) x +
    positions`` and the input dropout, and ends with its own LayerNorm, so between the cross-modal
    and the self-attention stack the output is normalised, scaled, given positions again and
    dropped; keys and values are then two separately dropped copies of the audio; ``shared_kv_norm``:
    keys/values share the queries' LayerNorm; ``project_audio=False``: audio of ``dim`` channels is
    used as it is (no ``proj_a``); ``head_dropout`` (None: ``dropout``); ``xavier_init``.
    """

    def __init__(self, video_dim: int, audio_dim: int, dim: int = 128, heads: int = 4, layers: int = 5,
                 memory_layers: int = 2, dropout: float = 0.1, attn_dropout: float = 0.1, out_dim: int = 64,
                 fusion: str = "both", input_dropout: float = 0.0, residual_head: bool = False,
                 positions: str = "interleaved", stack_embedding: bool = False, shared_kv_norm: bool = False,
                 project_audio: bool = True, head_dropout: float | None = None, xavier_init: bool = False):
        super().__init__()
        if fusion not in ("both", "video"):
            raise ValueError(f"fusion must be 'both' or 'video', got '{fusion}'")
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got '{positions}'")
        if not project_audio and audio_dim != dim:
            raise ValueError(f"project_audio=False needs audio of dim={dim} channels, got {audio_dim}")
        if stack_embedding and fusion != "video":
            raise ValueError("stack_embedding (MULT's encoder layout) is defined for fusion='video'")
        self.video_dim, self.audio_dim = video_dim, audio_dim
        self.positions, self.stack_embedding = positions, stack_embedding
        self.proj_v = nn.Conv1d(video_dim, dim, kernel_size=1, bias=False)
        self.proj_a = nn.Conv1d(audio_dim, dim, kernel_size=1, bias=False) if project_audio else None
        self.scale = math.sqrt(dim)
        self.input_drop = Dropout(input_dropout)

        def stack(width: int, depth: int, cross: bool) -> nn.ModuleList:
            return nn.ModuleList(CrossModalBlock(width, heads, dropout, attn_dropout, cross, shared_kv_norm)
                                 for _ in range(depth))

        width = 2 * dim if fusion == "both" else dim
        self.v_from_a = stack(dim, layers, True)
        self.a_from_v = stack(dim, layers, True) if fusion == "both" else None
        self.cross_norm = nn.LayerNorm(dim) if stack_embedding else None
        self.memory = stack(width, memory_layers, False)
        self.norm = nn.LayerNorm(width)
        head_out = width if residual_head else out_dim
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(),
                                  Dropout(dropout if head_dropout is None else head_dropout),
                                  nn.Linear(width, head_out))
        self.out = nn.Linear(width, out_dim) if residual_head else None
        if xavier_init:
            for block in self.modules():
                if isinstance(block, CrossModalBlock):
                    block.xavier_init()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``input_drop(sqrt(dim) x + positions)``."""
        if self.positions == "fairseq":
            pos = fairseq_positions(x)
        else:
            pos = sinusoidal_positions(x.shape[1], x.shape[-1], x.device)
        return self.input_drop(self.scale * x + pos)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if video.shape[:2] != audio.shape[:2]:
            raise ValueError(f"video {tuple(video.shape)} and audio {tuple(audio.shape)} must share (B, T)")
        if video.shape[-1] != self.video_dim or audio.shape[-1] != self.audio_dim:
            raise ValueError(f"expected feature dims video {self.video_dim} / audio {self.audio_dim}, "
                             f"got {video.shape[-1]} / {audio.shape[-1]}")
        # the 1x1 convolutions as linear maps of the batch-first features: no transposed activations
        v_in = F.linear(video, self.proj_v.weight.squeeze(-1))
        a_in = audio if self.proj_a is None else F.linear(audio, self.proj_a.weight.squeeze(-1))
        v, a = self.embed(v_in), self.embed(a_in)
        values = self.embed(a_in) if self.stack_embedding else None  # its own dropout mask
        h = v
        for block in self.v_from_a:  # as in MULT: the source (keys, values) stays low-level
            h = block(h, a, values)
        if self.a_from_v is not None:
            ha = a
            for block in self.a_from_v:
                ha = block(ha, v)
            h = torch.cat([h, ha], dim=-1)
        if self.cross_norm is not None:
            h = self.embed(self.cross_norm(h))
        for block in self.memory:
            h = block(h)
        h = self.norm(h)
        return self.head(h) if self.out is None else self.out(h + self.head(h))
