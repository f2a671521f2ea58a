"""Appropriateness matrices of the REACT 2023/2024 layout: cut, assemble, and build from Emotion files.

Dataset-wide order. ``data_indices.csv`` lists D dyads, one row each (the rows of the split CSVs,
train then val then test). ``Approprirate_facial_reaction.npy`` (sic) is 2D x 2D: the speaker
clip of dyad ``r`` has index ``r``, its listener ``r + D``, and ``W[a, b] = 1`` when the real
reaction to clip ``b`` is also appropriate for clip ``a``. ``neighbour_emotion_<split>.npy`` is
the same matrix cut to the split's 2N clips in their own order (all speakers, then all
listeners), exactly as the official ``matrix_split.py`` cuts it.

Index file columns: ``site,session,clip,split,speaker_index,listener_index,speaker_path,listener_path``.
The official tools read only the first three (the dyad key of :func:`react_layout.dyad_key`) and
the row position, so the file also works with them; an official index with only those three
columns can be read here too.

Appropriateness from the Emotion files (:func:`emotion_matrix`): two reactions are appropriate for
each other's speaker when their facial-attribute descriptors are within a threshold of each other
(root-mean-square difference); the real listener is always appropriate.

    react data matrices assemble --data-dir DATA_DIR   # per-split matrices -> dataset-wide + index
    react data matrices split --data-dir DATA_DIR      # dataset-wide + index -> per-split matrices
    react data matrices emotion --data-dir DATA_DIR [--quantile Q | --threshold T] [--descriptor D]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from react.reaction.data import react_layout as L
from react.errors import LayoutError
from react.utils.cli import BAD_INPUT, add_data_dir, add_out_dir

INDEX_COLUMNS = ("site", "session", "clip", "split", "speaker_index", "listener_index",
                 "speaker_path", "listener_path")
DESCRIPTORS = ("sequence", "stats")
DEFAULT_QUANTILE = 0.15


@dataclass(frozen=True)
class Dyad:
    """One row of the index: its dyad key and, when the file names them, its split and clip paths."""

    key: tuple[str, str, str]
    split: str = ""
    speaker: str = ""
    listener: str = ""


@dataclass(frozen=True)
class DatasetIndex:
    """The D dyads of the dataset-wide matrix in row order."""

    dyads: tuple[Dyad, ...]

    def __len__(self) -> int:
        """Clips of the dataset-wide matrix: 2D."""
        return 2 * len(self.dyads)

    def clip_indices(self, split: L.Split) -> np.ndarray:
        """Dataset-wide index of each of the split's 2N clips, in the split's order."""
        rows = {d.key: r for r, d in enumerate(self.dyads)}
        positions = []
        for speaker, listener in zip(split.speakers, split.listeners):
            key = L.dyad_key(speaker)
            if key not in rows:
                raise LayoutError(f"{split.name}.csv: dyad {speaker} ({'/'.join(key)}) is not in the index")
            dyad = self.dyads[rows[key]]
            if dyad.speaker and (dyad.speaker, dyad.listener) != (speaker, listener):
                raise LayoutError(f"{split.name}.csv: row {speaker},{listener} does not match index row "
                                  f"{rows[key]} ({dyad.speaker},{dyad.listener})")
            positions.append(rows[key])
        r = np.asarray(positions, dtype=np.int64)
        return np.concatenate([r, r + len(self.dyads)])


def build_index(data_dir: str | os.PathLike, splits: tuple[str, ...] = L.SPLITS) -> DatasetIndex:
    """The dyads of the split CSVs in order; each dyad key must be unique and shared by its pair."""
    dyads: list[Dyad] = []
    seen: dict[tuple[str, str, str], str] = {}
    for name in splits:
        split = L.read_split(data_dir, name)
        for speaker, listener in zip(split.speakers, split.listeners):
            key = L.dyad_key(speaker)
            if L.dyad_key(listener) != key:
                raise LayoutError(f"{name}.csv: {speaker} and {listener} are not the same dyad")
            if key in seen:
                raise LayoutError(f"{name}.csv: dyad {'/'.join(key)} of {speaker} is already listed "
                                  f"in {seen[key]}.csv")
            seen[key] = name
            dyads.append(Dyad(key, name, speaker, listener))
    return DatasetIndex(tuple(dyads))


def write_index(path: str | os.PathLike, index: DatasetIndex) -> None:
    """Write ``data_indices.csv`` (see the module docstring for its columns)."""
    d = len(index.dyads)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(INDEX_COLUMNS)
        for r, dyad in enumerate(index.dyads):
            writer.writerow([*dyad.key, dyad.split, r, r + d, dyad.speaker, dyad.listener])


def read_index(path: str | os.PathLike) -> DatasetIndex:
    """Read an index file written here or by the official tools (only its first three columns)."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"{path}: index file not found")
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if len(rows) < 2:
        raise LayoutError(f"{path}: no dyads listed")
    named = rows[0][: len(INDEX_COLUMNS)] == list(INDEX_COLUMNS)
    dyads = []
    columns = len(INDEX_COLUMNS) if named else 3
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) < columns:
            raise LayoutError(f"{path}:{lineno}: expected {columns} columns, got {len(row)}")
        key = (row[0].strip().upper(), row[1].strip(), row[2].strip())
        dyads.append(Dyad(key, row[3], row[6], row[7]) if named else Dyad(key))
    if len({d.key for d in dyads}) != len(dyads):
        raise LayoutError(f"{path}: a dyad is listed twice")
    return DatasetIndex(tuple(dyads))


def load_matrix(path: str | os.PathLike, size: int) -> np.ndarray:
    """A square 0/1 ``.npy`` matrix of ``size`` x ``size`` as bool."""
    path = Path(path)
    matrix = L.load_npy(path, "matrix")
    if matrix.shape != (size, size):
        raise LayoutError(f"{path}: matrix is {matrix.shape}, expected ({size}, {size}) for the index")
    if not np.isin(matrix, (0, 1)).all():
        raise LayoutError(f"{path}: values other than 0 and 1")
    return matrix.astype(bool)


def cut(matrix: np.ndarray, index: DatasetIndex, split: L.Split) -> np.ndarray:
    """The split's 2N x 2N matrix cut out of the dataset-wide one."""
    positions = index.clip_indices(split)
    return matrix[np.ix_(positions, positions)]


def assemble(data_dir: str | os.PathLike, index: DatasetIndex) -> np.ndarray:
    """The dataset-wide matrix from every split's ``neighbour_emotion_<split>.npy``.

    Pairs of clips from different splits were never judged, so they stay 0 (block-diagonal).
    """
    matrix = np.zeros((len(index), len(index)), dtype=bool)
    for name in dict.fromkeys(d.split for d in index.dyads):
        split = L.read_split(data_dir, name)
        positions = index.clip_indices(split)
        matrix[np.ix_(positions, positions)] = L.read_appropriateness(split)
    return matrix


def descriptors(emotions: np.ndarray, kind: str = "sequence") -> np.ndarray:
    """Per-clip descriptors ``(n, d)`` of ``(n, T, 25)`` facial attributes.

    ``sequence``: the whole time-aligned sequence, flattened. ``stats``: the mean and standard
    deviation of each attribute over time (ignores timing).
    """
    emotions = np.asarray(emotions, dtype=np.float64)
    if kind == "sequence":
        return emotions.reshape(len(emotions), -1)
    if kind == "stats":
        return np.concatenate([emotions.mean(1), emotions.std(1)], axis=1)
    raise ValueError(f"descriptor must be one of {DESCRIPTORS}, got {kind!r}")


def rms_distances(x: np.ndarray) -> np.ndarray:
    """Root-mean-square difference between every two rows of ``x`` ``(n, d)``."""
    sq = (x**2).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0) / x.shape[1])


def emotion_matrix(emotions: np.ndarray, threshold: float | None = None,
                   quantile: float = DEFAULT_QUANTILE, descriptor: str = "sequence"
                   ) -> tuple[np.ndarray, float]:
    """Appropriateness of 2D clips (dataset-wide order) from their facial attributes.

    The real reaction to clip ``i`` is clip ``(i + D) % 2D``. ``M[k, j] = 1`` when the reactions to
    ``k`` and ``j`` are within ``threshold`` (RMS distance of their descriptors); without a
    threshold, the ``quantile`` of all distances between different clips is used. The diagonal is
    1. Returns the float32 0/1 matrix and the threshold used.
    """
    n = len(emotions)
    if n % 2:
        raise ValueError(f"expected 2D clips (speakers, then listeners), got {n}")
    reactions = np.roll(np.arange(n), -(n // 2))  # reactions[k] = (k + D) % 2D
    dist = rms_distances(descriptors(np.asarray(emotions)[reactions], descriptor))
    if threshold is None:
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {quantile}")
        off_diagonal = dist[~np.eye(n, dtype=bool)]
        threshold = float(np.quantile(off_diagonal, quantile)) if off_diagonal.size else 0.0
    matrix = dist <= threshold
    np.fill_diagonal(matrix, True)
    return matrix.astype(np.float32), float(threshold)


def index_emotions(data_dir: str | os.PathLike, index: DatasetIndex) -> np.ndarray:
    """Emotion arrays of the index's 2D clips, ``(2D, 750, 25)``: speakers, then listeners."""
    clips = [(d.split, d.speaker) for d in index.dyads] + [(d.split, d.listener) for d in index.dyads]
    return np.stack([L.read_emotion(L.emotion_path(data_dir, s, c)) for s, c in clips])


def _save(path: Path, matrix: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, matrix.astype(np.float32))
    tmp.replace(path)


def _describe(matrix: np.ndarray) -> str:
    per_clip = matrix.astype(bool).sum(1)
    return (f"{matrix.shape[0]} x {matrix.shape[1]}, appropriate reactions per clip: mean "
            f"{per_clip.mean():.1f}, min {per_clip.min()}, max {per_clip.max()}")


def _run(args: argparse.Namespace) -> None:
    data_dir, out = args.data_dir, args.out_dir or args.data_dir
    targets = [] if args.command == "split" else [out / L.DATASET_MATRIX, out / L.DATA_INDICES]
    if args.command != "assemble":
        targets += [L.appropriateness_path(out, name) for name in args.splits]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not args.force:
        raise FileExistsError(f"{', '.join(existing)} exist(s); pass --force to overwrite")
    if args.command == "split":
        index = read_index(data_dir / L.DATA_INDICES)
        matrix = load_matrix(data_dir / L.DATASET_MATRIX, len(index))
    else:
        index = build_index(data_dir, tuple(args.splits))
        if args.command == "assemble":
            matrix = assemble(data_dir, index)
        else:
            matrix, threshold = emotion_matrix(index_emotions(data_dir, index), args.threshold,
                                               args.quantile, args.descriptor)
            print(f"{args.descriptor} descriptors, RMS distance threshold {threshold:.6g}")
        _save(out / L.DATASET_MATRIX, matrix)
        write_index(out / L.DATA_INDICES, index)
        print(f"wrote {out / L.DATASET_MATRIX} ({_describe(matrix)}) and {out / L.DATA_INDICES}")
    if args.command != "assemble":
        for name in args.splits:
            neighbours = cut(matrix, index, L.read_split(data_dir, name))
            _save(L.appropriateness_path(out, name), neighbours)
            print(f"wrote {L.appropriateness_path(out, name)} ({_describe(neighbours)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react data matrices",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "assemble": "neighbour_emotion_<split>.npy of every split -> Approprirate_facial_reaction.npy "
                    "(block-diagonal) + data_indices.csv",
        "split": "Approprirate_facial_reaction.npy + data_indices.csv -> neighbour_emotion_<split>.npy",
        "emotion": "Emotion CSVs -> Approprirate_facial_reaction.npy + data_indices.csv + "
                   "neighbour_emotion_<split>.npy (reaction similarity under a threshold)",
    }
    for name, text in commands.items():
        p = sub.add_parser(name, help=text, description=text)
        add_data_dir(p, required=True, type=Path, help="REACT 2023/2024 dataset root")
        p.add_argument("--splits", nargs="+", default=list(L.SPLITS), choices=L.SPLITS)
        add_out_dir(p, type=Path, help="folder to write to (default: --data-dir)")
        p.add_argument("--force", action="store_true", help="overwrite existing files")
        if name == "emotion":
            group = p.add_mutually_exclusive_group()
            group.add_argument("--threshold", type=float, help="RMS distance threshold")
            group.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE,
                               help="threshold = this quantile of all distances (default %(default)s)")
            p.add_argument("--descriptor", choices=DESCRIPTORS, default="sequence")
    args = parser.parse_args(argv)
    try:
        _run(args)
    except (LayoutError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return BAD_INPUT
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
