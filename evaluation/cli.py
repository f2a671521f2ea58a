"""``evaluation.py``: score a prediction folder against a REACT split, print the official table.

Flags become a typed :class:`EvalConfig` through the project's one config system. Bad input is
listed on stderr (every missing or malformed file), the exit code is 2 and no JSON is written.
With ``--out``, a JSON whose recorded inputs (settings, and size and time of every prediction and
ground-truth file) are unchanged is printed again instead of recomputed. Heavy modules (numba,
and torch only for unusual prediction files or a GPU) are imported only once the flags are valid.

Under ``accelerate launch --num_processes N`` each process reads the predictions of its share of
the clips and scores them (the FRD minima are most of the work); the main process gathers the
per-clip terms, merges them into the metrics of the whole split, prints and writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from react.config import ConfigError, load_config
from react.utils.cli import SPLITS, add_data_dir, add_out, add_pred_dir, add_split, flag_overrides

CHOICES = {"split": SPLITS, "device": ("cpu", "cuda"), "tlcc_samples": ("first", "all"),
           "metric_set": ("auto", "2024", "2025"), "layout": ("auto", "react", "mars"),
           "directions": ("both", "speaker")}


@dataclass
class EvalData:
    root: str = "???"  # dataset root: REACT 2023/2024 (split CSVs, Emotion/, matrices) or MARS (docs/data.md)


@dataclass
class EvalConfig:
    """Settings of one evaluation run."""

    data: EvalData = field(default_factory=EvalData)
    pred_dir: str = "???"  # <pred_dir>/<split>/<speaker_path>/result-<k>.pth
    split: str = "test"  # train | val | test
    out: str = ""  # metrics JSON ("" = none)
    workers: int = 0  # CPU threads (0 = all cores)
    device: str = "cpu"  # cpu | cuda (DTW on the GPU with torch)
    tlcc_samples: str = "first"  # first (official) | all
    metric_set: str = "auto"  # auto: the layout's | 2024: REACT 2023/2024 | 2025: 2025/2026 (MAE, no FRDvs)
    frdvs: bool = False  # also FRDvs with metric_set 2025 (always part of 2024)
    layout: str = "auto"  # auto (detected) | react (REACT 2023/2024) | mars (REACT 2025/2026)
    directions: str = "both"  # input clips: both (every clip of each pair) | speaker (speaker clips only)


def validate(cfg: EvalConfig) -> None:
    """Raise :class:`ConfigError` for a value outside its allowed set."""
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {getattr(cfg, key)!r}")
    if cfg.workers < 0:
        raise ConfigError(f"workers must be >= 0 (0 = all cores), got {cfg.workers}")


FLAGS = {"data_dir": "data.root", "pred_dir": "pred_dir", "split": "split", "out": "out",
         "workers": "workers", "device": "device", "tlcc_samples": "tlcc_samples",
         "metric_set": "metric_set", "frdvs": "frdvs", "layout": "layout", "directions": "directions"}


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    """Flags and ``key=value`` overrides (on top of an optional ``--config`` YAML) -> EvalConfig."""
    parser = argparse.ArgumentParser(prog="react evaluate", description=__doc__.split("\n")[0])
    add_data_dir(parser)
    add_pred_dir(parser)
    add_split(parser, default=None, help="default: test")
    add_out(parser, help="write the metrics as JSON here")
    parser.add_argument("--workers", type=int, help="CPU threads (0 = all cores, the default)")
    parser.add_argument("--device", choices=CHOICES["device"], help="default: cpu")
    parser.add_argument("--tlcc-samples", choices=CHOICES["tlcc_samples"],
                        help="first (default): sample 0 of each clip, as the official code; all: all 10")
    parser.add_argument("--metric-set", choices=CHOICES["metric_set"],
                        help="auto (default): 2024 for the REACT 2023/2024 layout, 2025 for MARS; "
                             "2024: FRC FRD S-MSE FRVar FRDvs TLCC; 2025: FRC FRD TLCC S-MSE FRVar MAE")
    parser.add_argument("--layout", choices=CHOICES["layout"], help="data layout (default: detected)")
    parser.add_argument("--directions", choices=CHOICES["directions"],
                        help="input clips: both (default) or speaker (the MARS scripts' default)")
    parser.add_argument("--frdvs", action="store_true", default=None,
                        help="with --metric-set 2025: add FRDvs")
    parser.add_argument("--config", help="YAML with the same keys (may name a base: it extends)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. tlcc_samples=all")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, [*flag_overrides(args, FLAGS), *args.overrides], schema=EvalConfig)
    cfg = EvalConfig(data=EvalData(**cfg.data), **{k: v for k, v in cfg.items() if k != "data"})
    validate(cfg)
    return cfg


def input_stamp(cfg: EvalConfig) -> str:
    """sha1 of the settings and of the size and mtime of every file the scores depend on."""
    import hashlib
    import os

    settings = {k: v for k, v in vars(cfg).items() if k not in ("out", "workers", "data")}
    digest = hashlib.sha1(json.dumps({**settings, "root": str(Path(cfg.data.root).resolve())}).encode())
    from react.reaction.data.layouts import resolve
    from react.reaction.data.mars_layout import FACIAL_ATTRIBUTES

    root = Path(cfg.data.root)
    mars = resolve(root, cfg.layout) == "mars"
    folders = [Path(cfg.pred_dir) / cfg.split, root / cfg.split / (FACIAL_ATTRIBUTES if mars else "Emotion")]
    files = [] if mars else [root / f"{cfg.split}.csv", root / f"neighbour_emotion_{cfg.split}.npy"]
    for folder in folders:
        for top, _, names in sorted(os.walk(folder)):
            files += [Path(top) / n for n in sorted(names)]
    for file in files:
        stat = file.stat() if file.exists() else None
        digest.update((f"{file}:{stat.st_size}:{stat.st_mtime_ns};" if stat else f"{file}:-;").encode())
    return digest.hexdigest()


def _previous(cfg: EvalConfig, stamp: str) -> dict | None:
    """The metrics already written to ``cfg.out`` from these very inputs, if any."""
    try:
        previous = json.loads(Path(cfg.out).read_text())
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) and previous.get("inputs_sha1") == stamp else None


def _score(cfg: EvalConfig) -> dict | None:
    """Load and score this process's share of the clips; the merged metrics on the main process
    (``None`` on the others). Every process lists every input problem of the whole split."""
    from evaluation import loading
    from evaluation.loading import EvalInputError
    from evaluation.metrics import combine, score_clips
    from react.reaction.data.layouts import METRIC_SET, input_clips, read_split
    from react.reaction.data.react_layout import NUM_PREDICTIONS
    from react.utils import distributed as dist

    acc = dist.make_accelerator(cfg.device) if dist.launched() else None
    index, processes = (acc.process_index, acc.num_processes) if acc else (0, 1)
    workers = cfg.workers or (dist.cpu_workers() if acc else None)
    start = time.perf_counter()
    split = read_split(cfg.data.root, cfg.split, cfg.layout)
    metric_set = METRIC_SET[split.layout] if cfg.metric_set == "auto" else cfg.metric_set
    inputs = input_clips(split, cfg.directions)
    clips = dist.share(len(inputs), index, processes)  # positions among the inputs
    problems: list[str] = []
    ground_truth = pred = None
    try:
        ground_truth = loading.load_ground_truth(split)
    except EvalInputError as err:
        problems += err.problems
    mine = [inputs[i] for i in clips]
    try:
        frames = loading.expected_frames(split, None if ground_truth is None else ground_truth[1], mine)
        pred = loading.load_predictions(cfg.pred_dir, split, progress=index == 0, indices=mine, frames=frames)
    except EvalInputError as err:
        problems += err.problems
    part = None
    load_s = time.perf_counter() - start
    if acc:  # ground-truth problems are found by every process: keep one copy
        gathered = dist.gather(problems, acc)
        problems = list(dict.fromkeys(p for ps in gathered for p in ps))
    if problems:
        raise EvalInputError(problems)
    if len(clips):
        device = str(acc.device) if acc and cfg.device == "cuda" else cfg.device
        part = score_clips(pred, list(clips), *loading.of_inputs(ground_truth, inputs), metric_set=metric_set,
                           frdvs=cfg.frdvs or None, tlcc_samples=cfg.tlcc_samples, device=device,
                           workers=workers, progress=index == 0)
        part.seconds["load"] = round(load_s, 4)
    parts = dist.gather(part, acc) if acc else [part]
    if index != 0:
        return None
    parts = [p for p in parts if p is not None]
    metrics = combine(parts)
    metrics["seconds"]["total"] = round(time.perf_counter() - start, 4)
    metrics.update(split=cfg.split, clips=len(inputs), samples=NUM_PREDICTIONS,
                   tlcc_samples=cfg.tlcc_samples, device=cfg.device, metric_set=metric_set,
                   layout=split.layout, processes=processes, pred_dir=str(Path(cfg.pred_dir).resolve()),
                   per_clip=_per_clip(parts, [split.clips[i] for i in inputs]))
    return metrics


def _per_clip(parts: list, names: list[str]) -> dict[str, list]:
    """Each input clip's FRC and FRD, in input order (the report lists them)."""
    import numpy as np

    order = np.argsort(np.concatenate([p.clips for p in parts]))
    per = {k: np.concatenate([p.per_clip[k] for p in parts])[order].tolist() for k in ("FRC", "FRD")}
    return {"clip": names, **per}


def run(cfg: EvalConfig) -> dict | None:
    """Load, score, print; returns the metrics dict (what ``--out`` holds), ``None`` on the processes
    other than the main one of an ``accelerate launch`` run."""
    from evaluation.metrics import TLCC_MAX_LAG
    from evaluation.report import report
    from react.utils.distributed import rank

    if cfg.device == "cuda":
        from react.utils.device import resolve_device

        resolve_device(cfg.device)
    main_process = rank() == 0
    if cfg.out:
        from react.utils.io import output_file

        output_file(cfg.out)
    stamp = input_stamp(cfg) if cfg.out else ""
    previous = _previous(cfg, stamp) if cfg.out else None
    if previous is not None:  # every process sees the same file and stops here
        if main_process:
            print(f"{cfg.out} is up to date with these predictions and settings (delete it to recompute)",
                  file=sys.stderr)
            print(report(previous))
        return previous if main_process else None
    metrics = _score(cfg)
    if metrics is None:
        return None
    print(report(metrics))
    if metrics["processes"] > 1:
        from react.utils.distributed import share_summary

        print(f"scored by {share_summary(metrics['clips'], metrics['processes'])}", file=sys.stderr)
    used = metrics["clips"] * (1 if cfg.tlcc_samples == "first" else metrics["samples"])
    print(f"TLCC: {metrics['TLCC_worst_clips']} of {used} clip predictions have a constant column "
          f"(speaker or prediction) and score the worst offset {TLCC_MAX_LAG}, as in the official code",
          file=sys.stderr)
    if cfg.out:
        from react.utils.io import save_json

        save_json({**metrics, "inputs_sha1": stamp}, cfg.out)
    return metrics


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_args(argv)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from react.utils.distributed import rank, shutdown

    try:
        run(cfg)
    except (ConfigError, ValueError) as err:  # includes LayoutError and EvalInputError (every problem)
        if rank() == 0:
            print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        shutdown()
    return 0
