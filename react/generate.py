"""Generate reactions to a split's clips with a trained REGNN checkpoint (library: :mod:`react.generation`).

    python -m react.generate --checkpoint RUN_OR_CKPT --pred-dir DIR [--split test] [--samples 10]
                             [--seed 0] [--data-root D] [--features-root F] [--device cpu|cuda]
                             [key=value ...]

``key=value`` overrides replace settings of the checkpoint's config, e.g. ``sampling.scale=2``
(more diverse, less accurate reactions) or ``sampling.stitch=mean``.
(``python train.py --config ... mode=test checkpoint=...`` does the same and also scores them.)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from react.data import react_layout as L
from react.generation import generate_split


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


def load_for_generation(checkpoint: str, overrides: dict[str, Any]):
    """``(task, model, cfg)`` of a REGNN checkpoint with ``overrides``; unknown keys and bad values
    are :class:`react.config.ConfigError`."""
    from omegaconf.errors import OmegaConfBaseException

    from react.config import ConfigError
    from react.engine import load_checkpoint

    try:
        return load_checkpoint(checkpoint, task="regnn", overrides=overrides)
    except OmegaConfBaseException as err:
        raise ConfigError(f"override '{err.full_key}': {str(err).splitlines()[0]}") from None


def main(argv: list[str] | None = None) -> int:
    """Generate a split's reactions with a trained checkpoint (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m react.generate",
                                     description="Generate reactions with a trained REGNN checkpoint")
    parser.add_argument("--checkpoint", required=True, help="run dir, checkpoint dir or state.pt")
    parser.add_argument("--pred-dir", required=True, help="writes <pred-dir>/<split>/<clip>/result-<k>.pth")
    parser.add_argument("--split", default="test")
    parser.add_argument("--samples", type=int, default=L.NUM_PREDICTIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", help="dataset root (default: the checkpoint's data.root)")
    parser.add_argument("--features-root", help="features root (default: the checkpoint's)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="checkpoint config overrides, e.g. sampling.scale=2")
    args = parser.parse_args(argv)
    from react.config import ConfigError
    from react.engine import CheckpointError
    from react.errors import user_message
    from react.utils.device import resolve_device

    try:
        overrides = {key: value for key, value in (("data.root", args.data_root),
                                                   ("data.features_root", args.features_root)) if value}
        overrides.update(flat_overrides(args.overrides))
        task, model, cfg = load_for_generation(args.checkpoint, overrides)
        dataset = task.dataset(args.split, targets=False)  # features only
        dataset.check_features()
        device = resolve_device(args.device)
        preds = generate_split(model.to(device), dataset, args.pred_dir, args.samples, args.seed, device,
                               scale=cfg.sampling.scale, stitch=cfg.sampling.stitch)
    except (FileNotFoundError, CheckpointError, ConfigError, L.LayoutError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print(f"{preds.shape[0]} clips x {preds.shape[1]} reactions (sampling scale {cfg.sampling.scale}) "
          f"written to {args.pred_dir}/{args.split}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
