"""Accuracy against diversity: generate at several sampling scales, score each, tabulate and plot.

    react sweep --checkpoint RUN --scales 0.5,1,2,4 --out-dir DIR [--split test] [--samples 10]
                [--seed 0] [--data-dir D] [--features-dir F] [--device cpu|cuda] [key=value ...]

For every scale ``s`` the checkpoint's model writes ``DIR/scale_<s>/<split>/<clip>/result-<k>.pth``
(``sampling.scale=s``, everything else as stored or overridden) and the evaluation scores them.
``DIR`` then holds ``sweep.csv`` (full precision), ``sweep.md`` (the table) and ``sweep.png``:
FRC and FRD (accuracy) against S-MSE, FRVar and FRDvs (diversity), one point per scale, so a user
can pick the trade-off.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from evaluation.metrics import METRIC_KEYS
from react.reaction.data import react_layout as L
from react.reaction.generation import generate_split
from react.reaction.loading import add_checkpoint_data
from react.utils.cli import add_out_dir, add_split
from react.utils.io import atomic_path

ACCURACY = ("FRC", "FRD")
DIVERSITY = ("S-MSE", "FRVar", "FRDvs")
OUTPUTS = ("sweep.csv", "sweep.md", "sweep.png")


def parse_scales(text: str) -> list[float]:
    """``"0.5,1,2"`` -> ``[0.5, 1.0, 2.0]``; raises ``ValueError`` for an empty, negative or bad list."""
    try:
        scales = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--scales expects comma-separated numbers, got {text!r}") from None
    if not scales or min(scales) < 0:
        raise ValueError(f"--scales needs at least one scale >= 0, got {text!r}")
    return list(dict.fromkeys(scales))


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["scale", *METRIC_KEYS, "pred_dir"])
    for r in rows:
        writer.writerow([repr(r["scale"]), *(repr(float(r[k])) for k in METRIC_KEYS), r["pred_dir"]])
    return buffer.getvalue()


def markdown(rows: list[dict]) -> str:
    lines = ["| scale | " + " | ".join(METRIC_KEYS) + " |", "| ---: |" + " ---: |" * len(METRIC_KEYS)]
    lines += [f"| {r['scale']:g} | " + " | ".join(f"{r[k]:.5f}" for k in METRIC_KEYS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """FRC and FRD against the three diversity metrics, points labelled with their scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(ACCURACY), len(DIVERSITY), figsize=(11, 6.5), squeeze=False)
    for i, acc in enumerate(ACCURACY):
        for j, div in enumerate(DIVERSITY):
            ax = axes[i][j]
            xs, ys = [r[div] for r in rows], [r[acc] for r in rows]
            ax.plot(xs, ys, "o-")
            for r, x, y in zip(rows, xs, ys):
                ax.annotate(f"{r['scale']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax.set_xlabel(f"{div} (diversity, higher = more)")
            ax.set_ylabel(f"{acc} ({'higher' if acc == 'FRC' else 'lower'} is better)")
            ax.grid(alpha=0.3)
    fig.suptitle("Accuracy against diversity by sampling scale")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def sweep(task, model, cfg, split: str, scales: list[float], out: Path, samples: int = L.NUM_PREDICTIONS,
          seed: int = 0, device: str = "cpu") -> list[dict]:
    """Generate and score at every scale; write the table and the plot into ``out``."""
    dataset = task.dataset(split)
    model = model.to(device)
    rows = []
    for scale in scales:
        pred_dir = out / f"scale_{scale:g}"
        preds = generate_split(model, dataset, pred_dir, samples, seed, device, scale=scale,
                               stitch=cfg.sampling.stitch)
        metrics = task.score(dataset, preds)
        scores = {k: float(metrics[k]) for k in METRIC_KEYS}
        rows.append({"scale": scale, **scores, "pred_dir": str(pred_dir)})
        print(f"scale {scale:g}: " + " ".join(f"{k} {metrics[k]:.5f}" for k in METRIC_KEYS), flush=True)
    for name, text in zip(OUTPUTS[:2], (csv_text(rows), markdown(rows))):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)
    plot(rows, out / OUTPUTS[2])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Sweep the sampling scale of a checkpoint (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="react sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="run dir, checkpoint dir or state.pt")
    parser.add_argument("--scales", required=True, help="comma-separated sampling scales, e.g. 0.5,1,2,4")
    add_out_dir(parser, required=True, type=Path, help="folder for predictions, table and plot")
    add_split(parser)
    parser.add_argument("--samples", type=int, default=L.NUM_PREDICTIONS)
    parser.add_argument("--seed", type=int, default=0)
    add_checkpoint_data(parser)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="checkpoint config overrides")
    args = parser.parse_args(argv)
    from react.config import ConfigError
    from react.engine import CheckpointError
    from react.errors import user_message
    from react.reaction.loading import data_overrides, flat_overrides, load_for_generation
    from react.utils.device import resolve_device

    try:
        scales = parse_scales(args.scales)
        overrides = {**data_overrides(args), **flat_overrides(args.overrides)}
        task, model, cfg = load_for_generation(args.checkpoint, overrides)
        device = resolve_device(args.device)
        sweep(task, model, cfg, args.split, scales, args.out_dir, args.samples, args.seed, device)
    except (ValueError, FileNotFoundError, CheckpointError, ConfigError) as err:  # LayoutError: a ValueError
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print("written: " + ", ".join(str(args.out_dir / name) for name in OUTPUTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
