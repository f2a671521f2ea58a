"""Config schema of the tools' data stages (pre-processing and handcrafted features).

Loaded with :func:`react.config.load_config` (``schema=ToolsDataConfig``): dataclass defaults <-
``configs/tools/<name>.yaml`` <- ``key=value``. The training stages extend this schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from features.handcrafted import HandcraftedConfig
from react.config import ConfigError, load_config, merge_config, parse_overrides
from react.data.windows import DatasetConfig, PreprocessConfig, modality_name
from react.tools.xr2learn import read_xr2learn


@dataclass
class ToolsDataConfig:
    """Dataset location, pre-processing and handcrafted features, one seed for the splits."""

    seed: int = 0
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    handcrafted: HandcraftedConfig = field(default_factory=HandcraftedConfig)


def modality_dir(cfg: ToolsDataConfig) -> Path:
    """``<output_dir>/<dataset>/<modality>``: where the stages of this config read and write."""
    return Path(cfg.dataset.output_dir) / cfg.dataset.name / modality_name(list(cfg.preprocess.modalities))


def load_tools_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                      xr2learn: str | os.PathLike | None = None, modality: str = "",
                      schema: type = ToolsDataConfig) -> DictConfig:
    """Resolve: ``schema`` defaults <- YAML ``path`` <- reference ``configuration.json`` <- overrides.

    A reference file with several modalities needs ``modality`` (``bio`` or ``body``) to pick one.
    """
    cfg = load_config(path, (), schema=schema)
    if xr2learn:
        mapped = read_xr2learn(xr2learn).data
        if not modality and len(mapped) > 1:
            raise ConfigError(f"{xr2learn}: has modalities {', '.join(mapped)}; choose one with modality")
        chosen = modality or next(iter(mapped))
        if chosen not in mapped:
            raise ConfigError(f"{xr2learn}: no modality {chosen!r}; it has {', '.join(mapped)}")
        cfg = merge_config(cfg, mapped[chosen], str(xr2learn))
    return merge_config(cfg, parse_overrides(overrides), "command line")
