"""Atomic writes: outputs go to a temporary name in the same folder, then are renamed.

The result gets the permissions a plain ``open()`` would give (``0666`` minus the umask), not the
owner-only ``0600`` of a temporary file, so a team on a shared machine can read each other's runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once: os.umask can only be read by setting it


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_tensor(obj: Any, target: str | os.PathLike) -> None:
    """``torch.save`` to ``target`` atomically."""
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def save_json(obj: Any, target: str | os.PathLike) -> None:
    """Write JSON to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as a file to write, checked before any work: an existing folder there is an error."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'metrics.json'}")
    return path


def output_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as a folder to write into, checked before any work: an existing file there is an error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: is a file; give a folder (it is created when missing)")
    return path
