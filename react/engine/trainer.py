"""The one training loop, shared by every task (see ``react/tasks/__init__.py``).

It is as plain as accelerate's examples: build the task's model and data, prepare them with
``Accelerator``, loop over epochs, validate, checkpoint. Everything task-specific (data, loss,
metrics, test outputs) lives in the task.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from react.config import ConfigError, save_config
from react.engine import checkpoint as ckpt
from react.engine.optim import build_optimizer, build_scheduler
from react.tasks import task_module
from react.utils.io import save_json
from react.utils.logging import setup_logging
from react.utils.seed import rng_state, seed_everything, set_rng_state


def make_accelerator(cfg: DictConfig) -> Accelerator:
    """CPU when asked or when CUDA is absent (so ``--multi_gpu`` on CPU is real DDP)."""
    has_cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not has_cuda:
        raise ConfigError("device=cuda but no CUDA device is available")
    cpu = cfg.device == "cpu" or not has_cuda
    precision = cfg.train.mixed_precision
    if precision == "auto":
        precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    return Accelerator(cpu=cpu, mixed_precision=precision)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _seed_worker(worker_id: int) -> None:
    """Seed python and numpy in a loader worker from its torch seed (torch seeds only itself)."""
    seed_everything(torch.initial_seed() % 2**32)


def _resume_path(cfg: DictConfig) -> Path | None:
    if not cfg.resume:
        return None
    if cfg.resume == "auto":
        return ckpt.latest(ckpt.checkpoint_dir(cfg.out_dir, "last"))
    return ckpt.checkpoint_file(cfg.resume).parent


def _improved(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


def fit(cfg: DictConfig) -> dict[str, float]:
    """Train ``cfg.task``; returns the last validation metrics (empty if validation is off)."""
    acc = make_accelerator(cfg)
    run_dir = Path(cfg.out_dir)
    log = setup_logging(run_dir if acc.is_main_process else None)
    if acc.is_main_process:
        save_config(cfg, run_dir)
    seed_everything(cfg.seed)  # same initial weights on every rank
    task = task_module(cfg.task).Task(cfg, run_dir)
    model = task.build_model()
    dataset = task.train_dataset()
    sampler = DistributedSampler(dataset, num_replicas=acc.num_processes, rank=acc.process_index,
                                 shuffle=True, seed=cfg.seed)
    # The loader draws its worker seeds from its own generator, re-seeded every epoch, never from
    # the global RNG: a resumed run then sees the same augmentation as an uninterrupted one.
    loader_rng = torch.Generator()
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler,
                        collate_fn=task.collate, num_workers=cfg.train.num_workers,
                        generator=loader_rng, worker_init_fn=_seed_worker)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train)
    seed_everything(cfg.seed + acc.process_index)  # per-rank augmentation noise

    start_epoch, step, best = 0, 0, None
    resume = _resume_path(cfg)
    if resume is not None:
        state = ckpt.load_state(resume)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step, best = state["epoch"], state["step"], state.get("best")
        rng = ckpt.load_rng(resume, acc.process_index)
        if rng is not None:
            set_rng_state(rng)
        log.info("resumed from %s at epoch %d (step %d)", resume, start_epoch, step)
    model, optimizer = acc.prepare(model, optimizer)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("task %s: %d parameters, %d training items, world size %d, device %s, precision %s",
             cfg.task, n_params, len(dataset), acc.num_processes, acc.device, acc.mixed_precision)

    writer = None
    if acc.is_main_process:
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"), purge_step=step or None)
    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, cfg.train.epochs):
        sampler.set_epoch(epoch)
        loader_rng.manual_seed(cfg.seed * 100_003 + epoch * 1_009 + acc.process_index)
        model.train()
        sums: dict[str, float] = defaultdict(float)
        n_steps, started = 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not acc.is_main_process,
                   leave=False, unit="batch")
        for i, batch in enumerate(bar):
            if cfg.train.max_steps_per_epoch and i >= cfg.train.max_steps_per_epoch:
                break
            with acc.autocast():
                loss, scalars = task.training_step(model, to_device(batch, acc.device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if cfg.train.grad_clip > 0:
                acc.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
            step, n_steps = step + 1, n_steps + 1
            scalars = {"loss": loss.item(), **scalars}
            for key, value in scalars.items():
                sums[key] += value
            bar.set_postfix(loss=f"{scalars['loss']:.4f}")
            if writer is not None and step % cfg.train.log_every == 0:
                for key, value in scalars.items():
                    writer.add_scalar(f"train/{key}", value, step)
        scheduler.step()
        means = {k: v / max(n_steps, 1) for k, v in sums.items()}
        means = {k: acc.reduce(torch.tensor(v, device=acc.device), "mean").item() for k, v in means.items()}
        line = " ".join(f"{k}={v:.5g}" for k, v in means.items())
        log.info("epoch %d/%d: %s (%.1f s, lr %.3g)", epoch + 1, cfg.train.epochs, line,
                 time.perf_counter() - started, optimizer.param_groups[0]["lr"])
        if writer is not None:
            writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
            for key, value in means.items():
                writer.add_scalar(f"epoch/{key}", value, epoch + 1)

        is_val = cfg.train.val_every > 0 and ((epoch + 1) % cfg.train.val_every == 0
                                              or epoch + 1 == cfg.train.epochs)
        improved = False
        if acc.is_main_process and is_val:
            metrics = validate(task, acc.unwrap_model(model), acc)
            log.info("validation: %s", " ".join(f"{k}={v:.5g}" for k, v in metrics.items()))
            for key, value in metrics.items():
                writer.add_scalar(key, value, epoch + 1)
            if task.monitor not in metrics:
                raise KeyError(f"task {cfg.task}: validate() did not return the monitored '{task.monitor}'")
            improved = _improved(metrics[task.monitor], best, task.monitor_mode)
            best = metrics[task.monitor] if improved else best
        if cfg.train.val_every <= 0:
            improved = True  # without validation the latest weights are the best we know
        _save(cfg, acc, model, optimizer, scheduler, epoch + 1, step, best, improved)
        acc.wait_for_everyone()
    if writer is not None:
        writer.close()
    finished_before = start_epoch >= cfg.train.epochs and (run_dir / "test_results.json").is_file()
    if finished_before:
        log.info("run was already complete; see %s", run_dir / "test_results.json")
    elif cfg.train.test_at_end and hasattr(task, "test"):
        acc.wait_for_everyone()
        best_dir = ckpt.checkpoint_dir(cfg.out_dir, "best")
        if acc.is_main_process and (best_dir / ckpt.STATE).is_file():
            model = acc.unwrap_model(model)
            model.load_state_dict(ckpt.load_state(best_dir)["model"])
            _run_test(task, model, acc, run_dir)
        acc.wait_for_everyone()
    acc.end_training()
    return metrics


def validate(task: Any, model: torch.nn.Module, acc: Accelerator) -> dict[str, float]:
    """Run the task's validation without disturbing training: RNG streams and thread count are
    restored afterwards, so a resumed run continues identically whether or not it validated."""
    saved_rng, threads = rng_state(), torch.get_num_threads()
    model.eval()
    try:
        with torch.no_grad():
            metrics = task.validate(model, acc)
    finally:
        model.train()
        set_rng_state(saved_rng)
        torch.set_num_threads(threads)
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
        raise FloatingPointError(f"validation metrics not finite: {', '.join(bad)}")
    return metrics


def _save(cfg: DictConfig, acc: Accelerator, model, optimizer, scheduler, epoch: int, step: int,
          best: float | None, improved: bool) -> None:
    names = ["last"]
    if cfg.train.ckpt_every > 0 and epoch % cfg.train.ckpt_every == 0:
        names.append(f"epoch_{epoch:04d}")
    if improved:
        names.append("best")
    targets = [ckpt.checkpoint_dir(cfg.out_dir, name) for name in names]
    if acc.is_main_process:
        state = {"model": acc.unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step, "best": best,
                 "config": OmegaConf.to_container(cfg, resolve=True)}
        for target in targets:
            ckpt.stage(target, state)
    acc.wait_for_everyone()
    rng = rng_state()
    for target in targets:
        ckpt.stage_rng(target, acc.process_index, rng)
    acc.wait_for_everyone()
    if acc.is_main_process:  # only complete checkpoints (weights and every rank's RNG) get published
        for target in targets:
            ckpt.publish(target)
    acc.wait_for_everyone()


def _run_test(task: Any, model: torch.nn.Module, acc: Accelerator, run_dir: Path) -> dict:
    model.eval()
    with torch.no_grad():
        summary = task.test(model, acc)
    save_json(summary, run_dir / "test_results.json")
    setup_logging(run_dir).info("test results: %s", json.dumps(summary, default=str)[:2000])
    return summary


def test(cfg: DictConfig) -> dict:
    """mode=test: load ``cfg.checkpoint`` (default: the run's best) and run the task's test."""
    acc = make_accelerator(cfg)
    run_dir = Path(cfg.out_dir)
    log = setup_logging(run_dir if acc.is_main_process else None)
    if acc.is_main_process:
        save_config(cfg, run_dir, "config_test.yaml")
    seed_everything(cfg.seed)
    task = task_module(cfg.task).Task(cfg, run_dir)
    if not hasattr(task, "test"):
        raise ConfigError(f"task {cfg.task} has no test mode")
    source = cfg.checkpoint or cfg.out_dir
    model = task.build_model()
    model.load_state_dict(ckpt.load_state(source)["model"])
    log.info("testing %s with weights from %s", cfg.task, ckpt.checkpoint_file(source))
    model.to(acc.device)
    summary = _run_test(task, model, acc, run_dir) if acc.is_main_process else {}
    acc.wait_for_everyone()
    return summary


def run(cfg: DictConfig) -> dict:
    """Dispatch on ``cfg.mode``."""
    if cfg.mode == "train":
        return fit(cfg)
    if cfg.mode == "test":
        return test(cfg)
    raise ConfigError(f"mode: unknown '{cfg.mode}'. Valid: train, test")


def load_checkpoint_model(path: str | Path) -> tuple[torch.nn.Module, DictConfig]:
    """Rebuild a task's model from a checkpoint (its stored config) and load the weights."""
    state = ckpt.load_state(path)
    cfg = ckpt.config_of(state)
    model = task_module(cfg.task).Task(cfg, Path(cfg.out_dir)).build_model()
    model.load_state_dict(state["model"])
    return model.eval(), cfg
