"""One config system for every entry point.

Precedence, lowest first: typed dataclass defaults in code -> YAML file (which may name a
``base:`` YAML it extends) -> ``key=value`` command-line overrides with dotted keys.
An unknown key or a value of the wrong type raises :class:`ConfigError` naming the key and,
for unknown keys, listing the valid ones. The resolved config is saved into every run dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from react.utils.io import atomic_path


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping shared by every trainable task."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw
    # learning-rate multipliers by parameter-name prefix, e.g. {encoder: 0.1} to fine-tune an SSL
    # encoder ten times slower than its head; the first matching prefix wins
    lr_scales: dict[str, float] = field(default_factory=dict)
    scheduler: str = "warmup_multistep"  # warmup_multistep | cosine | constant
    warmup_epochs: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    grad_clip: float = 1.0  # 0 disables clipping
    mixed_precision: str = "auto"  # auto (bf16/fp16 on GPU, off on CPU) | no | fp16 | bf16
    num_workers: int = 0
    val_every: int = 1  # epochs between validations (0 disables)
    patience: int = 0  # stop after this many validations in a row without improvement (0: never)
    ckpt_every: int = 1  # epochs between numbered checkpoints (last/best always kept)
    keep_last: int = 3  # numbered checkpoints kept, newest first (0 = all)
    log_every: int = 10  # steps between console/TensorBoard scalars
    max_steps_per_epoch: int = 0  # 0 = whole epoch
    test_at_end: bool = True  # run the task's test with the best weights after training
    test_epoch: int = 0  # > 0: that test uses the weights after this many epochs (checkpoints/test)
    log_sample_indices: bool = False  # log each step's items: <out_dir>/sample_indices/rank<r>.jsonl


@dataclass
class RunConfig:
    """Fields every task has; a task's schema subclasses this and adds ``data``/``model``."""

    task: str = "???"
    out_dir: str = "runs/default"
    seed: int = 0
    mode: str = "train"  # train | test
    resume: str = ""  # "" | auto | path to a checkpoint dir
    overwrite: bool = False  # train into an out_dir that holds a run, deleting it first
    checkpoint: str = ""  # weights used by mode=test ("" = <out_dir>/checkpoints/best)
    device: str = "auto"  # auto | cpu | cuda
    # identical numbers on any machine: deterministic kernels only (a kernel without a deterministic
    # version is named in a warning) and one CPU thread per process, whose reductions do not depend
    # on the number of cores; slower. Without it a run is reproducible on the same number of cores.
    deterministic: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[str, dict]]:
    """Read a YAML file and the chain of ``base:`` files it extends, base first."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'base:' chain")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    chain = _read_yaml(path.parent / base, seen + (path,)) if base else []
    return chain + [(str(path), data)]


def _valid_keys(cfg: DictConfig, full_key: str) -> list[str]:
    parent = full_key.rsplit(".", 1)[0] if "." in full_key else ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return sorted(node.keys()) if isinstance(node, DictConfig) else []


def set_key(cfg: DictConfig, key: str, value: Any, source: str = "override") -> None:
    """Replace the dotted ``key`` of ``cfg`` by ``value``, in place; an unknown key is a
    :class:`ConfigError` that lists the valid keys where it goes wrong."""
    try:
        OmegaConf.update(cfg, key, value, merge=False)
    except (ConfigKeyError, ConfigAttributeError):
        parts = key.split(".")
        depth = next(d for d in range(1, len(parts) + 1)  # the first part that is not there
                     if not isinstance(OmegaConf.select(cfg, ".".join(parts[:d])), DictConfig))
        unknown = ".".join(parts[:depth])
        valid = ", ".join(_valid_keys(cfg, unknown))
        raise ConfigError(f"{source}: unknown config key '{unknown}'. Valid keys here: {valid}") from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"{source}: bad value for '{key}': {str(err).splitlines()[0]}") from None


def merge_config(cfg: DictConfig, layer: dict | DictConfig, source: str) -> DictConfig:
    """Merge one layer (YAML data, overrides, a stored config) into ``cfg``, with clear errors."""
    try:
        return OmegaConf.merge(cfg, layer)
    except (ConfigKeyError, ConfigAttributeError) as err:
        key = err.full_key or str(err)
        valid = ", ".join(_valid_keys(cfg, key))
        raise ConfigError(f"{source}: unknown config key '{key}'. Valid keys here: {valid}") from None
    except OmegaConfBaseException as err:
        msg = str(err).split("\n")[0]
        raise ConfigError(f"{source}: bad value for '{err.full_key}': {msg}") from None


def parse_overrides(overrides: Iterable[str]) -> dict:
    """Turn ``["a.b=1", "c=x"]`` into a nested dict, values parsed as YAML scalars."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def config_layers(path: str | os.PathLike | None = None,
                  overrides: Iterable[str] = ()) -> list[tuple[str, dict]]:
    """The layers of a config, lowest precedence first: the YAML chain at ``path``, then ``overrides``."""
    layers = _read_yaml(Path(path)) if path else []
    layers.append(("command line", parse_overrides(overrides)))
    return layers


def resolve(schema: type, layers: Iterable[tuple[str, dict]]) -> DictConfig:
    """Merge ``layers`` onto the defaults of ``schema``; every required key must end up set."""
    cfg = OmegaConf.structured(schema)
    for source, data in layers:
        cfg = merge_config(cfg, data, source)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"required config keys not set: {', '.join(missing)}")
    return cfg


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (), *,
                schema: type) -> DictConfig:
    """Resolve a config: ``schema`` defaults <- YAML at ``path`` <- ``overrides``.

    A task's config, whose schema depends on its ``task`` key, is loaded with
    :func:`react.tasks.load_task_config`.
    """
    return resolve(schema, config_layers(path, overrides))


def _is_path_key(key: str) -> bool:
    return key in PATH_KEYS or key.endswith(PATH_SUFFIXES)


PATH_KEYS = ("root", "roots", "checkpoint", "resume", "weights")
PATH_SUFFIXES = ("_root", "_roots", "_dir", "_path", "_file", "_checkpoint")


def absolute_paths(cfg: DictConfig) -> DictConfig:
    """Make every path-valued setting (``root``, ``*_dir``, ``*_root``, ``checkpoint``, ``weights``...)
    absolute, in place, so that a run's saved config works from any working directory."""
    for key in list(cfg.keys()):
        value = cfg[key]
        if isinstance(value, DictConfig):
            absolute_paths(value)
        elif _is_path_key(str(key)) and isinstance(value, str) and value not in ("", "auto"):
            cfg[key] = os.path.abspath(value)
        elif _is_path_key(str(key)) and OmegaConf.is_list(value):
            cfg[key] = [os.path.abspath(v) if isinstance(v, str) and v else v for v in value]
    return cfg


def save_config(cfg: DictConfig, run_dir: str | os.PathLike, name: str = "config.yaml") -> Path:
    """Write the fully resolved config into ``run_dir`` atomically."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / name
    with atomic_path(target) as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return target
