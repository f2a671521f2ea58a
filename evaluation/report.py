"""The official printout of the metrics: the one-line table and the LaTeX row.

REACT 2023/2024: ``FRC | FRD | S-MSE | FRVar | FRDvs | TLCC`` and the row
``name & FRC & FRD & S-MSE & FRVar & FRDvs & - & TLCC \\\\`` (FRRea needs a renderer: ``-``).
REACT 2025/2026 (``metric_set`` 2025 in the metrics): ``FRC | FRD | TLCC | S-MSE | FRVar | MAE``
(then FRDvs when it was asked for), the row in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping

from evaluation.metrics import METRIC_SETS

HEADER = "-----------------Evaluating Metric-----------------"


def metric_keys(m: Mapping[str, float]) -> tuple[str, ...]:
    """The keys of the metric set ``m`` was computed with (2023/2024 when it does not say)."""
    keys = METRIC_SETS[str(m.get("metric_set", "2024"))]
    return keys + (("FRDvs",) if "FRDvs" in m and "FRDvs" not in keys else ())


def metric_line(m: Mapping[str, float]) -> str:
    """``Metric: | FRC: 0.19604 | FRD: 84.12176 | ...`` (5 decimals, as the official script)."""
    return "Metric: | " + " | ".join(f"{k}: {m[k]:.5f}" for k in metric_keys(m))


def latex_row(m: Mapping[str, float], name: str = "model_name") -> str:
    """``name & FRC & FRD & S-MSE & FRVar & FRDvs & - & TLCC \\\\`` (2023/2024), or the 2025 keys in order."""
    if str(m.get("metric_set", "2024")) == "2024":
        return (f"Latex-friendly --> {name} & {m['FRC']:.2f} & {m['FRD']:.2f} & {m['S-MSE']:.4f} & "
                f"{m['FRVar']:.4f} & {m['FRDvs']:.4f} & - & {m['TLCC']:.2f} \\\\")
    digits = {"FRC": 2, "FRD": 2, "TLCC": 2}
    cells = " & ".join(f"{m[k]:.{digits.get(k, 4)}f}" for k in metric_keys(m))
    return f"Latex-friendly --> {name} & {cells} \\\\"


def report(m: Mapping[str, float], name: str = "model_name") -> str:
    return "\n".join([HEADER, metric_line(m), latex_row(m, name)])
