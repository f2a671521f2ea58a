"""Cognitive processor: the fused speaker sequence -> a graph of the 25 reaction dimensions.

Every frame's fused feature is mapped to one value per node ("direct": a shared MLP
``in -> hidden -> nodes``; "indirect": a small MLP per node), so each of the 25 nodes carries a
``T``-frame series. An edge layer turns those series into ``edge_dim``-channel attention between
the nodes, keeps each node's top-``k`` neighbours plus itself, and normalises rows then columns:
edge features ``(B, edge_dim, nodes, nodes)``. The node series are also the centre of the reaction
distribution that the motor processor maps appropriate reactions onto.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class NodeReadout(nn.Module):
    """``(B, T, in_dim)`` -> ``(B, nodes, T)``: one value per node and frame."""

    def __init__(self, in_dim: int, hidden: int, nodes: int, mode: str = "direct"):
        super().__init__()
        if mode not in ("direct", "indirect"):
            raise ValueError(f"cognitive mode must be 'direct' or 'indirect', got '{mode}'")
        self.mode, self.nodes, self.hidden = mode, nodes, hidden
        if mode == "direct":
            self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, nodes))
        else:
            self.first = nn.Linear(in_dim, nodes * hidden)
            self.second = nn.Parameter(torch.randn(nodes, hidden) / math.sqrt(hidden))
            self.bias = nn.Parameter(torch.zeros(nodes))

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        if self.mode == "direct":
            values = self.mlp(fused)
        else:
            hidden = torch.relu(self.first(fused)).unflatten(-1, (self.nodes, self.hidden))
            values = torch.einsum("btnh,nh->btn", hidden, self.second) + self.bias
        return values.transpose(1, 2)


class EdgeLayer(nn.Module):
    """Multi-channel attention between node series, sparsified to top-k and row/column normalised."""

    def __init__(self, frames: int, edge_dim: int = 8, neighbours: int = 6, attn_dim: int = 16):
        super().__init__()
        self.edge_dim, self.neighbours, self.attn_dim = edge_dim, neighbours, attn_dim
        self.query = nn.Linear(frames, edge_dim * attn_dim)
        self.key = nn.Linear(frames, edge_dim * attn_dim)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        b, n, _ = series.shape
        q = self.query(series).view(b, n, self.edge_dim, self.attn_dim).transpose(1, 2)
        k = self.key(series).view(b, n, self.edge_dim, self.attn_dim).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.attn_dim)  # (B, C, N, N)
        eye = torch.eye(n, dtype=torch.bool, device=series.device)
        keep_k = min(self.neighbours, n - 1)
        others = scores.masked_fill(eye, float("-inf"))
        top = others.topk(keep_k, dim=-1).indices
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top, True) | eye
        weights = torch.exp(scores - scores.amax(-1, keepdim=True)) * keep
        weights = weights / weights.sum(-1, keepdim=True)
        return weights / weights.sum(-2, keepdim=True)


class CognitiveProcessor(nn.Module):
    """Fused ``(B, T, in_dim)`` -> node series ``(B, nodes, T)`` and edges ``(B, edge_dim, nodes, nodes)``."""

    def __init__(self, in_dim: int, frames: int, nodes: int = 25, hidden: int = 32, mode: str = "direct",
                 edge_dim: int = 8, neighbours: int = 6, attn_dim: int = 16):
        super().__init__()
        self.readout = NodeReadout(in_dim, hidden, nodes, mode)
        self.edges = EdgeLayer(frames, edge_dim, neighbours, attn_dim)

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        series = self.readout(fused)
        return series, self.edges(series)
