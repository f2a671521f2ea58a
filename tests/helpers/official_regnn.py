"""A stand-in for the official REGNN release in tests: modules with the release's module paths,
class names and attributes (so that ``torch.save(model)`` writes a file laid out as the official
``mhp-epochN-seedS.pth``), and the official forward and inverse written out independently of
``react.reaction.models`` (from models/{MULTModel,cognitive,LipschitzGraph,mhp}.py and models/multimodel/*).

The fake ``models.*`` / ``utils.*`` modules exist in ``sys.modules`` only inside
:func:`official_modules` (while pickling).
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F


def compute_distance(a, b):  # the release's DTW distance, referenced by MHP.cal_dist (never called here)
    raise NotImplementedError


class MultiheadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.embed_dim, self.num_heads, self.attn_dropout = embed_dim, num_heads, 0.0
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim ** -0.5
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.randn(3 * embed_dim) * 0.1)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, query, key, value):  # (T, B, C)
        t, b, c = query.shape
        w, bias = self.in_proj_weight, self.in_proj_bias
        q = F.linear(query, w[:c], bias[:c]) * self.scaling
        k = F.linear(key, w[c:2 * c], bias[c:2 * c])
        v = F.linear(value, w[2 * c:], bias[2 * c:])

        def heads(x):
            return x.contiguous().view(-1, b * self.num_heads, self.head_dim).transpose(0, 1)

        weights = F.softmax(torch.bmm(heads(q), heads(k).transpose(1, 2)), -1)
        out = torch.bmm(weights, heads(v)).transpose(0, 1).contiguous().view(t, b, c)
        return self.out_proj(out)


class SinusoidalPositionalEmbedding(nn.Module):
    def __init__(self, embedding_dim):
        super().__init__()
        self.embedding_dim, self.padding_idx, self.left_pad = embedding_dim, 0, 0
        self.weights = {-1: self.table(51)}  # device -> table, as the release caches it
        self.register_buffer("_float_tensor", torch.FloatTensor(1))

    def table(self, rows):
        half = self.embedding_dim // 2
        freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
        angle = torch.arange(rows, dtype=torch.float)[:, None] * freq[None]
        table = torch.cat([torch.sin(angle), torch.cos(angle)], 1)
        table[0] = 0
        return table

    def forward(self, x_in):  # (T, B, C): positions 1..T, 0 where the first channel is 0
        t = x_in.shape[0]
        positions = torch.arange(1, t + 1)[:, None] * (x_in[:, :, 0] != 0).long()
        return self.table(t + 1)[positions]


class TransformerEncoderLayer(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.self_attn = MultiheadAttention(embed_dim, num_heads)
        self.attn_mask, self.relu_dropout, self.res_dropout, self.normalize_before = False, 0.1, 0.1, True
        self.fc1, self.fc2 = nn.Linear(embed_dim, 4 * embed_dim), nn.Linear(4 * embed_dim, embed_dim)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(2)])

    def forward(self, x, x_k=None, x_v=None):
        residual, x = x, self.layer_norms[0](x)
        if x_k is None:
            x = self.self_attn(x, x, x)
        else:
            x = self.self_attn(x, self.layer_norms[0](x_k), self.layer_norms[0](x_v))
        x = residual + x
        residual = x
        return residual + self.fc2(F.relu(self.fc1(self.layer_norms[1](x))))


class TransformerEncoder(nn.Module):
    def __init__(self, embed_dim, num_heads, layers):
        super().__init__()
        self.dropout, self.attn_dropout, self.embed_dim = 0.25, 0.0, embed_dim
        self.embed_scale = math.sqrt(embed_dim)
        self.embed_positions = SinusoidalPositionalEmbedding(embed_dim)
        self.attn_mask = False
        self.layers = nn.ModuleList([TransformerEncoderLayer(embed_dim, num_heads) for _ in range(layers)])
        self.register_buffer("version", torch.Tensor([2]))
        self.normalize = True
        self.layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, x_in, x_in_k=None, x_in_v=None):
        x = self.embed_scale * x_in + self.embed_positions(x_in)
        if x_in_k is not None:
            x_k = self.embed_scale * x_in_k + self.embed_positions(x_in_k)
            x_v = self.embed_scale * x_in_v + self.embed_positions(x_in_v)
        for layer in self.layers:
            x = layer(x) if x_in_k is None else layer(x, x_k, x_v)
        return self.layer_norm(x)


class MULTModel(nn.Module):
    def __init__(self, video_dim, audio_dim, dim, heads, layers):
        super().__init__()
        self.orig_d_a, self.orig_d_v, self.d_a, self.d_v = audio_dim, video_dim, dim, dim
        self.vonly, self.num_heads, self.layers = True, heads, layers
        self.attn_dropout, self.attn_dropout_a, self.attn_dropout_v = 0.1, 0.0, 0.0
        self.relu_dropout = self.res_dropout = 0.1
        self.out_dropout, self.embed_dropout, self.attn_mask = 0.0, 0.25, False
        self.proj_a = nn.Conv1d(audio_dim, dim, kernel_size=1, bias=False)
        self.proj_v = nn.Conv1d(video_dim, dim, kernel_size=1, bias=False)
        self.trans_v_with_a = TransformerEncoder(dim, heads, layers)
        self.trans_v_mem = TransformerEncoder(dim, heads, layers)
        self.proj1, self.proj2 = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out_layer = nn.Linear(dim, 64)

    def forward(self, x_v, x_a):  # (B, T, C) -> (T, B, 64)
        x_a, x_v = x_a.transpose(1, 2), x_v.transpose(1, 2)
        a = x_a if self.orig_d_a == self.d_a else self.proj_a(x_a)
        v = x_v if self.orig_d_v == self.d_v else self.proj_v(x_v)
        a, v = a.permute(2, 0, 1), v.permute(2, 0, 1)
        h = self.trans_v_mem(self.trans_v_with_a(v, a, a))
        return self.out_layer(self.proj2(F.relu(self.proj1(h))) + h)


class PercepProcessor(nn.Module):
    def __init__(self, **mult):
        super().__init__()
        self.fuse_model, self.only_fuse = MULTModel(**mult), True

    def forward(self, video, audio):
        return self.fuse_model(video, audio).transpose(1, 0)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features or in_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features or in_features, out_features or in_features)
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class EdgeLayer(nn.Module):
    def __init__(self, dim, n_channels, neighbors=5):
        super().__init__()
        self.n_channels, self.neighbors, self.scale = n_channels, neighbors, dim ** -0.5
        self.qk = nn.Sequential(Mlp(dim, dim), nn.Linear(dim, dim * 2 * n_channels, bias=False))

    def forward(self, x):
        b, n, c = x.shape
        qk = self.qk(x).reshape(b, n, 2, self.n_channels, c).permute(2, 0, 3, 1, 4)
        attn = (qk[0] @ qk[1].transpose(-2, -1) * self.scale).softmax(-1)
        index = attn.detach().sum(1).topk(self.neighbors, -1).indices
        masks = torch.stack([torch.eye(n).index_fill(1, index[i].flatten(), 1.0) for i in range(b)])
        edge = masks[:, None] * attn
        rows = edge / (edge.sum(-1, keepdim=True) + 1e-16)
        cols = rows / (rows.sum(-2, keepdim=True) + 1e-16)
        return rows @ cols.transpose(-1, -2)


class CognitiveProcessor(nn.Module):
    def __init__(self, frames, edge_dim, nodes=25):
        super().__init__()
        self.convert_layer = Mlp(64, 32, nodes)
        self.dis_type, self.dll = "None", None
        self.EdgeLayer = EdgeLayer(frames, edge_dim)

    def forward(self, fused):
        series = self.convert_layer(fused).transpose(-1, -2)
        return series, self.EdgeLayer(series)


class ActNorm2D_N(nn.Module):  # noqa: N801 - the release's name
    def __init__(self, num_channels):
        super().__init__()
        self.eps, self.num_channels = 1e-5, num_channels
        self._log_scale = nn.Parameter(torch.rand(num_channels) - 0.5)
        self._shift = nn.Parameter(torch.randn(num_channels))
        self._init = True

    def inverse(self, x):
        return (x - self._shift[None, :, None]) * torch.exp(-self._log_scale[None, :, None])


class GraphAttention(nn.Module):
    def __init__(self, num_features, edge_channel):
        super().__init__()
        self.num_features, self.edge_channel = num_features, edge_channel
        self.w = nn.Parameter(torch.rand(1, edge_channel) + 0.5)
        self.qk = nn.Linear(num_features, 2 * num_features)
        self.scale = num_features ** -0.5
        self.act_layer = nn.ELU()
        self.lipnorm = torch.tensor(6.0)

    def forward(self, x, edge):
        b, n, d = x.shape
        x = torch.sigmoid(self.act_layer(x))
        w = self.qk.weight.detach()
        self.lipnorm = torch.linalg.norm(torch.eye(d) + 2 * (w[:d] @ w[d:].T * self.scale), ord=2) + 5
        qk = self.qk(x).reshape(b, n, 2, d).permute(2, 0, 1, 3)
        attn = (qk[0] @ qk[1].transpose(-2, -1) * self.scale).softmax(-1)
        new_edge = attn.unsqueeze(1) * edge
        new_edge = new_edge / new_edge.sum(-1, keepdim=True)
        new_edge = torch.einsum("bpnd,ip->bind", new_edge, self.w / self.w.sum()).squeeze(1)
        return new_edge @ x / self.lipnorm


class GraphLayer(nn.Module):
    def __init__(self, num_features, num_channels, edge_channel):
        super().__init__()
        self.num_features, self.get_logdets, self.delta, self.iters = num_features, False, 0.1, 5
        self.edge_channel, self.norm = edge_channel, True
        self.norm_layer = ActNorm2D_N(num_channels)
        self.attn_1 = GraphAttention(num_features, edge_channel)

    def inverse(self, y, edge):
        x = y
        for _ in range(self.iters):
            fx = self.attn_1(x, edge)
            sub = (torch.abs(x - (y - fx)) > 1e-3).sum()
            x = y - fx
            if sub == 0:
                break
        return self.norm_layer.inverse(x)


class LipschitzGraph(nn.Module):
    def __init__(self, edge_channel, num_channels, num_features, n_layers=2):
        super().__init__()
        self.n_layers, self.act, self.num_features, self.get_logdets = n_layers, "ELU", num_features, False
        self.Layers = nn.Sequential(*[GraphLayer(num_features, num_channels, edge_channel)
                                      for _ in range(n_layers)])
        self.LU = True
        self.register_buffer("p", torch.eye(num_features))
        self.register_buffer("sign_s", torch.ones(num_features))
        self.l = nn.Parameter(torch.randn(num_features, num_features))  # noqa: E741 - the release's name
        self.log_s = nn.Parameter(torch.randn(num_features))
        self.u = nn.Parameter(torch.randn(num_features, num_features))
        self.l_mask = torch.tril(torch.ones(num_features, num_features), -1)
        self.eye = torch.eye(num_features)
        self.w_shape = [num_features, num_features]

    def inverse(self, y, edge):
        for layer in list(self.Layers)[::-1]:
            y = layer.inverse(y, edge)
        return y


class MHP(nn.Module):
    def __init__(self, p, c, m):
        super().__init__()
        self.perceptual_processor, self.cognitive_processor, self.motor_processor = p, c, m
        self.cal_dist = {"DTW": compute_distance, "MSE": F.mse_loss}
        self.no_inverse, self.neighbor_pattern = False, "all"

    def reactions(self, video, audio, noise):
        """The official ``MHP.inverse`` with the sampled noise given: ``(B, T, 25)``."""
        series, edge = self.cognitive_processor(self.perceptual_processor(video, audio))
        return self.motor_processor.inverse(series + noise, edge).transpose(2, 1)


CLASSES = {
    "models.mhp": [MHP], "models.perceptual": [PercepProcessor], "models.MULTModel": [MULTModel],
    "models.multimodel.transformer": [TransformerEncoder, TransformerEncoderLayer],
    "models.multimodel.multihead_attention": [MultiheadAttention],
    "models.multimodel.position_embedding": [SinusoidalPositionalEmbedding],
    "models.cognitive": [CognitiveProcessor, EdgeLayer], "models.model_utils": [Mlp, ActNorm2D_N],
    "models.LipschitzGraph": [LipschitzGraph, GraphLayer, GraphAttention],
    "utils.compute_distance_fun": [compute_distance],
}


@contextmanager
def official_modules() -> Iterator[None]:
    """The release's module paths in ``sys.modules``, holding the stand-ins (removed afterwards)."""
    added = []
    for name, members in CLASSES.items():
        for parent in [name.rsplit(".", i)[0] for i in range(name.count("."), -1, -1)]:
            if parent not in sys.modules:
                sys.modules[parent] = types.ModuleType(parent)
                added.append(parent)
        for member in members:
            member.__module__ = name
            setattr(sys.modules[name], member.__name__, member)
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]
        for members in CLASSES.values():
            for member in members:
                member.__module__ = __name__


def official_model(video_dim=12, audio_dim=8, dim=8, heads=2, layers=1, frames=10, edge_dim=8) -> MHP:
    """A small MHP in the released setting (direct read-out, 2 motor layers with ActNorm, ELU)."""
    torch.manual_seed(0)
    mhp = MHP(PercepProcessor(video_dim=video_dim, audio_dim=audio_dim, dim=dim, heads=heads, layers=layers),
              CognitiveProcessor(frames, edge_dim), LipschitzGraph(edge_dim, 25, frames))
    with torch.no_grad():
        for layer in mhp.motor_processor.Layers:
            layer.attn_1.qk.weight.mul_(3)  # a motor that does real work
    return mhp.eval()


def save_official(model: MHP, path) -> None:
    """``torch.save(model, path)`` as the release's train.py does."""
    with official_modules():
        torch.save(model, path)
