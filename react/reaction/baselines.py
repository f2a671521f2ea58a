"""The REACT baselines as prediction folders: the naive ones of REACT 2024 ``run_baselines.py``
(docs/data.md) and two fitted on the training split (:mod:`react.reaction.fitted_baselines`).

Each baseline gives 10 reactions per clip of a split (both directions, the 2N order), written as
``<out-dir>/<Baseline>/<split>/<clip>/result-<k>.pth`` (float32 ``(T, 25)``, temp file then rename),
so that ``react evaluate`` and ``react compare`` score it like a model. Both layouts
(REACT 2023/2024 and MARS, ``--layout``):

- ``GT``: the real listener reaction of the clip (the Emotion of the other person of its row),
  10 identical copies.
- ``Random``: every value drawn uniformly from [0, 1) (valence and arousal too, as the official
  code), 10 different draws; seeded per clip from ``--seed`` and the clip path.
- ``Mime``: the clip's own (speaker) Emotion copied as the reaction, 10 copies.
- ``MeanSeq``: the mean training reaction sequence: frame by frame, the mean over every clip of
  the train split (both persons of each row, as the official code averages the speaker and the
  listener Emotion of each training pair), 10 copies. Needs training clips of one length.
- ``MeanFr``: the mean training frame (the mean over every training frame) repeated, 10 copies.
- ``Linear``: ridge regression from the speaker's inputs with ``--lags`` frames of context to the
  listener's 25 attributes, fitted on the train split, penalty chosen on the val split; 10 copies.
- ``NN``: the real listener reactions of the 10 training clips whose speaker inputs are nearest.

``--inputs`` picks what Linear and NN read of each speaker: its facial attributes (``emotion``) or
its video and audio features (``features``, the generators' inputs, under ``--features-dir``).

A folder whose files were all written with the same settings (``.baseline.json``: the baseline,
its options, the clips and the size and time of every file it reads) is skipped.

    react baselines --data-dir D --split test --out-dir P [--baselines GT,Random,...,NN]
                    [--seed 0] [--inputs emotion|features] [--features-dir F]
                    [--lags 0,4,8,12] [--layout auto|react|mars]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from react.reaction import fitted_baselines as F
from react.reaction.data import layouts
from react.reaction.data import react_layout as L
from react.reaction.generation import clip_seed
from react.utils.cli import add_data_dir, add_out_dir, add_split
from react.utils.io import save_json, save_tensor
from react.utils.progress import progress

BASELINES = ("GT", "Random", "Mime", "MeanSeq", "MeanFr", "Linear", "NN")
MARKER = ".baseline.json"
FIT_FILE = "fit.json"  # Linear: the penalty chosen and the validation error of each


@dataclass(frozen=True)
class Options:
    """What a baseline's reactions depend on besides the data: Random's seed; Linear's and NN's
    inputs (``emotion`` or ``features``, read from ``features_root``, "" = the data dir) and Linear's lags."""

    seed: int = 0
    inputs: str = "emotion"
    features_root: str = ""
    lags: tuple[int, ...] = F.DEFAULT_LAGS
    layout: str = "auto"


class Sources:
    """The data the baselines of one split read, each part read once and only when needed."""

    def __init__(self, data_dir: str | os.PathLike, split: L.Split, options: Options):
        self.data_dir, self.split, self.options = data_dir, split, options

    def other(self, name: str) -> L.Split:
        return layouts.read_split(self.data_dir, name, self.split.layout)

    def inputs_of(self, split: L.Split) -> list[np.ndarray]:
        return F.speaker_inputs(split, self.options.inputs, self.options.features_root or None)

    @cached_property
    def lengths(self) -> list[int]:
        return F.clip_lengths(self.split)

    @cached_property
    def emotions(self) -> list[np.ndarray]:
        return layouts.read_emotions(self.split)

    @cached_property
    def train(self) -> L.Split:
        return self.other("train")

    @cached_property
    def train_emotions(self) -> list[np.ndarray]:
        return layouts.read_emotions(self.train)

    @cached_property
    def train_inputs(self) -> list[np.ndarray]:
        return self.inputs_of(self.train)

    @cached_property
    def mean_sequence(self) -> np.ndarray:
        """``(T, 25)`` float64: frame by frame, the mean Emotion of every clip of the train split."""
        if len({len(e) for e in self.train_emotions}) > 1:
            raise ValueError(f"MeanSeq needs training clips of one length; those of {self.train.data_dir} "
                             "vary (MARS): use MeanFr")
        return np.mean(np.stack(self.train_emotions), axis=0, dtype=np.float64)

    @cached_property
    def mean_frame(self) -> np.ndarray:
        """``(25,)`` float64: the mean of every frame of every training clip."""
        return np.concatenate(self.train_emotions).mean(axis=0, dtype=np.float64)

    @cached_property
    def ridge(self) -> F.Ridge:
        val = self.other("val")
        return F.fit_ridge(F.training_pairs(self.train, self.train_inputs, self.train_emotions),
                           F.training_pairs(val, self.inputs_of(val), layouts.read_emotions(val)),
                           self.options.lags)

    @cached_property
    def nearest(self) -> np.ndarray:
        return F.nearest_clips(self.inputs_of(self.split), self.train_inputs, L.NUM_PREDICTIONS)

    @cached_property
    def inputs(self) -> list[np.ndarray]:
        return self.inputs_of(self.split)


def baseline_reactions(name: str, c: int, src: Sources) -> torch.Tensor:
    """``(10, T, 25)`` float32 reactions of baseline ``name`` to clip index ``c`` of ``src.split``."""
    split, frames = src.split, src.lengths[c]
    shape = (L.NUM_PREDICTIONS, frames, L.EMOTION_DIM)
    if name == "Random":
        generator = torch.Generator().manual_seed(clip_seed(src.options.seed, split.clips[c]))
        return torch.rand(shape, generator=generator)
    if name == "NN":
        train = src.train
        return torch.from_numpy(np.stack([
            F.fit_to_length(src.train_emotions[train.listener_index(int(m))], frames) for m in src.nearest[c]
        ]).astype(np.float32))
    if name == "GT":
        one = F.fit_to_length(src.emotions[split.listener_index(c)], frames)
    elif name == "Mime":
        one = src.emotions[c]
    elif name == "MeanSeq":
        one = src.mean_sequence
    elif name == "MeanFr":
        one = np.broadcast_to(src.mean_frame, (frames, L.EMOTION_DIM))
    elif name == "Linear":
        one = src.ridge.predict(src.inputs[c])
    else:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return torch.from_numpy(np.array(one, dtype=np.float32)).expand(shape)


def _digest(files: list[Path]) -> str:
    """SHA-1 of the path, size and modification time of every file of ``files``."""
    digest = hashlib.sha1()
    for path in files:
        stat = f"{path.stat().st_size}:{path.stat().st_mtime_ns}" if path.is_file() else "missing"
        digest.update(f"{path}:{stat};".encode())
    return digest.hexdigest()


def _emotion_files(split: L.Split) -> list[Path]:
    return [layouts.emotion_path(split, clip) for clip in split.clips]


def _input_files(split: L.Split, options: Options) -> list[Path]:
    """The files :func:`react.reaction.fitted_baselines.speaker_inputs` reads for ``split``."""
    if options.inputs == "emotion":
        return _emotion_files(split)
    root = options.features_root or split.data_dir
    return [L.feature_path(root, split.name, kind, c) for c in split.clips for kind in L.FEATURE_FOLDERS]


def files_read(name: str, src: Sources) -> list[Path]:
    """Every file baseline ``name`` reads (for its stamp)."""
    split, options = src.split, src.options
    if name in ("GT", "Mime") or (name == "Random" and split.layout == "mars"):  # MARS: lengths
        return _emotion_files(split)
    if name in ("MeanSeq", "MeanFr"):
        return _emotion_files(src.train)
    if name in ("Linear", "NN"):
        splits = [src.train] + ([src.other("val")] if name == "Linear" else [])
        files = [f for s in splits for f in _emotion_files(s) + _input_files(s, options)]
        return files + _input_files(split, options)
    return []


def settings(name: str, src: Sources) -> dict:
    """What determines a baseline's folder (the ``.baseline.json`` it is written with)."""
    fitted = name in ("Linear", "NN")
    return {"baseline": name, "split": src.split.name, "samples": L.NUM_PREDICTIONS,
            "seed": src.options.seed if name == "Random" else None,
            "inputs": src.options.inputs if fitted else None,
            "lags": list(src.options.lags) if name == "Linear" else None,
            "files_sha1": _digest(files_read(name, src)), "clips": src.split.clips}


def is_complete(folder: Path, split: L.Split, stamp: dict) -> bool:
    """Whether ``folder`` holds every file of ``split`` and was written with ``stamp``."""
    marker = folder / split.name / MARKER
    if not marker.is_file() or json.loads(marker.read_text()) != stamp:
        return False
    return all(L.prediction_path(folder, split.name, clip, k).is_file()
               for clip in split.clips for k in range(L.NUM_PREDICTIONS))


def write_baselines(data_dir: str | os.PathLike, split_name: str, out: str | os.PathLike,
                    names: tuple[str, ...] = BASELINES, options: Options = Options()) -> dict[str, bool]:
    """Write each baseline of ``names`` to ``<out>/<name>``; returns name -> written (False: skipped).

    ``Linear`` also writes ``<out>/Linear/<split>/fit.json``: the penalty chosen and the
    validation MSE of every penalty tried."""
    if options.inputs not in F.INPUT_KINDS:
        raise ValueError(f"inputs must be one of {', '.join(F.INPUT_KINDS)}, got {options.inputs!r}")
    split = layouts.read_split(data_dir, split_name, options.layout)
    src = Sources(data_dir, split, options)
    stamps = {name: settings(name, src) for name in names}
    todo = [name for name in names if not is_complete(Path(out) / name, split, stamps[name])]
    for name in todo:
        folder = Path(out) / name
        (folder / split.name / MARKER).unlink(missing_ok=True)
        for c, clip in enumerate(progress(split.clips, desc=name, unit="clip")):
            reactions = baseline_reactions(name, c, src)
            for k in range(L.NUM_PREDICTIONS):
                save_tensor(reactions[k].clone(), L.prediction_path(folder, split.name, clip, k))
        if name == "Linear":
            fit = src.ridge
            save_json({"penalty": fit.lam, "val_mse": fit.val_mse[fit.lam], "inputs": options.inputs,
                       "lags": list(fit.lags), "val_mse_by_penalty": {f"{lam:g}": mse for lam, mse in
                                                                      fit.val_mse.items()}},
                      folder / split.name / FIT_FILE)
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


def parse_lags(text: str) -> tuple[int, ...]:
    """``0,4,8`` -> ``(0, 4, 8)``; ``ValueError`` unless distinct non-negative integers with 0."""
    try:
        lags = tuple(int(v) for v in text.split(","))
    except ValueError:
        lags = ()
    if not lags or min(lags) < 0 or 0 not in lags or len(set(lags)) != len(lags):
        raise ValueError(f"--lags must be distinct non-negative frame counts including 0, got {text!r}")
    return lags


def main(argv: list[str] | None = None) -> int:
    """Write the baselines' prediction folders (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="react baselines",
                                     description="Write the REACT baselines as prediction folders")
    add_data_dir(parser, required=True,
                 help="dataset root (the train split for Mean*, Linear, NN; val for Linear)")
    add_split(parser)
    add_out_dir(parser, required=True, help="writes <out-dir>/<Baseline>/<split>/<clip>/result-<k>.pth")
    parser.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=0, help="seed of Random")
    parser.add_argument("--inputs", default="emotion", choices=F.INPUT_KINDS,
                        help="what Linear and NN read of the speaker: facial attributes or video+audio "
                        "features")
    parser.add_argument("--features-dir", default="",
                        help="root of <split>/{Video,Audio}_features (default: the data dir)")
    parser.add_argument("--lags", default=",".join(map(str, F.DEFAULT_LAGS)),
                        help="Linear: frames of context (each frame and the frames this much earlier)")
    parser.add_argument("--layout", default="auto", choices=("auto", *layouts.LAYOUTS))
    args = parser.parse_args(argv)
    try:
        names = parse_names(args.baselines)
        options = Options(args.seed, args.inputs, args.features_dir, parse_lags(args.lags), args.layout)
        written = write_baselines(args.data_dir, args.split, args.out_dir, names, options)
    except ValueError as err:  # LayoutError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, done in written.items():
        folder = Path(args.out_dir) / name / args.split
        print(f"{name}: written to {folder}" if done else
              f"{name}: {folder} already complete with the same settings, skipped")
        if name == "Linear" and (folder / FIT_FILE).is_file():
            fit = json.loads((folder / FIT_FILE).read_text())
            print(f"Linear: ridge penalty {fit['penalty']:g} chosen on the val split "
                  f"(val MSE {fit['val_mse']:.5f}), inputs {fit['inputs']}")
    preds = " ".join(f"{name}={Path(args.out_dir) / name}" for name in names)
    print(f"score them: react compare --data-dir {args.data_dir} --split {args.split} "
          f"--pred-dir {preds} --out-dir {Path(args.out_dir) / 'comparison'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
