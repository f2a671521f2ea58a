"""The one training loop, shared by every task (the contract: :mod:`react.tasks.protocol`).

It is as plain as accelerate's examples: set the run up (task, model, data, optimizer), resume,
then for each epoch train and end the epoch (validate, checkpoint). The engine owns the run
folder: config, logs, TensorBoard, checkpoints and ``test_results.json``. Everything
task-specific (data, loss, metrics, test outputs) lives in the task.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, DistributedSampler

from react.config import ConfigError, absolute_paths, save_config, set_key
from react.engine import checkpoint as ckpt
from react.engine.optim import build_optimizer, build_scheduler
from react.tasks import RunPaths, Task, TestableTask, build_task, task_schema
from react.utils.device import resolve_device
from react.utils.io import save_json
from react.utils.logging import setup_logging
from react.utils.progress import progress
from react.utils.seed import rng_state, seed_everything, set_rng_state

RUN_MARKERS = ("checkpoints", "test_results.json")  # what makes a folder hold a run


class RunExistsError(ConfigError):
    """``out_dir`` already holds a run and neither ``resume`` nor ``overwrite`` was asked for."""


class TrainingInterrupted(RuntimeError):
    """Ctrl-C during training; the message says where the last checkpoint is and how to resume."""


def make_accelerator(cfg: DictConfig) -> Accelerator:
    """CPU when asked or when CUDA is absent (so ``--multi_gpu`` on CPU is real DDP)."""
    cpu = resolve_device(cfg.device).type == "cpu"
    precision = cfg.train.mixed_precision
    if precision == "auto":
        precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    return Accelerator(cpu=cpu, mixed_precision=precision)


def cpu_threads(acc: Accelerator, deterministic: bool = False) -> int:
    """Give each process on this machine its share of the cores (``accelerate launch`` sets
    ``OMP_NUM_THREADS=1``, which would leave a one-process CPU run on one core); one thread when
    ``deterministic``, since how torch splits a reduction between threads changes its last bits."""
    if acc.device.type != "cpu":
        return torch.get_num_threads()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", acc.num_processes))
    threads = 1 if deterministic else max(1, len(os.sched_getaffinity(0)) // max(local, 1))
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # denormal floats (tiny attention weights) slow CPU kernels ~10x
    return threads


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


def _improved(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


def _disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


@dataclass
class Run:
    """Everything one training run holds, with its progress (``epoch`` epochs done)."""

    cfg: DictConfig
    acc: Accelerator
    paths: RunPaths
    task: Task
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: DataLoader
    loader_rng: torch.Generator
    writer: Any
    log: Any
    epoch: int = 0
    step: int = 0
    best: float | None = None
    stale: int = 0  # validations in a row without improvement of the monitored metric
    items: int = 0


def claim_run_dir(cfg: DictConfig, is_main: bool) -> None:
    """Refuse to train over a finished or started run unless ``resume`` or ``overwrite`` says so."""
    run_dir = Path(cfg.out_dir)
    held = [name for name in RUN_MARKERS if (run_dir / name).exists()]
    if not held or cfg.resume:
        return
    if not cfg.overwrite:
        raise RunExistsError(
            f"{run_dir} already holds a run ({', '.join(held)}). Continue it with resume=auto, replace it "
            "with overwrite=true (deletes its checkpoints, logs and results), or choose another out_dir")
    if is_main:
        for entry in run_dir.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def setup(cfg: DictConfig) -> Run:
    """Accelerator, task, model, sharded loader, optimizer, schedule, logs."""
    absolute_paths(cfg)
    acc = make_accelerator(cfg)
    claim_run_dir(cfg, acc.is_main_process)
    acc.wait_for_everyone()
    paths = RunPaths(Path(cfg.out_dir))
    log = setup_logging(paths.run_dir if acc.is_main_process else None, main=acc.is_main_process)
    threads = cpu_threads(acc, cfg.deterministic)
    seed_everything(cfg.seed, cfg.deterministic)  # same initial weights on every rank
    task = build_task(cfg, paths)
    model = task.build_model()
    dataset = task.train_dataset()
    sampler = DistributedSampler(dataset, num_replicas=acc.num_processes, rank=acc.process_index,
                                 shuffle=True, seed=cfg.seed)
    # The loader draws its worker seeds from its own generator, re-seeded every epoch, never from
    # the global RNG: a resumed run then sees the same augmentation as an uninterrupted one.
    loader_rng = torch.Generator()
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler, collate_fn=task.collate,
                        num_workers=cfg.train.num_workers, generator=loader_rng, worker_init_fn=_seed_worker)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train)
    seed_everything(cfg.seed + acc.process_index, cfg.deterministic)  # per-rank augmentation noise
    log.info("task %s: %d parameters, %d training items, world size %d, device %s, precision %s, "
             "%d CPU threads per process", cfg.task, sum(p.numel() for p in model.parameters()), len(dataset),
             acc.num_processes, acc.device, acc.mixed_precision, threads)
    return Run(cfg, acc, paths, task, model, optimizer, scheduler, loader, loader_rng, None, log,
               items=len(dataset))


# settings a resumed run may change without becoming another run
RESUMABLE = ("resume", "overwrite", "checkpoint", "mode", "device", "train.epochs", "train.num_workers",
             "train.log_every", "train.val_every", "train.ckpt_every", "train.keep_last", "train.test_at_end")


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    if isinstance(tree, dict) and tree:
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def _check_resumable(cfg: DictConfig, state: dict, source: Path) -> None:
    """A checkpoint continues only the run it belongs to: another model is refused (its weights would
    not load), and so is any other setting for a run that is already complete (its config.yaml
    would stop describing its checkpoints)."""
    old, new = _flat(state.get("config") or {}), _flat(OmegaConf.to_container(cfg, resolve=True))
    # keys of one side only are schema changes between versions (a new setting's default), not the user's
    changed = [f"{k}: {old[k]!r} -> {new[k]!r}".replace("'", "") for k in sorted(set(old) & set(new))
               if old[k] != new[k] and k not in RESUMABLE]
    model = [c for c in changed if c.startswith("model.")]
    complete = state["epoch"] >= cfg.train.epochs
    if model or (complete and changed):
        why = "was trained with another model" if model else "is already complete with other settings"
        raise ConfigError(f"{source}: the run {why} ({'; '.join(model or changed)}). Keep its settings, "
                          "train into another out_dir (run name), or replace it with overwrite=true")


def resume(run: Run) -> None:
    """Load the checkpoint named by ``resume`` (``auto``: this run's last) if its settings allow,
    save the config, then prepare for DDP."""
    cfg = run.cfg
    source = None
    if cfg.resume == "auto":
        source = ckpt.latest(ckpt.checkpoint_dir(cfg.out_dir, "last"))
    elif cfg.resume:
        source = ckpt.checkpoint_file(cfg.resume).parent
    state = ckpt.load_state(source) if source is not None else None
    if state is not None:
        _check_resumable(cfg, state, source)
    if run.acc.is_main_process:
        save_config(cfg, run.paths.run_dir)
    if state is not None:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.epoch, run.step, run.best = state["epoch"], state["step"], state.get("best")
        run.stale = state.get("stale", 0)
        rng = ckpt.load_rng(source, run.acc.process_index)
        if rng is not None:  # absent when the number of processes grew: this rank starts afresh
            set_rng_state(rng)
        run.log.info("resumed from %s at epoch %d (step %d)", source, run.epoch, run.step)
    run.model, run.optimizer = run.acc.prepare(run.model, run.optimizer)
    if run.acc.is_main_process:
        from tensorboardX import SummaryWriter

        run.writer = SummaryWriter(str(run.paths.run_dir / "tb"), purge_step=run.step or None)


def _log_indices(run: Run, batch: Any) -> None:
    """``train.log_sample_indices``: this rank's dataset items of each step, one JSON line."""
    if not (run.cfg.train.log_sample_indices and isinstance(batch, dict) and "index" in batch):
        return
    path = run.paths.run_dir / "sample_indices" / f"rank{run.acc.process_index}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps({"world": run.acc.num_processes, "index": batch["index"].tolist()}) + "\n")


def train_epoch(run: Run, epoch: int) -> dict[str, float]:
    """One pass over this rank's shard; returns the scalars averaged over steps and ranks."""
    cfg, acc, model = run.cfg, run.acc, run.model
    run.loader.sampler.set_epoch(epoch)
    run.loader_rng.manual_seed(cfg.seed * 100_003 + epoch * 1_009 + acc.process_index)
    model.train()
    sums: dict[str, float] = defaultdict(float)
    n_steps = 0
    bar = progress(run.loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
                   disable=not acc.is_main_process)
    for i, batch in enumerate(bar):
        if cfg.train.max_steps_per_epoch and i >= cfg.train.max_steps_per_epoch:
            break
        _log_indices(run, batch)
        with acc.autocast():
            loss, scalars = run.task.training_step(model, to_device(batch, acc.device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {run.step}")
        run.optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.train.grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        run.optimizer.step()
        run.step, n_steps = run.step + 1, n_steps + 1
        scalars = {"loss": loss.item(), **scalars}
        for key, value in scalars.items():
            sums[key] += value
        bar.set_postfix(loss=f"{scalars['loss']:.4f}")
        if run.writer is not None and run.step % cfg.train.log_every == 0:
            for key, value in scalars.items():
                run.writer.add_scalar(f"train/{key}", value, run.step)
    run.scheduler.step()
    means = {k: v / max(n_steps, 1) for k, v in sums.items()}
    return {k: acc.reduce(torch.tensor(v, device=acc.device), "mean").item() for k, v in means.items()}


def end_epoch(run: Run, epoch: int, means: dict[str, float], seconds: float) -> dict[str, float]:
    """Log the epoch, validate when due, save checkpoints; returns the validation metrics."""
    cfg, acc = run.cfg, run.acc
    lr = run.optimizer.param_groups[0]["lr"]
    run.log.info("epoch %d/%d: %s (%.1f s, lr %.3g)", epoch + 1, cfg.train.epochs,
                 " ".join(f"{k}={v:.5g}" for k, v in means.items()), seconds, lr)
    if run.writer is not None:
        run.writer.add_scalar("train/lr", lr, run.step)
        for key, value in means.items():
            run.writer.add_scalar(f"epoch/{key}", value, epoch + 1)
    every, last = cfg.train.val_every, epoch + 1 == cfg.train.epochs
    due = every > 0 and ((epoch + 1) % every == 0 or last)
    metrics: dict[str, float] = {}
    improved = cfg.train.val_every <= 0  # without validation the latest weights are the best we know
    if acc.is_main_process and due:
        metrics = validate(run.task, acc.unwrap_model(run.model), acc)
        run.log.info("validation: %s", " ".join(f"{k}={v:.5g}" for k, v in metrics.items()))
        for key, value in metrics.items():
            run.writer.add_scalar(key, value, epoch + 1)
        if run.task.monitor not in metrics:
            raise KeyError(f"task {cfg.task}: validate() did not return the monitored '{run.task.monitor}'")
        improved = _improved(metrics[run.task.monitor], run.best, run.task.monitor_mode)
        run.best = metrics[run.task.monitor] if improved else run.best
        run.stale = 0 if improved else run.stale + 1
    run.epoch = epoch + 1
    save_checkpoints(run, improved)
    if acc.is_main_process:
        run.log.info("run folder %s uses %.1f MB", run.paths.run_dir, _disk_mb(run.paths.run_dir))
    return metrics


def validate(task: Task, model: torch.nn.Module, acc: Accelerator) -> dict[str, float]:
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


def save_checkpoints(run: Run, improved: bool) -> None:
    """``last`` always, ``epoch_NNNN`` every ``ckpt_every`` epochs (the newest ``keep_last`` kept),
    ``best`` when the monitored metric improved, ``test`` after ``train.test_epoch`` epochs; each
    published only when complete."""
    cfg, acc = run.cfg, run.acc
    names = ["last"]
    if cfg.train.ckpt_every > 0 and run.epoch % cfg.train.ckpt_every == 0:
        names.append(f"epoch_{run.epoch:04d}")
    if improved:
        names.append("best")
    if run.epoch == cfg.train.test_epoch:
        names.append("test")
    targets = [ckpt.checkpoint_dir(cfg.out_dir, name) for name in names]
    if acc.is_main_process:
        state = {"model": acc.unwrap_model(run.model).state_dict(), "optimizer": run.optimizer.state_dict(),
                 "scheduler": run.scheduler.state_dict(), "epoch": run.epoch, "step": run.step,
                 "best": run.best, "stale": run.stale, "config": OmegaConf.to_container(cfg, resolve=True)}
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
        ckpt.prune_numbered(cfg.out_dir, cfg.train.keep_last)
    acc.wait_for_everyone()


def _interrupted(run: Run) -> TrainingInterrupted:
    last = ckpt.latest(ckpt.checkpoint_dir(run.cfg.out_dir, "last"))
    where = f"the last complete checkpoint is {last} (epoch {run.epoch})" if last else \
        "no checkpoint was saved yet"
    return TrainingInterrupted(f"training interrupted during epoch {run.epoch + 1}; {where}. Run the same "
                               "command with resume=auto to continue")


def patience_spent(run: Run) -> bool:
    """Whether ``train.patience`` validations in a row did not improve (decided by the main process)."""
    flag = [run.cfg.train.patience > 0 and run.stale >= run.cfg.train.patience]
    if run.acc.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(flag)
    return flag[0]


def fit(cfg: DictConfig) -> dict[str, float]:
    """Train ``cfg.task``; returns the last validation metrics (empty if validation is off)."""
    run = setup(cfg)
    resume(run)
    metrics: dict[str, float] = {}
    finished = run.epoch >= cfg.train.epochs or patience_spent(run)
    try:
        for epoch in range(run.epoch, cfg.train.epochs):
            if patience_spent(run):
                run.log.info("early stop before epoch %d: %s did not improve in %d validations (best %.5g)",
                             epoch + 1, run.task.monitor, run.stale, run.best)
                break
            started = time.perf_counter()
            means = train_epoch(run, epoch)
            metrics = end_epoch(run, epoch, means, time.perf_counter() - started) or metrics
            run.acc.wait_for_everyone()
    except KeyboardInterrupt:
        raise _interrupted(run) from None
    finally:
        if run.writer is not None:
            run.writer.close()
    results = run.paths.run_dir / "test_results.json"
    if finished and results.is_file():
        run.log.info("run was already complete; see %s", results)
    elif cfg.train.test_at_end and isinstance(run.task, TestableTask):
        run.acc.wait_for_everyone()
        best_dir = ckpt.checkpoint_dir(cfg.out_dir, "test" if cfg.train.test_epoch else "best")
        if run.acc.is_main_process and (best_dir / ckpt.STATE).is_file():
            model = run.acc.unwrap_model(run.model)
            model.load_state_dict(ckpt.load_state(best_dir)["model"])
            _run_test(run.task, model, run.acc, run.paths.run_dir, run.log)
        run.acc.wait_for_everyone()
    run.acc.end_training()
    return metrics


def _run_test(task: TestableTask, model: torch.nn.Module, acc: Accelerator, run_dir: Path, log: Any) -> dict:
    model.eval()
    with torch.no_grad():
        summary = task.test(model, acc)
    save_json(summary, run_dir / "test_results.json")
    log.info("test results: %s", json.dumps(summary, default=str)[:2000])
    return summary


def test(cfg: DictConfig) -> dict:
    """mode=test: load ``cfg.checkpoint`` (default: the run's best) and run the task's test."""
    absolute_paths(cfg)
    acc = make_accelerator(cfg)
    source = cfg.checkpoint or cfg.out_dir
    paths = RunPaths(Path(cfg.out_dir), trained_dir=ckpt.run_dir_of(source))
    log = setup_logging(paths.run_dir if acc.is_main_process else None, main=acc.is_main_process)
    cpu_threads(acc, cfg.deterministic)
    if acc.is_main_process:
        save_config(cfg, paths.run_dir, "config_test.yaml")
    seed_everything(cfg.seed, cfg.deterministic)
    task = build_task(cfg, paths)
    if not isinstance(task, TestableTask):
        raise ConfigError(f"task {cfg.task} has no test mode")
    state = ckpt.load_state(source)
    if "official" in state:  # an official REGNN file: the model runs as it was trained
        stored = OmegaConf.create(state["config"])
        for key in ("model", "data.num_frames"):
            OmegaConf.update(cfg, key, OmegaConf.select(stored, key), merge=True)
        task = build_task(cfg, paths)
        log.info("official REGNN checkpoint: the replica with %s", ", ".join(state["official"]["overrides"]))
    model = task.build_model(pretrained=False)
    model.load_state_dict(state["model"])
    log.info("testing %s with weights from %s", cfg.task, ckpt.checkpoint_file(source))
    model.to(acc.device)
    summary = _run_test(task, model, acc, paths.run_dir, log) if acc.is_main_process else {}
    acc.wait_for_everyone()
    return summary


def run(cfg: DictConfig) -> dict:
    """Dispatch on ``cfg.mode``."""
    if cfg.mode == "train":
        return fit(cfg)
    if cfg.mode == "test":
        return test(cfg)
    raise ConfigError(f"mode: unknown '{cfg.mode}'. Valid: train, test")


def load_checkpoint(path: str | os.PathLike, task: str | None = None,
                    overrides: dict[str, Any] | None = None) -> tuple[Task, torch.nn.Module, DictConfig]:
    """The task, model (eval mode, weights loaded) and config of a checkpoint.

    Only the checkpoint is read: the model is rebuilt from its stored config without the
    pretrained weights it was started from. ``task`` checks the checkpoint's kind; ``overrides``
    (dotted key -> value) replace stored settings such as ``data.root``.
    """
    state = ckpt.load_state(path)
    kind = state["config"].get("task")
    if task is not None and kind != task:
        raise ckpt.CheckpointError(f"{ckpt.checkpoint_file(path)}: a '{kind}' checkpoint, not a '{task}' one")
    cfg = ckpt.config_of(state, task_schema(kind))
    for key, value in (overrides or {}).items():
        set_key(cfg, key, value)
    run_dir = ckpt.run_dir_of(path)
    built = build_task(cfg, RunPaths(run_dir, trained_dir=run_dir))
    model = built.build_model(pretrained=False)
    model.load_state_dict(state["model"])
    return built, model.eval(), cfg
