"""Where a backbone's weights come from, and how the sidecar names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from features.sidecar import weights_fingerprint
from react.utils.logging import get_logger

log = get_logger(__name__)


def resolve_weights(path: str, random_init: bool, section: str) -> Path | None:
    """The weights path to load, or ``None`` for a random model; a missing path is an error.

    ``random_init`` wins over ``path`` (as in ``react.models.ssl_audio``), with a warning.
    """
    if random_init:
        if path:
            log.warning("%s.random_init is true: weights %s are ignored", section, path)
        return None
    if not path:
        raise FileNotFoundError(f"{section}: no weights given; pass --weights PATH (a local checkpoint "
                                f"file or HF-format directory) or set {section}.random_init=true")
    weights = Path(path)
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: {section} weights not found (nothing can be downloaded; "
                                f"copy them there or set {section}.random_init=true)")
    return weights


def weights_settings(path: str, random_init: bool, section: str, seed: int) -> dict[str, Any]:
    """Sidecar fields naming the weights: their sha256, or ``"random"`` and the seed."""
    weights = resolve_weights(path, random_init, section)
    if weights is None:
        return {"weights": "random", "seed": seed}
    return {"weights": weights_fingerprint(weights)}
