"""Speech-emotion evaluation report: metrics JSON, confusion and ROC plots, per-class and
misclassified-file CSVs.

``<run_dir>/test_metrics.json`` holds ``protocol`` (its name and rule, see :mod:`react.tasks.ser`),
``accuracy``, ``uar`` (macro recall), ``macro_f1``, ``per_class`` and ``confusion`` (rows true,
columns predicted, in ``labels`` order), and the classic baselines' accuracy, UAR, macro-F1 under
their keys (``baseline``, ``baseline_speaker_adapted``) when given; ``<run_dir>/report/`` holds
``summary.md`` (the protocol, model and baselines side by side), ``confusion.png``, ``roc.png``,
``per_class.csv``, ``predictions.csv`` (every file's label and probabilities) and
``misclassified.csv`` (and ``misclassified/<true>_as_<pred>/`` copies when asked).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
from sklearn.metrics import auc, confusion_matrix, precision_recall_fscore_support, roc_curve

from react.utils.io import atomic_path, save_json


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, UAR, macro-F1, per-class P/R/F1/support/AUC and the confusion matrix."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (len(y_true), len(labels)):
        raise ValueError(f"probs must be (N={len(y_true)}, C={len(labels)}), got {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError("probs contain NaN or infinite values")
    y_pred = probs.argmax(1)
    ks = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=ks,
                                                                     zero_division=0)
    present = support > 0  # UAR and macro-F1 over the classes that occur in the test set
    per_class = {}
    for k, name in enumerate(labels):
        per_class[name] = {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                           "support": int(support[k]), "auc": _auc(y_true == k, probs[:, k])}
    return {
        "n": len(y_true),
        "accuracy": float((y_pred == y_true).mean()),
        "uar": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "chance_uar": 1.0 / int(present.sum()),
        "per_class": per_class,
        "labels": list(labels),
        "confusion": confusion_matrix(y_true, y_pred, labels=ks).tolist(),
    }


def _auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """One-vs-rest ROC AUC; None when the class is absent or the only one present."""
    if positive.all() or not positive.any():
        return None
    fpr, tpr, _ = roc_curve(positive, score)
    return float(auc(fpr, tpr))


def _plot_confusion(matrix: np.ndarray, labels: list[str], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix.sum(1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.7 * len(labels)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="true",
           title="Confusion (counts; colour = row recall)")
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    _save_figure(fig, target)


def _plot_roc(y_true: np.ndarray, probs: np.ndarray, labels: list[str], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for k, name in enumerate(labels):
        positive = y_true == k
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, k])
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.2f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="One-vs-rest ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    _save_figure(fig, target)


def _save_figure(fig, target: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _write_csv(target: Path, header: list[str], rows: list[list]) -> None:
    with atomic_path(target) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def summary_table(rows: dict[str, dict]) -> str:
    """A markdown table: one row per system name with its accuracy, UAR and macro-F1."""
    lines = ["| system | accuracy | UAR | macro-F1 |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {m['accuracy']:.4f} | {m['uar']:.4f} | {m['macro_f1']:.4f} |"
              for name, m in rows.items()]
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | os.PathLike, y_true: np.ndarray, probs: np.ndarray, labels: list[str],
                 files: list[str], copy_misclassified: bool = False, baselines: dict[str, dict] | None = None,
                 protocol: dict | None = None) -> dict:
    """Write ``test_metrics.json`` and ``report/`` under ``run_dir``; return the metrics.
    ``baselines`` (key -> ``name``, ``accuracy``, ``uar``, ``macro_f1``...) are stored under their
    keys and tabled beside the model; ``protocol`` (``name``, ``rule``...) is stored and stated."""
    run_dir = Path(run_dir)
    report = run_dir / "report"
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if len(files) != len(y_true):
        raise ValueError(f"{len(files)} files for {len(y_true)} labels")
    baselines = baselines or {}
    metrics = {**({"protocol": protocol} if protocol else {}),
               **classification_metrics(y_true, probs, labels), **baselines}
    save_json(metrics, run_dir / "test_metrics.json")
    rows = {"model": metrics, **{b["name"]: b for b in baselines.values()}}
    stated = f"Protocol: **{protocol['name']}**: {protocol['rule']}.\n\n" if protocol else ""
    with atomic_path(report / "summary.md") as tmp:
        tmp.write_text(f"# Test: {metrics['n']} utterances of unseen speakers\n\n{stated}"
                       + summary_table(rows))
    _plot_confusion(np.array(metrics["confusion"]), labels, report / "confusion.png")
    _plot_roc(y_true, probs, labels, report / "roc.png")
    _write_csv(report / "per_class.csv", ["class", "precision", "recall", "f1", "support", "auc"],
               [[name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", m["support"],
                 "" if m["auc"] is None else f"{m['auc']:.4f}"] for name, m in metrics["per_class"].items()])
    y_pred = probs.argmax(1)
    _write_csv(report / "predictions.csv", ["file", "true", "predicted", *labels],
               [[f, labels[t], labels[p], *(f"{v:.6f}" for v in row)]
                for f, t, p, row in zip(files, y_true, y_pred, probs)])
    wrong = np.flatnonzero(y_pred != y_true)
    _write_csv(report / "misclassified.csv", ["file", "true", "predicted", "p_predicted", "p_true"],
               [[files[i], labels[y_true[i]], labels[y_pred[i]], f"{probs[i, y_pred[i]]:.4f}",
                 f"{probs[i, y_true[i]]:.4f}"] for i in wrong])
    if copy_misclassified:
        for i in wrong:
            folder = report / "misclassified" / f"{labels[y_true[i]]}_as_{labels[y_pred[i]]}"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / Path(files[i]).name
            if not target.exists():
                with atomic_path(target) as tmp:
                    shutil.copyfile(files[i], tmp)
    return metrics
