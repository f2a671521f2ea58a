"""Self-supervised speech encoders (Wav2Vec2 / HuBERT / WavLM) from local weights or random init.

The one place that builds these encoders: the SER models and the feature extractors use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from react.utils.logging import get_logger, warn_random_init

log = get_logger(__name__)

FAMILIES = ("wav2vec2", "hubert", "wavlm")

# A few-hundred-kB encoder for tests and CPU smoke runs; same topology as the real ones.
TINY_CONFIG: dict[str, Any] = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    "conv_dim": (32,) * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "layer", "do_stable_layer_norm": True,
}


def _classes(family: str) -> tuple[type, type]:
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model, WavLMConfig, WavLMModel

    table = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel),
             "wavlm": (WavLMConfig, WavLMModel)}
    if family not in table:
        raise ValueError(f"unknown SSL encoder family '{family}'. Valid: {', '.join(FAMILIES)}")
    return table[family]


def build_ssl_encoder(family: str, weights: str | os.PathLike | None, random_init: bool,
                      **tiny_cfg: Any) -> nn.Module:
    """A ``transformers`` Wav2Vec2Model / HubertModel / WavLMModel.

    ``weights`` is a local HF-format directory (``config.json`` + weights) loaded with
    ``from_pretrained``; its ``model_type`` must match ``family``. With ``random_init`` the weights
    are ignored and a randomly initialised model is built from :data:`TINY_CONFIG` updated with
    ``tiny_cfg`` (a loud warning is issued: such a model has learned nothing). Without weights and
    without ``random_init`` this is an error. ``tiny_cfg`` also overrides fields of a loaded
    config (e.g. ``layerdrop=0.0``); architecture fields there must match the weights.
    """
    config_cls, model_cls = _classes(family)
    unknown = sorted(set(tiny_cfg) - set(config_cls().to_dict()))
    if unknown:  # transformers configs accept any keyword: a typo would pass silently
        raise ValueError(f"SSL encoder '{family}': unknown config field(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(config_cls().to_dict()))}")
    if random_init:
        warn_random_init(f"SSL encoder '{family}'", f"; weights '{weights}' are ignored" if weights else "")
        return model_cls(config_cls(**{**TINY_CONFIG, **tiny_cfg}))
    if not weights:
        raise FileNotFoundError(f"SSL encoder '{family}': no weights path given; set the path of a local "
                                "HF-format model directory or random_init: true")
    path = Path(weights)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a local HF-format model directory (no config.json); "
                                "no weights can be downloaded, copy them there or set random_init: true")
    config = config_cls.from_pretrained(path, **tiny_cfg)
    if config.model_type != config_cls.model_type:
        raise ValueError(f"{path}: holds a '{config.model_type}' model, expected '{config_cls.model_type}' "
                         f"for family '{family}'")
    return model_cls.from_pretrained(path, config=config)
