"""Speed of the REACT evaluation against the straightforward per-pair reference, at real density and size.

Two parts:

* ``density`` (default): a synthetic REACT split of ``--clips`` clips on disk, with about
  ``--density`` appropriate reactions per clip (real data has tens) and model-like predictions
  (``evaluation/synthetic.py``: warped, noisy mixtures of appropriate reactions, no near-copies).
  It times the whole ``python evaluation.py`` command (start-up and loading included), the
  in-process metrics, and the per-pair reference (``evaluation/reference.py``: one
  ``tslearn.metrics.dtw`` per pair and group, per-column ``np.corrcoef``) on a sample of clips,
  alternating the two so that both see the same machine load. The reference time of the whole
  split is projected from the sample (per pair, per clip or per clip pair, as each metric grows),
  and the sampled clips' values are checked against ours.
* ``real-size``: a split as large as the REACT 2024 test set (``--clips 1600``, 10 to 50
  appropriate reactions each), arrays in memory. Predictions are generated and scored a chunk of
  clips at a time (``evaluation.score_clips``) and merged (``evaluation.combine``), so memory holds
  the ground truth and one chunk. Prints the time per metric, the per-pair reference time measured
  on sampled clips and its projection to the whole split, and the peak memory.

    python benchmarks/bench_eval.py [--clips 80] [--density 28] [--workers 2] [--repeats 2]
    python benchmarks/bench_eval.py real-size [--clips 1600] [--chunk 64] [--device cuda]
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

from evaluation import combine, compute_metrics, load_split, reference, score_clips  # noqa: E402
from evaluation.loading import load_ground_truth  # noqa: E402
from evaluation.metrics import METRIC_KEYS, frd_minima  # noqa: E402
from evaluation.synthetic import make_predictions, write_predictions  # noqa: E402
from react.data import react_layout as L  # noqa: E402
from scripts.make_synthetic_react import generate  # noqa: E402

TOLERANCE = 1e-5


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


def reference_sample(pred: np.ndarray, clips: np.ndarray, listener: np.ndarray, speaker: np.ndarray,
                     appropriate: np.ndarray, tlcc_samples: str = "first") -> tuple[dict, dict]:
    """The per-pair reference on the clips ``clips`` (``pred`` holds their predictions): per metric the
    per-clip values and the seconds spent; S-MSE/FRVar/FRDvs, cheap per clip, on the same clips."""
    reference.group_dtw(pred[0, 0, :5], listener[0, :5])  # tslearn compiles on its first call
    values: dict[str, list[float]] = {k: [] for k in ("FRC", "FRD", "S-MSE", "FRVar", "TLCC")}
    seconds = dict.fromkeys(values, 0.0)
    runs = {
        "FRC": lambda p, k: reference.frc(p, listener, appropriate[[k]]),
        "FRD": lambda p, k: reference.frd(p, listener, appropriate[[k]]),
        "S-MSE": lambda p, k: reference.s_mse(p),
        "FRVar": lambda p, k: reference.fr_var(p),
        "TLCC": lambda p, k: reference.tlcc(p, speaker[[k]], tlcc_samples),
    }
    for row, k in enumerate(clips):
        for key, fn in runs.items():
            start = time.perf_counter()
            values[key].append(fn(pred[row:row + 1], k))
            seconds[key] += time.perf_counter() - start
    start = time.perf_counter()  # FRDvs: one (clip pair, sample) difference per term
    pairs = [(a, b) for a in range(len(clips)) for b in range(len(clips)) if a != b]
    for a, b in pairs:
        for i in range(pred.shape[1]):
            ((pred[a, i].astype(np.float64) - pred[b, i].astype(np.float64)) ** 2).sum()
    seconds["FRDvs"] = time.perf_counter() - start
    values["FRDvs_terms"] = [len(pairs) * pred.shape[1]]
    return values, seconds


def project_reference(seconds: dict, sampled: np.ndarray, appropriate: np.ndarray, samples: int) -> dict:
    """Reference seconds of the whole split from those of the sampled clips: FRC and FRD per
    (clip, sample, appropriate reaction) pair, FRDvs per (clip pair, sample), the others per clip."""
    c = len(appropriate)
    pairs_all, pairs_sampled = appropriate.sum(), appropriate[sampled].sum()
    n = len(sampled)
    out = {key: seconds[key] * pairs_all / pairs_sampled for key in ("FRC", "FRD")}
    out.update({key: seconds[key] * c / n for key in ("S-MSE", "FRVar", "TLCC")})
    out["FRDvs"] = seconds["FRDvs"] * (c * (c - 1)) / (n * (n - 1))
    out["per_pair_ms"] = 1e3 * (seconds["FRC"] + seconds["FRD"]) / (pairs_sampled * samples)
    return out


def agreement(ours: dict[str, np.ndarray], ref: dict[str, list[float]]) -> float:
    """Largest relative difference between our per-clip values and the reference's on the sample."""
    worst = 0.0
    for key in ("FRC", "FRD", "S-MSE", "FRVar", "TLCC"):
        a, b = np.asarray(ours[key], dtype=np.float64), np.asarray(ref[key], dtype=np.float64)
        a = a.reshape(len(b), -1).mean(axis=1)  # TLCC: offsets per (clip, sample) -> per clip
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))))
    return worst


def make_set(root: Path, clips: int, density: float, seed: int) -> tuple[Path, Path]:
    """A test split of ``clips`` clips on disk, about ``density`` appropriate reactions per clip, and
    predictions; returns (data dir, prediction dir)."""
    data = root / f"react_{clips}"
    generate(data, pairs=1, eval_pairs=clips // 2, seed=seed, media=False)
    split = L.read_split(data, "test")
    listener, _, _ = load_ground_truth(split)
    rng = np.random.default_rng(seed)
    low = max(1, int(round(density * 0.6)))
    counts = np.minimum(rng.integers(low, int(round(2 * density - low)) + 1, size=clips), clips)
    np.save(L.appropriateness_path(data, "test"), nearest_matrix(listener, counts).astype(np.float32))
    appropriate = L.read_appropriateness(split)
    write_predictions(data / "pred", split, make_predictions(listener, appropriate, seed=seed))
    return data, data / "pred"


def time_command(data: Path, preds: Path, workers: int) -> tuple[float, dict]:
    """Wall seconds of ``python evaluation.py`` as a whole command (numba cache already warm)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "metrics.json"
        cmd = [sys.executable, str(ROOT / "evaluation.py"), "--data-dir", str(data), "--pred-dir", str(preds),
               "--split", "test", "--workers", str(workers), "--out", str(out)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"evaluation.py failed:\n{done.stderr}")
        return wall, json.loads(out.read_text())


def bench_density(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        data, preds = make_set(Path(tmp), args.clips, args.density, args.seed)
        pred, listener, speaker, appropriate = load_split(data, preds, "test")
        c, s = pred.shape[:2]
        sampled = np.sort(np.random.default_rng(args.seed).choice(c, size=min(args.sample, c), replace=False))
        time_command(data, preds, args.workers)  # warm caches (numba, files)
        commands, ref_runs = [], []
        for _ in range(args.repeats):  # alternate: both see the same machine load
            commands.append(time_command(data, preds, args.workers))
            ref_runs.append(reference_sample(pred[sampled], sampled, listener, speaker, appropriate))
        metrics = commands[0][1]
        part = score_clips(pred[sampled], sampled, listener, speaker, appropriate, workers=args.workers)
        ref_values = ref_runs[0][0]
        ref_seconds = {k: float(np.median([r[1][k] for r in ref_runs])) for k in ref_runs[0][1]}
        projected = project_reference(ref_seconds, sampled, appropriate, s)
        command_s = float(np.median([w for w, _ in commands]))
        # The in-process metrics once more, checked against the command's values.
        inproc = compute_metrics(pred, listener, speaker, appropriate, workers=args.workers)
        same = all(inproc[k] == metrics[k] for k in METRIC_KEYS)
    reference_total = sum(projected[k] for k in METRIC_KEYS)
    return {
        "clips": c, "mean_appropriate": float(appropriate.sum(1).mean()), "pairs": metrics["frd_pairs"],
        "full_pairs": metrics["frd_full_pairs"], "command_seconds": command_s,
        "command_runs": [w for w, _ in commands], "seconds": metrics["seconds"],
        "reference_projected": projected, "reference_total": reference_total,
        "speedup_command": reference_total / command_s,
        "sample_clips": sampled.tolist(), "rel_diff_sample": agreement(part.per_clip, ref_values),
        "command_equals_in_process": same, "metrics": {k: metrics[k] for k in METRIC_KEYS},
    }


def print_metric_seconds(res: dict, title: str) -> None:
    """The set's header line and one row per metric: our seconds, the reference's projected seconds."""
    print(f"\n== {title}{res['clips']} clips, {res['mean_appropriate']:.1f} appropriate reactions per clip: "
          f"{res['pairs']} FRD pairs, {res['full_pairs']} DTWs run to the end (the rest pruned)")
    print(f"{'metric':<7} {'ours s':>9} {'reference s (projected)':>24}")
    for key in METRIC_KEYS:
        print(f"{key:<7} {res['seconds'][key]:9.2f} {res['reference_projected'][key]:24.1f}")


def print_density(res: dict) -> None:
    print_metric_seconds(res, "")
    print(f"{'load':<7} {res['seconds']['load']:9.2f}")
    print(f"per-pair reference (FRC + FRD): {res['reference_projected']['per_pair_ms']:.2f} ms per pair")
    runs = ", ".join(f"{w:.2f}" for w in res["command_runs"])
    print(f"`python evaluation.py`, whole command: {res['command_seconds']:.2f} s (runs: {runs}); "
          f"reference, projected: {res['reference_total']:.1f} s -> {res['speedup_command']:.1f}x")
    print(f"agreement with the reference on clips {res['sample_clips']}: largest relative difference "
          f"{res['rel_diff_sample']:.1e}; command == in-process: {res['command_equals_in_process']}")


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


def bench_real_size(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    listener, speaker = synthetic_ground_truth(args.clips, rng)
    counts = rng.integers(args.min_appropriate, args.max_appropriate + 1, size=args.clips)
    appropriate = nearest_matrix(listener, counts)
    print(f"ground truth: {args.clips} clips, {appropriate.sum(1).mean():.1f} appropriate reactions per clip "
          f"(min {appropriate.sum(1).min()}, max {appropriate.sum(1).max()}), "
          f"{time.perf_counter() - start:.1f} s to generate", flush=True)
    parts, generate_s = [], 0.0
    sampled = np.sort(rng.choice(args.clips, size=args.sample, replace=False))
    ref_pred = np.empty((len(sampled), L.NUM_PREDICTIONS, L.NUM_FRAMES, L.EMOTION_DIM), np.float32)
    check = None
    scored = time.perf_counter()
    for first in range(0, args.clips, args.chunk):
        clips = np.arange(first, min(first + args.chunk, args.clips))
        start = time.perf_counter()
        pred = make_predictions(listener, appropriate[clips], seed=args.seed + first)
        generate_s += time.perf_counter() - start
        parts.append(score_clips(pred, clips, listener, speaker, appropriate, workers=args.workers))
        inside = np.isin(sampled, clips)
        ref_pred[inside] = pred[np.searchsorted(clips, sampled[inside])]
        if args.device != "cpu" and check is None:  # the torch DTW path on the same clips
            minima, _ = frd_minima(pred, listener, appropriate[clips], backend="torch", device=args.device)
            frd = parts[-1].per_clip["FRD"]
            check = float(np.max(np.abs(minima.sum(1) - frd) / frd))
        done = clips[-1] + 1
        spent = time.perf_counter() - scored - generate_s
        print(f"  {done}/{args.clips} clips scored, {spent:.0f} s", flush=True)
    metrics = combine(parts)
    ours_values = {k: np.concatenate([p.per_clip[k] for p in parts])[sampled] for k in parts[0].per_clip}
    ref_values, ref_seconds = reference_sample(ref_pred, sampled, listener, speaker, appropriate)
    projected = project_reference(ref_seconds, sampled, appropriate, L.NUM_PREDICTIONS)
    ours_total = sum(metrics["seconds"][k] for k in METRIC_KEYS)
    return {
        "clips": args.clips, "mean_appropriate": float(appropriate.sum(1).mean()),
        "pairs": metrics["frd_pairs"], "full_pairs": metrics["frd_full_pairs"], "seconds": metrics["seconds"],
        "ours_total": ours_total,
        "generate_seconds": generate_s, "reference_projected": projected,
        "reference_total": sum(projected[k] for k in METRIC_KEYS), "sample_clips": sampled.tolist(),
        "rel_diff_sample": agreement(ours_values, ref_values), "torch_rel_diff": check,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "metrics": {k: metrics[k] for k in METRIC_KEYS},
    }


def print_real_size(res: dict) -> None:
    print_metric_seconds(res, "real size: ")
    ref_total = res["reference_total"]
    print(f"{'total':<7} {res['ours_total']:9.1f} {ref_total:24.0f}   "
          f"({ref_total / 3600:.2f} h of reference, {ref_total / res['ours_total']:.0f}x)")
    print(f"per-pair reference: {res['reference_projected']['per_pair_ms']:.2f} ms per (clip, sample, "
          f"reaction) pair for FRC + FRD, measured on clips {res['sample_clips']}")
    print(f"agreement on those clips: largest relative difference {res['rel_diff_sample']:.1e}")
    if res["torch_rel_diff"] is not None:
        print(f"torch DTW path vs numba on the first chunk: largest relative difference "
              f"{res['torch_rel_diff']:.1e}")
    print(f"peak memory: {res['peak_rss_gib']:.2f} GiB (ground truth in memory, predictions generated "
          "and scored a chunk at a time)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", default="density", choices=("density", "real-size"))
    parser.add_argument("--clips", type=int, help="clips (2N): default 80 (density), 1600 (real-size)")
    parser.add_argument("--density", type=float, default=28, help="mean appropriate reactions per clip")
    parser.add_argument("--min-appropriate", type=int, default=10, help="real-size: fewest per clip")
    parser.add_argument("--max-appropriate", type=int, default=50, help="real-size: most per clip")
    parser.add_argument("--chunk", type=int, default=64, help="real-size: clips scored at a time")
    parser.add_argument("--sample", type=int, default=3, help="clips the per-pair reference runs on")
    parser.add_argument("--repeats", type=int, default=2, help="density: command / reference alternations")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="real-size: also run the torch DTW on this device")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.clips = args.clips or (80 if args.part == "density" else 1600)
    if args.clips % 2 or args.clips < 4:
        parser.error("--clips must be an even number >= 4 (both directions of N rows)")
    if not 2 <= args.sample <= args.clips:
        parser.error("--sample must be between 2 (FRDvs needs a pair of clips) and --clips")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if args.part == "density":
        res = bench_density(args)
        print_density(res)
    else:
        res = bench_real_size(args)
        print_real_size(res)
    res["load_average"] = [load, os.getloadavg()]
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    agree = res["rel_diff_sample"] < TOLERANCE and res.get("command_equals_in_process", True)
    print(f"exact: {'OK' if agree else 'FAILED'} (tolerance {TOLERANCE:g} against the reference)")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
