"""Loading a reaction checkpoint to generate with: the flags and overrides the generating commands share."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from react.utils.cli import add_data_dir


def flat_overrides(items: list[str]) -> dict[str, Any]:
    """``["sampling.scale=2"]`` -> ``{"sampling.scale": 2}`` (values parsed as YAML scalars)."""
    from react.config import ConfigError

    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' is not of the form key=value")
        overrides[key.strip()] = yaml.safe_load(raw) if raw else ""
    return overrides


def add_checkpoint_data(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--features-dir``: where the checkpoint's data is now, if it moved."""
    add_data_dir(parser, help="dataset root (default: the checkpoint's data.root)")
    parser.add_argument("--features-dir", help="features root (default: the checkpoint's data.features_root)")


def data_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The checkpoint-config overrides of :func:`add_checkpoint_data`'s flags that were given."""
    given = {"data.root": args.data_dir, "data.features_root": args.features_dir}
    return {key: value for key, value in given.items() if value}


def load_for_generation(checkpoint: str, overrides: dict[str, Any]):
    """``(task, model, cfg)`` of a reaction generator's checkpoint (any of
    :data:`react.reaction.models.GENERATORS`) with ``overrides``; unknown keys and bad values are
    :class:`react.config.ConfigError`, another task's checkpoint a ``CheckpointError``."""
    from omegaconf.errors import OmegaConfBaseException

    from react.config import ConfigError
    from react.engine import CheckpointError, checkpoint_file, load_checkpoint
    from react.reaction.models import GENERATORS

    try:
        task, model, cfg = load_checkpoint(checkpoint, overrides=overrides)
    except OmegaConfBaseException as err:
        raise ConfigError(f"override '{err.full_key}': {str(err).splitlines()[0]}") from None
    if cfg.task not in GENERATORS:
        raise CheckpointError(f"{checkpoint_file(checkpoint)}: a '{cfg.task}' checkpoint, not a reaction "
                              f"generator's ({', '.join(GENERATORS)})")
    return task, model, cfg
