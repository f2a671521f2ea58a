"""The training tools on synthetic XRoom sessions: SSL throughput, and the evidence of issue 15.

``throughput``: SSL pre-training (the ``ssl`` task on the engine: loader, collate, two augmented
views on the device, forward, backward, step) in windows per second, against the model alone
(forward, backward, step) on batches of the same size with their views made beforehand. Segments of
``--steps`` batches alternate between the two (in turn which goes first) and the median of the
paired ratios is reported with the 1-minute load average (goal: pipeline >= 90 % of model-only).

``evidence``: participant-independent splits (per-session z-score, the reference scaling), each
seed drawing its own participant split, test UAR / macro-F1 / accuracy, mean and spread over seeds:
  1. ``--ssl-modality`` (bio), 10 % of the training labels (``--label-unit``: of the labelled
     intervals, i.e. self-reports, by default): CNN1D from scratch vs the same CNN1D
     pre-trained with SimCLR on the unlabelled windows of the training participants, then fine-tuned
     (or frozen); ``--fusion late`` for one encoder per modality, ``--ssl-set`` / ``--ssl-finetune-set``
     for further settings of the pre-training / of the fine-tuning from it (cross-modal VICReg:
     ``--ssl-modality bio+body --fusion late --ssl-set ssl.ssl.positives=modalities
     ssl.ssl.framework=vicreg``);
  2. all labels, from scratch: bio vs body vs bio+body (early fusion, late fusion), all on the
     same 5 s windows.

    python benchmarks/bench_tools.py throughput [--batch-size 256] [--steps 6] [--rounds 12]
    python benchmarks/bench_tools.py evidence [--participants 12] [--seeds 0 1 2 3 4] [--out ev.json]
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

import make_synthetic_xroom as gen  # noqa: E402

from react.engine import run  # noqa: E402
from react.engine.trainer import resume, setup, train_epoch  # noqa: E402
from react.tasks.ssl import pairwise_loss  # noqa: E402
from react.tools.config import load_tools_config  # noqa: E402
from react.tools.stages import STAGES, task_config  # noqa: E402

CONFIG = ROOT / "configs" / "tools" / "xroom_bio.yaml"
SPLIT = [
    "preprocess.scaler=session",
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


# ----- evidence ---------------------------------------------------------------------------------
def finetune(
    root: Path, out: Path, modality: str, name: str, seed: int, args: argparse.Namespace, *overrides: str
) -> dict:
    cfg = tools(
        root,
        out,
        modality,
        f"finetune.seed={seed}",
        f"finetune.out_dir={out / 'runs' / name / str(seed)}",
        f"finetune.train.epochs={args.epochs}",
        "finetune.train.lr=1e-3",
        "finetune.train.batch_size=32",
        "finetune.train.keep_last=1",
        "finetune.train.log_every=1000000",
        *overrides,
    )
    task_cfg = task_config(cfg, "finetune")
    run(task_cfg)
    return json.loads((Path(task_cfg.out_dir) / "test_metrics.json").read_text())


def evidence(args: argparse.Namespace) -> dict:
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root, out = (
            gen.generate(Path(tmp) / "XRoom", args.participants, 2, args.levels, args.data_seed),
            Path(tmp),
        )
        scaling = (f"preprocess.overlap={args.overlap}", f"preprocess.scaler={args.scaler}")
        for seed in args.seeds:  # each seed also draws its own participant split
            split_out = out / f"split{seed}"
            modalities = {args.ssl_modality} if "ssl" in args.parts else set()
            modalities |= set(MODALITIES) if "fusion" in args.parts else set()
            for modality in MODALITIES:  # one window geometry (5 s) for all
                if modality in modalities:
                    STAGES["preprocess"](tools(root, split_out, modality, *scaling, f"seed={seed}"))
            if "ssl" in args.parts:
                ssl_evidence(root, split_out, args, seed, results)
            if "fusion" in args.parts:
                fusion_evidence(root, split_out, args, seed, results)
    print(
        f"\ntest set: participant-independent, {len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}); "
        "mean ± standard deviation"
    )
    print(f"{'setting':<44}{'UAR':>16}{'macro-F1':>16}{'accuracy':>16}   UAR per seed")
    summary = {}
    for label, metrics in results.items():
        cols = {k: [m[k] for m in metrics] for k in ("uar", "macro_f1", "accuracy")}
        summary[label] = cols
        print(
            f"{label:<44}"
            + "".join(f"{spread(v):>16}" for v in cols.values())
            + "   "
            + " ".join(f"{u:.3f}" for u in cols["uar"])
        )
    return summary


def ssl_evidence(root: Path, out: Path, args: argparse.Namespace, seed: int,
                 results: dict[str, list[dict]]) -> None:
    """``--ssl-modality``, ``--fraction`` of the labels, on the participant split of ``out``: the
    classifier from scratch vs pre-trained with SimCLR on the training participants' unlabelled
    windows (then fine-tuned, or frozen)."""
    modality = args.ssl_modality
    STAGES["ssl-train"](
        tools(
            root,
            out,
            modality,
            f"ssl.seed={seed}",
            f"ssl.train.epochs={args.ssl_epochs}",
            "ssl.train.lr=1e-3",
            "ssl.train.batch_size=256",
            "ssl.train.log_every=1000000",
            f"ssl.model.encoder.fusion={args.fusion}",
            *args.ssl_set,
        )
    )
    fraction = (f"finetune.data.label_fraction={args.fraction}",
                f"finetune.data.label_unit={args.label_unit}",
                f"finetune.model.encoder.fusion={args.fusion}")
    runs = {
        "scratch": (),
        "ssl": ("finetune.model.weights=auto", *args.ssl_finetune_set),
        "ssl_frozen": ("finetune.model.weights=auto", "finetune.model.freeze_encoder=true"),
    }
    for name, extra in runs.items():
        label = f"{modality} {args.fraction:.0%} {args.label_unit}s, {args.fusion}, {name}"
        results.setdefault(label, []).append(
            finetune(root, out, modality, f"{modality}_{name}", seed, args, *fraction, *extra)
        )


def fusion_evidence(root: Path, out: Path, args: argparse.Namespace, seed: int,
                    results: dict[str, list[dict]]) -> None:
    """All labels, from scratch, on the participant split of ``out``: bio, body, early and late fusion."""
    for modality, extra in (
        ("bio", ()),
        ("body", ()),
        ("bio+body", ()),
        ("bio+body", ("finetune.model.encoder.fusion=late",)),
    ):
        fusion = ", late fusion" if extra else (", early fusion" if "+" in modality else "")
        label = f"{modality} all labels{fusion}"
        results.setdefault(label, []).append(
            finetune(root, out, modality, label.replace(" ", "_").replace(",", ""), seed, args, *extra)
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--levels", type=int, default=30, help="game levels in each of 6 sessions (~35 s each)")
    tp.add_argument("--batch-size", type=int, default=256)
    tp.add_argument("--steps", type=int, default=6, help="batches in one timed segment")
    tp.add_argument("--rounds", type=int, default=12, help="pairs of segments (pipeline, model only)")
    tp.add_argument("--device", default="auto")
    ev = sub.add_parser("evidence")
    ev.add_argument("--participants", type=int, default=10)
    ev.add_argument("--levels", type=int, default=10)
    ev.add_argument("--data-seed", type=int, default=0)
    ev.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ev.add_argument("--fraction", type=float, default=0.1)
    ev.add_argument("--label-unit", default="interval", choices=("interval", "window"),
                    help="what --fraction counts: labelled intervals (self-reports, all their windows) "
                    "or single windows")
    ev.add_argument(
        "--overlap", type=float, default=0.5, help="window overlap (the reference bio default: 0.8)"
    )
    ev.add_argument("--epochs", type=int, default=30)
    ev.add_argument("--ssl-epochs", type=int, default=20)
    ev.add_argument("--scaler", default="session", choices=("session", "train"),
                    help="session: each session scaled by its own statistics (the reference); train: "
                    "statistics of the training participants")
    ev.add_argument("--parts", nargs="+", default=["ssl", "fusion"], choices=("ssl", "fusion"))
    ev.add_argument("--ssl-set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="further overrides of the SSL pre-training, e.g. ssl.augment.scale.probability=0")
    ev.add_argument("--ssl-finetune-set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="further overrides of the fine-tuning from the SSL encoder (not of the frozen "
                    "run), e.g. finetune.train.lr_scales.encoder=0.1")
    ev.add_argument("--fusion", default="early", choices=("early", "late"),
                    help="the encoder of the SSL comparison for bio+body: one over all channels, or one "
                    "per modality")
    ev.add_argument("--ssl-modality", default="bio", choices=tuple(MODALITIES),
                    help="the modality of the SSL comparison (bio+body: see --fusion)")
    for p in (tp, ev):
        p.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    figures = throughput(args) if args.what == "throughput" else evidence(args)
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
