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


def _staging(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp")


def _previous(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def stage(target: Path, state: dict[str, Any]) -> None:
    """Write ``state`` into a staging folder beside ``target`` (main rank, before :func:`publish`)."""
    tmp = _staging(target)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / STATE)


def stage_rng(target: Path, rank: int, state: dict) -> None:
    """Each rank's RNG states, written into the staging folder before it is published."""
    torch.save(state, _staging(target) / f"rng_rank{rank}.pt")


def publish(target: Path) -> None:
    """Swap the complete staging folder in for ``target``; the previous one is kept until then."""
    if target.exists():
        shutil.rmtree(_previous(target), ignore_errors=True)
        target.rename(_previous(target))
    _staging(target).rename(target)
    shutil.rmtree(_previous(target), ignore_errors=True)


def latest(target: Path) -> Path | None:
    """``target`` if it holds a checkpoint, else the previous one left by an interrupted swap."""
    for candidate in (target, _previous(target)):
        if (candidate / STATE).is_file():
            return candidate
    return None


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
