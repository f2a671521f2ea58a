"""The ssl-features stage: the pre-trained encoder applied to every labelled window.

Reads the windows of ``train/val/test.csv`` from ``<modality_dir>/<input_type>/`` and writes one
embedding per window, under the same file name, into ``<modality_dir>/<output>/`` (default
``ssl_features``) with ``ssl_features.json`` (the run, its checkpoint and the embedding size).
Staged in a hidden folder and moved into place when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from react.data.windows import SPLITS, load_windows, publish
from react.engine import checkpoint_file, load_checkpoint
from react.utils.device import resolve_device
from react.utils.io import save_json


def extract_ssl_features(modality_dir: str | os.PathLike, ssl_run: str | os.PathLike, input_type: str,
                         output: str = "ssl_features", batch_size: int = 512,
                         device: str = "auto") -> dict[str, int]:
    """Embed every window of the splits with the encoder of ``ssl_run``; returns windows per split."""
    modality_dir = Path(modality_dir)
    _, model, _ = load_checkpoint(ssl_run, task="ssl", overrides={"data.root": str(modality_dir)})
    target = resolve_device(device)
    encoder = model.encoder.to(target).eval()
    stage = Path(tempfile.mkdtemp(dir=modality_dir, prefix=".ssl_features."))
    counts: dict[str, int] = {}
    try:
        (stage / output).mkdir()
        dim = 0
        for split in SPLITS:
            data = load_windows(modality_dir, split, input_type)
            counts[split] = len(data.y)
            if not len(data.y):
                continue
            x = torch.from_numpy(data.x).float()
            with torch.no_grad():
                emb = torch.cat([encoder(x[i:i + batch_size].to(target)).float().cpu()
                                 for i in range(0, len(x), batch_size)]).numpy()
            dim = emb.shape[1]
            for name, row in zip(data.table["files"], emb):
                np.save(stage / output / name, row.astype(np.float32))
        save_json({"ssl_run": str(ssl_run), "checkpoint": str(checkpoint_file(ssl_run)),
                   "input_type": input_type, "dim": dim, "windows": counts}, stage / f"{output}.json")
        publish(stage, modality_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return counts
