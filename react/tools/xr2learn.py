"""The reference tools' ``configuration.json`` mapped onto :class:`react.tools.config.ToolsDataConfig`.

One modality: the blocks (``pre_processing_config``, ``encoder_config`` ...) sit at the top level.
Several (``"modality": ["shimmer", "body-tracking"]``): each modality's blocks sit under its name.
Reference modality names map to ours: ``shimmer`` -> ``bio``, ``body-tracking`` -> ``body``.
``dataset_config`` and ``pre_processing_config`` become data-stage overrides; the training blocks
become overrides of the training stages (:mod:`react.tools.xr2learn_training`); an ``ssl_config``
block turns ``get_ssl`` on unless the file sets it. Any other key is a :class:`ConfigError` naming
it. ``configs/tools/configuration.json`` is an example in the reference format.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from react.config import ConfigError
from react.tools.xr2learn_training import map_training

MODALITIES = {"shimmer": "bio", "body-tracking": "body"}
TRAINING_BLOCKS = ("encoder_config", "ssl_config", "sup_config", "augmentations", "transforms",
                   "inference_config")
PER_MODALITY_BLOCKS = ("pre_processing_config", "handcrafted_features_config", *TRAINING_BLOCKS)
# pre_processing_config key -> preprocess field ("channels" = the modality's channel list)
PREPROCESS_KEYS = {"process": "process", "create_splits": "create_splits", "get_stats": "get_stats",
                   "get_ssl": "get_ssl", "use_sensors": "channels", "seq_len": "seq_len",
                   "frequency": "frequency", "resample_freq": "frequency", "overlap": "overlap",
                   "borders": "borders"}
AUDIO_ONLY = {"pre_processing_config": ("target_sr", "padding", "max_length"),
              "handcrafted_features_config": ("MFCC", "eGeMAPs")}
DATASET_KEYS = ("dataset_name", "modality", "number_of_labels")


@dataclass
class XR2LearnConfig:
    """Per modality (``bio`` / ``body``): overrides for the data stages and the training blocks."""

    data: dict[str, dict[str, Any]]
    training: dict[str, dict[str, Any]]
    fusion: dict[str, Any]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # overrides of ssl, finetune ...


def _check_keys(block: dict, valid: tuple[str, ...] | list[str], where: str, source: str) -> None:
    if not isinstance(block, dict):
        raise ConfigError(f"{source}: '{where}' must be an object, got {type(block).__name__}")
    unknown = [k for k in block if k not in valid]
    if unknown:
        named = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise ConfigError(f"{source}: unknown key(s) {named}. Valid keys here: {', '.join(valid)}")


def _preprocess(block: dict, modality: str, where: str, source: str) -> dict[str, Any]:
    audio = [k for k in block if k in AUDIO_ONLY["pre_processing_config"]]
    if audio:
        raise ConfigError(f"{source}: {', '.join(f'{where}.{k}' for k in audio)} apply to audio "
                          f"(RAVDESS) only, not to the {modality} modality")
    _check_keys(block, list(PREPROCESS_KEYS), where, source)
    out: dict[str, Any] = {}
    for key, value in block.items():
        name = PREPROCESS_KEYS[key]
        if key == "frequency" and "resample_freq" in block:
            continue  # the windows come out at resample_freq
        out[f"{modality}_channels" if name == "channels" else name] = value
    return out


def map_xr2learn(data: dict, source: str = "configuration.json") -> XR2LearnConfig:
    """Map a parsed ``configuration.json``; unknown keys raise :class:`ConfigError`."""
    _check_keys(data, ["dataset_config", "fusion_config", *PER_MODALITY_BLOCKS, *MODALITIES], "", source)
    ds = data.get("dataset_config")
    if ds is None:
        raise ConfigError(f"{source}: 'dataset_config' is required")
    _check_keys(ds, DATASET_KEYS, "dataset_config", source)
    names = ds.get("modality", "shimmer")
    multi = isinstance(names, list)
    names = names if multi else [names]
    unknown = [m for m in names if m not in MODALITIES]
    if unknown or not names:
        raise ConfigError(f"{source}: dataset_config.modality {unknown or names} not handled here; valid: "
                          f"{', '.join(MODALITIES)}")
    labels = ds.get("number_of_labels", 3)
    for m in names:
        n = labels.get(m, 3) if isinstance(labels, dict) else labels
        if n != 3:
            raise ConfigError(f"{source}: dataset_config.number_of_labels for {m} is {n}; XRoom has 3 "
                              "(BORED, ENGAGED, FRUSTRATED)")
    dataset = {"name": ds.get("dataset_name", "XRoom")}
    dataset["root"] = f"datasets/{dataset['name']}"
    stray = [k for k in data if k in PER_MODALITY_BLOCKS]
    if multi and stray:
        raise ConfigError(f"{source}: with several modalities, {', '.join(stray)} must sit under a "
                          f"modality name ({', '.join(names)})")
    result = XR2LearnConfig({}, {}, data.get("fusion_config", {}))
    for m in names:
        ours = MODALITIES[m]
        blocks = data.get(m, {}) if multi else {k: v for k, v in data.items() if k in PER_MODALITY_BLOCKS}
        prefix = f"{m}." if multi else ""
        _check_keys(blocks, PER_MODALITY_BLOCKS, m if multi else "", source)
        hand = blocks.get("handcrafted_features_config", {})
        if hand:
            named = ", ".join(f"{prefix}handcrafted_features_config.{k}" for k in hand)
            raise ConfigError(f"{source}: {named}: "
                              "MFCC and eGeMAPs apply to audio only; the XRoom stages compute statistical "
                              "and spectral features (handcrafted.kinds)")
        pre = _preprocess(blocks.get("pre_processing_config", {}), ours,
                          f"{prefix}pre_processing_config", source)
        if "ssl_config" in blocks:  # SSL training reads the unlabelled windows get_ssl writes
            pre.setdefault("get_ssl", True)
        result.data[ours] = {"dataset": dataset, "preprocess": {"modalities": [ours], **pre}}
        result.training[ours] = {k: blocks[k] for k in TRAINING_BLOCKS if k in blocks}
        result.stages[ours] = map_training(result.training[ours], prefix, source)
    return result


def read_xr2learn(path: str | os.PathLike) -> XR2LearnConfig:
    """Read and map a reference ``configuration.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from None
    return map_xr2learn(data, str(path))
