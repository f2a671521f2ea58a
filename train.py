"""Train or test a task.

    accelerate launch train.py --config configs/regnn.yaml [key=value ...]
    python train.py --config configs/regnn_tiny.yaml mode=test checkpoint=runs/x/checkpoints/best
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--config", help="YAML config (may extend a base: YAML)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.lr=1e-4")
    args = parser.parse_args(argv)

    from react.config import ConfigError, load_config
    from react.data.react_layout import LayoutError

    try:
        cfg = load_config(args.config, args.overrides)
        from react.engine import run

        run(cfg)
    except (ConfigError, LayoutError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
