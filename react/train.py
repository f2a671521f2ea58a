"""Train or test a task on the one engine (the task contract: react/tasks/protocol.py).

    react train --config configs/regnn_tiny.yaml [--data-dir D] [--out-dir R] [key=value ...]
    accelerate launch train.py --config configs/regnn.yaml [key=value ...]     (train.py runs this)
    python train.py --config configs/regnn_tiny.yaml mode=test checkpoint=runs/x/checkpoints/best
"""

from __future__ import annotations

import argparse
import sys

from react.utils.cli import add_data_dir, add_out_dir, flag_overrides

EPILOG = """tasks: {tasks} (or a dotted module path)
keys every task has: {keys}
(key=value overrides are dotted, e.g. train.lr=1e-4; the task's own keys are listed by an unknown
one, e.g. `react train --config configs/regnn_tiny.yaml model.help=1`)"""


def _epilog() -> str:
    from react.config import RunConfig, TrainConfig
    from react.tasks import TASKS

    keys = [k for k in RunConfig.__dataclass_fields__ if k != "train"]
    keys += [f"train.{k}" for k in TrainConfig.__dataclass_fields__]
    return EPILOG.format(tasks=", ".join(sorted(TASKS)), keys=", ".join(keys))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react train", description=__doc__.split("\n")[0], epilog=_epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (may extend a base: YAML)")
    add_data_dir(parser, help="dataset root (sets data.root)")
    add_out_dir(parser, help="run folder: checkpoints, logs, test outputs (sets out_dir)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.lr=1e-4")
    args = parser.parse_args(argv)
    overrides = flag_overrides(args, {"data_dir": "data.root", "out_dir": "out_dir"}) + args.overrides

    from react.config import ConfigError
    from react.engine import CheckpointError, TrainingInterrupted, run
    from react.errors import LayoutError, user_message
    from react.tasks import load_task_config

    try:
        cfg = load_task_config(args.config, overrides)
        if cfg.task == "ser" and cfg.data.kfold > 1 and cfg.data.fold < 0:  # every fold, then a summary
            from react.ser.kfold import markdown, run_kfold

            print(markdown(run_kfold(cfg)), end="")
        elif cfg.task == "ser":  # the engine, or the classic model's fit
            from react.ser.classic import run as run_ser

            run_ser(cfg)
        else:
            run(cfg)
    except TrainingInterrupted as err:
        print(f"\n{err}", file=sys.stderr)
        return 130
    except (ConfigError, LayoutError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
