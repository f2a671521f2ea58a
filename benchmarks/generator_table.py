"""Every listed generator and the seven naive baselines in one `evaluation.compare`-style table.

The mechanism of ``benchmarks/regnn_table.py`` (same synthetic set and stand-in features, same
training budget flags, same baselines, same scoring), for any configs of registered generators
(docs/generators.md): each config trains through ``train.py`` for at most ``--max-epochs`` epochs of
``--steps`` batches (early stop after ``--patience`` epochs without a lower validation loss), with
one torch thread (``deterministic=true``: tiny models run many small operations, which extra
threads slow down on a loaded machine); its best weights generate 10 reactions per test clip, and
``table.md`` adds, per model, its parameters and the seconds ``train.py`` took (training,
validation and the test generation).

A two-stage model names its first stage with ``--stage1 STEM=CONFIG`` (STEM: the file name of the
second stage's config without ``.yaml``): for each seed, CONFIG trains first (same budget, into
``OUT/<its stem>/seedN``), then the second stage with ``model.vae_checkpoint`` set to that run; the
model's epochs read ``stage 1 + stage 2`` and its seconds are both stages' together.

    nice -n 5 python benchmarks/generator_table.py --configs configs/regnn_official_tiny.yaml \\
        configs/regnn_tiny.yaml configs/belfusion.yaml [...] \\
        [--stage1 belfusion=configs/belfusion_vae.yaml] --out-dir runs/generator_table [--seeds 0]
        [--pairs 48] [--eval-pairs 50] [--max-epochs 60] [--patience 3] [--steps 10] [--table-only]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from regnn_table import COLUMNS, compare, parser, train_model  # noqa: E402

from react.engine import load_checkpoint  # noqa: E402

COLUMNS_WITH_COST = {**COLUMNS, "parameters": "parameters", "seconds": "seconds"}
STAGE1_KEY = "model.vae_checkpoint"  # where a second stage reads its first stage's run
ONE_THREAD = ("deterministic=true",)


def describe(run_dir: Path) -> dict:
    """The parameters of a finished run's model (trainable or not: BeLFusion's count holds its
    frozen stage-1 VAE)."""
    _, model, _ = load_checkpoint(run_dir / "checkpoints" / "best")
    return {"parameters": f"{sum(p.numel() for p in model.parameters()):,}"}


def stage1_configs(specs: list[str]) -> dict[str, str]:
    """``STEM=CONFIG`` pairs -> {stem of a second-stage config: its first stage's config}; ValueError
    naming the bad entry."""
    pairs = {}
    for spec in specs:
        stem, _, config = spec.partition("=")
        if not stem or not config:
            raise ValueError(f"--stage1 {spec}: expected STEM=CONFIG, "
                             "e.g. belfusion=configs/belfusion_vae.yaml")
        pairs[stem] = config
    return pairs


def trainer(stage1: dict[str, str]):
    """:func:`train_model` with one thread, training a config's first stage (``stage1``) before it."""

    def train(config: str, seed: int, data: Path, run_dir: Path, args: argparse.Namespace) -> dict:
        first = stage1.get(Path(config).stem)
        if first is None:
            return train_model(config, seed, data, run_dir, args, ONE_THREAD)
        first_dir = run_dir.parents[1] / Path(first).stem / run_dir.name
        one = train_model(first, seed, data, first_dir, args, ONE_THREAD, done="seconds.txt")
        two = train_model(config, seed, data, run_dir, args, (*ONE_THREAD, f"{STAGE1_KEY}={first_dir}"))
        seconds = [one["seconds"], two["seconds"]]
        total = str(sum(int(s) for s in seconds)) if all(s.isdigit() for s in seconds) else "?"
        return two | {"epochs": f"{one['epochs']} + {two['epochs']}", "seconds": total}

    return train


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(__doc__.split("\n")[0], "runs/generator_table")
    args_parser.add_argument("--configs", nargs="+", required=True, help="task configs, one model each")
    args_parser.add_argument("--stage1", nargs="*", default=[], metavar="STEM=CONFIG",
                             help="the first-stage config of the --configs entry named STEM")
    args = args_parser.parse_args(argv)
    try:
        stage1 = stage1_configs(args.stage1)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stems = {Path(c).stem for c in args.configs}
    unknown = [f"--stage1 {stem}: no --configs entry named {stem}" for stem in stage1 if stem not in stems]
    missing = [f"{c}: config not found" for c in [*args.configs, *stage1.values()] if not Path(c).is_file()]
    if unknown or missing:
        print(f"error: {'; '.join(unknown + missing)}", file=sys.stderr)
        return 2
    models = {Path(c).stem: c for c in args.configs}
    print(compare(models, args, COLUMNS_WITH_COST, describe, trainer(stage1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
