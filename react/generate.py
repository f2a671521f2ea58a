"""Generate reactions to a split's clips with a trained REGNN checkpoint (library: :mod:`react.generation`).

    python -m react.generate --checkpoint RUN_OR_CKPT --pred-dir DIR [--split test] [--samples 10]
                             [--seed 0] [--data-root D] [--features-root F] [--device cpu|cuda]

(``python train.py --config ... mode=test checkpoint=...`` does the same and also scores them.)
"""

from __future__ import annotations

import argparse
import sys

from react.data import react_layout as L
from react.generation import generate_split


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
    args = parser.parse_args(argv)
    from react.config import ConfigError
    from react.engine import CheckpointError, load_checkpoint
    from react.errors import user_message
    from react.utils.device import resolve_device

    overrides = {key: value for key, value in (("data.root", args.data_root),
                                               ("data.features_root", args.features_root)) if value}
    try:
        task, model, _ = load_checkpoint(args.checkpoint, task="regnn", overrides=overrides)
        dataset = task.dataset(args.split, targets=False)  # features only
        dataset.check_features()
        device = resolve_device(args.device)
        preds = generate_split(model.to(device), dataset, args.pred_dir, args.samples, args.seed, device)
    except (FileNotFoundError, CheckpointError, ConfigError, L.LayoutError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print(f"{preds.shape[0]} clips x {preds.shape[1]} reactions written to {args.pred_dir}/{args.split}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
