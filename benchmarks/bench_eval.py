"""Speed of the REACT evaluation against the official script's way of running the reference.

The reference (``evaluation/reference.py``: one ``tslearn.metrics.dtw`` per pair and group,
per-column ``np.corrcoef``) runs as the official REACT 2024 ``evaluate.py`` runs it
(``reference.pooled``): FRC, FRD and TLCC one clip per task in a ``multiprocessing`` pool of
``--workers`` processes, S-MSE, FRVar and FRDvs as whole-tensor torch expressions. It runs on a
sample of clips; its time for the whole split is projected from the sample (FRC and FRD per
(clip, appropriate reaction) pair, TLCC per clip, the diversity metrics measured on the whole set
when it is in memory, else per clip and per clip pair from a chunk), and the sampled clips'
values are checked against ours. Three kinds of predictions (``evaluation/synthetic.py``):
``mixture`` (model-like), ``mean-like`` (low diversity) and ``random``.

* ``density`` (default): a synthetic REACT split of ``--clips`` clips on disk with about
  ``--density`` appropriate reactions per clip. Times the whole ``python evaluation.py`` command
  (start-up and loading included), alternating with the reference so that both see the same load.
* ``real-size``: a split as large as the REACT 2024 test set (``--clips 1600``, 10 to 50
  appropriate reactions each), arrays in memory. Predictions are generated and scored a chunk of
  clips at a time (``evaluation.score_clips``, merged by ``evaluation.combine``) so memory holds the
  ground truth and one chunk; prints the time per metric, the projected reference and the peak memory.

    python benchmarks/bench_eval.py [--clips 80] [--density 28] [--workers CORES] [--kinds mixture,random]
    python benchmarks/bench_eval.py real-size [--clips 1600] [--chunk 64] [--kinds ...] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation import combine, load_split, reference, score_clips  # noqa: E402
from evaluation.loading import load_ground_truth  # noqa: E402
from evaluation.metrics import METRIC_KEYS, frd_minima  # noqa: E402
from evaluation.synthetic import KINDS, make_kind, write_predictions  # noqa: E402
from react.reaction.data import react_layout as L  # noqa: E402
from scripts.make_synthetic_react import generate  # noqa: E402

TOLERANCE = 1e-5  # per-clip FRC, FRD, TLCC against the reference (float64 on both sides)
DIVERSITY_TOLERANCE = 1e-4  # the official diversity expressions run in float32
DIVERSITY = ("S-MSE", "FRVar", "FRDvs")


def nearest_matrix(listener: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``M[k]`` marks clip k's own listener and the ``counts[k] - 1`` listener reactions closest to it."""
    flat = listener.reshape(len(listener), -1).astype(np.float32)
    sq = (flat.astype(np.float64) ** 2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * (flat @ flat.T).astype(np.float64)
    np.fill_diagonal(dist, -np.inf)  # a clip's own real listener is always appropriate
    order = np.argsort(dist, axis=1)
    matrix = np.zeros(dist.shape, dtype=bool)
    for k, m in enumerate(counts):
        matrix[k, order[k, :m]] = True
    return matrix


def run_reference(pred: np.ndarray, sampled: np.ndarray, listener: np.ndarray, speaker: np.ndarray,
                  appropriate: np.ndarray, workers: int, diversity_pred: np.ndarray) -> tuple[dict, dict]:
    """The pooled reference on the clips ``sampled`` (``pred`` holds their predictions) and its
    diversity metrics on ``diversity_pred``: (values, seconds)."""
    values, seconds = reference.pooled(pred, listener, speaker[sampled], appropriate[sampled], workers)
    if diversity_pred is not pred:
        start = time.perf_counter()
        values.update(reference._torch_diversity(diversity_pred))
        seconds["diversity"] = time.perf_counter() - start
    return values, seconds


def project(seconds: dict, sampled: np.ndarray, appropriate: np.ndarray, diversity_scale: float) -> dict:
    """Reference seconds of the whole split: FRC and FRD per (clip, appropriate reaction) pair of
    the sample, TLCC per clip, the diversity metrics times ``diversity_scale``."""
    pairs = appropriate.sum() / appropriate[sampled].sum()
    out = {"FRC": seconds["FRC"] * pairs, "FRD": seconds["FRD"] * pairs,
           "TLCC": seconds["TLCC"] * len(appropriate) / len(sampled),
           "diversity": seconds["diversity"] * diversity_scale}
    out["total"] = sum(out.values())
    return out


def agreement(ours: dict[str, np.ndarray], ref: dict) -> float:
    """Largest relative difference of per-clip FRC, FRD, TLCC (sampled clips) and of the diversity metrics."""
    worst = 0.0
    for key in ("FRC", "FRD", "TLCC"):
        a, b = np.asarray(ours[key], dtype=np.float64), np.asarray(ref[key], dtype=np.float64)
        a = a.reshape(len(b), -1).mean(axis=1)  # TLCC: offsets per (clip, sample) -> per clip
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))))
    return worst


def diversity_agreement(ours: dict, ref: dict) -> float:
    return max(abs(ours[k] - ref[k]) / max(abs(ref[k]), 1e-12) for k in DIVERSITY)


def make_split(root: Path, clips: int, density: float, seed: int) -> Path:
    """A test split of ``clips`` clips on disk with about ``density`` appropriate reactions per clip."""
    data = root / f"react_{clips}"
    generate(data, pairs=1, eval_pairs=clips // 2, seed=seed, media=False)
    split = L.read_split(data, "test")
    listener, _, _ = load_ground_truth(split)
    rng = np.random.default_rng(seed)
    low = max(1, int(round(density * 0.6)))
    counts = np.minimum(rng.integers(low, int(round(2 * density - low)) + 1, size=clips), clips)
    np.save(L.appropriateness_path(data, "test"), nearest_matrix(listener, counts).astype(np.float32))
    return data


def time_command(data: Path, preds: Path, workers: int) -> tuple[float, dict, int]:
    """Wall seconds, metrics and peak memory (KiB, its own) of ``python evaluation.py`` as a whole command."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "metrics.json"
        cmd = [sys.executable, str(ROOT / "evaluation.py"), "--data-dir", str(data), "--pred-dir", str(preds),
               "--split", "test", "--workers", str(workers), "--out", str(out)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        with (Path(tmp) / "log").open("w+") as log:
            start = time.perf_counter()
            child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                log.seek(0)
                raise RuntimeError(f"evaluation.py failed:\n{log.read()}")
        return wall, json.loads(out.read_text()), usage.ru_maxrss


def bench_density_kind(kind: str, data: Path, args: argparse.Namespace) -> dict:
    split = L.read_split(data, "test")
    listener, speaker, appropriate = load_ground_truth(split)
    preds = data / f"pred_{kind}"
    write_predictions(preds, split, make_kind(kind, listener, appropriate, seed=args.seed))
    pred, listener, speaker, appropriate = load_split(data, preds, "test")
    c = len(pred)
    sampled = np.sort(np.random.default_rng(args.seed).choice(c, size=min(args.sample, c), replace=False))
    time_command(data, preds, args.workers)  # warm caches (numba, files)
    commands, refs = [], []
    for _ in range(args.repeats):  # alternate: both see the same machine load
        commands.append(time_command(data, preds, args.workers))
        refs.append(run_reference(pred[sampled], sampled, listener, speaker, appropriate, args.workers, pred))
    metrics = commands[0][1]
    part = score_clips(pred[sampled], sampled, listener, speaker, appropriate, workers=args.workers)
    ref_seconds = {k: float(np.median([r[1][k] for r in refs])) for k in refs[0][1]}
    projected = project(ref_seconds, sampled, appropriate, 1.0)
    command_s = float(np.median([w for w, _, _ in commands]))
    return {
        "kind": kind, "clips": c, "mean_appropriate": float(appropriate.sum(1).mean()),
        "pairs": metrics["frd_pairs"], "full_pairs": metrics["frd_full_pairs"], "command_seconds": command_s,
        "command_runs": [w for w, _, _ in commands], "seconds": metrics["seconds"],
        "reference_sample_seconds": ref_seconds, "reference_projected": projected,
        "speedup_command": projected["total"] / command_s, "sample_clips": sampled.tolist(),
        "rel_diff_sample": agreement({k: part.per_clip[k] for k in ("FRC", "FRD", "TLCC")}, refs[0][0]),
        "rel_diff_diversity": diversity_agreement(metrics, refs[0][0]),
        "command_peak_rss_gib": max(p for _, _, p in commands) / 2**20,
        "metrics": {k: metrics[k] for k in METRIC_KEYS},
    }


def print_kind(res: dict, ours_label: str, ours_total: float) -> None:
    """One prediction kind: our seconds per metric against the projected reference, and the ratio."""
    ref = res["reference_projected"]
    print(f"\n== {res['kind']}: {res['clips']} clips, {res['mean_appropriate']:.1f} appropriate reactions "
          "per "
          f"clip; {res['pairs']} FRD (sample, reaction) pairs, {res['full_pairs']} DTWs run to the end")
    pool = f"reference s (pool of {res['workers']}, projected)"
    print(f"{'metric':<10} {'ours s':>8} {pool:>36}")
    for key in ("FRC", "FRD", "TLCC"):
        print(f"{key:<10} {res['seconds'][key]:8.2f} {ref[key]:36.1f}")
    ours_div = sum(res["seconds"].get(k, 0.0) for k in DIVERSITY)
    print(f"{'diversity':<10} {ours_div:8.2f} {ref['diversity']:36.1f}   (S-MSE, FRVar, FRDvs)")
    print(f"{ours_label}: {ours_total:.2f} s; reference: {ref['total']:.1f} s "
          f"-> {ref['total'] / ours_total:.1f}x")
    print(f"agreement on clips {res['sample_clips']}: per-clip FRC/FRD/TLCC {res['rel_diff_sample']:.1e}, "
          f"diversity {res['rel_diff_diversity']:.1e} (relative)")


def synthetic_ground_truth(clips: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(listener, speaker) ``(clips, 750, 25)`` float32 of a split in the 2N order, in memory: smooth
    speaker affect around a few scenarios, listeners reacting with a delayed, smoothed copy."""
    t, latent, n = L.NUM_FRAMES, 3, clips // 2
    readout = rng.normal(0, 1.3, (latent, L.EMOTION_DIM))

    def smooth(shape: tuple, sigma: float) -> np.ndarray:
        x = gaussian_filter1d(rng.normal(size=shape), sigma, axis=-2)
        return x / x.std(axis=-2, keepdims=True)

    scenarios = 1.2 * smooth((6, t, latent), 15)
    z_speaker = scenarios[rng.integers(6, size=n)] + 0.35 * smooth((n, t, latent), 12)
    delayed = gaussian_filter1d(np.roll(z_speaker, 8, axis=1), 4, axis=1)
    z_listener = 0.9 * delayed + 0.3 * smooth((n, t, latent), 10)
    emotion = []
    for z in (z_speaker, z_listener):
        y = z @ readout
        out = 1 / (1 + np.exp(-y))  # AUs
        out[..., 15:17] = np.tanh(y[..., 15:17])
        e = np.exp(y[..., 17:] - y[..., 17:].max(-1, keepdims=True))
        out[..., 17:] = e / e.sum(-1, keepdims=True)
        emotion.append(out.astype(np.float32))
    speaker = np.concatenate(emotion)  # clip k's own Emotion: speakers, then listeners
    listener = np.concatenate([emotion[1], emotion[0]])  # the real listener of clip k
    return listener, speaker


def bench_real_size_kind(kind: str, listener: np.ndarray, speaker: np.ndarray, appropriate: np.ndarray,
                         args: argparse.Namespace) -> dict:
    clips = len(listener)
    rng = np.random.default_rng(args.seed)
    sampled = np.sort(rng.choice(clips, size=args.sample, replace=False))
    ref_pred = np.empty((len(sampled), L.NUM_PREDICTIONS, L.NUM_FRAMES, L.EMOTION_DIM), np.float32)
    parts, generate_s, check, first_chunk = [], 0.0, None, None
    scored = time.perf_counter()
    for first in range(0, clips, args.chunk):
        chunk = np.arange(first, min(first + args.chunk, clips))
        start = time.perf_counter()
        pred = make_kind(kind, listener, appropriate[chunk], seed=args.seed + first)
        generate_s += time.perf_counter() - start
        parts.append(score_clips(pred, chunk, listener, speaker, appropriate, workers=args.workers))
        inside = np.isin(sampled, chunk)
        ref_pred[inside] = pred[np.searchsorted(chunk, sampled[inside])]
        if first_chunk is None:
            first_chunk = pred
        if args.device != "cpu" and check is None:  # the torch DTW path on the same clips
            minima, _ = frd_minima(pred, listener, appropriate[chunk], backend="torch", device=args.device)
            frd = parts[-1].per_clip["FRD"]
            check = float(np.max(np.abs(minima.sum(1) - frd) / frd))
        spent = time.perf_counter() - scored - generate_s
        print(f"  {kind}: {chunk[-1] + 1}/{clips} clips scored, {spent:.0f} s",
              flush=True)
    metrics = combine(parts)
    ours = {k: np.concatenate([p.per_clip[k] for p in parts])[sampled] for k in ("FRC", "FRD", "TLCC")}
    values, seconds = run_reference(ref_pred, sampled, listener, speaker, appropriate, args.workers,
                                    first_chunk)
    n = len(first_chunk)  # diversity measured on the first chunk: S-MSE/FRVar per clip, FRDvs per clip pair
    scale = clips * (clips - 1) / (n * (n - 1))
    projected = project(seconds, sampled, appropriate, scale)
    return {
        "kind": kind, "clips": clips, "mean_appropriate": float(appropriate.sum(1).mean()),
        "pairs": metrics["frd_pairs"], "full_pairs": metrics["frd_full_pairs"], "seconds": metrics["seconds"],
        "ours_total": sum(metrics["seconds"][k] for k in METRIC_KEYS), "generate_seconds": generate_s,
        "reference_sample_seconds": seconds, "reference_projected": projected,
        "sample_clips": sampled.tolist(),
        "rel_diff_sample": agreement(ours, values), "rel_diff_diversity": 0.0, "torch_rel_diff": check,
        "metrics": {k: metrics[k] for k in METRIC_KEYS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", default="density", choices=("density", "real-size"))
    parser.add_argument("--clips", type=int, help="clips (2N): default 80 (density), 1600 (real-size)")
    parser.add_argument("--density", type=float, default=28, help="mean appropriate reactions per clip")
    parser.add_argument("--min-appropriate", type=int, default=10, help="real-size: fewest per clip")
    parser.add_argument("--max-appropriate", type=int, default=50, help="real-size: most per clip")
    parser.add_argument("--chunk", type=int, default=64, help="real-size: clips scored at a time")
    parser.add_argument("--sample", type=int, default=4, help="clips the reference runs on")
    parser.add_argument("--repeats", type=int, default=2, help="density: command / reference alternations")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="our threads and the reference's processes (default: every core, as the "
                             "official script's pool)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="prediction kinds, comma-separated")
    parser.add_argument("--device", default="cpu", help="real-size: also run the torch DTW on this device")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.clips = args.clips or (80 if args.part == "density" else 1600)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if args.clips % 2 or args.clips < 4:
        parser.error("--clips must be an even number >= 4 (both directions of N rows)")
    if not 2 <= args.sample <= args.clips or any(k not in KINDS for k in kinds):
        parser.error(f"--sample must be between 2 and --clips; --kinds from {','.join(KINDS)}")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"ours with {args.workers} threads, the reference with a pool of {args.workers} processes")
    results = []
    if args.part == "density":
        with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
            data = make_split(Path(tmp), args.clips, args.density, args.seed)
            for kind in kinds:
                res = bench_density_kind(kind, data, args) | {"workers": args.workers}
                runs = ", ".join(f"{w:.2f}" for w in res["command_runs"])
                print_kind(res, f"`python evaluation.py`, whole command (runs {runs})",
                           res["command_seconds"])
                print(f"peak memory of the command: {res['command_peak_rss_gib']:.2f} GiB")
                results.append(res)
    else:
        rng = np.random.default_rng(args.seed)
        listener, speaker = synthetic_ground_truth(args.clips, rng)
        counts = rng.integers(args.min_appropriate, args.max_appropriate + 1, size=args.clips)
        appropriate = nearest_matrix(listener, counts)
        print(f"ground truth: {args.clips} clips, {appropriate.sum(1).mean():.1f} appropriate reactions "
              "per clip "
              f"(min {appropriate.sum(1).min()}, max {appropriate.sum(1).max()})", flush=True)
        for kind in kinds:
            res = bench_real_size_kind(kind, listener, speaker, appropriate, args) | {"workers": args.workers}
            print_kind(res, "ours, metrics in process", res["ours_total"])
            if res["torch_rel_diff"] is not None:
                print("torch DTW vs numba on the first chunk: largest relative difference "
                      f"{res['torch_rel_diff']:.1e}")
            results.append(res)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"\npeak memory: {peak:.2f} GiB (ground truth in memory, predictions generated and scored "
              "a chunk "
              "at a time; the reference's sample included)")
    load_after = os.getloadavg()
    if args.out:
        report = {"load_average": [load, load_after], "results": results}
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    agree = all(r["rel_diff_sample"] < TOLERANCE and r["rel_diff_diversity"] < DIVERSITY_TOLERANCE
                for r in results)
    print(f"exact: {'OK' if agree else 'FAILED'} (per-clip tolerance {TOLERANCE:g} against the reference)")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
