"""A tiny synthetic REACT dataset shared by the feature-extraction tests, and their config helper."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from omegaconf import DictConfig

from features.config import FeatureConfig, validate
from react.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "features_tiny.yaml"
FRAMES = 40  # frames kept per clip in the tests (the synthetic clips have 760)


def react_dataset(tmp_path_factory) -> Path:
    """One pair per split, 760-frame clips; generated once per test session, reused by every module."""
    out = tmp_path_factory.getbasetemp() / "features_react"
    if not (out / "test.csv").is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        import make_synthetic_react

        shutil.rmtree(out, ignore_errors=True)
        make_synthetic_react.generate(out, pairs=1, eval_pairs=1, frames=760, seed=5, workers=2)
    return out


def copy_media(data: Path, dest: Path) -> Path:
    """A private copy of the dataset for tests that damage or change files."""
    return Path(shutil.copytree(data, dest))


def tiny_cfg(data: Path, save: Path, *overrides: str, config: Path | None = TINY) -> DictConfig:
    """The tiny random-init config on ``data``, test split, both types, ``FRAMES`` frames."""
    cfg = load_config(config, [f"data.root={data}", f"out_dir={save}", "split=test", "type=all",
                               f"frames={FRAMES}", "workers=1", *overrides], schema=FeatureConfig)
    validate(cfg)
    return cfg
