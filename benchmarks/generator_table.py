"""Every listed generator and the seven naive baselines in one `evaluation.compare`-style table.

The mechanism of ``benchmarks/regnn_table.py`` (same synthetic set and stand-in features, same
training budget flags, same baselines, same scoring), for any configs of registered generators
(docs/generators.md): each config trains through ``train.py`` for at most ``--max-epochs`` epochs of
``--steps`` batches (early stop after ``--patience`` epochs without a lower validation loss), its
best weights generate 10 reactions per test clip, and ``table.md`` adds, per model, its trainable
parameters and the seconds ``train.py`` took (training, validation and the test generation).

    nice -n 10 python benchmarks/generator_table.py --configs configs/regnn_official_tiny.yaml \\
        configs/regnn_tiny.yaml [...] --out-dir runs/generator_table [--seeds 0] [--pairs 48]
        [--eval-pairs 50] [--max-epochs 60] [--patience 3] [--steps 10] [--table-only]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from regnn_table import COLUMNS, compare, parser  # noqa: E402

from react.engine import load_checkpoint  # noqa: E402

COLUMNS_WITH_COST = {**COLUMNS, "parameters": "parameters", "seconds": "seconds"}


def describe(run_dir: Path) -> dict:
    """The trainable parameters of a finished run's model."""
    _, model, _ = load_checkpoint(run_dir / "checkpoints" / "best")
    return {"parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(__doc__.split("\n")[0], "runs/generator_table")
    args_parser.add_argument("--configs", nargs="+", required=True, help="task configs, one model each")
    args = args_parser.parse_args(argv)
    missing = [c for c in args.configs if not Path(c).is_file()]
    if missing:
        print(f"error: {', '.join(missing)}: config not found", file=sys.stderr)
        return 2
    print(compare({Path(c).stem: c for c in args.configs}, args, COLUMNS_WITH_COST, describe))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
