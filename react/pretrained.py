"""Pretrained weights from local paths: the only place that reads a backbone's files.

Models are built from architecture configs (:mod:`react.models`); this module reads a local
Hugging Face format directory to get an architecture and to load weights into a built model.
Nothing is ever downloaded. ``random_init`` builds the tiny architecture instead, with a warning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from react.models.ssl_audio import TINY_CONFIG, build_ssl_encoder, check_fields, ssl_classes
from react.utils.logging import warn_random_init


def _hf_dir(family: str, weights: str | os.PathLike | None) -> Path:
    if not weights:
        raise FileNotFoundError(f"SSL encoder '{family}': no weights path given; set the path of a local "
                                "HF-format model directory or random_init: true")
    path = Path(weights)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a local HF-format model directory (no config.json); "
                                "no weights can be downloaded, copy them there or set random_init: true")
    return path


def ssl_architecture(family: str, weights: str | os.PathLike | None, random_init: bool,
                     **overrides: Any) -> dict[str, Any]:
    """The architecture of an SSL encoder: read from ``weights`` (a local HF-format directory whose
    ``model_type`` must match ``family``), or :data:`TINY_CONFIG` with ``random_init`` (warns).
    ``overrides`` replace fields (e.g. ``layerdrop=0.0``); unknown fields are an error."""
    check_fields(family, overrides)
    if random_init:
        warn_random_init(f"SSL encoder '{family}'", f"; weights '{weights}' are ignored" if weights else "")
        return {**TINY_CONFIG, **overrides}
    path = _hf_dir(family, weights)
    config_cls = ssl_classes(family)[0]
    config = config_cls.from_pretrained(path, **overrides)
    if config.model_type != config_cls.model_type:
        raise ValueError(f"{path}: holds a '{config.model_type}' model, expected '{config_cls.model_type}' "
                         f"for family '{family}'")
    return config.to_dict()


def load_ssl_weights(encoder: nn.Module, family: str, weights: str | os.PathLike) -> nn.Module:
    """Copy the weights of the local HF-format directory ``weights`` into ``encoder`` (built by
    :func:`react.models.ssl_audio.build_ssl_encoder` with the matching architecture)."""
    path = _hf_dir(family, weights)
    pretrained = ssl_classes(family)[1].from_pretrained(path, config=encoder.config)
    encoder.load_state_dict(pretrained.state_dict())
    return encoder


def pretrained_ssl_encoder(family: str, weights: str | os.PathLike | None, random_init: bool,
                           **overrides: Any) -> nn.Module:
    """Architecture and weights in one step (feature extraction, tests)."""
    encoder = build_ssl_encoder(family, ssl_architecture(family, weights, random_init, **overrides))
    return encoder if random_init else load_ssl_weights(encoder, family, weights)


# names of the PCA post-processing parameters: in torchvggish-style weights files (versions differ)
# or in the release's separate PCA file (vggish_pca_params-*.pth: unprefixed)
VGGISH_PCA_KEYS = {"pproc.pca_matrix": ("pproc.pca_matrix", "pproc._pca_matrix", "pproc.pca_eigen_vectors",
                                        "pca_eigen_vectors"),
                   "pproc.pca_means": ("pproc.pca_means", "pproc._pca_means", "pca_means")}
PCA_NAMES = {k for keys in VGGISH_PCA_KEYS.values() for k in keys}


def _state_dict(path: Path, what: str) -> dict:
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"{path}: VGGish {what} not found (a local .pth state dict; nothing is "
                                "downloaded) - or set random_init: true")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


def load_vggish_weights(model: nn.Module, weights: str | os.PathLike,
                        pca: str | os.PathLike | None = None) -> nn.Module:
    """Copy a VGGish state dict (a ``.pth`` in the harritaylor/torchvggish layout: ``features.N.*``,
    ``embeddings.N.*``, PCA ``pproc.*``) into ``model`` (:class:`react.models.vggish.VGGish` of the
    default architecture). If ``model`` post-processes, the PCA parameters come from ``pca`` (the
    release's ``vggish_pca_params-*.pth``: ``pca_eigen_vectors``, ``pca_means``) or, without it, from
    the weights file, and are required; otherwise they are ignored."""
    path = Path(weights)
    state = _state_dict(path, "weights")
    source, pca_state = (Path(pca), _state_dict(Path(pca), "PCA parameters")) if pca else (path, state)
    found = {name: next((pca_state[k] for k in keys if k in pca_state), None)
             for name, keys in VGGISH_PCA_KEYS.items()}
    state = {k: v for k, v in state.items() if not (k.startswith("pproc.") or k in PCA_NAMES)}
    if getattr(model, "pproc", None) is not None:
        if any(v is None for v in found.values()):
            raise ValueError(f"{source}: VGGish post-processing needs the PCA parameters (pca_eigen_vectors "
                             "and pca_means, or pproc.pca_matrix and pproc.pca_means), which this file "
                             "does not hold; give the release's PCA file as audio.vggish_pca")
        state["pproc.pca_matrix"] = found["pproc.pca_matrix"].float()
        state["pproc.pca_means"] = found["pproc.pca_means"].float().reshape(-1, 1)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: not a VGGish state dict in the torchvggish layout (missing "
                         f"{missing[:3]}, unexpected {unexpected[:3]})")
    return model


def pretrained_vggish(weights: str | os.PathLike | None, random_init: bool, postprocess: bool = False,
                      pca: str | os.PathLike | None = None) -> nn.Module:
    """VGGish with the weights of the local file ``weights``, or tiny and random (``random_init``, warns);
    ``postprocess``: with the PCA whitening (parameters from ``pca``, else the weights file; identity
    for ``random_init``) and 8-bit quantisation of the AudioSet release."""
    import torch

    from react.models.vggish import TINY, VGGish

    if random_init:
        warn_random_init("VGGish", f"; weights '{weights}' are ignored" if weights else "")
        model = VGGish(**TINY, postprocess=postprocess)
        if postprocess:  # no release PCA without its file: identity whitening, then the clip and 8 bits
            model.pproc.pca_matrix.copy_(torch.eye(model.pproc.pca_matrix.shape[0]))
        return model
    if not weights:
        raise FileNotFoundError("VGGish: no weights path given; set audio.weights to a local .pth or "
                                "audio.random_init: true")
    return load_vggish_weights(VGGish(postprocess=postprocess), weights, pca if postprocess else None)
