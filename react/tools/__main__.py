"""The training tools, one command per stage over one config (docs/tools.md).

    react tools {preprocess,handcrafted,ssl-train,ssl-features,finetune,all}
        --config configs/tools/xroom_bio.yaml [--xr2learn-config configuration.json [--modality bio]]
        [--data-dir datasets/XRoom] [--out-dir runs/tools] [key=value ...]

Outputs go to ``<output_dir>/<dataset>/<modality>/``. Sessions that cannot be used are skipped,
the other stages still run, and the skipped ones are listed at the end with exit status 1.
"""

from __future__ import annotations

import argparse
import sys

from react.config import ConfigError
from react.engine import CheckpointError, RunExistsError, TrainingInterrupted
from react.errors import LayoutError, user_message
from react.tools.config import load_tools_config
from react.tools.stages import STAGES
from react.utils.cli import add_data_dir, add_out_dir, flag_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react tools", description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=(*STAGES, "all"), help="the stage to run; all: every stage in order")
    parser.add_argument("--config", help="YAML config (may extend a base: YAML), e.g. "
                                         "configs/tools/xroom_bio.yaml")
    parser.add_argument("--xr2learn-config", help="the reference tools' configuration.json, applied after "
                                                  "the YAML")
    parser.add_argument("--modality", default="", help="bio or body: the modality of a multi-modality "
                                                       "configuration.json")
    add_data_dir(parser, help="the XRoom recordings (sets dataset.root)")
    add_out_dir(parser, help="where the stages write <dataset>/<modality>/ (sets dataset.output_dir, "
                             "default runs/tools)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. ssl.train.epochs=5")
    args = parser.parse_intermixed_args(argv)
    overrides = flag_overrides(args, {"data_dir": "dataset.root", "out_dir": "dataset.output_dir"})

    skipped = []
    try:
        cfg = load_tools_config(args.config, overrides + args.overrides, args.xr2learn_config, args.modality)
        for name in STAGES if args.stage == "all" else (args.stage,):
            print(f"== {name}", flush=True)
            skipped += STAGES[name](cfg)
    except TrainingInterrupted as err:
        print(f"\n{err}", file=sys.stderr)
        return 130
    except RunExistsError as err:
        print(f"error: {user_message(err)} (here: ssl.resume=auto / finetune.resume=auto, or "
              "ssl.overwrite=true / finetune.overwrite=true)", file=sys.stderr)
        return 2
    except (ConfigError, LayoutError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    if skipped:
        print(f"\n{len(skipped)} session(s) skipped:", file=sys.stderr)
        for item in skipped:
            print(f"  {item}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
