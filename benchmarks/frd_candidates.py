"""Why exact FRD pruning gains little on low-diversity and random predictions: the candidates' costs.

On clips of an in-memory synthetic split (``bench_eval``'s real-size ground truth, 10 to 50
appropriate reactions per clip), every (sample, appropriate reaction) pair's three DTW terms are
computed in full. Per prediction kind it prints:

* each candidate's total cost relative to its sample's minimum (quantiles, the minimum left out)
  and its valence-arousal term relative to that minimum. An exact method drops a candidate only
  with a lower bound above the minimum, so candidates within a few percent of it need nearly all
  of their cost computed;
* how often the first candidate computed (smallest diagonal-path cost) is the best one, and how
  often the previous sample's best reaction is;
* on a few pairs, the nearest-frame lower bound (the sum over one sequence's frames of the squared
  distance to the nearest frame of the other, either way round) as a fraction of each term and of
  the total (its square roots combined with the FRD weights), and the block lower bounds of the
  AU and expression terms with the boxes on either side (what the bound tiers of
  ``evaluation.dtw`` choose between).

    python benchmarks/frd_candidates.py [--clips 400] [--queried 40] [--bound-pairs 48] [--kinds ...]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_eval import nearest_matrix, synthetic_ground_truth  # noqa: E402

from evaluation import dtw as D  # noqa: E402
from evaluation.synthetic import KINDS, make_kind  # noqa: E402

GROUPS = ((D.G0, D.G1, D.au_term), (D.G1, D.G2, D.va_term), (D.G2, D.G3, D.expression_term))  # AU, VA, expr


def pair_terms(x: np.ndarray, y: np.ndarray) -> list[float]:
    """The weighted AU, valence-arousal and expression DTW terms and the diagonal-path guess of a pair."""
    xt = np.ascontiguousarray(x.T)
    yr = D.reverse_references(y[None])[0]
    return [term(xt, yr, np.inf, 0.0) for _, _, term in GROUPS] + [D._path_cost(xt, yr)]


def nearest_frame_bounds(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(3 groups, 2 directions) nearest-frame lower bounds of the squared DTWs (float64)."""
    out = np.empty((3, 2))
    for g, (d0, d1, _) in enumerate(GROUPS):
        a, b = x[:, d0:d1].astype(np.float64), y[:, d0:d1].astype(np.float64)
        dist = ((a[:, None] - b[None]) ** 2).sum(-1)
        out[g] = dist.min(axis=1).sum(), dist.min(axis=0).sum()
    return out


def box_bounds(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(3 box choices, 2 terms) block lower bounds of the squared AU and expression DTWs: boxes of 8
    reference frames, boxes of 8 prediction frames, one box of the whole prediction."""
    xr, yr = np.ascontiguousarray(x.T[:, ::-1]), np.ascontiguousarray(y.T[:, ::-1])
    out = np.empty((3, 2))
    for c, (seq, boxed, block) in enumerate(((xr, y, 8), (yr, x, 8), (yr, x, len(x)))):
        lo, hi = (b[0] for b in D.reference_boxes(boxed[None], block))
        out[c] = [D.block_lower_bound(seq, lo, hi, d0, d1) for d0, d1, _ in (GROUPS[0], GROUPS[2])]
    return out


def report(kind: str, pred: np.ndarray, listener: np.ndarray, appropriate: np.ndarray, workers: int,
           bound_pairs: int) -> None:
    pairs = [(k, i, j) for k in range(len(pred)) for i in range(pred.shape[1])
             for j in np.flatnonzero(appropriate[k])]
    with ThreadPoolExecutor(workers) as pool:  # the numba kernels release the GIL
        terms = np.array(list(pool.map(lambda p: pair_terms(pred[p[0], p[1]], listener[p[2]]), pairs)))
    query = np.array([k * pred.shape[1] + i for k, i, _ in pairs])
    ref = np.array([j for _, _, j in pairs])
    total = terms[:, :3].sum(axis=1)
    minimum = np.full(query.max() + 1, np.inf)
    np.minimum.at(minimum, query, total)
    others = total > minimum[query]
    ratio, va = total[others] / minimum[query][others], terms[others, 1] / minimum[query][others]
    best, guessed = np.empty(len(minimum), np.int64), np.empty(len(minimum), np.int64)
    for q in range(len(minimum)):
        mine = np.flatnonzero(query == q)
        best[q], guessed[q] = ref[mine[np.argmin(total[mine])]], ref[mine[np.argmin(terms[mine, 3])]]
    by_clip, guess_clip = best.reshape(len(pred), -1), guessed.reshape(len(pred), -1)
    quantiles = (0.1, 0.25, 0.5, 0.75, 0.9)
    print(f"\n== {kind}: {len(pred)} clips x {pred.shape[1]} samples, {len(pairs)} pairs "
          f"({len(pairs) / len(minimum):.1f} candidates per sample)")
    print(f"total / minimum, quantiles {quantiles}: {np.round(np.quantile(ratio, quantiles), 3).tolist()}")
    va_q = np.round(np.quantile(va, quantiles), 3).tolist()
    print(f"valence-arousal term / minimum, same quantiles: {va_q}; above 1 for {np.mean(va > 1):.1%} of "
          "the candidates")
    print(f"best candidate = smallest diagonal-path cost: {np.mean(best == guessed):.1%} of the samples "
          f"(samples after the first: {np.mean(by_clip[:, 1:] == guess_clip[:, 1:]):.1%}); "
          f"= the previous sample's best: {np.mean(by_clip[:, 1:] == by_clip[:, :-1]):.1%}")
    chosen = np.linspace(0, len(pairs) - 1, min(bound_pairs, len(pairs))).astype(np.int64)
    bounds = np.array([nearest_frame_bounds(pred[pairs[p][0], pairs[p][1]], listener[pairs[p][2]])
                       for p in chosen])  # (pairs, group, direction)
    weights = np.array([1 / 15, 1.0, 1 / 8])
    exact = terms[chosen, :3] / weights  # unweighted DTWs
    per_group = np.sqrt(bounds) / exact[:, :, None]
    combined = (np.sqrt(bounds) * weights[None, :, None]).sum(axis=1) / total[chosen][:, None]
    print(f"nearest-frame bound / DTW on {len(chosen)} pairs (prediction frames, reaction frames): "
          + ", ".join(f"{name} {per_group[:, g, 0].mean():.2f} / {per_group[:, g, 1].mean():.2f}"
                      for g, name in enumerate(("AU", "VA", "expr")))
          + f"; total {combined[:, 0].mean():.2f} / {combined[:, 1].mean():.2f}")
    boxes = np.array([box_bounds(pred[pairs[p][0], pairs[p][1]], listener[pairs[p][2]]) for p in chosen])
    box_ratio = np.sqrt(boxes) / exact[:, None, [0, 2]]  # (pairs, box choice, AU/expr)
    print(f"block bound / DTW on {len(chosen)} pairs (AU, expr): "
          + "; ".join(f"{name} {box_ratio[:, c, 0].mean():.2f}, {box_ratio[:, c, 1].mean():.2f}"
                      for c, name in enumerate(("boxes of 8 reaction frames", "boxes of 8 prediction frames",
                                                "one box of the whole prediction"))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=400, help="clips of the split (even)")
    parser.add_argument("--queried", type=int, default=40, help="clips whose predictions are scored")
    parser.add_argument("--bound-pairs", type=int, default=48, help="pairs for the nearest-frame bounds")
    parser.add_argument("--kinds", default=",".join(KINDS), help="prediction kinds, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if args.clips % 2 or args.clips < 4 or not 1 <= args.queried <= args.clips or set(kinds) - set(KINDS):
        parser.error(f"--clips even >= 4, --queried between 1 and --clips, --kinds from {','.join(KINDS)}")
    rng = np.random.default_rng(args.seed)
    listener, _ = synthetic_ground_truth(args.clips, rng)
    appropriate = nearest_matrix(listener, rng.integers(10, 51, size=args.clips))
    rows = appropriate[np.arange(0, args.clips, args.clips // args.queried)[:args.queried]]
    for kind in kinds:
        report(kind, make_kind(kind, listener, rows, seed=args.seed + 1), listener, rows, args.workers,
               args.bound_pairs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
