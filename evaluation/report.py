"""The official printout of the six metrics: the one-line table and the LaTeX row."""

from __future__ import annotations

from collections.abc import Mapping

from evaluation.metrics import METRIC_KEYS

HEADER = "-----------------Evaluating Metric-----------------"


def metric_line(m: Mapping[str, float]) -> str:
    """``Metric: | FRC: 0.19604 | FRD: 84.12176 | ...`` (5 decimals, as the official script)."""
    return "Metric: | " + " | ".join(f"{k}: {m[k]:.5f}" for k in METRIC_KEYS)


def latex_row(m: Mapping[str, float], name: str = "model_name") -> str:
    """``name & FRC & FRD & S-MSE & FRVar & FRDvs & - & TLCC \\\\`` (FRRea needs a renderer: ``-``)."""
    return (f"Latex-friendly --> {name} & {m['FRC']:.2f} & {m['FRD']:.2f} & {m['S-MSE']:.4f} & "
            f"{m['FRVar']:.4f} & {m['FRDvs']:.4f} & - & {m['TLCC']:.2f} \\\\")


def report(m: Mapping[str, float], name: str = "model_name") -> str:
    return "\n".join([HEADER, metric_line(m), latex_row(m, name)])
