"""Speech-emotion models: an encoder (SSL Wav2Vec2/HuBERT/WavLM, or a small log-mel CNN) gives a
frame sequence, optional context transformer layers relate the frames, masked attention pooling
gives one vector, an MLP gives emotion logits.

Optional: a log-mel spectrogram branch pooled beside an SSL encoder, and an auxiliary sex head.
Every module takes ``(B, L)`` waveforms with a ``(B, L)`` validity mask and keeps padding out of
the result: a padded batch gives the same outputs as its utterances one by one.

Log-mel normalisation (``normalization``): ``utterance`` standardises each utterance's log-mel with
its own mean and std; ``population`` standardises each mel band (and descriptor) with fixed
statistics of the training speakers' audio, a buffer saved with the weights (set by the task with
:meth:`SERModel.set_population_norm`), so absolute level and pitch stay visible and nothing but the
utterance is needed at inference; ``speaker`` standardises each band with the statistics of the
speaker's enrolment recordings, passed as ``norm`` (B, 2, F) = per-feature mean and std of the raw
frame features (:meth:`SERModel.raw_features`), so level and timbre relative to the speaker stay
visible (the speaker-adapted protocol; without ``norm`` such a model refuses to run).

Acoustic-descriptor branch (``descriptors``): eGeMAPS-like low-level descriptors computed in PyTorch
from the same spectrum (:mod:`react.models.ser_descriptors`; pitch, HNR, loudness, spectral balance,
MFCCs), appended to the frame features (so ``norm`` standardises them by the speaker too), reduced
to functionals per utterance and fused with the pooled spectrogram vector before the MLP. It runs
wherever the model runs (``predict --stream``, ``--mic``, ONNX): no external feature extractor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from react.models.ser_descriptors import LLD_NAMES, N_FUNCTIONALS, Descriptors, PowerSpectrum, functionals
from react.models.specaugment import SpecAugment
from react.models.ssl_audio import FAMILIES, build_ssl_encoder

ENCODER_MODES = ("frozen", "full", "last_n")
NORMALIZATIONS = ("utterance", "population", "speaker")
# fixed in every SSL encoder here: no layer drop, no HF SpecAugment (ours runs on the layer mix)
SSL_TRAINING_FIELDS = {"layerdrop": 0.0, "apply_spec_augment": False}


@dataclass
class SERModelConfig:
    encoder: str = "logmel_cnn"  # logmel_cnn | logmel_tdnn | wav2vec2 | hubert | wavlm
    weights: str = ""  # local HF-format directory of the SSL encoder
    random_init: bool = False  # build a small random SSL encoder instead (tests / smoke runs)
    random_init_config: dict[str, Any] = field(default_factory=dict)  # overrides of ssl_audio.TINY_CONFIG
    # the SSL encoder's architecture (its transformers config fields); filled in from `weights` or
    # random_init when a run starts, so that a checkpoint rebuilds its model without the weights folder
    ssl_arch: dict[str, Any] = field(default_factory=dict)
    encoder_mode: str = "frozen"  # frozen | full | last_n
    unfreeze_last_n: int = 0  # transformer layers trained when encoder_mode = last_n
    layer_weighting: bool = True  # learned softmax-weighted sum of all SSL layers (else last layer)
    n_mels: int = 64
    cnn_channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # per block (CNN and TDNN)
    embed_dim: int = 128  # width of the log-mel CNN's frame features
    # utterance | population (per band, training speakers' statistics) | speaker (per band, the
    # speaker's enrolment recordings: speaker-adapted protocol only)
    normalization: str = "utterance"
    descriptors: bool = False  # acoustic-descriptor branch (pitch, HNR, loudness... functionals) fused
    context_layers: int = 0  # transformer layers over the encoder's frames before pooling
    context_heads: int = 4
    pool_heads: int = 1
    pool_std: bool = False  # attentive statistics pooling: weighted std beside the weighted mean
    hidden_dim: int = 256
    dropout: float = 0.2
    spec_branch: bool = False  # add a pooled log-mel CNN branch beside an SSL encoder
    aux_sex_weight: float = 0.0  # > 0 adds a sex head; its loss weight in the multi-task loss


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK-mel filters, (n_fft // 2 + 1, n_mels)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(20.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lower) / (centre - lower)
    down = (upper - freqs[:, None]) / (upper - centre)
    return np.clip(np.minimum(up, down), 0.0, None).astype(np.float32)


def weighted_mean_std(x: torch.Tensor, weights: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, ...]:
    """Per-feature mean and std of ``x`` (B, T, F) over the frames of nonzero ``weights`` (B, T, F),
    shaped (B, 1, F)."""
    w = weights.to(x.dtype)
    n = w.sum(1, keepdim=True).clamp_min(1.0)
    mean = (x * w).sum(1, keepdim=True) / n
    var = ((x - mean).pow(2) * w).sum(1, keepdim=True) / n
    return mean, (var + eps).sqrt()


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, ...]:
    """Mean and std of ``x`` (B, T, ...) over valid positions of ``mask`` (B, T), shaped (B, 1, ...)."""
    m = mask.to(x.dtype).view(*mask.shape, *([1] * (x.dim() - 2)))
    n = m.sum(1, keepdim=True).clamp_min(1.0)
    mean = (x * m).sum(1, keepdim=True) / n
    var = ((x - mean).pow(2) * m).sum(1, keepdim=True) / n
    return mean, (var + eps).sqrt()


class LogMel(nn.Module):
    """Log-mel spectrogram of 25 ms Hann frames every 10 ms (FFT in PyTorch, DFT convolution in ONNX)."""

    def __init__(self, sample_rate: int, n_mels: int, win_s: float = 0.025, hop_s: float = 0.010):
        super().__init__()
        self.n_fft = round(win_s * sample_rate)
        self.hop = round(hop_s * sample_rate)
        self.power = PowerSpectrum(self.n_fft, self.hop)
        self.register_buffer("mel", torch.from_numpy(_mel_filterbank(sample_rate, self.n_fft, n_mels)),
                             persistent=False)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (torch.div(lengths - self.n_fft, self.hop, rounding_mode="floor") + 1).clamp_min(1)

    def spectrum(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) -> power spectrum (B, T, n_fft // 2 + 1), frame mask (B, T); float32 even under
        autocast (fp16 powers of loud audio overflow)."""
        # n_fft zeros on the right: a clip shorter than one window still gives a frame, and
        # the graph has no shape-dependent branch (the extra frames are masked out)
        with torch.autocast(wave.device.type, enabled=False):
            power = self.power(nn.functional.pad(wave.float() * mask.float(), (0, self.n_fft)))
        frames = self.frame_lengths(mask.sum(1))
        fmask = torch.arange(power.shape[1], device=wave.device).unsqueeze(0) < frames.unsqueeze(1)
        return power * fmask.unsqueeze(-1).to(power.dtype), fmask

    def raw(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) -> un-normalised log-mel (B, T, n_mels), frame mask (B, T)."""
        power, fmask = self.spectrum(wave, mask)
        logmel = torch.log(power @ self.mel + 1e-6)
        return logmel * fmask.unsqueeze(-1).to(logmel.dtype), fmask


class Frontend(nn.Module):
    """Raw frame features for the log-mel encoders: the log-mel bands, then (``descriptors``) the
    acoustic low-level descriptors of :mod:`react.models.ser_descriptors`; no weights."""

    def __init__(self, sample_rate: int, n_mels: int, descriptors: bool = False):
        super().__init__()
        self.logmel = LogMel(sample_rate, n_mels)
        self.n_mels = n_mels
        self.frame_s = self.logmel.hop / sample_rate
        self.descriptors = (Descriptors(sample_rate, self.logmel.n_fft, self.logmel.hop, n_mels)
                            if descriptors else None)

    def raw(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) -> un-normalised features (B, T, n_mels [+ descriptors]) and per-feature frame
        weights (B, T, same): the frame mask, for pitch and HNR only the voiced frames."""
        power, fmask = self.logmel.spectrum(wave, mask)
        logmel = torch.log(power @ self.logmel.mel + 1e-6) * fmask.unsqueeze(-1).to(power.dtype)
        weights = fmask.unsqueeze(-1).expand_as(logmel)
        if self.descriptors is None:
            return logmel, weights
        lld, lld_weights = self.descriptors(wave * mask.to(wave.dtype), power, logmel, fmask)
        return torch.cat([logmel, lld], -1), torch.cat([weights, lld_weights], -1)

    def forward(self, wave: torch.Tensor, mask: torch.Tensor, norm: torch.Tensor | None = None,
                per_band: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised features, weights (B, T, F) and frame mask (B, T): each feature standardised
        by ``norm`` (B, 2, F), the speaker's mean and std of :meth:`raw`; without it by the
        utterance's own statistics, per feature when ``per_band``, else one mean and std over all
        log-mel bands (the descriptors always per feature)."""
        feats, weights = self.raw(wave, mask)
        fmask = weights[..., 0]
        if norm is not None:
            mean, std = norm[:, :1].float(), norm[:, 1:].float().clamp_min(1e-3)
        else:
            mean, std = weighted_mean_std(feats, weights)
            if not per_band:
                n = self.n_mels
                flat_mean, flat_std = masked_mean_std(feats[..., :n].flatten(1).view(feats.shape[0], -1, 1),
                                                      fmask.repeat_interleave(n, dim=1))
                mean = torch.cat([flat_mean.expand(-1, -1, n), mean[..., n:]], -1)
                std = torch.cat([flat_std.expand(-1, -1, n), std[..., n:]], -1)
        return (feats - mean) / std * weights.to(feats.dtype), weights, fmask


class MelCNN(nn.Module):
    """2-D CNN over (mel, time): each block halves frequency and time; padding stays zero."""

    def __init__(self, n_mels: int, channels: list[int], out_dim: int):
        super().__init__()
        blocks, c_in, f = [], 1, n_mels
        for c in channels:
            blocks.append(nn.ModuleDict({
                "conv": nn.Conv2d(c_in, c, kernel_size=3, stride=(1, 2), padding=1),
                "norm": nn.BatchNorm2d(c),
            }))
            c_in, f = c, f // 2
        if f < 1:
            raise ValueError(f"{len(channels)} CNN blocks halve {n_mels} mel bins to nothing")
        self.blocks = nn.ModuleList(blocks)
        self.proj = nn.Linear(c_in * f, out_dim)
        self.out_dim = out_dim

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, n_mels), (B, T) -> (B, T', out_dim), (B, T')."""
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        lengths = mask.sum(1)
        for block in self.blocks:
            x = nn.functional.gelu(block["norm"](block["conv"](x)))
            x = nn.functional.max_pool2d(x, kernel_size=(2, 1))
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
            mask = torch.arange(x.shape[-1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
            x = x * mask.view(mask.shape[0], 1, 1, -1).to(x.dtype)
        x = x.flatten(1, 2).transpose(1, 2)  # (B, T', C*F')
        return self.proj(x) * mask.unsqueeze(-1).to(x.dtype), mask


class MelTDNN(nn.Module):
    """1-D convolutions over time with the mel bands as channels (x-vector style, cheap on a CPU):
    each block (kernel 5) halves time; padding stays zero."""

    def __init__(self, n_mels: int, channels: list[int], out_dim: int):
        super().__init__()
        blocks, c_in = [], n_mels
        for c in channels:
            blocks.append(nn.ModuleDict({"conv": nn.Conv1d(c_in, c, kernel_size=5, stride=2, padding=2),
                                         "norm": nn.BatchNorm1d(c)}))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.proj = nn.Linear(c_in, out_dim)
        self.out_dim = out_dim

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, n_mels), (B, T) -> (B, T', out_dim), (B, T')."""
        x = feats.transpose(1, 2)  # (B, F, T)
        lengths = mask.sum(1)
        for block in self.blocks:
            x = nn.functional.gelu(block["norm"](block["conv"](x)))
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
            mask = torch.arange(x.shape[-1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
            x = x * mask.unsqueeze(1).to(x.dtype)
        return self.proj(x.transpose(1, 2)) * mask.unsqueeze(-1).to(x.dtype), mask


class LogMelCNNEncoder(nn.Module):
    """Log-mel -> SpecAugment (training) -> 2-D CNN (or 1-D TDNN): a small encoder for CPU work;
    with ``descriptors`` also the functionals of the normalised acoustic descriptors."""

    def __init__(self, sample_rate: int, n_mels: int, channels: list[int], out_dim: int,
                 specaug: SpecAugment, per_band: bool = False, tdnn: bool = False, descriptors: bool = False):
        super().__init__()
        self.frontend = Frontend(sample_rate, n_mels, descriptors)
        self.per_band = per_band
        self.specaug = specaug
        self.cnn = (MelTDNN if tdnn else MelCNN)(n_mels, channels, out_dim)
        self.out_dim = out_dim

    def forward(self, wave: torch.Tensor, mask: torch.Tensor, norm: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Frames (B, T', out_dim), their mask (B, T') and the descriptor functionals (B, N) or None."""
        feats, weights, fmask = self.frontend(wave, mask, norm, self.per_band)
        n = self.frontend.n_mels
        described = None
        if self.frontend.descriptors is not None:
            described = functionals(feats[..., n:], weights[..., n:], self.frontend.frame_s)
        return (*self.cnn(self.specaug(feats[..., :n], fmask), fmask), described)


def _frozen_subtrees(module: nn.Module) -> list[nn.Module]:
    """The largest submodules that have parameters, none of them trainable."""
    params = list(module.parameters())
    if params and not any(p.requires_grad for p in params):
        return [module]
    return [m for child in module.children() for m in _frozen_subtrees(child)]


class SSLEncoder(nn.Module):
    """A Wav2Vec2-family encoder: frozen, fully trained, or last N transformer layers trained;
    output is a learned softmax-weighted sum of its layers (or the last layer), then SpecAugment.

    Waves are normalised per utterance over their valid samples. Models with a layer-norm feature
    encoder get the attention mask; group-norm ones (wav2vec2-base, hubert-base) were trained
    without one, so, as in ``transformers``, they see zero padding (evaluation batches utterances
    of similar length to keep it small); pooling ignores padded frames either way."""

    def __init__(self, cfg: SERModelConfig, specaug: SpecAugment):
        super().__init__()
        if cfg.encoder_mode not in ENCODER_MODES:
            raise ValueError(f"model.encoder_mode '{cfg.encoder_mode}' not in {', '.join(ENCODER_MODES)}")
        if not cfg.ssl_arch:
            raise ValueError("model.ssl_arch is empty (the task fills it from model.weights or random_init)")
        self.model = build_ssl_encoder(cfg.encoder, {**cfg.ssl_arch, **SSL_TRAINING_FIELDS})
        conf = self.model.config
        self.use_attention_mask = conf.feat_extract_norm == "layer"
        self.mode = cfg.encoder_mode
        self.frozen = self._freeze(cfg)
        if getattr(self.model, "masked_spec_embed", None) is not None:  # unused without HF SpecAugment;
            self.model.masked_spec_embed.requires_grad_(False)  # a trainable unused weight breaks DDP
        n_layers = conf.num_hidden_layers + 1
        self.layer_logits = nn.Parameter(torch.zeros(n_layers)) if cfg.layer_weighting else None
        self.specaug = specaug
        self.out_dim = conf.hidden_size

    def _freeze(self, cfg: SERModelConfig) -> list[nn.Module]:
        """Set ``requires_grad``; return the modules that stay frozen (kept in eval mode)."""
        if self.mode == "full":
            return []
        self.model.requires_grad_(False)
        if self.mode == "frozen":
            return [self.model]
        layers = self.model.encoder.layers
        n = cfg.unfreeze_last_n
        if not 1 <= n <= len(layers):
            raise ValueError(f"model.unfreeze_last_n={n} must be in 1..{len(layers)} for encoder_mode last_n")
        trained = list(layers[len(layers) - n:])
        if self.model.config.do_stable_layer_norm:  # the final layer norm follows the last layer
            trained.append(self.model.encoder.layer_norm)
        for module in trained:
            module.requires_grad_(True)
        return _frozen_subtrees(self.model)

    def train(self, mode: bool = True) -> SSLEncoder:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = masked_mean_std(wave, mask)
        wave = (wave - mean) / std * mask.to(wave.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.mode != "frozen"):
            out = self.model(wave, attention_mask=mask.long() if self.use_attention_mask else None,
                             output_hidden_states=self.layer_logits is not None)
        if self.layer_logits is None:
            feats = out.last_hidden_state
        else:
            # the last entry is the encoder output (in pre-norm variants hidden_states[-1] lacks the
            # final layer norm)
            layers = torch.stack([*out.hidden_states[:-1], out.last_hidden_state], 0)
            weights = torch.softmax(self.layer_logits, 0).to(layers.dtype)
            feats = (layers * weights.view(-1, 1, 1, 1)).sum(0)
        frames = self.model._get_feat_extract_output_lengths(mask.sum(1))
        fmask = torch.arange(feats.shape[1], device=feats.device).unsqueeze(0) < frames.unsqueeze(1)
        return self.specaug(feats, fmask), fmask


class ContextLayer(nn.Module):
    """One pre-norm transformer layer whose attention ignores padded frames (plain ops: exports
    to ONNX and has no shape-dependent fast path)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.context_heads={heads} must divide the frame width {dim}")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)).float() / math.sqrt(d // self.heads)
        scores = scores.masked_fill(~mask.view(b, 1, 1, t), -1e4)
        attended = (torch.softmax(scores, -1).to(v.dtype) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.out(attended))
        return x + self.drop(self.ff(self.norm2(x)))


class ContextEncoder(nn.Module):
    """Sinusoidal positions, then transformer layers over the frame sequence; padding stays zero."""

    def __init__(self, dim: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(ContextLayer(dim, heads, dropout) for _ in range(layers))
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2) / dim),
                             persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        angle = torch.arange(x.shape[1], device=x.device, dtype=torch.float32).unsqueeze(1) * self.freqs
        x = x + torch.cat([angle.sin(), angle.cos()], dim=1)[:, : x.shape[2]].to(x.dtype)
        for layer in self.layers:
            x = layer(x, mask)
        return x * mask.unsqueeze(-1).to(x.dtype)


class AttentionPooling(nn.Module):
    """Masked multi-head attention pooling: (B, T, D) -> (B, heads * D), or with ``std`` attentive
    statistics pooling (B, 2 * heads * D): the weighted mean and the weighted std."""

    def __init__(self, dim: int, heads: int = 1, std: bool = False):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, heads))
        self.std = std
        self.out_dim = dim * heads * (2 if std else 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(x).float().masked_fill(~mask.unsqueeze(-1), -1e4)  # (B, T, H)
        weights = torch.softmax(scores, dim=1).to(x.dtype)
        mean = torch.einsum("bth,btd->bhd", weights, x)
        if not self.std:
            return mean.flatten(1)
        var = torch.einsum("bth,btd->bhd", weights, x * x) - mean * mean
        return torch.cat([mean, var.clamp_min(1e-5).sqrt()], dim=1).flatten(1)


class SERModel(nn.Module):
    """Encoder -> attention pooling (+ optional log-mel branch) -> MLP emotion logits (+ sex logits)."""

    def __init__(self, cfg: SERModelConfig, n_classes: int, sample_rate: int,
                 specaug: SpecAugment | None = None):
        super().__init__()
        specaug = specaug if specaug is not None else SpecAugment(0.0, 0, 0.0, 0, 0)
        if cfg.normalization not in NORMALIZATIONS:
            raise ValueError(f"model.normalization '{cfg.normalization}' not in {', '.join(NORMALIZATIONS)}")
        self.speaker_norm = cfg.normalization == "speaker"

        def mel_cnn(tdnn: bool = False) -> LogMelCNNEncoder:
            return LogMelCNNEncoder(sample_rate, cfg.n_mels, cfg.cnn_channels, cfg.embed_dim, specaug,
                                    per_band=cfg.normalization != "utterance", tdnn=tdnn,
                                    descriptors=cfg.descriptors)

        if cfg.encoder in ("logmel_cnn", "logmel_tdnn"):
            if cfg.spec_branch:
                raise ValueError(f"model.spec_branch duplicates the {cfg.encoder} encoder; "
                                 "use it with SSL ones")
            self.encoder = mel_cnn(cfg.encoder == "logmel_tdnn")
        elif cfg.encoder in FAMILIES:
            self.encoder = SSLEncoder(cfg, specaug)
        else:
            raise ValueError(f"unknown model.encoder '{cfg.encoder}'. Valid: logmel_cnn, logmel_tdnn, "
                             + ", ".join(FAMILIES))
        width = self.encoder.out_dim
        self.context = (ContextEncoder(width, cfg.context_layers, cfg.context_heads, cfg.dropout)
                        if cfg.context_layers > 0 else None)
        self.pool = AttentionPooling(width, cfg.pool_heads, cfg.pool_std)
        width = self.pool.out_dim
        self.spec_branch = None
        if cfg.spec_branch:
            self.spec_branch = mel_cnn()
            self.spec_pool = AttentionPooling(cfg.embed_dim, cfg.pool_heads, cfg.pool_std)
            width += self.spec_pool.out_dim
        if self.mel is None and (cfg.normalization != "utterance" or cfg.descriptors):
            raise ValueError(f"model.normalization={cfg.normalization} and model.descriptors work on the "
                             "log-mel front end: use a logmel encoder or model.spec_branch")
        n_features = cfg.n_mels + (len(LLD_NAMES) if cfg.descriptors else 0)  # identity until set
        self.register_buffer("population_norm", torch.stack([torch.zeros(n_features), torch.ones(n_features)])
                             if cfg.normalization == "population" else None)
        # the functionals, standardised over the training data as a classic model's scaler would
        self.descriptor_norm = nn.BatchNorm1d(N_FUNCTIONALS) if cfg.descriptors else None
        width += N_FUNCTIONALS if cfg.descriptors else 0
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, cfg.hidden_dim), nn.GELU(),
                                  nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden_dim, n_classes))
        self.sex_head = nn.Linear(width, 2) if cfg.aux_sex_weight > 0 else None

    @property
    def mel(self) -> LogMelCNNEncoder | None:
        """The log-mel encoder or branch (its front end gives the features ``norm`` describes)."""
        return self.encoder if isinstance(self.encoder, LogMelCNNEncoder) else self.spec_branch

    def set_population_norm(self, norm: np.ndarray) -> None:
        """Fix the ``population`` statistics: mean and std ``(2, F)`` of :meth:`raw_features` over the
        training speakers' audio."""
        if self.population_norm is None:
            raise ValueError("set_population_norm on a model without normalization=population")
        self.population_norm.copy_(torch.as_tensor(norm, dtype=self.population_norm.dtype))

    def raw_features(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The un-normalised frame features (B, T, F) and their weights whose per-feature statistics
        are ``norm``: log-mel bands, then the acoustic descriptors when the model has them."""
        return self.mel.frontend.raw(wave, mask)

    def forward(self, wave: torch.Tensor, mask: torch.Tensor | None = None,
                norm: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``wave`` (B, L) at the model's sample rate, ``mask`` (B, L) True on real samples, ``norm``
        (B, 2, F) the speaker's mean and std of :meth:`raw_features` (``normalization=speaker``)."""
        if mask is None:
            mask = torch.ones_like(wave, dtype=torch.bool)
        if norm is not None and not self.speaker_norm:
            raise ValueError("norm (speaker statistics) given to a model that does not normalise by speaker")
        if norm is None and self.speaker_norm:
            raise ValueError("a normalization=speaker model needs norm: the statistics of the speaker's "
                             "enrolment recordings")
        if self.population_norm is not None:
            norm = self.population_norm.unsqueeze(0).expand(wave.shape[0], -1, -1)
        described = None
        if isinstance(self.encoder, LogMelCNNEncoder):
            feats, fmask, described = self.encoder(wave, mask, norm)
        else:
            feats, fmask = self.encoder(wave, mask)
        if self.context is not None:
            feats = self.context(feats, fmask)
        pooled = self.pool(feats, fmask)
        if self.spec_branch is not None:
            frames, spec_mask, described = self.spec_branch(wave, mask, norm)
            pooled = torch.cat([pooled, self.spec_pool(frames, spec_mask)], dim=1)
        if self.descriptor_norm is not None:
            pooled = torch.cat([pooled, self.descriptor_norm(described)], dim=1)
        out = {"logits": self.head(pooled)}
        if self.sex_head is not None:
            out["sex_logits"] = self.sex_head(pooled)
        return out
