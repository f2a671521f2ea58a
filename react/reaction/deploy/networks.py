"""The PyTorch side of a deployment: build the three networks from a REGNN checkpoint and a feature
extraction config, describe them (``network_info.json``), and run them as a numpy backend
(:class:`TorchBackend`, the ``--checkpoint`` path of :mod:`react.reaction.infer`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from features.sidecar import weights_fingerprint
from features.weights import weights_settings
from react.reaction.data.react_layout import EMOTION_COLUMNS
from react.reaction.deploy.graph import AudioBackbone, ReactionGenerator, VggishBackbone, VideoBackbone
from react.reaction.deploy.runtime import DeployError
from react.reaction.models.regnn import REGNN


@dataclass
class Networks:
    """The generator (exact: the model's own iterations and tolerance) and the two backbones."""

    model: REGNN
    generator: ReactionGenerator
    video: VideoBackbone
    audio: AudioBackbone
    info: dict[str, Any]


def ssl_row_geometry(ssl: torch.nn.Module) -> tuple[int, float]:
    """Samples between hidden rows and the first row's centre (samples) of a Wav2Vec2-style encoder."""
    stride, receptive = 1, 1
    for kernel, step in zip(ssl.config.conv_kernel, ssl.config.conv_stride):
        receptive += (kernel - 1) * stride
        stride *= step
    return stride, (receptive - 1) / 2


def build_networks(checkpoint: str | os.PathLike, features: DictConfig) -> Networks:
    """Load the REGNN checkpoint and build the backbones that ``features`` (a ``features.extract``
    config) describes; their output sizes must be the model's feature dims. With ``layout: auto``
    the frame rate is that of the checkpoint's training data (MARS: 30 fps)."""
    from features.audio import build_ssl
    from features.extract import for_layout
    from features.video import build_swin
    from react.engine import checkpoint_file, load_checkpoint

    if features.audio.kind not in ("ssl", "vggish"):
        raise DeployError(
            f"audio.kind={features.audio.kind}: deployment exports SSL audio encoders (wav2vec2 / hubert / "
            "wavlm) and VGGish only"
        )
    _, model, cfg = load_checkpoint(checkpoint, task="regnn")
    if features.layout == "auto":
        features = for_layout(OmegaConf.merge(features, {"data": {"root": cfg.data.root}}))
    video = VideoBackbone(build_swin(features.video, features.seed), features.video.mean, features.video.std)
    audio = vggish_backbone(features) if features.audio.kind == "vggish" else \
        AudioBackbone(build_ssl(features), list(features.audio.layers))
    crop = features.video.crop
    with torch.no_grad():
        dims = {
            "video": video(torch.zeros(1, crop, crop, 3, dtype=torch.uint8)).shape[-1],
            "audio": audio(torch.zeros(1, features.audio.sample_rate)).shape[-1],
        }
    p = cfg.model.perceptual
    for kind, want in (("video", p.video_dim), ("audio", p.audio_dim)):
        if dims[kind] != want:
            raise DeployError(
                f"the {kind} backbone gives {dims[kind]}-d features but {checkpoint_file(checkpoint)} "
                f"was trained on {want}-d ones: use the feature config of its training data"
            )
    generator = ReactionGenerator(model, model.inverse_iters, model.inverse_tol)
    return Networks(
        model,
        generator,
        video,
        audio,
        describe(model, cfg, features, audio, str(checkpoint_file(checkpoint))),
    )


def vggish_backbone(features: DictConfig) -> VggishBackbone:
    """VGGish (with the configured post-processing) behind its log-mel front end (:mod:`features.vggish`)."""
    from features import vggish as fv

    rate = features.audio.sample_rate
    if rate != fv.SAMPLE_RATE:
        raise DeployError(f"audio.sample_rate={rate}: VGGish takes {fv.SAMPLE_RATE} Hz audio")
    window, stride = round(fv.WINDOW_S * rate), round(fv.HOP_S * rate)
    fft = 2 ** math.ceil(math.log2(window))
    hop = round(features.audio.vggish_hop_s / fv.HOP_S)
    if abs(hop * fv.HOP_S - features.audio.vggish_hop_s) > 1e-9:
        raise DeployError(f"audio.vggish_hop_s={features.audio.vggish_hop_s}: deployment needs a multiple of "
                          f"{fv.HOP_S} s")
    mel = torch.from_numpy(fv.mel_matrix(fft // 2 + 1, rate))
    return VggishBackbone(fv.build(features), mel, window, stride, fft, hop, fv.EXAMPLE_FRAMES, fv.LOG_OFFSET)


def audio_description(features: DictConfig, audio: torch.nn.Module) -> dict[str, Any]:
    """What :mod:`react.reaction.deploy.runtime` needs to know of the audio network: its rows' geometry."""
    a = features.audio
    if isinstance(audio, VggishBackbone):
        from features import vggish as fv

        return {"backbone": "vggish", "arch": {}, "layers": [], "normalize": False,
                "row_stride": audio.hop * audio.stride, "row_offset": 0.0,
                "postprocess": "pca-uint8" if fv.postprocess(features) else "none"}
    stride, offset = ssl_row_geometry(audio.ssl)
    return {"backbone": a.backbone, "arch": OmegaConf.to_container(a.arch), "layers": list(a.layers),
            "normalize": a.normalize, "row_stride": stride, "row_offset": offset}


def describe(
    model: REGNN, cfg: DictConfig, features: DictConfig, audio: torch.nn.Module, checkpoint: str
) -> dict[str, Any]:
    """``network_info.json`` without the export-specific fields (files, format, parity)."""
    v, a = features.video, features.audio
    window, nodes = model.frames, model.nodes
    p = cfg.model.perceptual
    return {
        "fps": features.fps,
        "window": window,
        "stride": cfg.data.stride,
        "samples": cfg.generate.samples,
        "nodes": nodes,
        "attributes": list(EMOTION_COLUMNS),
        "features": {"video_dim": p.video_dim, "audio_dim": p.audio_dim},
        "noise": {
            "std": model.noise_std,
            "clip": model.noise_clip,
            "max": model.noise_max,
            "drawn": "numpy default_rng(seed).standard_normal((windows, samples, nodes, window)), "
            "then scaled (react.reaction.deploy.runtime.scale_noise)",
        },
        "networks": {
            "generator": {
                "inputs": {
                    "video": ["windows", window, p.video_dim],
                    "audio": ["windows", window, p.audio_dim],
                    "noise": ["windows", "samples", nodes, window],
                },
                "outputs": {"reactions": ["windows", "samples", window, nodes]},
                "dtypes": {
                    "video": "float32",
                    "audio": "float32",
                    "noise": "float32",
                    "reactions": "float32",
                },
                "weights": {"checkpoint": checkpoint, "sha256": weights_fingerprint(checkpoint)},
                "inverse_iters": model.inverse_iters,
            },
            "video": {
                "inputs": {"frames": ["batch", v.crop, v.crop, 3]},
                "outputs": {"features": ["batch", p.video_dim]},
                "dtypes": {"frames": "uint8", "features": "float32"},
                "backbone": v.backbone,
                "arch": OmegaConf.to_container(v.arch),
                "weights": weights_settings(v.weights, v.random_init, "video", features.seed),
                "resize": v.resize,
                "crop": v.crop,
                "mean": v.mean,
                "std": v.std,
                "batch_size": v.batch_size,
            },
            "audio": {
                "inputs": {"wave": ["batch", "samples"]},
                "outputs": {"hidden": ["batch", "rows", p.audio_dim]},
                "dtypes": {"wave": "float32", "hidden": "float32"},
                **audio_description(features, audio),
                "weights": weights_settings(a.weights, a.random_init, "audio", features.seed),
                "sample_rate": a.sample_rate,
                "max_shortfall_s": a.max_shortfall_s,
            },
        },
    }


def dynamic_axes(net: dict[str, Any]) -> dict[str, dict[int, str]]:
    """``{name: {axis: label}}`` of the named (non-integer) axes of a network's inputs and outputs."""
    shapes = {**net["inputs"], **net["outputs"]}
    return {name: {i: d for i, d in enumerate(shape) if isinstance(d, str)} for name, shape in shapes.items()}


class TorchBackend:
    """:class:`react.reaction.deploy.runtime.Backend` on the PyTorch networks (exact generator sampling)."""

    def __init__(self, networks: Networks, device: str = "cpu"):
        self.info, self.device = networks.info, torch.device(device)
        self.nets = {
            "generator": networks.generator.to(self.device),
            "video": networks.video.to(self.device),
            "audio": networks.audio.to(self.device),
        }

    def _run(self, name: str, *arrays: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.nets[name](
                *(torch.from_numpy(np.ascontiguousarray(x)).to(self.device) for x in arrays)
            )
        return out.float().cpu().numpy()

    def video(self, frames: np.ndarray) -> np.ndarray:
        return self._run("video", frames.astype(np.uint8))

    def audio(self, wave: np.ndarray) -> np.ndarray:
        return self._run("audio", wave.astype(np.float32))

    def generate(self, video: np.ndarray, audio: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return self._run(
            "generator", video.astype(np.float32), audio.astype(np.float32), noise.astype(np.float32)
        )
