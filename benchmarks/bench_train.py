"""REGNN speed on CPU: training windows/s end to end vs model only, generation clips/s.

    python benchmarks/bench_train.py [--configs configs/regnn_tiny.yaml configs/regnn.yaml
                                      configs/regnn_official.yaml] [--steps 6] [--repeats 2]
                                     [--threads 2] [--workers 0] [--batch-size 32] [--out results.json]

For each config, on a synthetic REACT set with stand-in features of the config's dims
(:mod:`react.data.proxy_features`): *end to end* is the engine's training step fed by a shuffling
DataLoader (window reads, resampling, neighbour gathering, augmentation, collation included);
*model only* runs the same optimiser steps on the same batches built beforehand. Each is timed
``--repeats`` times alternately and the best is kept; the ratio end-to-end / model-only is the
share of the model's speed that training keeps (>= 0.9 expected). Generation is ``generate_split``:
10 reactions per clip, all windows and samples of a clip in one batched pass. ``--batch-size``
replaces the configs' batch size (32: the setting of the official code's anchor below).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import torch  # noqa: E402
from make_synthetic_react import generate  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from react.data.proxy_features import write_proxy_features  # noqa: E402
from react.engine.optim import build_optimizer  # noqa: E402
from react.reaction.generation import generate_split  # noqa: E402
from react.reaction.task import Task  # noqa: E402
from react.tasks import load_task_config  # noqa: E402

# The official REGNN code (its own loop, model only, 2 CPU threads, batch 32 x 10 neighbours)
OFFICIAL_ANCHOR = "official REGNN code: 97 windows/s model only (2 threads, batch 32 x 10 neighbours)"


def train_steps(task: Task, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches) -> int:
    """The engine's inner loop (step, backward, clipping, update); returns windows trained on."""
    windows = 0
    for batch in batches:
        loss, _ = task.training_step(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if task.cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), task.cfg.train.grad_clip)
        optimizer.step()
        windows += len(batch["index"])
    return windows


def timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    count = fn()
    return time.perf_counter() - start, count


def forever(loader: DataLoader):
    """Batches of epoch after epoch (the engine's persistent workers are kept between epochs)."""
    while True:
        yield from loader


def bench_config(path: Path, data: Path, steps: int, repeats: int, workers: int, batch_size: int = 0) -> dict:
    overrides = [f"data.root={data}", f"out_dir={data / 'run'}", f"train.num_workers={workers}"]
    cfg = load_task_config(path, overrides + ([f"train.batch_size={batch_size}"] if batch_size else []))
    p = cfg.model.perceptual
    if not (data / f"dims_{p.video_dim}_{p.audio_dim}").exists():
        write_proxy_features(data, p.video_dim, p.audio_dim)
        (data / f"dims_{p.video_dim}_{p.audio_dim}").touch()
    torch.manual_seed(0)
    task = Task(cfg, data / "run")
    model, dataset = task.build_model(), task.train_dataset()
    optimizer = build_optimizer(model, cfg.train)  # the engine's (Adam with the config's weight decay)
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, collate_fn=task.collate,
                        num_workers=workers, persistent_workers=workers > 0, drop_last=True)
    stream = forever(loader)

    def end_to_end() -> int:
        return train_steps(task, model, optimizer, (next(stream) for _ in range(steps)))

    prebuilt = [next(stream) for _ in range(steps)]
    train_steps(task, model, optimizer, prebuilt[:1])  # warm-up
    e2e, bare = [], []
    for _ in range(repeats):
        bare.append(timed(lambda: train_steps(task, model, optimizer, prebuilt)))
        e2e.append(timed(end_to_end))
    e2e_rate = max(n / t for t, n in e2e)
    bare_rate = max(n / t for t, n in bare)
    model.eval()
    test = task.dataset("test")
    gen_time, _ = timed(lambda: len(generate_split(model, test, None, 10, progress=False,
                                                   scale=cfg.sampling.scale, stitch=cfg.sampling.stitch)))
    return {"config": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
            "parameters": sum(q.numel() for q in model.parameters()), "batch_size": cfg.train.batch_size,
            "feature_dims": [p.video_dim, p.audio_dim], "loader_workers": workers,
            "train_windows_per_s_end_to_end": round(e2e_rate, 1),
            "train_windows_per_s_model_only": round(bare_rate, 1),
            "end_to_end_ratio": round(e2e_rate / bare_rate, 3),
            "generation_clips_per_s": round(len(test.clips) / gen_time, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", type=Path,
                        default=[ROOT / "configs" / name for name in
                                 ("regnn_tiny.yaml", "regnn.yaml", "regnn_official.yaml")])
    parser.add_argument("--steps", type=int, default=6, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes (0 = in-process)")
    parser.add_argument("--batch-size", type=int, default=0, help="replaces the configs' batch size")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # Denormal floats (from the official motor's saturated sigmoid / softmax) slow CPU training of
    # regnn_official about 9x; flushing them to zero changes no result that matters.
    torch.set_flush_denormal(True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(Path(tmp) / "react", pairs=12, media=False, eval_pairs=2)
        for path in args.configs:
            result = bench_config(path.resolve(), data, args.steps, args.repeats, args.workers,
                                  args.batch_size)
            results.append(result)
            print(json.dumps(result))
    print(f"\nCPU, {args.threads} threads, {args.workers} loader workers, denormals flushed\n"
          "config | params | train windows/s end-to-end / model-only (ratio) | generation clips/s (10 each)")
    for r in results:
        print(f"{r['config']:28s} | {r['parameters']:>9,} | {r['train_windows_per_s_end_to_end']:8.1f} / "
              f"{r['train_windows_per_s_model_only']:8.1f} ({r['end_to_end_ratio']:.2f}) | "
              f"{r['generation_clips_per_s']:.2f}")
    print(f"anchor: {OFFICIAL_ANCHOR}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    bad = [r["config"] for r in results if r["end_to_end_ratio"] < 0.9]
    if bad:
        print(f"end to end below 90 % of model-only for: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
