"""REGNN: perceptual (MULT) -> cognitive (reaction graph) -> motor (reversible Lipschitz GNN).

Training maps every appropriate real listener reaction of a window forward through the motor
processor onto the cognitive processor's node series (the centre of the reaction distribution);
generation draws ``n`` points around that centre and inverts the motor processor for each, so one
speaker window yields ``n`` different reactions ``(T, 25)``. REGNN fulfils the generator contract
(:mod:`react.reaction.contract`): it reads ``video`` and ``audio``, is not causal (the perceptual
processor attends over the whole window) and reads no past output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from react.reaction.losses import LossConfig, TauGate, regnn_losses
from react.reaction.models.cognitive import CognitiveProcessor
from react.reaction.models.motor import MotorProcessor
from react.reaction.models.mult import PerceptualProcessor


@dataclass
class PerceptualConfig:
    video_dim: int = 768
    audio_dim: int = 768
    dim: int = 128
    heads: int = 4
    layers: int = 5
    memory_layers: int = 2
    dropout: float = 0.1
    attn_dropout: float = 0.1
    out_dim: int = 64
    fusion: str = "both"  # both: video <-> audio | video: video <- audio only (official)
    input_dropout: float = 0.0  # dropout of the projected inputs (MULT's embed dropout)
    residual_head: bool = False  # out(h + MLP(h)) (MULT) instead of MLP(h)
    head_dropout: float | None = None  # dropout inside the head (None: dropout; official: 0)
    positions: str = "interleaved"  # interleaved: sin/cos from 0 | fairseq: 1..T, [sin | cos] (official)
    stack_embedding: bool = False  # each stack re-embeds its input and ends with a LayerNorm (official)
    shared_kv_norm: bool = False  # keys/values share the queries' LayerNorm (official)
    project_audio: bool = True  # False: dim-channel audio is not projected (official, 128-d VGGish)
    xavier_init: bool = False  # MULT's xavier-uniform attention and feed-forward weights (official)


@dataclass
class CognitiveConfig:
    hidden: int = 32
    mode: str = "direct"  # direct | indirect
    activation: str = "relu"  # relu | gelu (of the direct read-out)
    edge_dim: int = 8
    neighbours: int = 6  # k of the top-k edge sparsification
    attn_dim: int = 16
    edge_mlp: bool = False  # queries/keys from an MLP over the node series (official)
    edge_graph: str = "channel"  # channel: a top-k graph per channel | summed: one graph (official)
    shared_topk: bool = False  # summed: every row keeps the union of all rows' top-k (official loop)
    edge_norm: str = "col"  # col: row- then column-normalised | product: rows @ cols^T (official)


@dataclass
class MotorConfig:
    layers: int = 4
    hidden: int = 64
    activation: str = "elu"  # elu | relu
    residual: str = "lipschitz"  # lipschitz: strict bound | attention: official, heuristic bound
    coeff: float = 0.9  # Lipschitz bound of every residual branch (lipschitz)
    actnorm: bool = True
    actnorm_data_init: bool = False  # set the ActNorm layers from the first training batch
    logdet_terms: int = 0  # power-series terms of the log-determinant estimate (0 = off)
    inverse_iters: int = 100  # fixed-point iterations per layer at generation (max)
    inverse_tol: float = 1e-6
    inverse_stop: str = "batch"  # batch: early stop over the whole call | sample: per sample (official)
    train_inverse_iters: int = 8  # unrolled iterations when decoding during training


@dataclass
class ModelConfig:
    nodes: int = 25
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)
    cognitive: CognitiveConfig = field(default_factory=CognitiveConfig)
    motor: MotorConfig = field(default_factory=MotorConfig)
    noise_std: float = 0.1  # spread of the latent samples around the cognitive centre
    noise_clip: float = 0.0  # clip the standard-normal noise to +-noise_clip (0 = off)
    # > 0: the official rescaling instead of noise_std: each sample's noise over all windows of the
    # call (a clip's windows at generation) is scaled so that its largest element is noise_max
    noise_max: float = 0.0


class REGNN(nn.Module):
    """Speaker window ``(B, T, video_dim)`` + ``(B, T, audio_dim)`` -> reactions ``(B, n, T, nodes)``.

    ``loss`` and ``pattern`` (the neighbour pattern of the training windows) set
    :meth:`training_loss`; the official loss's :class:`TauGate` rides along as ``tau_gate`` so
    checkpoints carry it. ``steps_per_epoch`` (set by the task) is when the gate renews ``tau``.
    """

    inputs = ("video", "audio")
    causal = False
    feedback = 0

    def __init__(self, cfg: ModelConfig, frames: int, loss: LossConfig | None = None, pattern: str = "all"):
        super().__init__()
        p, c, m = cfg.perceptual, cfg.cognitive, cfg.motor
        self.frames, self.nodes = frames, cfg.nodes
        self.settings = repr(cfg)  # every construction setting, for the generation cache's stamp
        self.loss_cfg, self.pattern = loss or LossConfig(), pattern
        self.steps_per_epoch = 1
        if self.loss_cfg.kind == "official":
            self.tau_gate = TauGate()
        self.noise_std, self.noise_clip, self.noise_max = cfg.noise_std, cfg.noise_clip, cfg.noise_max
        self.logdet_terms, self.train_inverse_iters = m.logdet_terms, m.train_inverse_iters
        self.inverse_iters, self.inverse_tol = m.inverse_iters, m.inverse_tol
        if m.inverse_stop not in ("batch", "sample"):
            raise ValueError(f"motor.inverse_stop must be 'batch' or 'sample', got '{m.inverse_stop}'")
        self.stop_per_sample = m.inverse_stop == "sample"
        self.perceptual = PerceptualProcessor(p.video_dim, p.audio_dim, p.dim, p.heads, p.layers,
                                              p.memory_layers, p.dropout, p.attn_dropout, p.out_dim,
                                              p.fusion, p.input_dropout, p.residual_head, p.positions,
                                              p.stack_embedding, p.shared_kv_norm, p.project_audio,
                                              p.head_dropout, p.xavier_init)
        self.cognitive = CognitiveProcessor(p.out_dim, frames, cfg.nodes, c.hidden, c.mode, c.edge_dim,
                                            c.neighbours, c.attn_dim, c.activation, c.edge_mlp, c.edge_graph,
                                            c.edge_norm, c.shared_topk)
        self.motor = MotorProcessor(frames, cfg.nodes, m.layers, m.hidden, c.edge_dim, m.activation,
                                    m.coeff, m.actnorm, m.residual, m.actnorm_data_init)

    def condition(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distribution centre ``(B, nodes, T)`` and edges ``(B, edge_dim, nodes, nodes)``."""
        if video.shape[1] != self.frames:
            raise ValueError(f"model was built for windows of {self.frames} frames, got {video.shape[1]}")
        return self.cognitive(self.perceptual(video, audio))

    def decode(self, latent: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, nodes, T)`` -> reaction ``(B, T, nodes)`` (unrolled when training)."""
        if self.training:
            return self.motor.inverse(latent, edges, self.train_inverse_iters).transpose(1, 2)
        return self.motor.inverse(latent, edges, self.inverse_iters, self.inverse_tol).transpose(1, 2)

    def forward(self, video: torch.Tensor, audio: torch.Tensor, reactions: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, decode: bool = True) -> dict[str, torch.Tensor]:
        """Training pass.

        ``reactions`` ``(B, K, T, nodes)`` are the appropriate real reactions, ``mask`` ``(B, K)`` marks
        the real ones among padding. Returns ``centre`` ``(B, nodes, T)``, ``edges``, ``decoded``
        ``(B, T, nodes)`` (the reaction at the centre, if ``decode``), ``latent`` ``(B, K, nodes, T)``
        (the reactions mapped forward) and ``logdet`` ``(B, K)`` (if ``logdet_terms`` and training).
        """
        centre, edges = self.condition(video, audio)
        out = {"centre": centre, "edges": edges}
        if decode:
            out["decoded"] = self.decode(centre, edges)
        if reactions is not None:
            if mask is None:
                mask = torch.ones(reactions.shape[:2], dtype=torch.bool, device=reactions.device)
            owner, slot = mask.nonzero(as_tuple=True)
            terms = self.logdet_terms if self.training else 0
            series = reactions[owner, slot].transpose(1, 2).contiguous()  # (B', nodes, T)
            latent, logdet = self.motor(series, edges, terms, owner)
            out["latent"] = latent.new_zeros(*mask.shape, *latent.shape[1:]).index_put((owner, slot), latent)
            if logdet is not None:
                out["logdet"] = logdet.new_zeros(mask.shape).index_put((owner, slot), logdet)
        return out

    def noise_shape(self, windows: int, samples: int) -> tuple[int, ...]:
        """Latent noise ``(windows, samples, nodes, frames)``."""
        return (windows, samples, self.nodes, self.frames)

    def draw_noise(self, windows: int, samples: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent noise at the model's scale, drawn on the CPU (device-independent): ``noise_std`` x
        standard normal (clipped to +-``noise_clip``), or with ``noise_max`` the official rescaling."""
        noise = torch.randn(self.noise_shape(windows, samples), generator=generator)
        if self.noise_max > 0:  # official: sample k's largest element over all windows at most noise_max
            return noise * (self.noise_max / noise.abs().amax((0, 2, 3), keepdim=True)).clamp(max=1)
        if self.noise_clip > 0:
            noise = noise.clamp(-self.noise_clip, self.noise_clip)
        return self.noise_std * noise

    @torch.no_grad()
    def generate(self, conditions: dict[str, torch.Tensor], noise: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
        """Reactions ``(W, S, T, nodes)``: centre + ``scale`` x ``noise`` (:meth:`draw_noise`), inverted
        by the motor processor (``scale`` trades accuracy for diversity)."""
        centre, edges = self.condition(conditions["video"], conditions["audio"])
        samples = noise.shape[1]
        latent = (centre[:, None] + scale * noise.to(centre)).flatten(0, 1)
        edges = edges.repeat_interleave(samples, dim=0)
        return self.invert(latent, edges, samples, self.inverse_iters, self.inverse_tol)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:func:`react.reaction.losses.regnn_losses` of a batch of windows; in training mode with the
        official loss, also ``tau`` (the gate this step used; this step's ``dist`` counts towards the
        next epoch's)."""
        w = self.loss_cfg
        gate = getattr(self, "tau_gate", None)
        out = self(batch["video"], batch["audio"], batch["reactions"], batch["mask"],
                   decode=w.kind != "official" and (w.recon > 0 or w.smooth > 0))
        loss, parts = regnn_losses(out, batch["reactions"], batch["mask"], w, self.pattern,
                                   None if gate is None else gate.tau)
        if gate is not None and self.training:
            parts["tau"] = gate.tau.detach().clone().squeeze()
            gate.update(parts["dist"], self.steps_per_epoch)
        return loss, parts

    def invert(self, latent: torch.Tensor, edges: torch.Tensor, samples: int, iters: int, tol: float
               ) -> torch.Tensor:
        """Latents ``(W * samples, nodes, T)`` laid out ``(windows, samples)`` -> reactions
        ``(W, samples, T, nodes)`` by the motor inverse (early stop per sample if ``inverse_stop``
        is ``sample``)."""
        reactions = self.motor.inverse(latent, edges, iters, tol, samples if self.stop_per_sample else 0)
        return reactions.view(-1, samples, self.nodes, self.frames).transpose(2, 3)
