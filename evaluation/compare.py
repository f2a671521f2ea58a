"""Score any number of prediction folders on one split in one run and write one comparison table.

    react compare --data-dir D --split test --pred-dir NAME=DIR [NAME=DIR ...] --out-dir OUTDIR
        [--workers N] [--device cpu|cuda] [--tlcc-samples first|all]

Every folder is checked first (a missing folder or missing ``result-<k>.pth`` files are named and
the exit code is 2, before any scoring). The split's ground truth is then read once, and each
folder is loaded and scored in turn with :func:`evaluation.compute_metrics`, its official
printout shown. ``OUTDIR`` receives ``comparison.md`` (markdown table), ``comparison.csv`` (full
precision) and ``comparison.tex`` (the official LaTeX row of each folder,
``name & FRC & FRD & S-MSE & FRVar & FRDvs & - & TLCC \\``).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.cli import CHOICES
from evaluation.metrics import METRIC_KEYS
from evaluation.report import latex_row, report
from react.reaction.data import react_layout as L
from react.utils.cli import add_data_dir, add_out_dir, add_pred_dir, add_split

OUTPUTS = ("comparison.md", "comparison.csv", "comparison.tex")
BETTER = {"FRC": "↑", "FRD": "↓", "S-MSE": "↑", "FRVar": "↑", "FRDvs": "↑", "TLCC": "↓"}
LATEX_SPECIAL = {c: "\\" + c for c in "_&%#$"}

Row = tuple[str, Path, Mapping[str, Any]]  # name, prediction folder, metrics


def parse_pred(spec: str) -> tuple[str, Path]:
    """``NAME=DIR`` -> ``(NAME, Path(DIR))``; raises ``ValueError`` when either part is empty."""
    name, sep, folder = spec.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise ValueError(f"--pred-dir expects NAME=DIR, got {spec!r}")
    return name.strip(), Path(folder.strip())


def check_folders(preds: Mapping[str, Path], split: L.Split) -> list[str]:
    """One line per folder that is missing or lacks prediction files of ``split``."""
    problems = []
    for name, folder in preds.items():
        if not (folder / split.name).is_dir():
            problems.append(f"{name}: prediction folder not found: {folder / split.name}")
            continue
        missing = [path for clip in split.clips for k in range(L.NUM_PREDICTIONS)
                   if not (path := L.prediction_path(folder, split.name, clip, k)).is_file()]
        if missing:
            problems.append(f"{name}: {len(missing)} of {len(split) * L.NUM_PREDICTIONS} prediction files "
                            f"missing under {folder / split.name}, e.g. {missing[0]}")
    return problems


def score_folders(data_dir: str | os.PathLike, split_name: str, preds: Mapping[str, Path],
                  **metric_options: Any) -> list[Row]:
    """Metrics of every folder, ground truth read once; ``metric_options`` go to ``compute_metrics``."""
    from evaluation.loading import EvalInputError, load_ground_truth, load_predictions
    from evaluation.metrics import compute_metrics

    split = L.read_split(data_dir, split_name)
    problems = check_folders(preds, split)
    if problems:
        raise EvalInputError(problems)
    listener, speaker, appropriate = load_ground_truth(split)
    rows = []
    for name, folder in preds.items():
        try:
            pred = load_predictions(folder, split, progress=True)
        except EvalInputError as err:
            raise EvalInputError([f"{name}: {p}" for p in err.problems]) from None
        metrics = compute_metrics(pred, listener, speaker, appropriate, progress=True, **metric_options)
        print(f"{name} ({folder})\n{report(metrics, latex_name(name))}")
        rows.append((name, folder, metrics))
    return rows


def latex_name(name: str) -> str:
    """``name`` with LaTeX's special characters escaped (``B_GT`` -> ``B\\_GT``)."""
    return "".join(LATEX_SPECIAL.get(c, c) for c in name)


def markdown_table(rows: list[Row]) -> str:
    """One line per folder: the six metrics (5 decimals, as the official printout)."""
    header = ["", *(f"{k} {BETTER[k]}" for k in METRIC_KEYS), "TLCC worst clips"]
    align = [" --- "] + [" ---: "] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for name, _, m in rows:
        cells = [name, *(f"{m[k]:.5f}" for k in METRIC_KEYS), str(m["TLCC_worst_clips"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: list[Row]) -> str:
    """``name, pred_dir``, the six metrics at full precision and ``TLCC_worst_clips``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "pred_dir", *METRIC_KEYS, "TLCC_worst_clips"])
    for name, folder, m in rows:
        writer.writerow([name, str(folder), *(repr(float(m[k])) for k in METRIC_KEYS), m["TLCC_worst_clips"]])
    return buffer.getvalue()


def latex_rows(rows: list[Row]) -> str:
    """The official LaTeX row of every folder (without the printout's ``Latex-friendly -->``)."""
    lines = ["% name & FRC & FRD & S-MSE & FRVar & FRDvs & FRRea & TLCC"]
    lines += [latex_row(m, latex_name(name)).partition("--> ")[2] for name, _, m in rows]
    return "\n".join(lines) + "\n"


def write_tables(rows: list[Row], out: str | os.PathLike) -> list[Path]:
    """Write ``comparison.{md,csv,tex}`` into ``out`` (atomically); returns their paths."""
    from react.utils.io import atomic_path

    paths = []
    for filename, text in zip(OUTPUTS, (markdown_table(rows), csv_table(rows), latex_rows(rows))):
        with atomic_path(Path(out) / filename) as tmp:
            tmp.write_text(text)
        paths.append(Path(out) / filename)
    return paths


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="react compare", description=__doc__.split("\n")[0])
    add_data_dir(parser, required=True, help="REACT dataset root")
    add_split(parser)
    add_pred_dir(parser, nargs="+", required=True, metavar="NAME=DIR",
                 help="prediction folders (<DIR>/<split>/<clip>/result-<k>.pth), one table row each")
    add_out_dir(parser, required=True, help="folder for comparison.{md,csv,tex}")
    parser.add_argument("--workers", type=int, default=0, help="CPU threads (0 = all cores)")
    parser.add_argument("--device", default="cpu", choices=CHOICES["device"])
    parser.add_argument("--tlcc-samples", default="first", choices=CHOICES["tlcc_samples"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        preds = dict(parse_pred(spec) for spec in args.pred_dir)
        if len(preds) != len(args.pred_dir):
            raise ValueError("--pred-dir names must be unique: " + " ".join(args.pred_dir))
        if args.workers < 0:
            raise ValueError(f"--workers must be >= 0 (0 = all cores), got {args.workers}")
        if args.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("--device cuda but torch sees no CUDA device")
        rows = score_folders(args.data_dir, args.split, preds, tlcc_samples=args.tlcc_samples,
                             device=args.device, workers=args.workers or None)
    except ValueError as err:  # includes LayoutError and EvalInputError, which list every problem
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = write_tables(rows, args.out_dir)
    print(markdown_table(rows), end="")
    print("written: " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
