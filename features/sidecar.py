"""The JSON sidecar next to each feature file: what produced it, so that reruns can skip it.

``<clip>.pth`` holds a plain float32 ``frames x dim`` tensor; ``<clip>.json`` holds the run
*settings* (backbone, weights hash or ``"random"``, layer, fps, preprocessing, ...) plus the
clip's ``shape``, ``source`` and ``input`` (size and modification time of the media it was made
from). A clip is up to date when both files exist, the sidecar's settings equal the current run's
settings and its inputs are unchanged: a replaced mp4 or wav is extracted again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from react.utils.io import save_json

WEIGHT_SUFFIXES = (".json", ".bin", ".safetensors", ".pth", ".pt", ".ckpt")
CLIP_KEYS = ("shape", "dtype", "source", "input")  # per-clip facts, not part of the settings


def sidecar_path(feature_file: str | os.PathLike) -> Path:
    return Path(feature_file).with_suffix(".json")


def weights_fingerprint(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a checkpoint file (as ``sha256sum`` gives it), or of a model directory:
    the names and bytes of its config and weight files in sorted order."""
    path = Path(path)
    if path.is_file():
        return f"sha256:{_hash_files(hashlib.sha256(), [path]).hexdigest()}"
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{path}: no weight or config files ({', '.join(WEIGHT_SUFFIXES)}) found")
    return f"sha256:{_hash_files(hashlib.sha256(), files, root=path).hexdigest()}"


def _hash_files(digest: Any, files: list[Path], root: Path | None = None) -> Any:
    for file in files:
        if root is not None:
            digest.update(str(file.relative_to(root)).encode() + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest


def file_stamp(path: str | os.PathLike) -> list[int]:
    """``[bytes, newest mtime_ns, files]`` of a media file or folder (a REACT 2023 png folder)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    stats = [f.stat() for f in files if f.exists()]
    return [sum(st.st_size for st in stats), max((st.st_mtime_ns for st in stats), default=0), len(stats)]


def _normalised(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as JSON would give them back (tuples -> lists), for comparison."""
    return json.loads(json.dumps(settings))


def is_up_to_date(feature_file: str | os.PathLike, settings: dict[str, Any],
                  inputs: dict[str, list[int]] | None = None) -> bool:
    """True when the features and a sidecar with these exact settings (and, when given, these
    input stamps, see :func:`file_stamp`) both exist."""
    feature_file, side = Path(feature_file), sidecar_path(feature_file)
    if not (feature_file.is_file() and side.is_file()):
        return False
    try:
        recorded = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if inputs is not None and recorded.get("input") != _normalised(inputs):
        return False
    recorded = {k: v for k, v in recorded.items() if k not in CLIP_KEYS}
    return recorded == _normalised(settings)


def write_sidecar(feature_file: str | os.PathLike, settings: dict[str, Any], shape: tuple[int, ...],
                  source: str, inputs: dict[str, list[int]] | None = None) -> None:
    """Write the sidecar of ``feature_file`` atomically."""
    save_json({**_normalised(settings), "shape": list(shape), "dtype": "float32", "source": source,
               "input": inputs or {}}, sidecar_path(feature_file))
