"""Checkpoints: ``<out_dir>/checkpoints/<name>/state.pt`` plus one RNG file per rank.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, so a
checkpoint from elsewhere cannot run code. A checkpoint of the official REGNN release (a whole
pickled module) is recognised by its content and read as records
(:mod:`react.reaction.official_regnn`). A checkpoint is written into a staging folder and
swapped in only when complete (weights and every rank's RNG state).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from react.config import merge_config
from react.reaction.official_regnn import OfficialCheckpointError, is_official, read_official

STATE = "state.pt"
NUMBERED = re.compile(r"epoch_\d+")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (unreadable, not a checkpoint, unsafe)."""


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


def run_dir_of(path: str | os.PathLike) -> Path:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/<name>/state.pt`` -> ``<run>``);
    for a loose ``state.pt``, its own folder."""
    file = checkpoint_file(path)
    return file.parents[2] if file.parent.parent.name == "checkpoints" else file.parent


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


def prune_numbered(out_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` numbered (``epoch_NNNN``) checkpoints; ``keep`` 0 keeps all."""
    folder = Path(out_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    numbered = sorted(p for p in folder.glob("epoch_*") if NUMBERED.fullmatch(p.name))
    doomed = numbered[:-keep] if keep > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def latest(target: Path) -> Path | None:
    """``target`` if it holds a checkpoint, else the previous one left by an interrupted swap."""
    for candidate in (target, _previous(target)):
        if (candidate / STATE).is_file():
            return candidate
    return None


def _safe_load(file: Path) -> Any:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file; one clear line
        text = str(err).strip()
        reason = "it holds objects other than tensors and plain values, which are never unpickled" \
            if "weights_only" in text.lower() or "unsupported global" in text.lower() \
            else (text.splitlines()[0] if text else type(err).__name__)
        raise CheckpointError(f"{file}: not a readable checkpoint ({reason})") from None


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """The state dict of a checkpoint (``model``, ``optimizer``, ``scheduler``, ``epoch``, ``config``...);
    for an official REGNN file ``model``, the replica's ``config`` and ``official``."""
    file = checkpoint_file(path)
    if is_official(file):  # the whole official module, mapped onto configs/regnn_official.yaml
        try:
            return read_official(file)
        except OfficialCheckpointError as err:
            raise CheckpointError(str(err)) from None
    state = _safe_load(file)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{file}: not a checkpoint of this framework (no model weights and config)")
    return state


def load_rng(path: str | os.PathLike, rank: int) -> dict | None:
    file = checkpoint_file(path).parent / f"rng_rank{rank}.pt"
    return _safe_load(file) if file.is_file() else None


def config_of(state: dict[str, Any], schema: type) -> DictConfig:
    """Rebuild the typed config stored in a checkpoint on ``schema``."""
    return merge_config(OmegaConf.structured(schema), state["config"], "checkpoint config")
