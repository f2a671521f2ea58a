"""Checkpoints: ``<out_dir>/checkpoints/<name>/state.pt`` plus one RNG file per rank."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

STATE = "state.pt"


def checkpoint_dir(out_dir: str | os.PathLike, name: str) -> Path:
    return Path(out_dir) / "checkpoints" / name


def checkpoint_file(path: str | os.PathLike) -> Path:
    """Resolve a run dir, a checkpoint dir or a ``state.pt`` to the ``state.pt`` file."""
    path = Path(path)
    candidates = [path, path / STATE, path / "checkpoints" / "best" / STATE,
                  path / "checkpoints" / "last" / STATE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no checkpoint found (looked for {', '.join(map(str, candidates[1:]))})")


def save_checkpoint(target: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``target/state.pt`` via a temporary folder that replaces ``target``."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / STATE)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def save_rng(target: Path, rank: int, state: dict) -> None:
    """Each rank's RNG states beside the checkpoint (written after the main rank's state)."""
    torch.save(state, target / f"rng_rank{rank}.pt")


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    return torch.load(checkpoint_file(path), map_location="cpu", weights_only=False)


def load_rng(path: str | os.PathLike, rank: int) -> dict | None:
    file = checkpoint_file(path).parent / f"rng_rank{rank}.pt"
    return torch.load(file, weights_only=False) if file.is_file() else None


def config_of(state: dict[str, Any]) -> DictConfig:
    """Rebuild the typed config stored in a checkpoint."""
    from react.config import merge_config
    from react.tasks import task_schema

    stored = state["config"]
    return merge_config(OmegaConf.structured(task_schema(stored["task"])), stored, "checkpoint config")
