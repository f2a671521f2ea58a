"""REACT evaluation: the six official metrics, fast (numba on CPU, torch on GPU).

``compute_metrics`` scores arrays; ``load_split`` reads a split's ground truth and predictions.
Importing the package is light: numba kernels and torch load on first use.
"""

from evaluation.loading import EvalInputError, load_split
from evaluation.metrics import METRIC_KEYS, compute_metrics

__all__ = ["METRIC_KEYS", "EvalInputError", "compute_metrics", "load_split"]
