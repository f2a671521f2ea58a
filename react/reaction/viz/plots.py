"""Static pictures of one clip's reactions (PNG): AU heat map, valence-arousal path, expressions,
and the spread of the samples per attribute.

``samples`` is ``(S, T, 25)`` (the S generated reactions of a clip), ``truth`` the real listener's
``(T, 25)`` or None. Figures are plain ``matplotlib.figure.Figure`` objects rendered by Agg, so
nothing touches pyplot's global state and plots can be drawn from any thread.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from react.reaction.data import react_layout as L
from react.reaction.viz.face import EXPRESSION_COLORS

AUS = L.EMOTION_COLUMNS[:L.NUM_AUS]
VA = slice(L.NUM_AUS, L.NUM_AUS + 2)
EXPR = slice(L.NUM_AUS + 2, L.EMOTION_DIM)
DPI = 100


def _seconds(frames: int) -> np.ndarray:
    return np.arange(frames) / L.FPS


def _save(fig: Figure, path: str | os.PathLike) -> None:
    fig.savefig(path, dpi=DPI)


def plot_au_heatmap(samples: np.ndarray, truth: np.ndarray | None, path: str | os.PathLike,
                    sample: int = 0) -> None:
    """AU occurrence over time: real listener, sample ``sample`` and the mean of all samples."""
    rows = ([("real listener", truth)] if truth is not None else []) + [
        (f"sample {sample}", samples[sample]), (f"mean of {len(samples)} samples", samples.mean(axis=0))]
    frames = samples.shape[1]
    fig = Figure(figsize=(11, 1.0 + 2.2 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, values) in zip(axes, rows):
        image = ax.imshow(values[:, :L.NUM_AUS].T, aspect="auto", cmap="magma", vmin=0, vmax=1,
                          interpolation="nearest", extent=(0, frames / L.FPS, L.NUM_AUS - 0.5, -0.5))
        ax.set_yticks(range(L.NUM_AUS), AUS, fontsize=7)
        ax.set_title(title, fontsize=10, loc="left")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=list(axes), label="AU occurrence (samples clipped to 0..1)", shrink=0.8)
    _save(fig, path)


def plot_valence_arousal(samples: np.ndarray, truth: np.ndarray | None, path: str | os.PathLike) -> None:
    """Valence-arousal trajectories of every sample (thin) and the real listener (black)."""
    fig = Figure(figsize=(6.2, 6), layout="constrained")
    ax = fig.subplots()
    for k, values in enumerate(samples):
        va = values[:, VA]
        ax.plot(va[:, 0], va[:, 1], lw=0.7, alpha=0.55, color=f"C{k % 10}", label=f"sample {k}")
        ax.plot(*va[0], "o", ms=4, color=f"C{k % 10}")
    if truth is not None:
        ax.plot(truth[:, VA.start], truth[:, VA.start + 1], lw=1.8, color="black", label="real listener")
        ax.plot(*truth[0, VA], "o", ms=6, color="black")
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(0, color="grey", lw=0.6)
    quadrants = ((0.8, 0.93, "excited"), (-0.8, 0.93, "tense"), (-0.8, -0.93, "sad"), (0.8, -0.93, "calm"))
    for x, y, word in quadrants:
        ax.text(x, y, word, ha="center", va="center", color="grey", fontsize=9)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel="valence", ylabel="arousal", aspect="equal",
           title="valence-arousal trajectory (dots: start)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    _save(fig, path)


def plot_expressions(samples: np.ndarray, truth: np.ndarray | None, path: str | os.PathLike,
                     sample: int = 0) -> None:
    """Expression probabilities over time, stacked: real listener and sample ``sample``."""
    rows = ([("real listener", truth)] if truth is not None else []) + [(f"sample {sample}", samples[sample])]
    t = _seconds(samples.shape[1])
    names = L.EMOTION_COLUMNS[EXPR]
    fig = Figure(figsize=(11, 0.8 + 2.4 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, values) in zip(axes, rows):
        ax.stackplot(t, values[:, EXPR].T, colors=EXPRESSION_COLORS, labels=names, linewidth=0)
        ax.set_xlim(t[0], t[-1])
        raw = title == "real listener"
        ax.set_ylabel("probability (stacked)" if raw else "probability (stacked,\nrenormalised)")
        ax.set_title(title, fontsize=10, loc="left")
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    axes[-1].set_xlabel("time (s)")
    _save(fig, path)


def plot_diversity(samples: np.ndarray, truth: np.ndarray | None, path: str | os.PathLike) -> None:
    """All 25 attributes over time, one row each: every sample (thin blue), mean +/- standard
    deviation across samples (orange) and the real listener (black)."""
    t = _seconds(samples.shape[1])
    fig = Figure(figsize=(14, 9))  # three axes of stacked rows: 25 separate axes would take seconds
    grid = fig.add_gridspec(2, 2, height_ratios=(2, 8), left=0.1, right=0.99, bottom=0.06, top=0.93,
                            wspace=0.28, hspace=0.12)
    groups = ((fig.add_subplot(grid[:, 0]), slice(0, L.NUM_AUS), "action units (samples clipped to 0..1)"),
              (fig.add_subplot(grid[0, 1]), VA, "valence, arousal (-1..1)"),
              (fig.add_subplot(grid[1, 1]), EXPR, "expression probabilities (samples renormalised)"))
    for ax, columns, title in groups:
        _ridges(ax, t, samples, truth, columns)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("time (s)")
    note = ", black: real listener" if truth is not None else ""
    fig.suptitle(f"{len(samples)} samples (blue), their mean +/- std (orange){note}; "
                 "s = mean std across samples", fontsize=11)
    _save(fig, path)


def _ridges(ax, t: np.ndarray, samples: np.ndarray, truth: np.ndarray | None, columns: slice) -> None:
    """One row per attribute in ``columns``, first at the top; values scaled into the row."""
    signed = columns == VA

    def scaled(x: np.ndarray, row: int) -> np.ndarray:
        return rows - 1 - row + 0.85 * ((x + 1) / 2 if signed else x)

    names = L.EMOTION_COLUMNS[columns]
    rows = len(names)
    lines = []
    for row, d in enumerate(range(columns.start, columns.stop)):
        values = samples[:, :, d]
        mean, std = values.mean(axis=0), values.std(axis=0)
        lines += [np.column_stack([t, scaled(v, row)]) for v in values]
        ax.fill_between(t, scaled(mean - std, row), scaled(mean + std, row), color="tab:orange", alpha=0.35,
                        lw=0)
        ax.plot(t, scaled(mean, row), lw=0.9, color="tab:orange")
        if truth is not None:
            ax.plot(t, scaled(truth[:, d], row), lw=0.8, color="black")
        names[row] = f"{names[row]}  s={std.mean():.2f}"
    ax.add_collection(LineCollection(lines, linewidths=0.4, colors="tab:blue", alpha=0.35))
    ax.set_yticks(np.arange(rows) + 0.42, names[::-1], fontsize=8)
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(-0.1, rows)
    ax.grid(axis="y", lw=0.3)


def plot_clip_summary(labels: list[str], diversity: np.ndarray, variance: np.ndarray,
                      path: str | os.PathLike) -> None:
    """Per-clip S-MSE (diversity among a clip's samples) and FRVar (variation over time) as bars."""
    fig = Figure(figsize=(max(6.0, 0.35 * len(labels) + 2), 5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(labels))
    top.bar(x, diversity, color="tab:blue")
    top.set_ylabel("S-MSE")
    top.set_title("S-MSE per clip: diversity among its samples", fontsize=10, loc="left")
    bottom.bar(x, variance, color="tab:green")
    bottom.set_ylabel("FRVar")
    bottom.set_title("FRVar per clip: variation over time", fontsize=10, loc="left")
    bottom.set_xticks(x, labels, rotation=90 if len(labels) > 12 else 0, fontsize=7)
    bottom.set_xlabel("clip")
    _save(fig, path)
