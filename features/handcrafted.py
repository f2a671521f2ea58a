"""Handcrafted window features for bio-signal and body-tracking windows (vectorised numpy).

``statistical``: per channel mean, std, min, max, 5/25/50/75/95 % quantiles, least-squares slope
(units per second), mean absolute first difference (per second), skewness and kurtosis.
``spectral``: per channel, from the Hann-windowed spectrum of the mean-removed window: the share of
power in each band of ``band_edges`` (Hz), log10 total power, dominant frequency, spectral
centroid and normalised spectral entropy.

The stage reads the windows that pre-processing listed in ``train/val/test.csv`` and writes one
vector per window, same file name, into ``<modality_dir>/<kind>/``; ``handcrafted.json`` names the
features.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from react.data.windows import SPLITS, publish
from react.errors import LayoutError

STAT_NAMES = ("mean", "std", "min", "max", "q05", "q25", "q50", "q75", "q95", "slope", "mean_abs_diff",
              "skew", "kurtosis")
SPECTRAL_SUMMARY = ("log_power", "dominant_freq", "centroid", "entropy")
KINDS = ("statistical", "spectral")


@dataclass
class HandcraftedConfig:
    """Which features to compute and from which pre-processed windows."""

    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    input_type: str = "standardize"  # the window folder: standardize | normalize | raw
    band_edges: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0, 3.0, 5.0])  # Hz


def statistical_features(x: np.ndarray, frequency: float) -> np.ndarray:
    """``x`` (N, L, C) -> (N, C * len(STAT_NAMES)), channel-major."""
    x = np.asarray(x, dtype=np.float64)
    n, length, _ = x.shape
    mean = x.mean(1)
    centred = x - mean[:, None]
    std = centred.std(1)
    safe = np.where(std > 1e-12, std, 1.0)
    tt = (np.arange(length) - (length - 1) / 2) / frequency
    slope = np.einsum("l,nlc->nc", tt, centred) / (tt @ tt)
    feats = [mean, std, x.min(1), x.max(1), *np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1), slope,
             np.abs(np.diff(x, axis=1)).mean(1) * frequency,
             np.where(std > 1e-12, (centred**3).mean(1) / safe**3, 0.0),
             np.where(std > 1e-12, (centred**4).mean(1) / safe**4 - 3.0, 0.0)]
    return np.stack(feats, axis=2).reshape(n, -1)


def spectral_features(x: np.ndarray, frequency: float, band_edges: list[float]) -> np.ndarray:
    """``x`` (N, L, C) -> (N, C * (len(band_edges) - 1 + 4)), channel-major."""
    x = np.asarray(x, dtype=np.float64)
    n, length, _ = x.shape
    edges = np.asarray(band_edges, dtype=np.float64)
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"band_edges must be at least two increasing frequencies, got {list(band_edges)}")
    tapered = (x - x.mean(1, keepdims=True)) * np.hanning(length)[None, :, None]
    spec = np.abs(np.fft.rfft(tapered, axis=1)) ** 2
    freqs = np.fft.rfftfreq(length, 1.0 / frequency)
    total = spec.sum(1)
    safe = np.where(total > 1e-20, total, 1.0)
    band = np.digitize(freqs, edges[1:-1])  # last band takes everything above its lower edge
    inside = freqs >= edges[0]
    shares = np.stack([spec[:, (band == b) & inside].sum(1) for b in range(len(edges) - 1)], axis=2)
    p = spec / safe[:, None]
    entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(1) / np.log(len(freqs))
    summary = np.stack([np.log10(total + 1e-12), freqs[spec.argmax(1)], (p * freqs[None, :, None]).sum(1),
                        entropy], axis=2)
    return np.concatenate([shares / safe[:, :, None], summary], axis=2).reshape(n, -1)


def feature_names(kind: str, channels: list[str], band_edges: list[float]) -> list[str]:
    """Names of the columns that :func:`compute` returns for ``kind``."""
    if kind == "statistical":
        per = list(STAT_NAMES)
    elif kind == "spectral":
        bands = zip(band_edges[:-1], band_edges[1:])
        per = [f"band_{lo:g}_{hi:g}Hz" for lo, hi in bands] + list(SPECTRAL_SUMMARY)
    else:
        raise ValueError(f"unknown handcrafted feature kind {kind!r}; valid: {', '.join(KINDS)}")
    return [f"{c}.{p}" for c in channels for p in per]


def compute(kind: str, x: np.ndarray, frequency: float, band_edges: list[float]) -> np.ndarray:
    """Features of ``kind`` for windows ``x`` (N, L, C)."""
    if kind == "statistical":
        return statistical_features(x, frequency)
    if kind == "spectral":
        return spectral_features(x, frequency, band_edges)
    raise ValueError(f"unknown handcrafted feature kind {kind!r}; valid: {', '.join(KINDS)}")


def extract_handcrafted(modality_dir: str | os.PathLike, cfg: HandcraftedConfig) -> dict[str, int]:
    """Compute ``cfg.kinds`` for every window of the train/val/test splits; returns files per kind."""
    modality_dir = Path(modality_dir)
    meta_path = modality_dir / "preprocess.json"
    if not meta_path.is_file():
        raise LayoutError(f"{meta_path}: not found; run the preprocess stage first")
    meta = json.loads(meta_path.read_text())
    frequency, channels = float(meta["preprocess"]["frequency"]), list(meta["channels"])
    for kind in cfg.kinds:
        feature_names(kind, channels, cfg.band_edges)  # validates the kind before any work
    tables = {s: pd.read_csv(modality_dir / f"{s}.csv") for s in SPLITS}
    stage = Path(tempfile.mkdtemp(dir=modality_dir, prefix=".handcrafted."))
    written = dict.fromkeys(cfg.kinds, 0)
    try:
        for kind in cfg.kinds:
            (stage / kind).mkdir()
        for split, table in tables.items():
            files = list(table["files"])
            if not files:
                continue
            src = [modality_dir / cfg.input_type / f for f in files]
            missing = [p for p in src if not p.is_file()]
            if missing:
                raise LayoutError(f"{missing[0]}: listed in {split}.csv but missing")
            x = np.stack([np.load(p) for p in src])
            for kind in cfg.kinds:
                feats = compute(kind, x, frequency, cfg.band_edges).astype(np.float32)
                for name, row in zip(files, feats):
                    np.save(stage / kind / name, row)
                written[kind] += len(files)
        names = {k: feature_names(k, channels, cfg.band_edges) for k in cfg.kinds}
        meta = {"input_type": cfg.input_type, "frequency": frequency, "features": names}
        (stage / "handcrafted.json").write_text(json.dumps(meta, indent=2) + "\n")
        publish(stage, modality_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return written
