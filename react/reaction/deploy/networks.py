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
from react.reaction.deploy.graph import AudioBackbone, VggishBackbone, VideoBackbone, generator_network
from react.reaction.deploy.runtime import DeployError
from react.reaction.models.regnn import REGNN


@dataclass
class Networks:
    """The generator (exact: the model's own ``generate``) and the two backbones (None where only the
    generator is needed, as in :func:`react.reaction.online.score_split`)."""

    model: torch.nn.Module
    generator: torch.nn.Module
    video: VideoBackbone | None
    audio: AudioBackbone | VggishBackbone | None
    info: dict[str, Any]


def ssl_row_geometry(ssl: torch.nn.Module) -> tuple[int, float]:
    """Samples between hidden rows and the first row's centre (samples) of a Wav2Vec2-style encoder."""
    stride, receptive = 1, 1
    for kernel, step in zip(ssl.config.conv_kernel, ssl.config.conv_stride):
        receptive += (kernel - 1) * stride
        stride *= step
    return stride, (receptive - 1) / 2


def build_networks(checkpoint: str | os.PathLike, features: DictConfig) -> Networks:
    """Load the checkpoint of any registered generator and build the backbones that ``features`` (a
    ``features.extract`` config) describes; the output sizes of those the model reads must be the
    model's feature dims. With ``layout: auto`` the frame rate is that of the checkpoint's training
    data (MARS: 30 fps)."""
    from features.audio import build_ssl
    from features.extract import for_layout
    from features.video import build_swin
    from react.engine import checkpoint_file
    from react.reaction.loading import load_for_generation
    from react.reaction.task import feature_dims

    if features.audio.kind not in ("ssl", "vggish"):
        raise DeployError(
            f"audio.kind={features.audio.kind}: deployment exports SSL audio encoders (wav2vec2 / hubert / "
            "wavlm) and VGGish only"
        )
    _, model, cfg = load_for_generation(str(checkpoint), {})
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
    for kind, want in zip(("video", "audio"), feature_dims(cfg.model)):
        if kind in model.inputs and want is not None and dims[kind] != want:
            raise DeployError(
                f"the {kind} backbone gives {dims[kind]}-d features but {checkpoint_file(checkpoint)} "
                f"was trained on {want}-d ones: use the feature config of its training data"
            )
    info = describe(model, cfg, features, audio, str(checkpoint_file(checkpoint)), dims)
    return Networks(model, generator_network(model), video, audio, info)


def generator_networks(model: torch.nn.Module, cfg: DictConfig, samples: int) -> Networks:
    """The generator alone (no backbones), described as :func:`describe` does: what the online mode
    needs to run a checkpoint on stored features."""
    from react.reaction.task import feature_dims

    dims = dict(zip(("video", "audio"), feature_dims(cfg.model)))
    info = {**generator_info(model, cfg, dims), "samples": samples}
    return Networks(model, generator_network(model), None, None, info)


def noise_law(model: torch.nn.Module, name: str) -> dict[str, float]:
    """How the runtime draws the model's noise from a standard normal ``z``
    (:func:`react.reaction.deploy.runtime.scale_noise`): REGNN's ``std``/``clip``/``max`` settings;
    any other model's ``draw_noise`` must be ``std * z`` (checked on one draw), its ``std`` recorded."""
    if isinstance(model, REGNN):
        return {"std": model.noise_std, "clip": model.noise_clip, "max": model.noise_max}
    drawn = model.draw_noise(2, 3, torch.Generator().manual_seed(0)).double()
    z = torch.randn(drawn.shape, generator=torch.Generator().manual_seed(0)).double()
    std = float((drawn * z).sum() / (z * z).sum())
    if not torch.allclose(drawn, std * z, rtol=1e-4, atol=1e-6):
        raise DeployError(f"model '{name}': its draw_noise is not a scaled standard normal, which the "
                          "deployed runtime cannot draw")
    return {"std": std, "clip": 0.0, "max": 0.0}


def generator_info(model: torch.nn.Module, cfg: DictConfig, dims: dict[str, int | None]) -> dict[str, Any]:
    """The generator's part of ``network_info.json``: window, stride, samples, nodes, the contract's
    ``inputs``/``causal``/``feedback``, the noise per window and sample (``noise_shape``) and its law,
    and the generator network's inputs (``dims``: the video/audio feature sizes)."""
    window, nodes = model.frames, model.nodes
    noise_shape = list(model.noise_shape(1, 1)[2:])
    sizes = {**dims, "speaker": nodes}
    inputs = {name: ["windows", window, sizes[name]] for name in model.inputs}
    if model.feedback:
        inputs["past"] = ["windows", "samples", model.feedback, nodes]
    inputs["noise"] = ["windows", "samples", *noise_shape]
    return {
        "model": cfg.task,
        "window": window,
        "stride": cfg.data.stride,
        "samples": cfg.generate.samples,
        "nodes": nodes,
        "attributes": list(EMOTION_COLUMNS),
        "inputs": list(model.inputs),
        "causal": bool(model.causal),
        "feedback": int(model.feedback),
        "noise_shape": noise_shape,
        "noise": {
            **noise_law(model, cfg.task),
            "drawn": "numpy default_rng(seed).standard_normal((windows, samples, *noise_shape)), "
            "then scaled (react.reaction.deploy.runtime.scale_noise)",
        },
        "generator": {
            "inputs": inputs,
            "outputs": {"reactions": ["windows", "samples", window, nodes]},
            "dtypes": {**{name: "float32" for name in inputs}, "reactions": "float32"},
        },
    }


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
    model: torch.nn.Module, cfg: DictConfig, features: DictConfig, audio: torch.nn.Module, checkpoint: str,
    dims: dict[str, int],
) -> dict[str, Any]:
    """``network_info.json`` without the export-specific fields (files, format, parity)."""
    v, a = features.video, features.audio
    info = generator_info(model, cfg, dims)
    generator = info.pop("generator")
    generator["weights"] = {"checkpoint": checkpoint, "sha256": weights_fingerprint(checkpoint)}
    if isinstance(model, REGNN):
        generator["inverse_iters"] = model.inverse_iters
    return {
        "fps": features.fps,
        **info,
        "features": {"video_dim": dims["video"], "audio_dim": dims["audio"]},
        "networks": {
            "generator": generator,
            "video": {
                "inputs": {"frames": ["batch", v.crop, v.crop, 3]},
                "outputs": {"features": ["batch", dims["video"]]},
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
                "outputs": {"hidden": ["batch", "rows", dims["audio"]]},
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
        nets = {"generator": networks.generator, "video": networks.video, "audio": networks.audio}
        self.nets = {name: net.to(self.device) for name, net in nets.items() if net is not None}

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

    def generate(self, *arrays: np.ndarray) -> np.ndarray:
        return self._run("generator", *(x.astype(np.float32) for x in arrays))
