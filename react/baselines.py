"""The naive REACT baselines (REACT 2024 ``run_baselines.py``, docs/data.md) as prediction folders.

Each baseline gives 10 reactions per clip of a split (both directions, the 2N order), written as
``<out-dir>/<Baseline>/<split>/<clip>/result-<k>.pth`` (float32 ``(750, 25)``, temp file then rename),
so that ``react evaluate`` and ``react compare`` score it like a model:

- ``GT``: the real listener reaction of the clip (the Emotion of the other person of its row),
  10 identical copies.
- ``Random``: every value drawn uniformly from [0, 1) (valence and arousal too, as the official
  code), 10 different draws; seeded per clip from ``--seed`` and the clip path.
- ``Mime``: the clip's own (speaker) Emotion copied as the reaction, 10 copies.
- ``MeanSeq``: the mean training reaction sequence: frame by frame, the mean over every clip of
  the train split (both persons of each row, as the official code averages the speaker and the
  listener Emotion of each training pair), 10 copies.
- ``MeanFr``: the mean training frame (MeanSeq averaged over its 750 frames) repeated 750 times,
  10 copies.

A folder whose files were all written with the same settings (``.baseline.json``: the baseline,
the seed for Random, the clips and the size and time of every Emotion file read) is skipped.

    react baselines --data-dir D --split test --out-dir P
                    [--baselines GT,Random,Mime,MeanSeq,MeanFr] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from react.data import react_layout as L
from react.generation import clip_seed
from react.utils.cli import add_data_dir, add_out_dir, add_split
from react.utils.io import save_json, save_tensor
from react.utils.progress import progress

BASELINES = ("GT", "Random", "Mime", "MeanSeq", "MeanFr")
MARKER = ".baseline.json"
SPLIT_INPUT = ("GT", "Mime")  # read the split's own Emotion
TRAIN_INPUT = ("MeanSeq", "MeanFr")  # read the train split's Emotion


def training_mean_sequence(data_dir: str | os.PathLike) -> np.ndarray:
    """``(750, 25)`` float64: frame by frame, the mean Emotion of every clip of the train split."""
    train = L.read_split(data_dir, "train")
    total = np.zeros((L.NUM_FRAMES, L.EMOTION_DIM))
    for clip in progress(train.clips, desc="train Emotion", unit="clip"):
        total += L.read_emotion(L.emotion_path(data_dir, "train", clip))
    return total / len(train)


def baseline_reactions(name: str, split: L.Split, c: int, emotions: np.ndarray | None,
                       mean_sequence: np.ndarray | None, seed: int) -> torch.Tensor:
    """``(10, 750, 25)`` float32 reactions of baseline ``name`` to clip index ``c`` of ``split``.

    ``emotions``: the split's Emotion in clip order (GT, Mime); ``mean_sequence``: the training
    mean sequence (MeanSeq, MeanFr).
    """
    shape = (L.NUM_PREDICTIONS, L.NUM_FRAMES, L.EMOTION_DIM)
    if name == "Random":
        generator = torch.Generator().manual_seed(clip_seed(seed, split.clips[c]))
        return torch.rand(shape, generator=generator)
    if name == "GT":
        one = emotions[split.listener_index(c)]
    elif name == "Mime":
        one = emotions[c]
    elif name == "MeanSeq":
        one = mean_sequence
    elif name == "MeanFr":
        one = np.broadcast_to(mean_sequence.mean(axis=0), mean_sequence.shape)
    else:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return torch.from_numpy(np.array(one, dtype=np.float32)).expand(shape)


def _emotion_digest(data_dir: str | os.PathLike, split: L.Split) -> str:
    """SHA-1 of the path, size and modification time of every Emotion file of ``split``."""
    digest = hashlib.sha1()
    for clip in split.clips:
        path = L.emotion_path(data_dir, split.name, clip)
        stat = f"{path.stat().st_size}:{path.stat().st_mtime_ns}" if path.is_file() else "missing"
        digest.update(f"{path}:{stat};".encode())
    return digest.hexdigest()


def settings(name: str, data_dir: str | os.PathLike, split: L.Split, seed: int) -> dict:
    """What determines a baseline's folder (the ``.baseline.json`` it is written with)."""
    if name in SPLIT_INPUT:
        inputs = _emotion_digest(data_dir, split)
    elif name in TRAIN_INPUT:
        inputs = _emotion_digest(data_dir, L.read_split(data_dir, "train"))
    else:
        inputs = None
    return {"baseline": name, "split": split.name, "samples": L.NUM_PREDICTIONS,
            "seed": seed if name == "Random" else None, "emotion_sha1": inputs, "clips": split.clips}


def is_complete(folder: Path, split: L.Split, stamp: dict) -> bool:
    """Whether ``folder`` holds every file of ``split`` and was written with ``stamp``."""
    marker = folder / split.name / MARKER
    if not marker.is_file() or json.loads(marker.read_text()) != stamp:
        return False
    return all(L.prediction_path(folder, split.name, clip, k).is_file()
               for clip in split.clips for k in range(L.NUM_PREDICTIONS))


def write_baselines(data_dir: str | os.PathLike, split_name: str, out: str | os.PathLike,
                    names: tuple[str, ...] = BASELINES, seed: int = 0) -> dict[str, bool]:
    """Write each baseline of ``names`` to ``<out>/<name>``; returns name -> written (False: skipped)."""
    split = L.read_split(data_dir, split_name)
    stamps = {name: settings(name, data_dir, split, seed) for name in names}
    todo = [name for name in names if not is_complete(Path(out) / name, split, stamps[name])]
    emotions = L.read_emotions(split) if set(todo) & set(SPLIT_INPUT) else None
    mean_sequence = training_mean_sequence(data_dir) if set(todo) & set(TRAIN_INPUT) else None
    for name in todo:
        folder = Path(out) / name
        (folder / split.name / MARKER).unlink(missing_ok=True)
        for c, clip in enumerate(progress(split.clips, desc=name, unit="clip")):
            reactions = baseline_reactions(name, split, c, emotions, mean_sequence, seed)
            for k in range(L.NUM_PREDICTIONS):
                save_tensor(reactions[k].clone(), L.prediction_path(folder, split.name, clip, k))
        save_json(stamps[name], folder / split.name / MARKER)
    return {name: name in todo for name in names}


def parse_names(text: str) -> tuple[str, ...]:
    """``GT,Mime`` -> ``("GT", "Mime")``; raises ``ValueError`` for an unknown name."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        raise ValueError(f"unknown baseline(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {','.join(BASELINES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Write the baselines' prediction folders (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="react baselines",
                                     description="Write the naive REACT baselines as prediction folders")
    add_data_dir(parser, required=True, help="REACT dataset root (needs train.csv for Mean*)")
    add_split(parser)
    add_out_dir(parser, required=True, help="writes <out-dir>/<Baseline>/<split>/<clip>/result-<k>.pth")
    parser.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=0, help="seed of Random")
    args = parser.parse_args(argv)
    try:
        names = parse_names(args.baselines)
        written = write_baselines(args.data_dir, args.split, args.out_dir, names, args.seed)
    except ValueError as err:  # LayoutError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, done in written.items():
        folder = Path(args.out_dir) / name / args.split
        print(f"{name}: written to {folder}" if done else
              f"{name}: {folder} already complete with the same settings, skipped")
    preds = " ".join(f"{name}={Path(args.out_dir) / name}" for name in names)
    print(f"score them: react compare --data-dir {args.data_dir} --split {args.split} "
          f"--pred-dir {preds} --out-dir {Path(args.out_dir) / 'comparison'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
