"""Config schema of the tools: the data stages (pre-processing, handcrafted features) and the
training stages (``ssl`` pre-training, ``ssl_features``, ``finetune``).

Loaded with :func:`load_tools_config`: dataclass defaults <- ``configs/tools/<name>.yaml`` <- the
reference ``configuration.json`` <- ``key=value``. The ``ssl`` and ``finetune`` sections are the
configs of the ``ssl`` and ``classify`` tasks; their folders left empty follow the reference layout
(:func:`stage_config`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from features.handcrafted import HandcraftedConfig
from react.config import ConfigError, absolute_paths, load_config, merge_config, parse_overrides
from react.data.windows import PROCESSES, DatasetConfig, PreprocessConfig, modality_name
from react.tasks import classify, ssl
from react.tools.xr2learn import read_xr2learn

SSL_RUN = classify.SSL_RUN  # <modality_dir>/ssl_training: the ssl run
SUPERVISED = "supervised_training"  # <modality_dir>/supervised_training/<variant>: fine-tuning runs


@dataclass
class ToolsDataConfig:
    """Dataset location, pre-processing and handcrafted features, one seed for the splits."""

    seed: int = 0
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    handcrafted: HandcraftedConfig = field(default_factory=HandcraftedConfig)


@dataclass
class SSLFeaturesConfig:
    """The ssl run's encoder applied to every labelled window."""

    input_type: str = ""  # window folder ("" = preprocess.process)
    output: str = "ssl_features"  # folder beside the windows, one vector per window file
    batch_size: int = 512


@dataclass
class ToolsConfig(ToolsDataConfig):
    """Every stage. Empty ``out_dir`` / ``data.root`` / input folders follow the reference layout."""

    ssl: ssl.Config = field(default_factory=lambda: ssl.Config(out_dir="", data=ssl.SSLDataConfig(root="",
                                                                                                   input_type="")))
    ssl_features: SSLFeaturesConfig = field(default_factory=SSLFeaturesConfig)
    finetune: classify.Config = field(default_factory=lambda: classify.Config(
        out_dir="", data=classify.ClassifyDataConfig(root="", inputs=[])))


def finetune_variant(section: DictConfig) -> str:
    """Run folder name of a fine-tuning: inputs, encoder, ssl start, frozen, label fraction."""
    parts = ["+".join(section.data.inputs)]
    if section.data.inputs[0] in PROCESSES:
        parts.append(section.model.encoder.name + ("_late" if section.model.encoder.fusion == "late" else ""))
        parts += ["ssl"] if section.model.weights else []
        parts += ["frozen"] if section.model.freeze_encoder else []
    if section.data.label_fraction < 1:
        unit = "_intervals" if section.data.label_unit == "interval" else ""
        parts.append(f"{section.data.label_fraction * 100:g}pct{unit}")
    return "_".join(parts)


def stage_config(cfg: DictConfig, stage: str) -> DictConfig:
    """The task config of ``ssl`` or ``finetune`` with its layout defaults filled in, paths absolute."""
    section = cfg[stage].copy()
    folder = modality_dir(cfg)
    process = cfg.preprocess.process
    section.data.root = section.data.root or str(folder)
    if stage == "ssl":
        section.data.input_type = section.data.input_type or process
        section.out_dir = section.out_dir or str(folder / SSL_RUN)
    else:
        section.data.inputs = list(section.data.inputs) or [process]
        section.out_dir = section.out_dir or str(folder / SUPERVISED / finetune_variant(section))
    return absolute_paths(section)


def modality_dir(cfg: ToolsDataConfig) -> Path:
    """``<output_dir>/<dataset>/<modality>``: where the stages of this config read and write."""
    return Path(cfg.dataset.output_dir) / cfg.dataset.name / modality_name(list(cfg.preprocess.modalities))


def load_tools_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                      xr2learn: str | os.PathLike | None = None, modality: str = "",
                      schema: type = ToolsConfig) -> DictConfig:
    """Resolve: ``schema`` defaults <- YAML ``path`` <- reference ``configuration.json`` <- overrides.

    A reference file with several modalities needs ``modality`` (``bio`` or ``body``) to pick one.
    Its training blocks apply when ``schema`` has the training stages.
    """
    cfg = load_config(path, (), schema=schema)
    if xr2learn:
        reference = read_xr2learn(xr2learn)
        mapped = reference.data
        if not modality and len(mapped) > 1:
            raise ConfigError(f"{xr2learn}: has modalities {', '.join(mapped)}; choose one with modality")
        chosen = modality or next(iter(mapped))
        if chosen not in mapped:
            raise ConfigError(f"{xr2learn}: no modality {chosen!r}; it has {', '.join(mapped)}")
        cfg = merge_config(cfg, mapped[chosen], str(xr2learn))
        if "ssl" in cfg:
            cfg = merge_config(cfg, reference.stages[chosen], str(xr2learn))
    return merge_config(cfg, parse_overrides(overrides), "command line")
