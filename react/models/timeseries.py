"""Encoders for windows of bio-signal and body-tracking channels, and the heads built on them.

Every encoder takes windows ``(batch, frames, channels)`` and returns embeddings ``(batch,
out_dim)``. ``cnn1d``: 1-D convolutions then a mean over time; ``mlp``: the flattened window
through dense layers; ``transformer``: a small transformer encoder over frames, mean-pooled.
Late fusion (``fusion: late``) gives each modality (a run of channels, ``groups``) its own encoder
and concatenates their embeddings; early fusion is one encoder over all channels.
Built from :class:`EncoderConfig` alone; nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

ENCODERS = ("cnn1d", "mlp", "transformer")
FUSIONS = ("early", "late")


@dataclass
class EncoderConfig:
    """Architecture of a window encoder; ``in_channels``, ``len_seq`` and ``groups`` come from the data."""

    name: str = "cnn1d"  # cnn1d | mlp | transformer
    in_channels: int = 0  # channels of a window (0: taken from the data, else checked against it)
    len_seq: int = 0  # frames of a window (0: taken from the data, else checked against it)
    out_channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # cnn1d widths (last = embedding)
    kernel_sizes: list[int] = field(default_factory=lambda: [3, 3, 3])
    stride: int = 1
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # mlp widths (last = embedding)
    d_model: int = 64  # transformer width (= embedding)
    heads: int = 4
    layers: int = 2
    dropout: float = 0.1
    fusion: str = "early"  # early: one encoder over all channels | late: one per modality
    groups: list[int] = field(default_factory=list)  # channels per modality, in order (from the data)


class CNN1D(nn.Module):
    """Conv1d -> BatchNorm -> ReLU -> Dropout per width of ``out_channels``, then a mean over time."""

    def __init__(self, in_channels: int, out_channels: list[int], kernel_sizes: list[int], stride: int,
                 dropout: float):
        super().__init__()
        if len(out_channels) != len(kernel_sizes) or not out_channels:
            raise ValueError(f"cnn1d: out_channels {out_channels} and kernel_sizes {kernel_sizes} must be "
                             "non-empty and of one length")
        layers: list[nn.Module] = []
        width = in_channels
        for out, k in zip(out_channels, kernel_sizes):
            layers += [nn.Conv1d(width, out, k, stride=stride, padding=k // 2), nn.BatchNorm1d(out),
                       nn.ReLU(), nn.Dropout(dropout)]
            width = out
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).mean(-1)


class MLP(nn.Module):
    """The flattened window through Linear -> ReLU -> Dropout layers of widths ``hidden``."""

    def __init__(self, in_channels: int, len_seq: int, hidden: list[int], dropout: float):
        super().__init__()
        if not hidden:
            raise ValueError("mlp: hidden must name at least one layer width")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * len_seq
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Transformer(nn.Module):
    """Frames projected to ``d_model`` plus learned positions, pre-norm encoder layers, mean over time."""

    def __init__(self, in_channels: int, len_seq: int, d_model: int, heads: int, layers: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"transformer: d_model {d_model} is not a multiple of heads {heads}")
        self.proj = nn.Linear(in_channels, d_model)
        self.pos = nn.Parameter(torch.zeros(1, len_seq, d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.out_dim = d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.encoder(self.proj(x) + self.pos).mean(1))


class LateFusion(nn.Module):
    """One encoder per channel group (modality); their embeddings concatenated."""

    def __init__(self, encoders: list[nn.Module], groups: list[int]):
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.groups = list(groups)
        self.out_dim = sum(e.out_dim for e in encoders)

    def embed_each(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One embedding per modality, ``(batch, encoder.out_dim)`` each."""
        parts = torch.split(x, self.groups, dim=-1)
        return [enc(part) for enc, part in zip(self.encoders, parts)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.embed_each(x), dim=-1)


def _single(cfg: EncoderConfig, in_channels: int) -> nn.Module:
    if cfg.name == "cnn1d":
        return CNN1D(in_channels, list(cfg.out_channels), list(cfg.kernel_sizes), cfg.stride, cfg.dropout)
    if cfg.name == "mlp":
        return MLP(in_channels, cfg.len_seq, list(cfg.hidden), cfg.dropout)
    if cfg.name == "transformer":
        return Transformer(in_channels, cfg.len_seq, cfg.d_model, cfg.heads, cfg.layers, cfg.dropout)
    raise ValueError(f"encoder name must be one of {', '.join(ENCODERS)}, got {cfg.name!r}")


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    """The encoder of ``cfg`` (its ``in_channels``, ``len_seq`` and, for late fusion, ``groups`` set)."""
    if cfg.in_channels <= 0 or cfg.len_seq <= 0:
        raise ValueError(f"encoder: in_channels ({cfg.in_channels}) and len_seq ({cfg.len_seq}) must be set")
    if cfg.fusion not in FUSIONS:
        raise ValueError(f"encoder fusion must be one of {', '.join(FUSIONS)}, got {cfg.fusion!r}")
    if cfg.fusion == "early":
        return _single(cfg, cfg.in_channels)
    if sum(cfg.groups) != cfg.in_channels or len(cfg.groups) < 2:
        raise ValueError(f"late fusion needs two or more channel groups summing to {cfg.in_channels}, "
                         f"got {list(cfg.groups)} (a multi-modality window folder, e.g. bio+body)")
    return LateFusion([_single(cfg, g) for g in cfg.groups], list(cfg.groups))


def _projector(width: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out in widths[:-1]:
        layers += [nn.Linear(width, out), nn.BatchNorm1d(out), nn.ReLU()]
        width = out
    return nn.Sequential(*layers, nn.Linear(width, widths[-1]))


class SSLModel(nn.Module):
    """Encoder plus projector (Linear -> BatchNorm -> ReLU per hidden width, then Linear), as in
    SimCLR and VICReg; ``forward`` returns projections ``(1, batch, out)``, ``encoder`` alone the
    embeddings. With ``per_modality`` (a late-fusion encoder) each modality's embedding has its own
    projector and ``forward`` returns one projection per modality, ``(modalities, batch, out)``: the
    views of a cross-modal objective (as in contrastive multiview coding, Tian et al. 2020)."""

    def __init__(self, encoder: nn.Module, projector: list[int], per_modality: bool = False):
        super().__init__()
        if not projector:
            raise ValueError("projector must name at least its output width")
        if per_modality and not isinstance(encoder, LateFusion):
            raise ValueError("cross-modal views need one encoder per modality (encoder fusion: late)")
        self.encoder, self.per_modality = encoder, per_modality
        branches = encoder.encoders if per_modality else [encoder]
        self.projectors = nn.ModuleList(_projector(b.out_dim, list(projector)) for b in branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embeddings = self.encoder.embed_each(x) if self.per_modality else [self.encoder(x)]
        return torch.stack([proj(e) for proj, e in zip(self.projectors, embeddings)])


class Classifier(nn.Module):
    """Logits from windows (through ``encoder``) or from feature vectors (``encoder`` None).

    Feature vectors, and the embeddings of a frozen encoder, are standardised by ``center``/``scale``
    buffers the task sets from training data (as a linear probe's normalisation: the head then
    sees unit-scale inputs whatever the encoder's output scale). A frozen encoder stays in eval mode
    and gets no gradients.
    """

    def __init__(self, encoder: nn.Module | None, in_dim: int, n_classes: int, dense_neurons: int,
                 dropout: float, freeze_encoder: bool = False):
        super().__init__()
        self.encoder = encoder
        self.freeze_encoder = freeze_encoder and encoder is not None
        width = encoder.out_dim if encoder is not None else in_dim
        standardised = width if encoder is None or self.freeze_encoder else 0
        self.register_buffer("center", torch.zeros(standardised))
        self.register_buffer("scale", torch.ones(standardised))
        self.head = nn.Sequential(nn.Linear(width, dense_neurons), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense_neurons, n_classes))
        if self.freeze_encoder:
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder is None:
            return (x - self.center) / self.scale
        if self.freeze_encoder:
            with torch.no_grad():
                return (self.encoder(x) - self.center) / self.scale
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
