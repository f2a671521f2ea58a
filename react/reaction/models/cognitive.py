"""Cognitive processor: the fused speaker sequence -> a graph of the 25 reaction dimensions.

Every frame's fused feature is mapped to one value per node ("direct": a shared MLP
``in -> hidden -> nodes``; "indirect": a small MLP per node), so each of the 25 nodes carries a
``T``-frame series. An edge layer turns those series into ``edge_dim``-channel attention between
the nodes, keeps each node's top-``k`` neighbours plus itself, and normalises rows then columns:
edge features ``(B, edge_dim, nodes, nodes)``. The node series are also the centre of the reaction
distribution that the motor processor maps appropriate reactions onto.

The official REGNN's edges (``mlp=True, graph="summed", norm="product"``): queries and keys come
from an MLP over each node series, one top-k graph (of the softmax attention summed over channels)
serves every channel, and the row-normalised attention is multiplied by the transpose of its
column-normalised form. The official code gives every row the union of all rows' top-k (its loop
sets ``mask[j][ind_]`` for every row's index list ``ind_``): ``shared_topk`` reproduces that, for
running official checkpoints; without it each row keeps its own top-k (docs/regnn.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class NodeReadout(nn.Module):
    """``(B, T, in_dim)`` -> ``(B, nodes, T)``: one value per node and frame."""

    def __init__(self, in_dim: int, hidden: int, nodes: int, mode: str = "direct", activation: str = "relu"):
        super().__init__()
        if mode not in ("direct", "indirect"):
            raise ValueError(f"cognitive mode must be 'direct' or 'indirect', got '{mode}'")
        if activation not in ACTIVATIONS:
            raise ValueError(f"cognitive activation must be one of {sorted(ACTIVATIONS)}, got '{activation}'")
        self.mode, self.nodes, self.hidden = mode, nodes, hidden
        if mode == "direct":
            self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), ACTIVATIONS[activation](),
                                     nn.Linear(hidden, nodes))
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
    """Multi-channel attention between node series, sparsified to top-k and row/column normalised.

    ``mlp``: queries and keys from an MLP (GELU) over the series, without bias. ``graph``:
    ``"channel"``, per channel the top-k other nodes plus itself; ``"summed"``, one graph for all
    channels, each node's top-k of the channel-summed softmax attention (itself included) plus
    itself; ``shared_topk`` (with ``"summed"``): every row keeps the union of all rows' top-k (the
    official loop). ``norm``: ``"col"`` returns the row- then column-normalised attention ``C``,
    ``"product"`` returns ``R @ C^T`` with ``R`` the row-normalised one.
    """

    def __init__(self, frames: int, edge_dim: int = 8, neighbours: int = 6, attn_dim: int = 16,
                 mlp: bool = False, graph: str = "channel", norm: str = "col", shared_topk: bool = False):
        super().__init__()
        if norm not in ("col", "product"):
            raise ValueError(f"edge norm must be 'col' or 'product', got '{norm}'")
        if graph not in ("channel", "summed"):
            raise ValueError(f"edge graph must be 'channel' or 'summed', got '{graph}'")
        if shared_topk and graph != "summed":
            raise ValueError("shared_topk (the union of all rows' top-k) needs graph='summed'")
        self.edge_dim, self.neighbours, self.attn_dim = edge_dim, neighbours, attn_dim
        self.graph, self.norm, self.shared_topk = graph, norm, shared_topk
        self.pre = (nn.Sequential(nn.Linear(frames, frames), nn.GELU(), nn.Linear(frames, frames))
                    if mlp else None)
        self.query = nn.Linear(frames, edge_dim * attn_dim, bias=not mlp)
        self.key = nn.Linear(frames, edge_dim * attn_dim, bias=not mlp)

    def keep_mask(self, scores: torch.Tensor) -> torch.Tensor:
        """Boolean ``(B, C or 1, N, N)``: the entries each row keeps."""
        n = scores.shape[-1]
        eye = torch.eye(n, dtype=torch.bool, device=scores.device)
        if self.graph == "summed":
            summed = torch.softmax(scores, -1).sum(1, keepdim=True).detach()
            top = summed.topk(min(self.neighbours, n), dim=-1).indices
        else:
            top = scores.masked_fill(eye, float("-inf")).topk(min(self.neighbours, n - 1), dim=-1).indices
            summed = scores
        # an int fill value (not True): the ONNX exporter has no bool Scalar (react.reaction.deploy)
        keep = torch.zeros_like(summed, dtype=torch.bool).scatter_(-1, top, 1)
        if self.shared_topk:  # every row: the columns that any row's top-k holds
            keep = (keep.sum(-2, keepdim=True) > 0).expand_as(keep)
        return keep | eye

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        b, n, _ = series.shape
        x = series if self.pre is None else self.pre(series)
        q = self.query(x).view(b, n, self.edge_dim, self.attn_dim).transpose(1, 2)
        k = self.key(x).view(b, n, self.edge_dim, self.attn_dim).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.attn_dim)  # (B, C, N, N)
        weights = torch.exp(scores - scores.amax(-1, keepdim=True)) * self.keep_mask(scores)
        rows = weights / weights.sum(-1, keepdim=True)
        cols = rows / rows.sum(-2, keepdim=True)
        return cols if self.norm == "col" else rows @ cols.transpose(-1, -2)


class CognitiveProcessor(nn.Module):
    """Fused ``(B, T, in_dim)`` -> node series ``(B, nodes, T)`` and edges ``(B, edge_dim, nodes, nodes)``."""

    def __init__(self, in_dim: int, frames: int, nodes: int = 25, hidden: int = 32, mode: str = "direct",
                 edge_dim: int = 8, neighbours: int = 6, attn_dim: int = 16, activation: str = "relu",
                 edge_mlp: bool = False, edge_graph: str = "channel", edge_norm: str = "col",
                 shared_topk: bool = False):
        super().__init__()
        self.readout = NodeReadout(in_dim, hidden, nodes, mode, activation)
        self.edges = EdgeLayer(frames, edge_dim, neighbours, attn_dim, edge_mlp, edge_graph, edge_norm,
                               shared_topk)

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        series = self.readout(fused)
        return series, self.edges(series)
