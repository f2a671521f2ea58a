"""The README's REGNN comparison: both tiny REGNNs over several training seeds against all seven baselines.

One command regenerates the table (every step skips what is already complete, so a stopped run
continues where it stopped):

1. a synthetic REACT set (``scripts/make_synthetic_react.py``: ``--pairs`` training dyads,
   ``--eval-pairs`` validation and test dyads, so ``2 x --eval-pairs`` test clips) with stand-in
   features (``react.data.proxy_features``: 64-d video, 32-d audio);
2. for each config (the official replica and the project's variant, both tiny) and each of
   ``--seeds``: ``train.py`` for at most ``--max-epochs`` epochs of ``--steps`` batches, validated
   after every epoch on the validation loss, stopped when it has not improved for ``--patience``
   epochs (``train.patience``); the best weights generate 10 reactions per test clip;
3. the baselines (``python -m react.baselines``: GT, Random, Mime, MeanSeq, MeanFr, and Linear and
   NN fitted on the training split from the same features the models see);
4. ``python -m evaluation.compare`` over every folder, then ``table.md``: per model the mean ± sd
   over seeds (sample sd), each baseline once, and the epochs each model trained.

    nice -n 10 python benchmarks/regnn_table.py --out runs/regnn_table [--seeds 0,1,2]
        [--pairs 48] [--eval-pairs 50] [--max-epochs 8] [--patience 2] [--steps 10] [--val-clips 6]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.metrics import METRIC_KEYS  # noqa: E402
from react.baselines import BASELINES  # noqa: E402
from react.data.proxy_features import write_proxy_features  # noqa: E402
from scripts.make_synthetic_react import COMPLETE, generate  # noqa: E402

MODELS = {"REGNN official replica (tiny)": "configs/regnn_official_tiny.yaml",
          "REGNN project variant (tiny)": "configs/regnn_tiny.yaml"}
VIDEO_DIM, AUDIO_DIM = 64, 32
DIGITS = {"FRC": 3, "FRD": 2, "S-MSE": 5, "FRVar": 4, "FRDvs": 4, "TLCC": 2}
ARROWS = {"FRC": "↑", "FRD": "↓", "S-MSE": "↑", "FRVar": "↑", "FRDvs": "↑", "TLCC": "↓"}


def run(cmd: list[str], log: Path) -> None:
    """Run ``cmd`` (output appended to ``log``); raise with the log's tail when it fails."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed; see {log}:\n" + log.read_text()[-3000:])


def make_data(out: Path, args: argparse.Namespace) -> Path:
    data = out / "data"
    if not (data / COMPLETE).is_file():
        generate(data, pairs=args.pairs, eval_pairs=args.eval_pairs, seed=args.data_seed, media=False)
    marker = data / ".proxy_features"
    if not marker.is_file():
        write_proxy_features(data, VIDEO_DIM, AUDIO_DIM)
        marker.write_text(f"{VIDEO_DIM} {AUDIO_DIM}\n")
    return data


def train_model(config: str, seed: int, data: Path, run_dir: Path, args: argparse.Namespace) -> dict:
    """Train (or finish training) one model; returns epochs trained, seconds and the best val loss."""
    results = run_dir / "test_results.json"
    if not results.is_file():
        start = time.perf_counter()
        run([sys.executable, "train.py", "--config", config, f"data.root={data}", f"out_dir={run_dir}",
             f"seed={seed}", f"train.epochs={args.max_epochs}", f"train.max_steps_per_epoch={args.steps}",
             "train.milestones=[]", "train.val_every=1", f"train.patience={args.patience}",
             "train.ckpt_every=0", "val.samples=0", f"val.max_clips={args.val_clips}", "generate.workers=1",
             "generate.metrics=false",
             f"resume={'auto' if (run_dir / 'checkpoints').is_dir() else ''}"], run_dir.parent / "train.log")
        (run_dir / "seconds.txt").write_text(f"{time.perf_counter() - start:.0f}\n")
    last = torch.load(run_dir / "checkpoints" / "last" / "state.pt", map_location="cpu", weights_only=True)
    seconds = (run_dir / "seconds.txt").read_text().strip() if (run_dir / "seconds.txt").is_file() else "?"
    return {"epochs": int(last["epoch"]), "best_val_loss": last["best"], "seconds": seconds}


def summarise(rows: list[dict], runs: dict[str, list[dict]], args: argparse.Namespace, clips: int) -> str:
    """The markdown table: mean ± sd over seeds for the models, one value for each baseline."""
    head = "| | " + " | ".join(f"{k} {ARROWS[k]}" for k in METRIC_KEYS) + " | epochs |"
    lines = [head, "|---|" + "---:|" * (len(METRIC_KEYS) + 1)]
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["name"].split(" / seed ")[0], []).append(row)
    for name, group in by_name.items():
        cells = []
        for key in METRIC_KEYS:
            values = np.array([float(r[key]) for r in group])
            d = DIGITS[key]
            cells.append(f"{values.mean():.{d}f} ± {values.std(ddof=1):.{d}f}" if len(values) > 1
                         else f"{values[0]:.{d}f}")
        epochs = ", ".join(str(r["epochs"]) for r in runs.get(name, [])) or "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {epochs} |")
    note = (f"\n{clips} test clips; models: mean ± sd over seeds {args.seeds}, at most {args.max_epochs} "
            f"epochs of {args.steps} batches, stopped after {args.patience} epochs without a lower "
            "validation loss (epochs column: per seed); Linear and NN read the same stand-in features.\n")
    return "\n".join(lines) + "\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/regnn_table")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds of each model")
    parser.add_argument("--pairs", type=int, default=48, help="training dyads")
    parser.add_argument("--eval-pairs", type=int, default=50, help="validation and test dyads (clips: twice)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=2, help="epochs without a lower validation loss")
    parser.add_argument("--steps", type=int, default=10, help="batches of 32 windows per epoch")
    parser.add_argument("--val-clips", type=int, default=6,
                        help="first clips of the validation split for the loss (0: all)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = make_data(out, args)
    runs: dict[str, list[dict]] = {name: [] for name in MODELS}
    for seed in seeds:  # seed by seed, so that a stopped run has both models
        for name, config in MODELS.items():
            info = train_model(config, seed, data, out / Path(config).stem / f"seed{seed}", args)
            runs[name].append(info)
            print(f"{name}, seed {seed}: {info['epochs']} epochs, best val loss {info['best_val_loss']:.5f}, "
                  f"{info['seconds']} s", flush=True)
    preds = [f"{name} / seed {seed}={out / Path(config).stem / f'seed{seed}' / 'pred'}"
             for name, config in MODELS.items() for seed in seeds]
    base = out / "baselines"
    run([sys.executable, "-m", "react.baselines", "--data-dir", str(data), "--split", "test",
         "--out", str(base), "--inputs", "features"], out / "baselines.log")
    preds += [f"{b}={base / b}" for b in BASELINES]
    run([sys.executable, "-m", "evaluation.compare", "--data-dir", str(data), "--split", "test",
         "--out", str(out / "cmp"), "--workers", "2", "--pred", *preds], out / "compare.log")
    rows = list(csv.DictReader((out / "cmp" / "comparison.csv").open()))
    for row, info in zip(rows, [i for name in MODELS for i in runs[name]]):
        row["epochs"] = info["epochs"]
    clips = 2 * args.eval_pairs
    table = summarise(rows, runs, args, clips)
    (out / "table.md").write_text(table)
    (out / "runs.json").write_text(json.dumps(runs, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
