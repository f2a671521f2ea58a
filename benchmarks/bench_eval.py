"""Speed of the REACT evaluation against the straightforward per-pair reference, same process.

For each clip count it writes a synthetic REACT split (``scripts/make_synthetic_react.py``) with
model-like predictions, scores it with the per-pair reference (one ``tslearn.metrics.dtw`` per
pair and group, per-column ``np.corrcoef``: ``evaluation/reference.py``) and with the project's
implementation, checks that every metric agrees (relative difference < 1e-5), and prints the
speed-up per metric and overall, how both grow with the clip count, and the wall time of the whole
``evaluation.py`` command (start-up included) on the largest set.

    python benchmarks/bench_eval.py [--clips 20 40 80] [--workers 2] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation import compute_metrics, load_split, reference  # noqa: E402
from evaluation.loading import load_ground_truth  # noqa: E402
from evaluation.metrics import METRIC_KEYS  # noqa: E402
from evaluation.synthetic import make_predictions, write_predictions  # noqa: E402
from react.data import react_layout as L  # noqa: E402
from scripts.make_synthetic_react import generate  # noqa: E402

TOLERANCE = 1e-5
REFERENCE = {
    "FRC": lambda p, li, sp, m, ts: reference.frc(p, li, m),
    "FRD": lambda p, li, sp, m, ts: reference.frd(p, li, m),
    "S-MSE": lambda p, li, sp, m, ts: reference.s_mse(p),
    "FRVar": lambda p, li, sp, m, ts: reference.fr_var(p),
    "FRDvs": lambda p, li, sp, m, ts: reference.frdvs(p),
    "TLCC": lambda p, li, sp, m, ts: reference.tlcc(p, sp, ts),
}


def make_set(root: Path, clips: int, seed: int) -> tuple[Path, Path]:
    """A test split with ``clips`` clips (clips/2 rows) and its predictions; returns (data, preds)."""
    data = root / f"react_{clips}"
    generate(data, pairs=1, eval_pairs=clips // 2, seed=seed, media=False)
    split = L.read_split(data, "test")
    listener, _, appropriate = load_ground_truth(split)
    write_predictions(data / "pred", split, make_predictions(listener, appropriate, seed=seed))
    return data, data / "pred"


def run_reference(pred, listener, speaker, appropriate, tlcc_samples):
    reference.group_dtw(pred[0, 0, :5], listener[0, :5])  # tslearn compiles on its first call
    values, seconds = {}, {}
    for key, fn in REFERENCE.items():
        start = time.perf_counter()
        values[key] = fn(pred, listener, speaker, appropriate, tlcc_samples)
        seconds[key] = time.perf_counter() - start
    return values, seconds


def bench_size(data: Path, preds: Path, workers: int, tlcc_samples: str) -> dict:
    pred, listener, speaker, appropriate = load_split(data, preds, "test")
    ours = compute_metrics(pred, listener, speaker, appropriate, workers=workers, tlcc_samples=tlcc_samples)
    cpu = time.process_time()
    start = time.perf_counter()
    ours = compute_metrics(pred, listener, speaker, appropriate, workers=workers, tlcc_samples=tlcc_samples)
    ours_wall, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
    cpu = time.process_time()
    ref, ref_seconds = run_reference(pred, listener, speaker, appropriate, tlcc_samples)
    ref_cpu = time.process_time() - cpu
    rel = {k: abs(ours[k] - ref[k]) / max(abs(ref[k]), 1e-12) for k in METRIC_KEYS}
    return {
        "clips": int(pred.shape[0]), "pairs": ours["frd_pairs"], "full_pairs": ours["frd_full_pairs"],
        "mean_candidates": float(appropriate.sum(1).mean()),
        "ours": {k: ours[k] for k in METRIC_KEYS}, "reference": ref, "rel_diff": rel,
        "ours_seconds": {k: ours["seconds"][k] for k in METRIC_KEYS}, "reference_seconds": ref_seconds,
        "ours_total": ours_wall, "reference_total": sum(ref_seconds.values()),
        "ours_cpu": ours_cpu, "reference_cpu": ref_cpu,
    }


def time_command(data: Path, preds: Path, workers: int) -> float:
    """Wall seconds of ``python evaluation.py`` as a whole command (numba cache already warm)."""
    cmd = [sys.executable, str(ROOT / "evaluation.py"), "--data-dir", str(data), "--pred-dir", str(preds),
           "--split", "test", "--workers", str(workers)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"evaluation.py failed:\n{done.stderr}")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[20, 40, 80], help="clip counts (2N), even")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tlcc-samples", default="first", choices=("first", "all"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if any(c % 2 or c < 4 for c in args.clips):
        parser.error("--clips must be even numbers >= 4 (both directions of N rows)")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        for clips in sorted(args.clips):
            data, preds = make_set(Path(tmp), clips, args.seed)
            res = bench_size(data, preds, args.workers, args.tlcc_samples)
            results.append(res)
            print(f"\n== {clips} clips: {res['pairs']} DTW pairs (mean {res['mean_candidates']:.1f} "
                  f"candidates per clip), {res['full_pairs']} not pruned")
            print(f"{'metric':<7} {'reference s':>12} {'ours s':>9} {'speed-up':>9} {'rel diff':>10}")
            for key in METRIC_KEYS:
                r, o = res["reference_seconds"][key], res["ours_seconds"][key]
                print(f"{key:<7} {r:12.3f} {o:9.3f} {r / max(o, 1e-9):8.1f}x {res['rel_diff'][key]:10.1e}")
            print(f"{'total':<7} {res['reference_total']:12.3f} {res['ours_total']:9.3f} "
                  f"{res['reference_total'] / res['ours_total']:8.1f}x   (cpu: reference "
                  f"{res['reference_cpu']:.1f} s, ours {res['ours_cpu']:.1f} s)")
        command_s = time_command(data, preds, args.workers)
    print("\n== scaling with clip count (wall seconds, whole evaluation)")
    print(f"{'clips':>5} {'reference':>10} {'ours':>8} {'speed-up':>9}")
    for res in results:
        print(f"{res['clips']:>5} {res['reference_total']:10.2f} {res['ours_total']:8.2f} "
              f"{res['reference_total'] / res['ours_total']:8.1f}x")
    print(f"\n`python evaluation.py` on {results[-1]['clips']} clips, whole command: {command_s:.2f} s")
    worst = max(max(r["rel_diff"].values()) for r in results)
    agree = worst < TOLERANCE
    print(f"agreement with the reference: largest relative difference {worst:.1e} "
          f"({'OK' if agree else 'FAILED'}, tolerance {TOLERANCE:g})")
    if args.out:
        Path(args.out).write_text(json.dumps({"sizes": results, "command_seconds": command_s,
                                              "workers": args.workers}, indent=2) + "\n")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
