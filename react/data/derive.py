"""Features for new people (docs/tools.md, "Robust features"): derived channels and window scaling.

Per-participant differences in skin-conductance level, heart rate and movement range are what
makes a model trained on some people fail on others. The options below are the usual answers of
the field, each applied by the pre-processing when named in ``preprocess.features`` /
``preprocess.window_norm``:

- ``tonic_phasic``: the GSR channel is replaced by its tonic level (a running median over
  ``tonic_s`` seconds) and its phasic remainder (GSR minus tonic: the skin-conductance responses);
- ``diff``: every channel's first difference per second is added (``d_<channel>``), which drops
  any constant offset;
- ``calibration_relative``: every channel minus its median over the session's calibration period
  is added (``rel_<channel>``): the value relative to the person's own resting baseline;
- ``window_norm: robust``: inside each window, each channel minus its median over its
  interquartile range; ``rank``: each channel's ranks inside the window scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from scipy.stats import rankdata

FEATURES = ("tonic_phasic", "diff", "calibration_relative")
WINDOW_NORMS = ("none", "robust", "rank")
TONIC_CHANNEL = "gsr"


def tonic_phasic(gsr: np.ndarray, frequency: float, tonic_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Tonic level (running median over ``tonic_s`` seconds, edges repeated) and phasic remainder."""
    size = max(1, int(round(tonic_s * frequency)) | 1)  # odd, so the median is centred
    tonic = median_filter(gsr, size=size, mode="nearest")
    return tonic, gsr - tonic


def first_difference(x: np.ndarray, frequency: float) -> np.ndarray:
    """Change per second from the previous frame, per channel (0 at the first frame)."""
    return np.vstack([np.zeros((1, x.shape[1])), np.diff(x, axis=0)]) * frequency


def derive_channels(x: np.ndarray, names: list[str], features: list[str], frequency: float,
                    calibration: np.ndarray, tonic_s: float) -> tuple[np.ndarray, list[str]]:
    """The channels of one modality with ``features`` applied, and their names.

    ``calibration`` marks the frames of the session's calibration period (used by
    ``calibration_relative`` only).
    """
    if "tonic_phasic" in features and TONIC_CHANNEL in names:
        j = names.index(TONIC_CHANNEL)
        tonic, phasic = tonic_phasic(x[:, j], frequency, tonic_s)
        x = np.column_stack([x[:, :j], tonic, phasic, x[:, j + 1:]])
        names = [*names[:j], "gsr_tonic", "gsr_phasic", *names[j + 1:]]
    parts, out_names = [x], list(names)
    if "diff" in features:
        parts.append(first_difference(x, frequency))
        out_names += [f"d_{n}" for n in names]
    if "calibration_relative" in features:
        parts.append(x - np.median(x[calibration], axis=0))
        out_names += [f"rel_{n}" for n in names]
    return np.concatenate(parts, axis=1), out_names


def normalise_window(w: np.ndarray, how: str) -> np.ndarray:
    """One window (frames, channels) scaled inside itself: ``robust``, ``rank`` or ``none``."""
    if how == "robust":
        q1, median, q3 = np.percentile(w, [25, 50, 75], axis=0)
        iqr = q3 - q1
        return (w - median) / np.where(iqr > 1e-9, iqr, 1.0)
    if how == "rank":
        return (rankdata(w, axis=0) - 1.0) / max(len(w) - 1, 1)
    return w
