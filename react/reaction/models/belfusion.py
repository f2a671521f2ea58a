"""BeLFusion, the REACT 2023 baseline: a behavioural VAE, then a latent diffusion model.

Stage 1, :class:`BehaviouralVAE`, auto-encodes windows of the listener's facial attributes (a GRU
encoder whose last state gives the latent, an autoregressive GRU decoder). Stage 2,
:class:`BeLFusion`, holds that VAE frozen and learns an MLP denoiser over its latent space: the
latent of a listener window is diffused and predicted back (``x0``) from the latent of the
speaker's window of the same frames; ``k`` noisy copies per window are scored best-of-``k``.
Sampling is deterministic DDIM (eta 0) over the schedule's steps, so the only noise is the initial
latent. The facts taken from the official code and the departures from it: docs/belfusion.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

SCHEDULES = ("cosine", "linear")
PREPROCESSING = ("normalize", "standardize", "none")
LATENTS = ("state", "mean")
CONDITIONS = ("speaker", "features")


@dataclass
class VAEConfig:
    nodes: int = 25  # attributes per frame
    hidden: int = 128  # GRU state of the encoder and the decoder
    latent: int = 128  # z
    decoder_mlp: list[int] = field(default_factory=lambda: [64, 64])  # tanh MLP after the decoder GRU
    coefficients: int = 0  # 3DMM head attributes -> hidden -> n (official 58; 0 = none)
    dropout: float = 0.0  # after the decoder's latent projection
    mse_weight: float = 1.0
    kld_weight: float = 1.5e-4  # per window (official: 1e-5 per 750-frame clip = 15 windows summed)
    coeff_weight: float = 1.0  # 3DMM term, only for batches that carry ``coefficients``


@dataclass
class BeLFusionConfig:
    vae: VAEConfig = field(default_factory=VAEConfig)
    vae_checkpoint: str = ""  # the stage-1 run (or its state.pt) whose VAE stage 2 loads
    condition: str = "speaker"  # speaker: the speaker's attributes (official) | features: video + audio
    video_dim: int | None = None  # condition "features" only (the feature sizes)
    audio_dim: int | None = None
    latent: str = "state"  # state: the encoder's last GRU state (official) | mean: the VAE's mu
    preprocessing: str = "normalize"  # latents scaled by training statistics: normalize | standardize | none
    steps: int = 10  # diffusion steps
    schedule: str = "cosine"  # cosine (official) | linear
    hidden: int = 1024  # denoiser width
    layers: int = 10  # denoiser depth
    time_channels: int = 64  # sinusoidal step embedding
    condition_bias: float = 1.0  # layer output x (bias + condition)
    dropout: float = 0.0
    clip_denoised: bool = True  # predicted latents clamped to [-1, 1]
    k: int = 10  # noisy copies per window in training, scored best-of-k
    l1_weight: float = 10.0  # L1 between predicted and true latents (best of k)
    mse_weight: float = 10.0  # MSE between their decoded windows (best of k)
    noise_std: float = 1.0


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(valid)}, got '{value}'")


class _LastState(nn.Module):
    """GRU over a window ``(B, T, dim)`` -> its last state ``(B, hidden)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(dim, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[1][0]


class BehaviouralVAE(nn.Module):
    """Stage 1: listener windows ``(B, frames, nodes)`` auto-encoded through a ``latent``-d code."""

    inputs: tuple[str, ...] = ()  # it reads only the listener reactions of a batch
    causal = False
    feedback = 0

    def __init__(self, cfg: VAEConfig, frames: int):
        super().__init__()
        self.frames, self.nodes = frames, cfg.nodes
        self.settings = repr(cfg)
        self.mse_weight, self.kld_weight, self.coeff_weight = cfg.mse_weight, cfg.kld_weight, cfg.coeff_weight
        self.encoder = _LastState(cfg.nodes, cfg.hidden)
        self.to_mu = nn.Linear(cfg.hidden, cfg.latent)
        self.to_logvar = nn.Linear(cfg.hidden, cfg.latent)
        self.from_latent = nn.Linear(cfg.latent, cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.decoder_cell = nn.GRUCell(cfg.hidden + cfg.nodes, cfg.hidden)
        sizes = [cfg.hidden, *cfg.decoder_mlp]
        mlp: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            mlp += [nn.Linear(a, b), nn.Tanh()]
        self.readout = nn.Sequential(*mlp, nn.Linear(sizes[-1], cfg.nodes))
        self.coefficients = (nn.Sequential(nn.Linear(cfg.nodes, cfg.hidden), nn.Tanh(),
                                           nn.Linear(cfg.hidden, cfg.coefficients))
                             if cfg.coefficients else None)

    def _check(self, windows: torch.Tensor) -> None:
        if windows.shape[1] != self.frames:
            raise ValueError(f"BeLFusion was built for windows of {self.frames} frames, "
                             f"got {windows.shape[1]}")

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """The encoder's last GRU state ``(B, hidden)``."""
        self._check(windows)
        return self.encoder(windows)

    def posterior(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mu, logvar`` ``(B, latent)`` of an encoder state."""
        return self.to_mu(state), self.to_logvar(state)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, latent)`` -> window ``(B, frames, nodes)``, each frame fed the previous one."""
        given = self.dropout(self.from_latent(z))
        state = z.new_zeros(z.shape[0], self.decoder_cell.hidden_size)
        frame = z.new_zeros(z.shape[0], self.nodes)
        frames = []
        for _ in range(self.frames):  # a fixed count: unrolled in an ONNX graph
            state = self.decoder_cell(torch.cat([given, frame], 1), state)
            frame = self.readout(state)
            frames.append(frame)
        return torch.stack(frames, 1)

    def loss(self, windows: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor,
             coefficients: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``mse_weight`` x MSE(decode(z), windows) + ``kld_weight`` x KL(N(mu, var) || N(0, 1))
        (summed over the latent, averaged over windows) [+ ``coeff_weight`` x MSE of the 3DMM head
        on the reconstruction against ``coefficients`` ``(B, frames, n)``]."""
        recon = self.decode(z)
        mse = ((recon - windows) ** 2).mean()
        kld = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum() / windows.shape[0]
        loss = self.mse_weight * mse + self.kld_weight * kld
        parts = {"mse": mse, "kld": kld}
        if coefficients is not None and self.coefficients is not None:
            parts["coeff"] = ((self.coefficients(recon) - coefficients) ** 2).mean()
            loss = loss + self.coeff_weight * parts["coeff"]
        return loss, parts

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The VAE loss on the real listener's windows (``reactions[:, 0]``), z drawn from the
        posterior while training, its mean otherwise."""
        windows = batch["reactions"][:, 0]
        mu, logvar = self.posterior(self.encode(windows))
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu) if self.training else mu
        return self.loss(windows, mu, logvar, z, batch.get("coefficients"))


def step_embedding(steps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(N, dim)`` of integer steps ``(N,)``: ``[cos | sin]`` of step x
    ``max_period ** (-i / half)``, a zero column appended for odd ``dim``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = steps.float()[:, None] * freqs[None]
    table = torch.cat([torch.cos(args), torch.sin(args)], -1)
    return F.pad(table, (0, dim % 2))


def noise_schedule(name: str, steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """Cumulative products of ``1 - beta`` ``(steps,)`` in float64. ``cosine``: beta_i =
    min(1 - a(i+1/steps) / max(a(i/steps), 1e-5), max_beta), a(t) = cos((t + 0.008) / 1.008 pi/2)^2;
    ``linear``: betas from 1e-4 to 0.02, scaled by 1000 / steps."""
    _choice("schedule", name, SCHEDULES)
    if name == "cosine":
        def bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = torch.tensor([min(1 - bar((i + 1) / steps) / max(1e-5, bar(i / steps)), max_beta)
                              for i in range(steps)], dtype=torch.float64)
    else:
        scale = 1000 / steps
        betas = torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
    if not ((betas > 0) & (betas <= 1)).all():
        raise ValueError(f"the {name} schedule of {steps} steps has betas outside (0, 1]: {betas.tolist()}")
    return torch.cumprod(1 - betas, 0)


class _DenoiserLayer(nn.Module):
    """Linear, then (hidden layers) x (bias + projected condition), LayerNorm, SiLU, dropout."""

    def __init__(self, inputs: int, outputs: int, cond: int, last: bool, bias: float, dropout: float):
        super().__init__()
        self.linear = nn.Linear(inputs, outputs)
        self.last, self.bias = last, bias
        if not last:
            self.cond = nn.Sequential(nn.SiLU(), nn.Linear(cond, outputs))
            self.norm = nn.LayerNorm(outputs)
            self.dropout = nn.Dropout(dropout)
            for linear in (self.linear, self.cond[1]):
                nn.init.kaiming_normal_(linear.weight, a=0, nonlinearity="relu")

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.linear(h)
        if self.last:
            return h
        return self.dropout(F.silu(self.norm(h * (self.bias + self.cond(cond)))))


class LatentDenoiser(nn.Module):
    """MLP with the noisy latent concatenated to every layer's input: ``(x_t, step embedding,
    condition)`` -> predicted clean latent, all ``(N, channels)``."""

    def __init__(self, channels: int, hidden: int, layers: int, time_channels: int, bias: float,
                 dropout: float):
        super().__init__()
        if layers < 2:
            raise ValueError(f"the denoiser needs at least 2 layers, got {layers}")
        self.time = nn.Sequential(nn.Linear(time_channels, channels), nn.SiLU(),
                                  nn.Linear(channels, channels))
        self.cond = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))
        sizes = [channels] + [hidden] * (layers - 1) + [channels]
        self.layers = nn.ModuleList(
            _DenoiserLayer(a + channels, b, 2 * channels, i == layers - 1, bias, dropout)
            for i, (a, b) in enumerate(zip(sizes, sizes[1:])))

    def forward(self, x: torch.Tensor, time: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        both = torch.cat([self.time(time), self.cond(cond)], 1)
        h = x
        for layer in self.layers:
            h = layer(torch.cat([h, x], 1), both)
        return h


class BeLFusion(nn.Module):
    """Stage 2: speaker windows -> ``S`` reactions each, by DDIM in the frozen VAE's latent space
    (the generator contract, :mod:`react.reaction.contract`)."""

    causal = False
    feedback = 0

    def __init__(self, cfg: BeLFusionConfig, frames: int):
        super().__init__()
        _choice("condition", cfg.condition, CONDITIONS)
        _choice("latent", cfg.latent, LATENTS)
        _choice("preprocessing", cfg.preprocessing, PREPROCESSING)
        self.frames, self.nodes = frames, cfg.vae.nodes
        self.settings = repr(cfg)
        self.inputs = ("speaker",) if cfg.condition == "speaker" else ("video", "audio")
        self.latent, self.preprocessing, self.clip = cfg.latent, cfg.preprocessing, cfg.clip_denoised
        self.steps, self.k, self.noise_std = cfg.steps, cfg.k, cfg.noise_std
        self.l1_weight, self.mse_weight = cfg.l1_weight, cfg.mse_weight
        self.channels = channels = cfg.vae.latent
        if cfg.latent == "state" and cfg.vae.hidden != channels:
            raise ValueError(f"latent 'state' decodes the encoder state as z: vae.hidden ({cfg.vae.hidden}) "
                             f"must equal vae.latent ({channels})")
        if cfg.condition == "features" and not (cfg.video_dim and cfg.audio_dim):
            raise ValueError("condition 'features' needs video_dim and audio_dim (the feature sizes)")
        self.vae = BehaviouralVAE(cfg.vae, frames).requires_grad_(False)
        self.features = (nn.Sequential(_LastState(cfg.video_dim + cfg.audio_dim, cfg.vae.hidden),
                                       nn.Linear(cfg.vae.hidden, channels))
                         if cfg.condition == "features" else None)
        self.denoiser = LatentDenoiser(channels, cfg.hidden, cfg.layers, cfg.time_channels,
                                       cfg.condition_bias, cfg.dropout)
        bars = noise_schedule(cfg.schedule, cfg.steps)
        self.register_buffer("sqrt_bar", bars.sqrt().float(), persistent=False)
        self.register_buffer("sqrt_one_minus_bar", (1 - bars).sqrt().float(), persistent=False)
        self.register_buffer("time_table", step_embedding(torch.arange(cfg.steps), cfg.time_channels),
                             persistent=False)
        prev = torch.cat([bars.new_ones(1), bars[:-1]])  # DDIM (eta 0) coefficients per step, float64
        self._ddim = [(float((1 / b).sqrt()), float((1 / b - 1).sqrt()), float(p.sqrt()),
                       float((1 - p).sqrt())) for b, p in zip(bars, prev)]
        # latent statistics of the training windows (fit_statistics); these start as the identity
        for name, value in (("stat_min", -1.0), ("stat_max", 1.0), ("stat_mean", 0.0), ("stat_var", 1.0)):
            self.register_buffer(name, torch.full((channels,), value))

    def train(self, mode: bool = True) -> BeLFusion:
        """The frozen VAE stays in eval mode."""
        super().train(mode)
        self.vae.eval()
        return self

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """Raw VAE latent ``(B, latent)`` of attribute windows (the encoder state, or mu)."""
        state = self.vae.encode(windows)
        return state if self.latent == "state" else self.vae.posterior(state)[0]

    @torch.no_grad()
    def fit_statistics(self, windows: torch.Tensor, chunk: int = 4096) -> None:
        """Set the latent statistics (min, max, mean, unbiased variance per channel) from the
        training windows ``(N, frames, nodes)`` (the official: every speaker and listener window)."""
        codes = torch.cat([self.encode(windows[i:i + chunk].to(self.stat_min)) for i in range(0, len(windows),
                                                                                              chunk)])
        for name, value in (("min", codes.amin(0)), ("max", codes.amax(0)), ("mean", codes.mean(0)),
                            ("var", codes.var(0))):
            getattr(self, f"stat_{name}").copy_(value)

    def preprocess(self, codes: torch.Tensor) -> torch.Tensor:
        if self.preprocessing == "normalize":
            return 2 * (codes - self.stat_min) / (self.stat_max - self.stat_min) - 1
        if self.preprocessing == "standardize":
            return (codes - self.stat_mean) / self.stat_var.sqrt()
        return codes

    def postprocess(self, latents: torch.Tensor) -> torch.Tensor:
        if self.preprocessing == "normalize":
            return (latents + 1) * (self.stat_max - self.stat_min) / 2 + self.stat_min
        if self.preprocessing == "standardize":
            return latents * self.stat_var.sqrt() + self.stat_mean
        return latents

    def condition(self, conditions: dict[str, torch.Tensor]) -> torch.Tensor:
        """The denoiser's condition ``(W, latent)``: the preprocessed latent of the speaker's window,
        or the learned encoding of its video + audio features."""
        if self.features is None:
            return self.preprocess(self.encode(conditions["speaker"]))
        video, audio = conditions["video"], conditions["audio"]
        if video.shape[1] != self.frames:
            raise ValueError(f"BeLFusion was built for windows of {self.frames} frames, got {video.shape[1]}")
        return self.features(torch.cat([video, audio], -1))

    def denoise(self, noisy: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predicted clean latents ``(N, latent)`` (clamped to [-1, 1] if ``clip_denoised``)."""
        x0 = self.denoiser(noisy, self.time_table[steps], cond)
        return x0.clamp(-1, 1) if self.clip else x0

    def noise_shape(self, windows: int, samples: int) -> tuple[int, ...]:
        return (windows, samples, self.channels)

    def draw_noise(self, windows: int, samples: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """The initial latents: DDIM with eta 0 draws nothing else."""
        return self.noise_std * torch.randn(self.noise_shape(windows, samples), generator=generator)

    @torch.no_grad()
    def generate(self, conditions: dict[str, torch.Tensor], noise: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
        """``(W, S, frames, nodes)``: each initial latent ``scale`` x noise denoised over the steps
        (DDIM, eta 0), the last clean prediction decoded by the VAE."""
        windows, samples = noise.shape[:2]
        cond = self.condition(conditions).repeat_interleave(samples, 0)
        x = scale * noise.reshape(windows * samples, -1)
        x0 = x
        for step in reversed(range(self.steps)):  # a fixed count: unrolled in an ONNX graph
            x0 = self.denoise(x, torch.full((x.shape[0],), step, dtype=torch.long, device=x.device), cond)
            recip, recipm1, keep, add = self._ddim[step]
            x = keep * x0 + add * (recip * x - x0) / recipm1
        return self.vae.decode(self.postprocess(x0)).reshape(windows, samples, self.frames, self.nodes)

    def diffusion_loss(self, clean: torch.Tensor, cond: torch.Tensor, steps: torch.Tensor, noise: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The official loss for clean latents ``(B, C)``, conditions ``(B, C)``, steps ``(B,)`` and
        noise ``(B, k, C)``: each window diffused ``k`` times to its step, denoised, then
        ``l1_weight`` x min over k of the latent L1 + ``mse_weight`` x min over k of the MSE of the
        decoded windows (the two minima taken separately)."""
        b, k, c = noise.shape
        x0 = clean[:, None].expand(b, k, c)
        keep, add = self.sqrt_bar[steps][:, None, None], self.sqrt_one_minus_bar[steps][:, None, None]
        noisy = keep * x0 + add * noise
        pred = self.denoise(noisy.reshape(b * k, c), steps.repeat_interleave(k), cond.repeat_interleave(k, 0))
        pred = pred.reshape(b, k, c)
        l1 = (pred - x0).abs().mean(-1).amin(1).mean()
        decoded = self.vae.decode(self.postprocess(pred.reshape(b * k, c))).reshape(b, k, -1)
        target = self.vae.decode(self.postprocess(clean)).reshape(b, 1, -1).detach()
        mse = ((decoded - target) ** 2).mean(-1).amin(1).mean()
        return self.l1_weight * l1 + self.mse_weight * mse, {"l1_latent": l1, "mse_decoded": mse}

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`diffusion_loss` of the real listener's windows (``reactions[:, 0]``), uniform
        steps and ``k`` noise draws per window (in eval mode from a generator of fixed seed)."""
        with torch.no_grad():
            clean = self.preprocess(self.encode(batch["reactions"][:, 0]))
        cond = self.condition(batch)
        (b, c), device = clean.shape, clean.device
        if self.training:
            steps = torch.randint(0, self.steps, (b,), device=device)
            noise = torch.randn(b, self.k, c, device=device)
        else:  # validation: fixed draws, none from the global generator
            generator = torch.Generator().manual_seed(0)
            steps = torch.randint(0, self.steps, (b,), generator=generator).to(device)
            noise = torch.randn(b, self.k, c, generator=generator).to(device)
        return self.diffusion_loss(clean, cond, steps, self.noise_std * noise)
