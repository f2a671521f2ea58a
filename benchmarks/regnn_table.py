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
3. the baselines (``react baselines``: GT, Random, Mime, MeanSeq, MeanFr, and Linear and
   NN fitted on the training split from the same features the models see);
4. ``evaluation.py`` on every folder (its ``--out`` JSON is reused while the inputs are unchanged),
   then ``table.md``: per model the mean ± sd over seeds (sample sd), each baseline once, and the
   epochs each model trained. ``--table-only`` trains nothing and tabulates the finished runs.

    nice -n 10 python benchmarks/regnn_table.py --out-dir runs/regnn_table [--seeds 0,1,2]
        [--pairs 48] [--eval-pairs 50] [--max-epochs 60] [--patience 3] [--steps 10] [--val-clips 6]
        [--table-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.metrics import METRIC_KEYS  # noqa: E402
from react.data.proxy_features import write_proxy_features  # noqa: E402
from react.reaction.baselines import BASELINES  # noqa: E402
from scripts.make_synthetic_react import COMPLETE, generate  # noqa: E402

MODELS = {"REGNN official replica (tiny)": "configs/regnn_official_tiny.yaml",
          "REGNN project variant (tiny)": "configs/regnn_tiny.yaml"}
VIDEO_DIM, AUDIO_DIM = 64, 32
DIGITS = {"FRC": 3, "FRD": 2, "S-MSE": 5, "FRVar": 4, "FRDvs": 4, "TLCC": 2}
ARROWS = {"FRC": "↑", "FRD": "↓", "S-MSE": "↑", "FRVar": "↑", "FRDvs": "↑", "TLCC": "↓"}
COLUMNS = {"seeds": "seed", "epochs": "epochs"}  # the table's columns after the metrics: heading -> run key


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


def train_model(config: str, seed: int, data: Path, run_dir: Path, args: argparse.Namespace,
                extra: Sequence[str] = (), done: str = "test_results.json") -> dict:
    """Train (or finish training) one model, with the overrides ``extra``, unless ``run_dir/done``
    exists; returns epochs trained, seconds and the best val loss."""
    if not (run_dir / done).is_file():
        start = time.perf_counter()
        run([sys.executable, "train.py", "--config", config, f"data.root={data}", f"out_dir={run_dir}",
             f"seed={seed}", f"train.epochs={args.max_epochs}", f"train.max_steps_per_epoch={args.steps}",
             "train.milestones=[]", "train.val_every=1", f"train.patience={args.patience}",
             "train.ckpt_every=0", "val.samples=0", f"val.max_clips={args.val_clips}", "generate.workers=1",
             "generate.metrics=false", f"resume={'auto' if (run_dir / 'checkpoints').is_dir() else ''}",
             *extra], run_dir.parent / "train.log")
        (run_dir / "seconds.txt").write_text(f"{time.perf_counter() - start:.0f}\n")
    last = torch.load(run_dir / "checkpoints" / "last" / "state.pt", map_location="cpu", weights_only=True)
    seconds = (run_dir / "seconds.txt").read_text().strip() if (run_dir / "seconds.txt").is_file() else "?"
    return {"epochs": int(last["epoch"]), "best_val_loss": last["best"], "seconds": seconds}


def score(name: str, pred_dir: Path, data: Path, out: Path) -> dict:
    """``evaluation.py`` on one prediction folder; its JSON is reused while inputs are unchanged."""
    target = out / "scores" / (name.replace(" ", "_").replace("/", "_") + ".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "evaluation.py", "--data-dir", str(data), "--pred-dir", str(pred_dir),
         "--split", "test", "--workers", "2", "--out", str(target)], out / "scores.log")
    return json.loads(target.read_text())


def cell(values: list[float], digits: int) -> str:
    """``mean ± sd`` (sample sd) over several values, the value alone for one."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def summarise(scores: dict[str, list[dict]], runs: dict[str, list[dict]], args: argparse.Namespace,
              columns: dict[str, str] = COLUMNS) -> str:
    """The markdown table: mean ± sd over seeds for the models, one value for each baseline; then
    ``columns`` (heading -> key of a run's record), one value per run (once where all runs agree)."""
    head = "| | " + " | ".join(f"{k} {ARROWS[k]}" for k in METRIC_KEYS) + " | " + " | ".join(columns) + " |"
    lines = [head, "|---|" + "---:|" * (len(METRIC_KEYS) + len(columns))]
    for name, group in scores.items():
        cells = [cell([g[k] for g in group], DIGITS[k]) for k in METRIC_KEYS]
        for key in columns.values():
            values = [str(r[key]) for r in runs.get(name, [])]
            cells.append("; ".join(values[:1] if len(set(values)) == 1 else values) or "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    note = (f"\n{2 * args.eval_pairs} test clips ({args.pairs} training dyads); models: mean ± sd over the "
            f"seeds listed, at most {args.max_epochs} epochs of {args.steps} batches of 32 windows, stopped "
            f"after {args.patience} epochs without a lower validation loss (first {args.val_clips} "
            "validation clips); Linear and NN read the same stand-in features as the models.\n")
    return "\n".join(lines) + "\n" + note


def parser(description: str, out_dir: str) -> argparse.ArgumentParser:
    """The flags of a comparison table (data, seeds, training budget)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out-dir", default=out_dir)
    parser.add_argument("--seeds", default="0,1,2", help="training seeds of each model")
    parser.add_argument("--pairs", type=int, default=48, help="training dyads")
    parser.add_argument("--eval-pairs", type=int, default=50, help="validation and test dyads (clips: twice)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=3, help="epochs without a lower validation loss")
    parser.add_argument("--steps", type=int, default=10, help="batches of 32 windows per epoch")
    parser.add_argument("--val-clips", type=int, default=6,
                        help="first clips of the validation split for the loss (0: all)")
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: the table of the runs that have finished")
    return parser


def compare(models: dict[str, str], args: argparse.Namespace, columns: dict[str, str] = COLUMNS,
            describe=lambda run_dir: {}, train: Callable[..., dict] = train_model) -> str:
    """Data, baselines, every model (name -> config) over the seeds, scores, ``table.md`` (returned);
    ``describe(run_dir)`` adds entries to a finished run's record (e.g. for extra ``columns``);
    ``train`` trains one run (the arguments of :func:`train_model`)."""
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = make_data(out, args)
    base = out / "baselines"
    run([sys.executable, "-m", "react.reaction.baselines", "--data-dir", str(data), "--split", "test",
         "--out-dir", str(base), "--inputs", "features"], out / "baselines.log")
    scores: dict[str, list[dict]] = {name: [] for name in models}
    scores.update({b: [score(b, base / b, data, out)] for b in BASELINES})
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for seed in seeds:  # seed by seed, so that a stopped run has every model
        for name, config in models.items():
            run_dir = out / Path(config).stem / f"seed{seed}"
            if args.table_only and not (run_dir / "test_results.json").is_file():
                continue
            info = train(config, seed, data, run_dir, args) | {"seed": seed} | describe(run_dir)
            runs[name].append(info)
            scores[name].append(score(f"{Path(config).stem}_seed{seed}", run_dir / "pred", data, out))
            got = scores[name][-1]
            print(f"{name}, seed {seed}: {info['epochs']} epochs, best val loss {info['best_val_loss']:.5f}, "
                  f"{info['seconds']} s, FRC {got['FRC']:.3f}, FRD {got['FRD']:.2f}", flush=True)
    table = summarise({k: v for k, v in scores.items() if v}, runs, args, columns)
    (out / "table.md").write_text(table)
    (out / "runs.json").write_text(json.dumps({"runs": runs, "scores": scores}, indent=2) + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.split("\n")[0], "runs/regnn_table").parse_args(argv)
    print(compare(MODELS, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
