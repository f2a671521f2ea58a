"""``evaluation.py``: score a prediction folder against a REACT split, print the official table.

Flags become a typed :class:`EvalConfig` through the project's one config system. Bad input is
listed on stderr (every missing or malformed file), the exit code is 2 and no JSON is written.
With ``--out``, a JSON whose recorded inputs (settings, and size and time of every prediction and
ground-truth file) are unchanged is printed again instead of recomputed. Heavy modules (torch,
numba) are imported only once the flags are valid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

from react.config import ConfigError, load_config

CHOICES = {"split": ("val", "test"), "device": ("cpu", "cuda"), "tlcc_samples": ("first", "all")}


@dataclass
class EvalData:
    root: str = "???"  # REACT dataset root (split CSVs, Emotion/, neighbour_emotion_*.npy)


@dataclass
class EvalConfig:
    """Settings of one evaluation run."""

    data: EvalData = field(default_factory=EvalData)
    pred_dir: str = "???"  # <pred_dir>/<split>/<speaker_path>/result-<k>.pth
    split: str = "test"  # val | test
    out: str = ""  # metrics JSON ("" = none)
    workers: int = 0  # CPU threads (0 = all cores)
    device: str = "cpu"  # cpu | cuda (DTW on the GPU with torch)
    tlcc_samples: str = "first"  # first (official) | all


def validate(cfg: EvalConfig) -> None:
    """Raise :class:`ConfigError` for a value outside its allowed set."""
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {getattr(cfg, key)!r}")
    if cfg.workers < 0:
        raise ConfigError(f"workers must be >= 0 (0 = all cores), got {cfg.workers}")


FLAGS = {"data_dir": "data.root", "pred_dir": "pred_dir", "split": "split", "out": "out",
         "workers": "workers", "device": "device", "tlcc_samples": "tlcc_samples"}


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    """Flags and ``key=value`` overrides (on top of an optional ``--config`` YAML) -> EvalConfig."""
    parser = argparse.ArgumentParser(prog="evaluation.py", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="REACT dataset root (config key data.root)")
    parser.add_argument("--pred-dir", help="folder with <split>/<clip>/result-<k>.pth")
    parser.add_argument("--split", choices=CHOICES["split"], help="default: test")
    parser.add_argument("--out", help="write the metrics as JSON here")
    parser.add_argument("--workers", type=int, help="CPU threads (0 = all cores, the default)")
    parser.add_argument("--device", choices=CHOICES["device"], help="default: cpu")
    parser.add_argument("--tlcc-samples", choices=CHOICES["tlcc_samples"],
                        help="first (default): sample 0 of each clip, as the official code; all: all 10")
    parser.add_argument("--config", help="YAML with the same keys (may name a base: it extends)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. tlcc_samples=all")
    args = parser.parse_args(argv)
    # JSON scalars are YAML scalars: strings stay strings whatever they contain.
    flags = [f"{key}={json.dumps(getattr(args, flag))}" for flag, key in FLAGS.items()
             if getattr(args, flag) is not None]
    cfg = load_config(args.config, [*flags, *args.overrides], schema=EvalConfig)
    cfg = EvalConfig(data=EvalData(**cfg.data), **{k: v for k, v in cfg.items() if k != "data"})
    validate(cfg)
    return cfg


def input_stamp(cfg: EvalConfig) -> str:
    """sha1 of the settings and of the size and mtime of every file the scores depend on."""
    import hashlib
    import os
    from pathlib import Path

    settings = {k: v for k, v in vars(cfg).items() if k not in ("out", "workers", "data")}
    digest = hashlib.sha1(json.dumps({**settings, "root": str(Path(cfg.data.root).resolve())}).encode())
    folders = [Path(cfg.pred_dir) / cfg.split, Path(cfg.data.root) / cfg.split / "Emotion"]
    root = Path(cfg.data.root)
    files = [root / f"{cfg.split}.csv", root / f"neighbour_emotion_{cfg.split}.npy"]
    for folder in folders:
        for top, _, names in sorted(os.walk(folder)):
            files += [Path(top) / n for n in sorted(names)]
    for file in files:
        stat = file.stat() if file.exists() else None
        digest.update((f"{file}:{stat.st_size}:{stat.st_mtime_ns};" if stat else f"{file}:-;").encode())
    return digest.hexdigest()


def _previous(cfg: EvalConfig, stamp: str) -> dict | None:
    """The metrics already written to ``cfg.out`` from these very inputs, if any."""
    from pathlib import Path

    try:
        previous = json.loads(Path(cfg.out).read_text())
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) and previous.get("inputs_sha1") == stamp else None


def run(cfg: EvalConfig) -> dict:
    """Load, score, print; returns the metrics dict (what ``--out`` holds)."""
    from evaluation.loading import load_split
    from evaluation.metrics import TLCC_MAX_LAG, compute_metrics
    from evaluation.report import report

    if cfg.device == "cuda":
        from react.utils.device import resolve_device

        resolve_device(cfg.device)
    stamp = input_stamp(cfg) if cfg.out else ""
    previous = _previous(cfg, stamp) if cfg.out else None
    if previous is not None:
        print(f"{cfg.out} is up to date with these predictions and settings (delete it to recompute)",
              file=sys.stderr)
        print(report(previous))
        return previous
    start = time.perf_counter()
    pred, listener, speaker, appropriate = load_split(cfg.data.root, cfg.pred_dir, cfg.split, progress=True)
    load_s = time.perf_counter() - start
    metrics = compute_metrics(pred, listener, speaker, appropriate, tlcc_samples=cfg.tlcc_samples,
                              device=cfg.device, workers=cfg.workers or None, progress=True)
    metrics["seconds"]["load"] = round(load_s, 4)
    metrics["seconds"]["total"] = round(time.perf_counter() - start, 4)
    metrics.update(split=cfg.split, clips=int(pred.shape[0]), samples=int(pred.shape[1]),
                   tlcc_samples=cfg.tlcc_samples, device=cfg.device)
    print(report(metrics))
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
    from react.data.react_layout import LayoutError

    try:
        run(cfg)
    except LayoutError as err:  # includes EvalInputError, which lists every problem
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
