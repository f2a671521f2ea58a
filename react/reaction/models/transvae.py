"""TransVAE, the REACT 2023/2024 baseline generator (docs/transvae.md), on the generator contract.

A speaker encoder turns each window's video and audio frames into ``dim``-d tokens; a transformer
VAE reads them (with a mu and a logvar token in front) and gives one latent Gaussian per window;
a reparameterised sample ``mu + std * noise`` is the memory of two transformer decoder layers
whose queries are the window's positions; a 3DMM head (58-d) and an attribute head reading the
3DMM output beside the decoder state give the listener's 25 attributes per frame.

Offline, a window (``data.num_frames``) is generated as a whole (not causal). Online, a window is
generated as consecutive internal windows of ``window`` frames, in order; each reads the last
``feedback`` frames the model generated before it (the contract's ``past`` for the first one, then
its own output): fused into the VAE's tokens, and through a third decoder layer and an LSTM seeded
with the last past frame, as the official online decoder does with its past 3DMM. An internal
window's frames depend on the speaker frames of that window and of earlier ones only (causal at the
internal window: the reaction to a frame is known when its ``window`` frames have arrived).

The loss (``training_loss``) is the official one: MSE reconstruction of the real listener's
reaction (the first real reaction of each row of ``reactions``; with 3DMM targets ``coeffs`` also
the 3DMM terms), ``kl`` x the KL divergence to N(0, I), and, when training, ``div`` x a diversity
term against a second, gradient-free pass with other noise. Online, training runs the internal windows
(``train_window`` frames each, ``window`` by default) in order on the model's own past output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

COEFFS = 58  # 3DMM coefficients per frame: 52 expression, then 3 rotation and 3 translation
EXPRESSION = 52  # the 3DMM loss weighs the coefficients after these by ``pose_weight``
ENCODERS = ("features", "conv3d")


@dataclass
class TransVAEConfig:
    video_encoder: str = "features"  # features: per-frame features | conv3d: raw frames (official)
    video_dim: int = 768  # per-frame video feature size (features)
    audio_dim: int = 768  # per-frame audio feature size (official: 78 MFCC values)
    dim: int = 128  # token, latent and decoder width
    heads: int = 4
    ff: int = 256  # feed-forward width of every transformer layer
    dropout: float = 0.1
    nodes: int = 25
    online: bool = False
    window: int = 8  # online: frames per internal window when generating (data.num_frames a multiple)
    train_window: int = 0  # online: frames per internal window when training (0: window; officially 16)
    feedback: int = 8  # online: past generated frames each window reads
    kl: float = 0.0002  # weight of the KL term
    div: float = 10.0  # weight of the diversity term
    pose_weight: float = 10.0  # weight of the 3DMM pose coefficients' MSE


def causal_mask(n: int, device: torch.device | None = None) -> torch.Tensor:
    """Additive ``(n, n)`` attention mask: position i sees positions <= i."""
    return torch.full((n, n), float("-inf"), device=device).triu(1)


def positions(n: int, dim: int) -> torch.Tensor:
    """Sinusoidal position code ``(n, dim)``, positions from 0, sin and cos interleaved."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    code = torch.zeros(n, dim)
    code[:, 0::2], code[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return code


class FrameConvEncoder(nn.Module):
    """Raw frames ``(B, T, 3, H, W)`` -> ``(B, T, dim)``: the official per-frame Conv3D stack
    (kernels 1 x k x k, instance norms, a residual block), spatial mean, then a linear layer."""

    def __init__(self, dim: int):
        super().__init__()

        def conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv3d:
            return nn.Conv3d(cin, cout, (1, k, k), (1, stride, stride), (0, k // 2, k // 2), bias=False)

        self.stem = nn.Sequential(conv(3, dim // 4, 7, 2), nn.InstanceNorm3d(dim // 4), nn.ReLU(),
                                  nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
                                  conv(dim // 4, dim, 7, 2), nn.InstanceNorm3d(dim), nn.ReLU(),
                                  conv(dim, dim, 3, 2), nn.InstanceNorm3d(dim), nn.ReLU())
        self.residual = nn.Sequential(conv(dim, dim, 3, 1), nn.InstanceNorm3d(dim), nn.ReLU())
        self.down = nn.Sequential(conv(dim, dim, 3, 2), nn.InstanceNorm3d(dim), nn.ReLU())
        self.fc = nn.Linear(dim, dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.stem(frames.transpose(1, 2))  # (B, 3, T, H, W) -> (B, dim, T, h, w)
        x = self.down(x + self.residual(x))
        return self.fc(x.mean(dim=(-2, -1)).transpose(1, 2))


class SpeakerEncoder(nn.Module):
    """Speaker video and audio frames -> fused tokens ``(B, T, dim)``."""

    def __init__(self, cfg: TransVAEConfig):
        super().__init__()
        if cfg.video_encoder not in ENCODERS:
            raise ValueError(f"model.video_encoder must be one of {ENCODERS}, got '{cfg.video_encoder}'")
        raw = cfg.video_encoder == "conv3d"
        self.video = FrameConvEncoder(cfg.dim) if raw else nn.Linear(cfg.video_dim, cfg.dim)
        self.audio = nn.Linear(cfg.audio_dim, cfg.dim)
        self.fuse = nn.Linear(2 * cfg.dim, cfg.dim)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.video(video), self.audio(audio)], -1))


class LatentEncoder(nn.Module):
    """Tokens ``(B, T, dim)`` -> ``mu``, ``logvar`` ``(B, dim)``: one transformer encoder layer over
    a mu token, a logvar token and the projected tokens."""

    def __init__(self, cfg: TransVAEConfig):
        super().__init__()
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ff, cfg.dropout, batch_first=True)
        self.mu_token = nn.Parameter(torch.randn(cfg.dim))
        self.logvar_token = nn.Parameter(torch.randn(cfg.dim))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead = torch.stack([self.mu_token, self.logvar_token]).expand(tokens.shape[0], 2, -1)
        out = self.layer(torch.cat([lead, self.proj(tokens)], 1))
        return out[:, 0], out[:, 1]


class TransVAE(nn.Module):
    """Speaker video + audio windows -> ``S`` listener reactions each (the generator contract)."""

    inputs = ("video", "audio")

    def __init__(self, cfg: TransVAEConfig, frames: int):
        super().__init__()
        self.cfg, self.nodes, self.causal, self.frames = cfg, cfg.nodes, cfg.online, frames
        self.feedback = cfg.feedback if cfg.online else 0
        # frames per internal window when generating and when training (offline: the whole window)
        self.step = cfg.window if cfg.online else frames
        self.train_step = (cfg.train_window or cfg.window) if cfg.online else frames
        if cfg.online and (cfg.feedback <= 0 or min(self.step, self.train_step) <= 0
                           or frames % self.step or frames % self.train_step):
            raise ValueError(f"online TransVAE needs model.feedback > 0 and windows of data.num_frames "
                             f"({frames}) that are multiples of model.window and model.train_window, got "
                             f"window {cfg.window}, train_window {cfg.train_window}, feedback {cfg.feedback}")
        self.settings = repr(cfg)
        d = cfg.dim
        self.encoder = SpeakerEncoder(cfg)
        self.latent = LatentEncoder(cfg)
        self.register_buffer("queries", positions(max(self.step, self.train_step), d), persistent=False)
        self.query_dropout = nn.Dropout(cfg.dropout)
        self.decode_latent = nn.TransformerDecoderLayer(d, cfg.heads, cfg.ff, cfg.dropout, batch_first=True)
        self.decode_self = nn.TransformerDecoderLayer(d, cfg.heads, cfg.ff, cfg.dropout, batch_first=True)
        self.coeff_head = nn.Linear(d, COEFFS)
        self.attr_head = nn.Sequential(nn.Linear(d + COEFFS, d), nn.Linear(d, cfg.nodes))
        if cfg.online:
            self.fuse_past = nn.Linear(d + COEFFS + cfg.nodes, d)  # speaker token | 3DMM | attributes
            self.embed_past = nn.Linear(cfg.nodes, d)
            self.embed_now = nn.Linear(d, d)
            self.decode_past = nn.TransformerDecoderLayer(d, cfg.heads, cfg.ff, cfg.dropout, batch_first=True)
            self.lstm = nn.LSTM(d, d, batch_first=True)

    # -- the generator contract ------------------------------------------------------------------

    def noise_shape(self, windows: int, samples: int) -> tuple[int, ...]:
        return (windows, samples, self.frames // self.step, self.cfg.dim)

    def draw_noise(self, windows: int, samples: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard-normal draws of the reparameterisation, one latent per internal window."""
        return torch.randn(self.noise_shape(windows, samples), generator=generator)

    def generate(self, conditions: dict[str, torch.Tensor], noise: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
        """Reactions ``(W, S, frames, nodes)``; online, ``conditions["past"]`` ``(W, S, feedback, nodes)``."""
        self._check(conditions, self.inputs + (("past",) if self.cfg.online else ()))
        windows, samples = noise.shape[:2]
        tokens = self.encoder(conditions["video"], conditions["audio"])
        tokens = tokens[:, None].expand(-1, samples, -1, -1).flatten(0, 1)
        past = conditions["past"].flatten(0, 1) if self.cfg.online else None
        attrs, _, _, _ = self.unroll(tokens, past, scale * noise.flatten(0, 1), self.step)
        return attrs.unflatten(0, (windows, samples))

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Official loss on the real listener's reaction (the first real one of each row of
        ``reactions``; ``coeffs`` ``(B, K, T, 58)``, if given, are 3DMM targets in the same order).
        In eval mode it is the official validation loss: no diversity term, and the noise drawn
        from a fixed seed (validation leaves the global random state alone)."""
        self._check(batch, self.inputs + ("reactions", "mask"))
        rows = torch.arange(len(batch["mask"]), device=batch["mask"].device)
        first = batch["mask"].int().argmax(1)
        generator = None if self.training else torch.Generator(rows.device).manual_seed(0)
        attrs, coeffs, mu, logvar = self.training_pass(batch["video"], batch["audio"], generator=generator)
        second = None
        if self.training:
            with torch.no_grad():
                second = self.training_pass(batch["video"], batch["audio"])[:2]
        coeff_target = batch["coeffs"][rows, first] if "coeffs" in batch else None
        return vae_loss(self.cfg, attrs, coeffs, mu, logvar, batch["reactions"][rows, first], coeff_target,
                        second)

    # -- the network -----------------------------------------------------------------------------

    def training_pass(self, video: torch.Tensor, audio: torch.Tensor, noise: torch.Tensor | None = None,
                      generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pass of :meth:`training_loss`: :meth:`unroll` over windows of ``train_window`` frames
        from a zero past; ``noise`` ``(B, n, dim)``: standard-normal draws from ``generator`` when
        not given. (Not ``forward``: distributed training routes ``training_loss`` through
        ``forward``.)"""
        tokens = self.encoder(video, audio)
        batch, frames = tokens.shape[:2]
        if noise is None:
            noise = torch.randn(batch, frames // self.train_step, self.cfg.dim, device=tokens.device,
                                generator=generator)
        past = tokens.new_zeros(batch, self.feedback, self.nodes) if self.cfg.online else None
        return self.unroll(tokens, past, noise, self.train_step)

    def unroll(self, tokens: torch.Tensor, past: torch.Tensor | None, noise: torch.Tensor, step: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Speaker tokens ``(N, T, dim)`` -> attributes ``(N, T, nodes)``, 3DMM ``(N, T, 58)`` and the
        latent ``mu``, ``logvar`` ``(N, n, dim)`` of ``n = T / step`` windows generated in order, each
        reading the last ``feedback`` frames before it (``past`` ``(N, feedback, nodes)``, then its
        own output; offline: ``past`` None, one window). ``noise``: ``(N, n, dim)``."""
        if past is None:
            attrs, coeffs, (mu, logvar) = self.window_step(tokens, None, noise[:, 0])
            return attrs, coeffs, mu[:, None], logvar[:, None]
        parts = []
        for i in range(tokens.shape[1] // step):
            attrs, coeffs, dist = self.window_step(tokens[:, i * step:(i + 1) * step], past, noise[:, i])
            past = torch.cat([past, attrs], 1)[:, -self.feedback:]
            parts.append((attrs, coeffs, *dist))
        attrs, coeffs, mu, logvar = zip(*parts)
        return torch.cat(attrs, 1), torch.cat(coeffs, 1), torch.stack(mu, 1), torch.stack(logvar, 1)

    def window_step(self, tokens: torch.Tensor, past: torch.Tensor | None, noise: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One window: speaker tokens ``(N, T, dim)``, past reactions ``(N, feedback, nodes)``
        (online) and noise ``(N, dim)`` -> attributes ``(N, T, nodes)``, 3DMM ``(N, T, 58)`` and
        the latent Gaussian (``mu``, ``logvar``)."""
        n, frames = tokens.shape[:2]
        if past is not None:  # the speaker's tokens, then the past reactions, as fused tokens
            now = torch.cat([tokens, tokens.new_zeros(n, frames, COEFFS + self.nodes)], -1)
            before = torch.cat([past.new_zeros(n, self.feedback, self.cfg.dim + COEFFS), past], -1)
            tokens = self.fuse_past(torch.cat([before, now], 1))
        mu, logvar = self.latent(tokens)
        sample = mu + torch.exp(0.5 * logvar) * noise
        mask = causal_mask(frames, tokens.device)
        queries = self.query_dropout(self.queries[:frames].expand(n, -1, -1))
        state = self.decode_latent(queries, sample[:, None], tgt_mask=mask)
        state = self.decode_self(state, state, tgt_mask=mask)
        motion = state
        if past is not None:
            before = self.embed_past(past)
            both = torch.cat([before, self.embed_now(state)], 1)
            motion = self.decode_past(both, both, tgt_mask=causal_mask(both.shape[1], tokens.device))
            seed = before[:, -1][None].contiguous()
            motion, _ = self.lstm(motion[:, -frames:], (seed, seed))
        coeffs = self.coeff_head(motion)
        return self.attr_head(torch.cat([coeffs, state], -1)), coeffs, (mu, logvar)

    def _check(self, conditions: dict[str, torch.Tensor], needed: tuple[str, ...]) -> None:
        missing = [k for k in needed if k not in conditions]
        if missing:
            raise ValueError(f"TransVAE needs the conditions {needed}; missing {missing}")
        video = conditions["video"]
        raw = self.cfg.video_encoder == "conv3d"
        if video.dim() != (5 if raw else 3):
            wanted = "raw frames (W, T, 3, H, W)" if raw else f"features (W, T, {self.cfg.video_dim})"
            raise ValueError(f"TransVAE (video_encoder {self.cfg.video_encoder}) takes video {wanted}, "
                             f"got shape {tuple(video.shape)}")
        if video.shape[1] != self.frames:
            raise ValueError(f"TransVAE expected windows of {self.frames} frames, got {video.shape[1]}")


def diversity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Official diversity term: mean over rows of ``exp(-||a - b||^2 / 100)`` (each row flattened)."""
    return torch.exp(-(a - b).flatten(1).pow(2).sum(1) / 100).mean()


def vae_loss(cfg: TransVAEConfig, attrs: torch.Tensor, coeffs: torch.Tensor, mu: torch.Tensor,
             logvar: torch.Tensor, target: torch.Tensor, coeff_target: torch.Tensor | None,
             second: tuple[torch.Tensor, torch.Tensor] | None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``rec + kl * KL + div * diversity`` and its parts. ``rec``: MSE of the attributes, plus (with
    3DMM targets) MSE of the 52 expression coefficients and ``pose_weight`` x MSE of the pose ones;
    KL: of N(mu, exp(logvar)) to N(0, I), mean over latent values and windows; diversity: of the
    attributes and the 3DMM output against a second pass's (``second``; None: no diversity term)."""
    rec = F.mse_loss(attrs, target)
    if coeff_target is not None:
        rec = rec + F.mse_loss(coeffs[..., :EXPRESSION], coeff_target[..., :EXPRESSION]) \
            + cfg.pose_weight * F.mse_loss(coeffs[..., EXPRESSION:], coeff_target[..., EXPRESSION:])
    kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean()
    parts = {"rec": rec.detach(), "kl": kl.detach()}
    loss = rec + cfg.kl * kl
    if second is not None:
        div = diversity(second[0], attrs) + diversity(second[1], coeffs)
        loss, parts["div"] = loss + cfg.div * div, div.detach()
    return loss, parts
