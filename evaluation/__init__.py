"""REACT evaluation: the official metrics of REACT 2023/2024 and 2025/2026, fast (numba on CPU).

``compute_metrics`` scores arrays (``score_clips`` and ``combine``: some clips at a time, merged);
``load_split`` reads a split's ground truth and predictions. Importing the package is light: numba
kernels and torch load on first use.
"""

from evaluation.loading import EvalInputError, load_split
from evaluation.metrics import METRIC_KEYS, METRIC_SETS, combine, compute_metrics, score_clips

__all__ = ["METRIC_KEYS", "METRIC_SETS", "EvalInputError", "combine", "compute_metrics", "load_split",
           "score_clips"]
