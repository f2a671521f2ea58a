"""Typed configuration of feature extraction (``react.config`` schema) and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from react.config import ConfigError
from react.models.ssl_audio import FAMILIES
from react.reaction.data.react_layout import FPS, NUM_VIDEO_FRAMES, SPLITS

TYPES = ("video", "audio")
AUDIO_KINDS = ("ssl", "logmel", "egemaps", "vggish")


@dataclass
class VideoConfig:
    """Per-frame Swin features: decode -> resize -> centre crop -> normalise -> pooled embedding."""

    backbone: str = "swin_tiny_patch4_window7_224"  # a timm model name
    weights: str = ""  # checkpoint file (.pth/.bin/.safetensors) or timm HF-format directory
    random_init: bool = False  # no weights: random model (tests, demo), warned and recorded
    arch: dict[str, Any] = field(default_factory=dict)  # timm create_model overrides (embed_dim, ...)
    batch_size: int = 32  # frames per forward pass
    resize: int = 256  # shorter side before the crop
    crop: int = 224
    mean: float = 0.5
    std: float = 0.5


@dataclass
class AudioConfig:
    """Audio features on the video frame grid: SSL hidden states, log-mel or eGeMAPS descriptors."""

    kind: str = "ssl"  # ssl | logmel | egemaps | vggish (128-d, features/vggish.py)
    backbone: str = "wav2vec2"  # ssl family: wav2vec2 | hubert | wavlm
    weights: str = ""  # HF-format model directory (kind=ssl)
    random_init: bool = False
    arch: dict[str, Any] = field(default_factory=dict)  # transformers config overrides (random_init)
    layers: list[int] = field(default_factory=lambda: [-1])  # hidden_states indices, averaged
    normalize: bool = True  # zero-mean unit-variance waveform per clip (wav2vec2-base convention)
    batch_size: int = 4  # clips per forward pass
    sample_rate: int = 16000
    n_mels: int = 128
    n_fft: int = 1024
    hop_length: int = 160
    max_shortfall_s: float = 0.1  # audio may end this much before the last video frame
    vggish_hop_s: float = 0.04  # seconds between VGGish examples (0.04: one per 25 fps frame)
    vggish_postprocess: bool = False  # the AudioSet release's PCA + 8-bit step
    vggish_pca: str = ""  # its PCA file (vggish_pca_params-*.pth); "" = the pproc.* entries of audio.weights


@dataclass
class FeatureData:
    root: str = "???"  # the REACT dataset (--data-dir)


@dataclass
class FeatureConfig:
    """One extraction run: which clips, where to, and the two extractors."""

    split: str = "???"  # train | val | test | all
    type: str = "???"  # video | audio | all
    data: FeatureData = field(default_factory=FeatureData)
    layout: str = "auto"  # auto (detected) | react (REACT 2023/2024) | mars (2025/2026: every frame, 30 fps)
    out_dir: str = ""  # root of the feature layout (--out-dir); "" = data.root
    device: str = "cpu"  # cpu | cuda
    workers: int = 1  # decoding processes overlapped with the forward pass (0 = in-process)
    threads: int = 0  # torch threads of the forward pass; 0 = torch's default (one per core)
    frames: int = NUM_VIDEO_FRAMES  # frames kept per clip; 0 = every decoded video frame
    fps: int = FPS
    seed: int = 0  # seeds random_init models
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)


def _choice(key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(valid)}")


def _positive(key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}={value} must be {'>= 0' if allow_zero else '> 0'}")


def validate(cfg: DictConfig) -> None:
    """Check the values the schema's types cannot: choices and ranges."""
    _choice("split", cfg.split, SPLITS + ("all",))
    _choice("type", cfg.type, TYPES + ("all",))
    _choice("layout", cfg.layout, ("auto", "react", "mars"))
    _choice("device", cfg.device, ("cpu", "cuda"))
    _choice("audio.kind", cfg.audio.kind, AUDIO_KINDS)
    if cfg.audio.kind == "ssl":
        _choice("audio.backbone", cfg.audio.backbone, FAMILIES)
    _positive("workers", cfg.workers, allow_zero=True)
    _positive("threads", cfg.threads, allow_zero=True)
    _positive("frames", cfg.frames, allow_zero=True)
    _positive("fps", cfg.fps)
    for key in ("video.batch_size", "video.resize", "video.crop", "video.std", "audio.batch_size",
                "audio.sample_rate", "audio.n_mels", "audio.n_fft", "audio.hop_length", "audio.vggish_hop_s"):
        section, name = key.split(".")
        _positive(key, cfg[section][name])
    _positive("audio.max_shortfall_s", cfg.audio.max_shortfall_s, allow_zero=True)
    if cfg.video.crop > cfg.video.resize:
        raise ConfigError(f"video.crop={cfg.video.crop} exceeds video.resize={cfg.video.resize}")
    if not cfg.audio.layers:
        raise ConfigError("audio.layers is empty; give at least one hidden-state index (e.g. [-1])")
    if cfg.device == "cuda":
        from react.utils.device import resolve_device

        resolve_device(cfg.device)
