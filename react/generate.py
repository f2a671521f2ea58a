"""Generate reactions to a split's clips with a trained checkpoint (library:
:mod:`react.reaction.generation`).

    react generate --checkpoint RUN_OR_CKPT --pred-dir DIR [--split test] [--samples 10]
                   [--seed 0] [--data-dir D] [--features-dir F] [--device cpu|cuda]
                   [--threads N] [key=value ...]
    accelerate launch --multi_gpu --num_processes N -m react.generate ...   (N processes)

``key=value`` overrides replace settings of the checkpoint's config, e.g. ``sampling.scale=2``
(more diverse, less accurate reactions), ``sampling.stitch=mean`` or ``data.layout=mars``.
(``react train --config ... mode=test checkpoint=...`` does the same and also scores them.)

Under ``accelerate launch`` each process generates a contiguous share of the clips on its own
device and writes their files; the main process reports for all. Every clip is seeded by its own
path, so the files are those of a one-process run. A restarted run skips the clips already written
with the same weights and settings (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import sys

from react.reaction.data import react_layout as L
from react.reaction.generation import generate_clips, write_fingerprint
from react.reaction.loading import add_checkpoint_data, data_overrides, flat_overrides, load_for_generation
from react.utils.cli import add_pred_dir, add_split


def main(argv: list[str] | None = None) -> int:
    """Generate a split's reactions with a trained checkpoint (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="react generate",
                                     description="Generate reactions with a trained REGNN checkpoint")
    parser.add_argument("--checkpoint", required=True, help="run dir, checkpoint dir or state.pt")
    add_pred_dir(parser, required=True, help="writes <pred-dir>/<split>/<clip>/result-<k>.pth")
    add_split(parser)
    parser.add_argument("--samples", type=int, default=L.NUM_PREDICTIONS)
    parser.add_argument("--seed", type=int, default=0)
    add_checkpoint_data(parser)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads per process (0: torch's default; under accelerate launch, the "
                             "process's share of the cores)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="checkpoint config overrides, e.g. sampling.scale=2")
    args = parser.parse_args(argv)
    from react.config import ConfigError
    from react.engine import CheckpointError
    from react.errors import user_message
    from react.utils import distributed as dist
    from react.utils.device import resolve_device

    try:
        overrides = {**data_overrides(args), **flat_overrides(args.overrides)}
        task, model, cfg = load_for_generation(args.checkpoint, overrides)
        dataset = task.dataset(args.split, targets=False)  # features only
        dataset.check_features()
        acc = dist.make_accelerator(args.device) if dist.launched() else None
        device = acc.device if acc else resolve_device(args.device)
    except (FileNotFoundError, CheckpointError, ConfigError, L.LayoutError) as err:  # alike on every process
        if dist.rank() == 0:
            print(f"error: {user_message(err)}", file=sys.stderr)
        dist.shutdown()
        return 2
    index, processes = (acc.process_index, acc.num_processes) if acc else (0, 1)
    if args.threads or (acc and device.type == "cpu"):  # accelerate leaves a CPU process one thread
        import torch

        torch.set_num_threads(args.threads or dist.cpu_workers())
    share = dist.share(len(dataset.clips), index, processes)
    try:
        s = cfg.sampling
        done = generate_clips(model.to(device), dataset, args.pred_dir, share, args.samples, args.seed,
                              device, progress=index == 0, scale=s.scale, stitch=s.stitch)
        report = (done.generated, done.reused, None)
    except Exception as err:  # noqa: BLE001 - gathered below, so that no process waits forever
        if acc is None and not isinstance(err, (FloatingPointError, OSError, L.LayoutError)):
            raise  # one process: an unexpected error keeps its traceback
        report = (0, 0, f"process {index}: {user_message(err)}")
    reports = dist.gather(report, acc) if acc else [report]
    errors = [e for _, _, e in reports if e]
    try:
        if index == 0 and not errors:
            write_fingerprint(model, dataset, args.pred_dir, args.samples, args.seed, cfg.sampling.scale,
                              cfg.sampling.stitch)
    finally:
        dist.shutdown()
    if index != 0:
        return 1 if errors else 0
    if errors:
        print("error: " + "\n  ".join(errors), file=sys.stderr)
        return 1
    generated, reused = sum(r[0] for r in reports), sum(r[1] for r in reports)
    by = f" by {dist.share_summary(len(dataset.clips), processes)}" if processes > 1 else ""
    print(f"{len(dataset.clips)} clips x {args.samples} reactions (sampling scale {cfg.sampling.scale}) in "
          f"{args.pred_dir}/{args.split}: {generated} generated{by}, {reused} already there")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
