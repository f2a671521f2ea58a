"""BeLFusion's second stage starts from its first: the behavioural VAE of a stage-1 checkpoint, then
the latent statistics of the training attributes (the official ``compute_statistics``: every
speaker and listener window of the training split, encoded by the trained VAE)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from react.config import ConfigError
from react.engine.checkpoint import CheckpointError, checkpoint_file, load_state
from react.reaction.models.belfusion import BeLFusion


def attribute_windows(clips: Sequence[torch.Tensor], frames: int) -> torch.Tensor:
    """The non-overlapping ``frames``-long windows ``(N, frames, nodes)`` of clips ``(T, nodes)``;
    a shorter tail of a clip is left out."""
    windows = [clip[: len(clip) // frames * frames].reshape(-1, frames, clip.shape[-1]) for clip in clips]
    if not windows or sum(len(w) for w in windows) == 0:
        raise ValueError(f"no clip holds a whole window of {frames} frames")
    return torch.cat(windows).float()


def load_behavioural_vae(model: BeLFusion, path: str | os.PathLike, clips: Sequence[torch.Tensor]) -> None:
    """Load the VAE of the stage-1 checkpoint ``path`` (a run folder, checkpoint folder or
    ``state.pt``) into ``model.vae``, then fit the latent statistics on the windows of ``clips``
    (the training attributes, speaker and listener clips alike)."""
    if not str(path):
        raise ConfigError("model.vae_checkpoint: not set; train stage 1 first "
                          "(configs/belfusion_vae.yaml) and name its run folder")
    file = checkpoint_file(path)
    weights = load_state(file)["model"]
    own = model.vae.state_dict()
    if set(weights) != set(own):
        missing = sorted(set(own) - set(weights)) or sorted(set(weights) - set(own))
        raise CheckpointError(f"{file}: not a BeLFusion stage-1 (belfusion_vae) checkpoint "
                              f"(weights differ from the VAE's, e.g. '{missing[0]}')")
    for key, value in own.items():
        if weights[key].shape != value.shape:
            raise CheckpointError(f"{file}: its VAE does not fit model.vae: {key} is "
                                  f"{tuple(weights[key].shape)} there, {tuple(value.shape)} here")
    model.vae.load_state_dict(weights)
    model.fit_statistics(attribute_windows(clips, model.frames))


def setup(model: BeLFusion, task: Any) -> None:
    """The registry's hook (``setup``) of a new stage-2 run: the VAE of ``model.vae_checkpoint``, the
    statistics over every clip of the training split (``data.split``) of each dataset."""
    cfg = task.cfg
    clips = [clip for source in range(len(task.sources()))
             for clip in task.dataset(cfg.data.split, source=source).emotions]
    load_behavioural_vae(model, cfg.model.vae_checkpoint, clips)
