"""The training tools on synthetic XRoom sessions: SSL throughput, and the evidence.

``throughput``: SSL pre-training (the ``ssl`` task on the engine: loader, collate, two augmented
views on the device, forward, backward, step) in windows per second, against the model alone
(forward, backward, step) on batches of the same size with their views made beforehand. Segments of
``--steps`` batches alternate between the two (in turn which goes first) and the median of the
paired ratios is reported with the 1-minute load average (goal: pipeline >= 90 % of model-only).

``evidence-all``: every figure of the tools evidence in the README and docs/tools.md, under the
inductive protocol, with the pre-processing chosen on validation participants first
(``benchmarks/tools_evidence.py``; writes ``docs/results/tools/{selection,evidence}.{json,md}``).

    python benchmarks/bench_tools.py throughput [--batch-size 256] [--steps 6] [--rounds 12] [--out t.json]
    nice -n 10 python benchmarks/bench_tools.py evidence-all [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import make_synthetic_xroom as gen  # noqa: E402
import tools_evidence as evidence  # noqa: E402

from react.engine.trainer import resume, setup, train_epoch  # noqa: E402
from react.tasks.ssl import pairwise_loss  # noqa: E402
from react.tools.config import load_tools_config  # noqa: E402
from react.tools.stages import STAGES, task_config  # noqa: E402

CONFIG = ROOT / "configs" / "tools" / "xroom_bio.yaml"
SPLIT = [
    "preprocess.val_fraction=0.2",
    "preprocess.test_fraction=0.2",
    "preprocess.get_stats=false",
]
MODALITIES = {"bio": "[bio]", "body": "[body]", "bio+body": "[bio,body]"}


def tools(root: Path, out: Path, modality: str, *overrides: str):
    """The bio config on ``root`` with the benchmark's splits, for ``modality`` (bio, body, bio+body)."""
    return load_tools_config(
        CONFIG,
        [
            f"dataset.root={root}",
            f"dataset.output_dir={out}",
            *SPLIT,
            f"preprocess.modalities={MODALITIES[modality]}",
            *overrides,
        ],
    )


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


# ----- throughput -------------------------------------------------------------------------------
def throughput(args: argparse.Namespace) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root, out = (
            gen.generate(Path(tmp) / "XRoom", participants=6, sessions=1, levels=args.levels),
            Path(tmp),
        )
        cfg = tools(root, out, "bio", "preprocess.val_fraction=0", "preprocess.test_fraction=0")
        STAGES["preprocess"](cfg)
        task_cfg = task_config(cfg, "ssl")
        for key, value in {
            "train.batch_size": args.batch_size,
            "train.epochs": 2 * args.rounds + 1,
            "train.max_steps_per_epoch": args.steps,
            "train.val_every": 0,
            "train.ckpt_every": 0,
            "train.test_at_end": False,
            "train.log_every": 10**6,
            "device": args.device,
        }.items():
            OmegaConf.update(task_cfg, key, value, merge=False)
        r = setup(task_cfg)
        resume(r)
        if r.items < args.steps * args.batch_size:
            raise SystemExit(f"{r.items} windows: fewer than --steps x --batch-size; raise --levels")
        n = args.steps * args.batch_size  # windows in one timed segment (full batches only)
        device = r.acc.device
        batches = [
            r.task.collate(list(range(i * args.batch_size, (i + 1) * args.batch_size)))["x"].to(device)
            for i in range(args.steps)
        ]
        views = [r.task.augment(x, views=2) for x in batches]  # as the task makes them
        model, opt = r.model, r.optimizer

        def model_only() -> float:
            start = time.perf_counter()
            for v in views:
                with r.acc.autocast():
                    loss = pairwise_loss(model(v)[0].unflatten(0, (2, -1)), task_cfg.ssl)[0]  # as the task
                opt.zero_grad(set_to_none=True)
                r.acc.backward(loss)
                r.acc.clip_grad_norm_(model.parameters(), task_cfg.train.grad_clip)  # as the engine does
                opt.step()
            _sync(device)
            return n / (time.perf_counter() - start)

        def pipeline(epoch: int) -> float:
            start = time.perf_counter()
            train_epoch(r, epoch)
            _sync(device)
            return n / (time.perf_counter() - start)

        train_epoch(r, 0)  # warm-up
        model_only()
        pipe, alone = [], []
        for i in range(args.rounds):  # alternate which goes first, so that a drifting load hits both
            if i % 2:
                alone.append(model_only())
                pipe.append(pipeline(1 + i))
            else:
                pipe.append(pipeline(1 + i))
                alone.append(model_only())
        r.writer.close()
    load_after = os.getloadavg()
    ratios = [p / m for p, m in zip(pipe, alone)]
    p, m, ratio = statistics.median(pipe), statistics.median(alone), statistics.median(ratios)
    print(
        f"SSL pre-training ({task_cfg.model.encoder.name}, {task_cfg.ssl.framework}, "
        f"batch {args.batch_size}, segments of {args.steps} batches of {tuple(batches[0].shape[1:])}, "
        f"{args.rounds} rounds, device {device}, {torch.get_num_threads()} threads)"
    )
    print(
        f"  pipeline   {p:9.0f} windows/s median, {max(pipe):.0f} best  "
        f"(rounds: {', '.join(f'{x:.0f}' for x in pipe)})"
    )
    print(
        f"  model only {m:9.0f} windows/s median, {max(alone):.0f} best  "
        f"(rounds: {', '.join(f'{x:.0f}' for x in alone)})"
    )
    print(
        f"  ratio      {ratio:9.1%}  median of the paired rounds; best/best {max(pipe) / max(alone):.1%} "
        "(goal >= 90 %)"
    )
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    return {
        "pipeline_wps": p,
        "model_only_wps": m,
        "ratio": ratio,
        "ratio_best": max(pipe) / max(alone),
        "pipeline_rounds": pipe,
        "model_only_rounds": alone,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "load_before": load_before[0],
        "load_after": load_after[0],
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--levels", type=int, default=30, help="game levels in each of 6 sessions (~35 s each)")
    tp.add_argument("--batch-size", type=int, default=256)
    tp.add_argument("--steps", type=int, default=6, help="batches in one timed segment")
    tp.add_argument("--rounds", type=int, default=12, help="pairs of segments (pipeline, model only)")
    tp.add_argument("--device", default="auto")
    ea = sub.add_parser("evidence-all", help="every tools figure of the README and docs/tools.md")
    defaults = evidence.Settings()
    ea.add_argument("--generators", nargs="+", default=defaults.generators,
                    choices=tuple(evidence.GENERATORS))
    ea.add_argument("--sets", type=int, default=defaults.sets, help="generated sets (data seeds 0 ..)")
    ea.add_argument("--seeds", type=int, nargs="+", default=defaults.seeds, help="participant splits per set")
    ea.add_argument("--select-seeds", type=int, nargs="+", default=defaults.select_seeds,
                    help="the seeds of the selection on validation participants")
    for name in ("select_sets", "participants", "levels", "epochs", "ssl_epochs", "jobs"):
        ea.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    ea.add_argument("--fraction", type=float, default=defaults.fraction, help="labels of the SSL comparison")
    ea.add_argument("--out-dir", default=str(ROOT / "docs" / "results" / "tools"),
                    help="selection.{json,md}, evidence.{json,md}")
    tp.add_argument("--out", help="also write the figures as JSON here")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv or ["throughput"])  # no subcommand (make bench): the throughput
    if args.what == "evidence-all":
        settings = evidence.Settings(**{k: getattr(args, k) for k in evidence.Settings.__dataclass_fields__})
        evidence.evidence_all(settings, Path(args.out_dir))
        return 0
    figures = throughput(args)
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
