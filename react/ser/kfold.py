"""K-fold by actor in one command: every fold trained (or tested) through the engine (a classic
model fitted, :mod:`react.ser.classic`), then the mean and spread of accuracy, UAR and macro-F1,
model and classic baselines side by side, under the folds' one protocol.

    react train --config configs/ser_cpu.yaml data.kfold=6 [key=value ...]   (data.fold -1: all)

Fold ``i`` runs in ``<out_dir>/fold_<i>/`` with ``data.fold=i`` (same seed, so the folds partition
the actors); a finished fold (its ``test_results.json``) is kept, an interrupted one resumed, so
the same command continues where it stopped (``overwrite=true`` starts every fold afresh).
``<out_dir>/kfold_summary.json`` and ``kfold_summary.md`` hold the per-fold rows and the mean and
standard deviation (over folds, ddof 1) of each metric.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from react.config import ConfigError
from react.utils.io import atomic_path, save_json

METRICS = ("accuracy", "uar", "macro_f1")
SUMMARY = "kfold_summary"


def fold_config(cfg: DictConfig, fold: int) -> DictConfig:
    """The config of fold ``fold``: its own sub-run folder, resumed when it holds a started run."""
    sub = cfg.copy()
    sub.data.fold = fold
    sub.out_dir = str(Path(cfg.out_dir) / f"fold_{fold}")
    if cfg.mode == "train" and not cfg.overwrite and (Path(sub.out_dir) / "checkpoints").is_dir():
        sub.resume = "auto"
    return sub


def spread(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max())}


BASELINES = ("baseline", "baseline_speaker_adapted")  # the classic systems a fold's results may hold


def summarise(results: list[dict]) -> dict:
    """Per-fold rows and the spread of each metric, for the model and the classic baselines that
    every fold has; ``protocol``: the folds' protocol (they must share it)."""
    protocols = sorted({r.get("protocol", "inductive") for r in results})
    if len(protocols) > 1:
        raise ValueError(f"the folds were run under different protocols ({', '.join(protocols)}): "
                         "rerun them with one data.protocol")
    systems = {"model": results}
    systems.update({key: [r[key] for r in results] for key in BASELINES if all(key in r for r in results)})
    summary: dict = {"protocol": protocols[0],
                     "folds": [{"fold": i, "test_actors": r.get("test_actors", []),
                                **{name: {k: rows[i][k] for k in METRICS} for name, rows in systems.items()}}
                               for i, r in enumerate(results)]}
    for name, rows in systems.items():
        summary[name] = {k: spread([row[k] for row in rows]) for k in METRICS}
        if name != "model":
            summary[name]["name"] = rows[0]["name"]
    return summary


def markdown(summary: dict) -> str:
    """The summary as markdown: the protocol, mean +- std per system, then the folds."""
    names = [n for n in ("model", *BASELINES) if n in summary]
    label = {n: summary[n].get("name", n) for n in names}
    k = len(summary["folds"])
    lines = [f"# {k}-fold by actor, {summary['protocol']} protocol (mean +- std over folds)", "",
             "| system | accuracy | UAR | macro-F1 |", "| --- | --- | --- | --- |"]
    for name in names:
        cells = [f"{summary[name][m]['mean']:.4f} +- {summary[name][m]['std']:.4f}" for m in METRICS]
        lines.append(f"| {label[name]} | " + " | ".join(cells) + " |")
    lines += ["", "| fold | test actors | " + " | ".join(f"{n} UAR" for n in names) + " |",
              "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for row in summary["folds"]:
        actors = ", ".join(a.split(":")[-1] for a in row["test_actors"])
        uars = " | ".join(f"{row[n]['uar']:.4f}" for n in names)
        lines.append(f"| {row['fold']} | {actors} | {uars} |")
    return "\n".join(lines) + "\n"


def run_kfold(cfg: DictConfig) -> dict:
    """Run (or test) every fold of ``data.kfold`` and write the summary; returns it."""
    from react.config import absolute_paths
    from react.ser.classic import run

    if cfg.task != "ser":
        raise ConfigError(f"k-fold by actor runs the ser task, not '{cfg.task}'")
    k = cfg.data.kfold
    if k < 2:
        raise ConfigError(f"data.kfold={k}: set data.kfold=K (K >= 2) to run K folds by actor")
    absolute_paths(cfg)
    results = []
    for fold in range(k):
        sub = fold_config(cfg, fold)
        done = Path(sub.out_dir) / "test_results.json"
        if cfg.mode == "test" or cfg.overwrite or not done.is_file():
            print(f"fold {fold + 1}/{k}: {sub.out_dir}", flush=True)
            run(sub)
        else:
            print(f"fold {fold + 1}/{k}: done already ({done})", flush=True)
        results.append(json.loads(done.read_text()))
    summary = summarise(results)
    out = Path(cfg.out_dir)
    save_json(summary, out / f"{SUMMARY}.json")
    with atomic_path(out / f"{SUMMARY}.md") as tmp:
        tmp.write_text(markdown(summary))
    return summary
