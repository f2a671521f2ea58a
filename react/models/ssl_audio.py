"""Self-supervised speech encoders (Wav2Vec2 / HuBERT / WavLM) built from an architecture config.

Models read no files: the architecture comes as a dict (a Hugging Face config's fields), and
pretrained weights are loaded by :mod:`react.pretrained`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

FAMILIES = ("wav2vec2", "hubert", "wavlm")
NOT_ARCHITECTURE = ("model_type", "transformers_version", "architectures")  # bookkeeping of saved configs

# A few-hundred-kB encoder for tests and CPU smoke runs; same topology as the real ones.
TINY_CONFIG: dict[str, Any] = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    "conv_dim": (32,) * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "layer", "do_stable_layer_norm": True,
}
# The real size of Wav2Vec2-base / HuBERT-base (benchmarks with random weights of the real size).
BASE_CONFIG: dict[str, Any] = {
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
    "conv_dim": [512] * 7, "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
    "feat_extract_norm": "group", "do_stable_layer_norm": False,
}


def ssl_classes(family: str) -> tuple[type, type]:
    """The ``transformers`` (config class, model class) of an encoder family."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model, WavLMConfig, WavLMModel

    table = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel),
             "wavlm": (WavLMConfig, WavLMModel)}
    if family not in table:
        raise ValueError(f"unknown SSL encoder family '{family}'. Valid: {', '.join(FAMILIES)}")
    return table[family]


def check_fields(family: str, fields: dict[str, Any]) -> None:
    """Reject config fields the family does not have (``transformers`` configs accept any keyword,
    so a typo would pass silently)."""
    valid = ssl_classes(family)[0]().to_dict()
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise ValueError(f"SSL encoder '{family}': unknown config field(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(valid))}")


def build_ssl_encoder(family: str, arch: dict[str, Any]) -> nn.Module:
    """A randomly initialised Wav2Vec2Model / HubertModel / WavLMModel of architecture ``arch``
    (the fields of its ``transformers`` config; :data:`TINY_CONFIG` for a tiny one)."""
    config_cls, model_cls = ssl_classes(family)
    fields = {k: v for k, v in arch.items() if k not in NOT_ARCHITECTURE}
    check_fields(family, fields)
    return model_cls(config_cls(**fields))
