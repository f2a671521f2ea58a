"""Motor processor: a reversible graph network whose residual branches are Lipschitz-constrained.

Each layer is ``y = x + f(x, E)`` (i-ResNet style) on node series ``x`` of shape ``(B, nodes, T)``
with the cognitive edges ``E`` ``(B, C, nodes, nodes)``:

    f(x, E) = s * sum_c a_c E_c act(x U + u) V_c

``act`` is 1-Lipschitz (ELU or ReLU), so ``Lip_x(f) <= s * ||U||_2 * sum_c |a_c| ||E_c||_2 ||V_c||_2``
(spectral norms; ``||E_c||_2 <= sqrt(||E_c||_1 ||E_c||_inf)``). The scale ``s`` divides by that bound
whenever it exceeds ``coeff`` < 1, so every layer is a contraction plus identity and is exactly
invertible by the fixed-point iteration ``x <- y - f(x)``. The node-to-node mixing is the
attention that the cognitive processor computed over the speaker's node series; attention over ``x``
itself is left out because softmax attention has no global Lipschitz bound (Kim et al., 2021).
``log|det(I + J_f)|`` is the truncated power series ``sum_k (-1)^(k+1) tr(J_f^k) / k`` with a
Hutchinson trace estimate; optional ActNorm layers (per-node scale and shift) sit between layers.

The official REGNN's residual (``residual="attention"``, :class:`AttentionGraphLayer`) is softmax
attention over the activated node series, multiplied by the edges, divided by a heuristic bound
``L`` that does not guarantee ``Lip(f) < 1``; its ActNorm is initialised from the first batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"elu": F.elu, "relu": F.relu}


def edge_norm_bound(edges: torch.Tensor) -> torch.Tensor:
    """Upper bound of the spectral norm of each ``(N, N)`` edge matrix: ``sqrt(||E||_1 ||E||_inf)``."""
    mag = edges.abs()
    return torch.sqrt(mag.sum(-2).amax(-1) * mag.sum(-1).amax(-1))


class LipschitzGraphLayer(nn.Module):
    """The residual branch ``f(x, E)`` with ``Lip_x(f) <= coeff`` for every edge tensor ``E``."""

    def __init__(self, frames: int, hidden: int, edge_dim: int, activation: str = "elu", coeff: float = 0.9):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got '{activation}'")
        if not 0 < coeff < 1:
            raise ValueError(f"Lipschitz coefficient must be in (0, 1), got {coeff}")
        self.act, self.coeff = ACTIVATIONS[activation], coeff
        self.U = nn.Parameter(torch.randn(frames, hidden) / math.sqrt(frames))
        self.u = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.randn(edge_dim, hidden, frames) / math.sqrt(hidden))
        self.mix = nn.Parameter(torch.full((edge_dim,), 1.0 / edge_dim))

    def lipschitz_bound(self, edges: torch.Tensor) -> torch.Tensor:
        """Per-sample bound ``(B,)`` of the unscaled branch's Lipschitz constant in ``x``."""
        norm_u = torch.linalg.matrix_norm(self.U.float(), ord=2)
        norm_v = torch.linalg.matrix_norm(self.V.float(), ord=2)  # (C,)
        return norm_u * (edge_norm_bound(edges.float()) * (self.mix.abs() * norm_v)).sum(-1)

    def mixing(self, edges: torch.Tensor) -> torch.Tensor:
        """``s * a_c * E_c[i, j]`` laid out ``(B, N_i, N_j * C)`` (``c`` fastest): the edges with the
        channel weights and the bounding scale, in the order that :meth:`forward` contracts."""
        scale = self.coeff / torch.clamp(self.lipschitz_bound(edges), min=self.coeff)
        weighted = edges * (self.mix[None, :] * scale[:, None].to(edges.dtype))[:, :, None, None]
        return weighted.permute(0, 2, 3, 1).flatten(2)

    def forward(self, x: torch.Tensor, mixing: torch.Tensor) -> torch.Tensor:
        """``f(x)`` for node series ``x`` ``(B, N, T)`` and ``mixing`` from :meth:`mixing`, as
        ``sum_(j, c) mixing[i, (j, c)] (h V_c)[j]``: no activation is ever transposed."""
        b, n, t = x.shape
        h = self.act(x @ self.U + self.u)  # (B, N, H)
        per_channel = h @ self.V.transpose(0, 1).flatten(1)  # (B, N_j, C * T): h V_c side by side
        return mixing @ per_channel.view(b, -1, t)  # (B, N_i, T)


class AttentionGraphLayer(nn.Module):
    """The official REGNN residual (``models/LipschitzGraph.py``, ``GraphAttention``).

    ``h = sigmoid(act(x))``; ``[q | k] = h W^T + b`` (``qk``, ``T -> 2T``);
    ``A = softmax(q k^T / sqrt(T))``; per edge channel ``c`` the product ``A * E_c`` with every row
    re-normalised to sum 1; the channels mixed with ``w / sum(w)``; ``f = (mixed @ h) / L`` with
    the heuristic bound ``L = ||I + 2 W_q W_k^T / sqrt(T)||_2 + 5`` of the current weights
    (``W_q``, ``W_k``: the first and second ``T`` rows of ``qk.weight``), a constant for the
    gradient. ``L`` does not guarantee ``Lip(f) < 1``.
    """

    def __init__(self, frames: int, edge_dim: int, activation: str = "elu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got '{activation}'")
        self.act = ACTIVATIONS[activation]
        self.qk = nn.Linear(frames, 2 * frames)
        self.w = nn.Parameter(torch.ones(edge_dim))

    def bound(self) -> torch.Tensor:
        """The heuristic ``L`` (no gradient)."""
        with torch.no_grad():
            frames = self.qk.in_features
            wq, wk = self.qk.weight[:frames], self.qk.weight[frames:]
            eye = torch.eye(frames, device=wq.device, dtype=wq.dtype)
            return torch.linalg.matrix_norm(eye + 2 * (wq @ wk.T) / math.sqrt(frames), ord=2) + 5

    def mixing(self, edges: torch.Tensor) -> torch.Tensor:
        """The edges themselves: the mixing depends on ``x`` through the attention."""
        return edges

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """``f(x)`` for node series ``x`` ``(B, N, T)`` and edges ``(B, C, N, N)``."""
        h = torch.sigmoid(self.act(x))
        q, k = self.qk(h).chunk(2, -1)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(x.shape[-1]), -1)
        weighted = attn[:, None] * edges
        weighted = weighted / weighted.sum(-1, keepdim=True)
        mixed = torch.einsum("bcij,c->bij", weighted, self.w / self.w.sum())
        return mixed @ h / self.bound()


class ActNorm(nn.Module):
    """Per-node affine map ``x * exp(log_scale) + shift``: the identity at initialisation, or with
    ``data_init`` set on the first training batch so that every node has zero mean and unit variance."""

    def __init__(self, nodes: int, data_init: bool = False, eps: float = 1e-5):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(nodes, 1))
        self.shift = nn.Parameter(torch.zeros(nodes, 1))
        self.eps = eps
        if data_init:
            self.register_buffer("initialised", torch.zeros(1, dtype=torch.bool))
        else:
            self.initialised: torch.Tensor | None = None

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        mean = x.mean((0, 2))[:, None]
        std = (x.var((0, 2), unbiased=False)[:, None] + self.eps).sqrt()
        self.log_scale.copy_(-std.log())
        self.shift.copy_(-mean / std)
        self.initialised.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.initialised is not None and self.training and not self.initialised:
            self.initialise(x)
        logdet = self.log_scale.sum() * x.shape[-1]
        return x * self.log_scale.exp() + self.shift, logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.shift) * torch.exp(-self.log_scale)


def residual_logdet(branch: torch.Tensor, x: torch.Tensor, terms: int, create_graph: bool) -> torch.Tensor:
    """Hutchinson estimate ``(B,)`` of ``log|det(I + J)|``, ``J = d branch / d x``, by a power series."""
    probe = torch.randn_like(x)
    w, total = probe, torch.zeros(x.shape[0], device=x.device, dtype=torch.float32)
    for k in range(1, terms + 1):
        w = torch.autograd.grad(branch, x, w, create_graph=create_graph, retain_graph=True)[0]
        total = total + (-1) ** (k + 1) * (w * probe).flatten(1).sum(-1).float() / k
    return total


class MotorProcessor(nn.Module):
    """Invertible map between reactions (as node series ``(B, nodes, T)``) and the latent space."""

    def __init__(self, frames: int, nodes: int = 25, layers: int = 4, hidden: int = 64, edge_dim: int = 8,
                 activation: str = "elu", coeff: float = 0.9, actnorm: bool = True,
                 residual: str = "lipschitz", actnorm_data_init: bool = False):
        super().__init__()
        if residual not in ("lipschitz", "attention"):
            raise ValueError(f"motor residual must be 'lipschitz' or 'attention', got '{residual}'")

        def layer() -> nn.Module:
            if residual == "attention":
                return AttentionGraphLayer(frames, edge_dim, activation)
            return LipschitzGraphLayer(frames, hidden, edge_dim, activation, coeff)

        self.blocks = nn.ModuleList(layer() for _ in range(layers))
        self.norms = (nn.ModuleList(ActNorm(nodes, actnorm_data_init) for _ in range(layers))
                      if actnorm else None)

    def forward(self, x: torch.Tensor, edges: torch.Tensor, logdet_terms: int = 0,
                owner: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reaction -> latent; with ``logdet_terms > 0`` also the estimated ``log|det J|`` ``(B,)``.

        ``owner`` ``(B,)``: the row of ``edges`` (one per window) that each reaction belongs to; the
        per-window mixings are then computed once per window and gathered (None: a row per reaction).
        """
        differentiable = torch.is_grad_enabled()
        logdet = torch.zeros(x.shape[0], device=x.device) if logdet_terms else None
        for i, block in enumerate(self.blocks):
            mixing = block.mixing(edges) if owner is None else block.mixing(edges)[owner]
            if self.norms is not None:
                x, ld = self.norms[i](x)
                logdet = logdet + ld if logdet is not None else None
            if logdet_terms:
                with torch.enable_grad():
                    x_in = x if x.requires_grad else x.detach().requires_grad_(True)
                    branch = block(x_in, mixing)
                    logdet = logdet + residual_logdet(branch, x_in, logdet_terms, differentiable)
                    x = x_in + branch
                if not differentiable:
                    x, logdet = x.detach(), logdet.detach()
            else:
                x = x + block(x, mixing)
        return x, logdet

    def inverse(self, z: torch.Tensor, edges: torch.Tensor, iters: int = 100, tol: float = 0.0,
                samples: int = 0) -> torch.Tensor:
        """Latent -> reaction: per layer, last first, the fixed point of ``x <- y - f(x)``, at most
        ``iters`` iterations. ``tol > 0`` stops early, as the official loop does: after the
        iteration in which no element changed by more than ``tol``. ``samples = 0``: one stop for
        the whole batch; ``S > 0``: the rows are laid out ``(windows, S)`` and each sample stops on
        its own, over all its windows (the official test inverts one clip's windows per call).
        A stopped group is frozen by a mask, so the same computation traces into a fixed graph."""
        b, n, t = z.shape
        groups = (-1, samples, n, t) if samples else (1, b, n, t)
        pooled = (0, 2, 3) if samples else (1, 2, 3)
        for i in reversed(range(len(self.blocks))):
            block, y = self.blocks[i], z
            mixing = block.mixing(edges)
            x = y
            running = torch.ones((), dtype=torch.bool, device=z.device)
            for _ in range(iters):
                x_next = y - block(x, mixing)
                if tol <= 0:
                    x = x_next
                    continue
                change = (x_next - x).abs().view(groups).amax(pooled, keepdim=True)
                x = torch.where(running, x_next.view(groups), x.view(groups)).view(b, n, t)
                running = running & (change > tol)
                if not torch.jit.is_tracing() and not bool(running.any()):
                    break
            z = self.norms[i].inverse(x) if self.norms is not None else x
        return z
