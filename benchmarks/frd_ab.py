"""FRD minima of this tree against an earlier revision's ``evaluation/dtw.py``, on the same clips.

The clips come from ``bench_eval``'s real-size ground truth (1,600 clips, 10 to 50 appropriate
reactions each) with predictions of each kind (``evaluation/synthetic.py``). Both versions run
``min_group_dtw`` on the same queries, alternating, in one thread, and the CPU seconds of each
run are printed with the ratio of the fastest runs (this machine moves single runs by up to 30 %).
The minima must agree to 1e-12 (relative).

    python benchmarks/frd_ab.py --base f04ad2d [--clips 16] [--repeats 3] [--kinds ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_eval import nearest_matrix, synthetic_ground_truth  # noqa: E402

from evaluation import dtw as current  # noqa: E402
from evaluation.synthetic import KINDS, make_kind  # noqa: E402


def load_revision(revision: str, folder: Path):
    """``evaluation/dtw.py`` of ``revision`` as a module (its numba cache stays in ``folder``)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:evaluation/dtw.py"], check=True,
                            capture_output=True, text=True).stdout
    path = folder / "dtw_base.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("dtw_base", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("--clips", type=int, default=16, help="clips scored (10 samples each)")
    parser.add_argument("--repeats", type=int, default=3, help="alternations")
    parser.add_argument("--kinds", default=",".join(KINDS), help="prediction kinds, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    listener, _ = synthetic_ground_truth(1600, rng)
    appropriate = nearest_matrix(listener, rng.integers(10, 51, size=1600))
    clips = np.random.default_rng(args.seed + 1).choice(1600, args.clips, replace=False)
    with tempfile.TemporaryDirectory(prefix="frd_ab_") as tmp:
        base = load_revision(args.base, Path(tmp))
        versions = {f"base {args.base}": base, "this tree": current}
        for module in versions.values():
            module.set_threads(1)
        for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
            pred = make_kind(kind, listener, appropriate[clips], seed=args.seed)
            queries = pred.reshape(-1, *pred.shape[2:])
            lists = [np.flatnonzero(appropriate[c]) for c in clips for _ in range(pred.shape[1])]
            ptr = np.concatenate([[0], np.cumsum([len(c) for c in lists])])
            cand = np.concatenate(lists)
            seconds: dict[str, list[float]] = {name: [] for name in versions}
            minima = {}
            for module in versions.values():  # compile outside the timing
                module.min_group_dtw(queries[:2], listener, ptr[:3], cand[:ptr[2]])
            for _ in range(args.repeats):
                for name, module in versions.items():
                    start = time.process_time()
                    minima[name], _ = module.min_group_dtw(queries, listener, ptr, cand)
                    seconds[name].append(time.process_time() - start)
            values = list(minima.values())
            agree = np.max(np.abs(values[0] - values[1]) / values[0])
            runs = "; ".join(f"{name} {', '.join(f'{s:.2f}' for s in v)} s" for name, v in seconds.items())
            ratio = min(seconds[f"base {args.base}"]) / min(seconds["this tree"])
            print(f"{kind}: {len(cand)} pairs; {runs}; this tree {ratio:.2f}x as fast; minima agree to "
                  f"{agree:.0e}", flush=True)
            if agree > 1e-12:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
