"""Pre-processing of Magic XRoom sessions into labelled windows (docs/tools.md).

Each session's streams (bio = Shimmer, body = VR) are averaged into bins on one time grid at
``frequency`` Hz, so that several modalities share frames (early fusion = their channels side by
side). Windows of ``seq_len`` seconds with ``overlap`` lie inside one labelled interval. Splits are
by participant and seeded. Scaling (``scaler``) is inductive by default: ``train`` fits one scaler on
the training participants only; ``calibration`` scales each session by its own calibration period
(the rest before its first level), which a deployed system can also do; ``transductive`` scales
each session by its whole recording, test sessions included, and is labelled so in every report.
Derived channels and window scaling for new people: :mod:`react.data.derive`. Output, under
``<output_dir>/<dataset>/<modality>/`` (``bio``, ``body`` or ``bio+body``)::

    <process>/<P>_<session>_<k>_emotion_<code>.npy   one (seq_len * frequency, channels) window
    train.csv val.csv test.csv                         files, labels, label_name, participant, ...
    ssl_<process>/, ssl_{train,val,test}.csv           unlabelled windows over whole sessions
    stats_biomeasurements.csv                          bio only, one row per (subject, session)
    preprocess.json                                    channels, splits, scaler, skipped sessions

Everything is staged in a hidden folder and moved into place at the end, so a failed run leaves
the previous outputs as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from react.data.derive import FEATURES, WINDOW_NORMS, derive_channels, normalise_window
from react.errors import LayoutError
from react.data.xroom import (
    LABEL_CODES,
    LABELS,
    SHIMMER_CHANNELS,
    VR_CHANNELS,
    Session,
    Stream,
    XRoomError,
    discover_sessions,
    load_session,
    participant_key,
)

MODALITY_SENSOR = {"bio": "SHIMMER", "body": "VR"}
PROCESSES = ("standardize", "normalize", "raw")
SPLITS = ("train", "val", "test")
SPLIT_COLUMNS = ("files", "labels", "label_name", "participant", "session", "start_time")
SSL_COLUMNS = ("files", "participant", "session", "start_time")
STATS_COLUMNS = (
    "subject", "session", "sensor_session_length", "progress_event_length", "avg_actual_frequency",
    "progress_event_first_entry", "progress_event_last_entry", "sensor_first_entry", "sensor_last_entry",
    "labeled_sensor_data_pct", "num_labeled_intervals_seconds", "length_labeled_intervals",
    "length_seconds_BORED", "length_seconds_ENGAGED", "length_seconds_FRUSTRATED", "scaler",
)
SCALERS = {  # name -> (protocol, rule), stated in preprocess.json, the stats and test_metrics.json
    "train": ("inductive", "one scaler fitted on the training participants' frames only"),
    "calibration": ("inductive", "each session scaled by its own calibration period (the rest before "
                    "its first level, else its first calibration_s seconds), nothing after it"),
    "transductive": ("transductive", "each session scaled by its whole recording, test sessions "
                     "included: the statistics carry the session's mix of states"),
}


@dataclass
class DatasetConfig:
    """Where the XRoom recordings are and where the stage outputs go."""

    name: str = "XRoom"
    root: str = "datasets/XRoom"
    output_dir: str = "runs/tools"


@dataclass
class PreprocessConfig:
    """Windows, scaling and splits; defaults are the reference bio settings."""

    modalities: list[str] = field(default_factory=lambda: ["bio"])  # bio | body | both (early fusion)
    bio_channels: list[str] = field(default_factory=lambda: ["gsr", "ppg"])
    body_channels: list[str] = field(default_factory=lambda: list(VR_CHANNELS))
    process: str = "standardize"  # standardize | normalize (min-max to [0, 1]) | raw
    scaler: str = "train"  # train | calibration (inductive) | transductive: see SCALERS
    calibration_s: float = 60.0  # calibration period when the events mark no rest of calibration_min_s
    calibration_min_s: float = 20.0  # the least rest before the first level that is the calibration period
    features: list[str] = field(default_factory=list)  # derived channels: tonic_phasic, diff, calibration_relative
    window_norm: str = "none"  # none | robust (median / IQR) | rank, inside each window
    tonic_s: float = 4.0  # running-median length of the GSR tonic level, seconds
    create_splits: bool = True  # false: every participant in train
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    val_participants: list[str] = field(default_factory=list)  # explicit splits win over fractions
    test_participants: list[str] = field(default_factory=list)
    seq_len: float = 5.0  # window length, seconds
    frequency: float = 10.0  # Hz of the common time grid, i.e. of the windows
    overlap: float = 0.8  # fraction of a window shared with the next one, in [0, 1)
    threshold_s: float = 10.0  # a self-report must come this soon after the level's end
    borders: list[float] = field(default_factory=lambda: [0.4, 0.6])  # FEEDBACK_RECEIVED cut points
    unix_offset_hours: float = 1.0  # Unix-ms Shimmer clock lag behind the C# tick clock
    max_gap_s: float = 1.0  # frames farther than this from any sample are not used
    get_stats: bool = True  # stats_biomeasurements.csv (bio)
    get_ssl: bool = False  # also unlabelled windows over whole sessions, for self-supervised training


@dataclass
class Frames:
    """One session on the common grid: frame times, channels, validity and label intervals."""

    participant: str
    session: str
    t: np.ndarray  # (K,) seconds
    x: np.ndarray  # (K, C)
    valid: np.ndarray  # (K,) bool: near a real sample of every stream
    interval: np.ndarray  # (K,) index into ``labels``, -1 = unlabelled
    labels: list[str]
    channels: list[str]  # after the derived features, modality by modality
    groups: list[int]  # channels per modality
    calibration: np.ndarray  # (K,) bool: valid frames of the calibration period
    calibration_period: dict  # start, end (s from the first frame), source


@dataclass
class Scaler:
    """Per-channel affine map ``(x - center) / scale`` and the participants it was fitted on."""

    process: str
    center: np.ndarray
    scale: np.ndarray
    fitted_on: list[str]

    @classmethod
    def fit(cls, arrays: list[np.ndarray], process: str, fitted_on: list[str]) -> Scaler:
        data = np.concatenate(arrays)
        if process == "standardize":
            center, scale = data.mean(0), data.std(0)
        elif process == "normalize":
            center, scale = data.min(0), data.max(0) - data.min(0)
        else:
            center, scale = np.zeros(data.shape[1]), np.ones(data.shape[1])
        scale = np.where(scale > 1e-12, scale, 1.0)
        return cls(process, center, scale, sorted(fitted_on, key=participant_key))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.center) / self.scale

    def to_dict(self) -> dict:
        return {"process": self.process, "center": self.center.tolist(), "scale": self.scale.tolist(),
                "fitted_on": self.fitted_on}


@dataclass(frozen=True)
class Skipped:
    """A session left out, with the file and the reason."""

    participant: str
    session: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.participant} session {self.session}: {self.path}: {self.reason}"


@dataclass
class PreprocessResult:
    out_dir: Path
    splits: dict[str, list[str]]
    counts: dict[str, int]  # windows per split (and ssl_<split>)
    skipped: list[Skipped]


def modality_name(modalities: list[str]) -> str:
    """Output folder of a modality set: ``bio``, ``body``, ``bio+body``."""
    return "+".join(modalities)


def window_geometry(cfg: PreprocessConfig) -> tuple[int, int]:
    """Window length and hop in frames."""
    length = int(round(cfg.seq_len * cfg.frequency))
    return length, max(1, int(round(length * (1.0 - cfg.overlap))))


def check_config(cfg: PreprocessConfig) -> None:
    """Raise ``ValueError`` naming the first inconsistent field."""
    unknown = [m for m in cfg.modalities if m not in MODALITY_SENSOR]
    if not cfg.modalities or unknown or len(set(cfg.modalities)) != len(cfg.modalities):
        raise ValueError(f"modalities must be distinct names from {list(MODALITY_SENSOR)}, "
                         f"got {cfg.modalities}")
    for name, chosen, valid in (("bio_channels", cfg.bio_channels, SHIMMER_CHANNELS),
                                ("body_channels", cfg.body_channels, VR_CHANNELS)):
        bad = [c for c in chosen if c not in valid]
        if bad or not chosen:
            raise ValueError(f"{name}: unknown or no channel(s) {bad}; valid: {', '.join(valid)}")
    if cfg.process not in PROCESSES:
        raise ValueError(f"process must be one of {', '.join(PROCESSES)}, got {cfg.process!r}")
    if cfg.scaler not in SCALERS:
        former = " (the former 'session' is 'transductive')" if cfg.scaler == "session" else ""
        raise ValueError(f"scaler must be one of {', '.join(SCALERS)}, got {cfg.scaler!r}{former}")
    bad = [f for f in cfg.features if f not in FEATURES]
    if bad or len(set(cfg.features)) != len(cfg.features):
        raise ValueError(f"features must be distinct names from {', '.join(FEATURES)}, got {cfg.features}")
    if cfg.window_norm not in WINDOW_NORMS:
        raise ValueError(f"window_norm must be one of {', '.join(WINDOW_NORMS)}, got {cfg.window_norm!r}")
    if cfg.calibration_s <= 0 or cfg.calibration_min_s < 0 or cfg.tonic_s <= 0:
        raise ValueError("calibration_s and tonic_s must be > 0, calibration_min_s >= 0")
    if not 0.0 <= cfg.overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {cfg.overlap}")
    if cfg.frequency <= 0 or window_geometry(cfg)[0] < 2:
        raise ValueError(f"seq_len * frequency must give at least 2 frames, "
                         f"got {cfg.seq_len} s * {cfg.frequency} Hz")
    if not (0.0 <= cfg.val_fraction < 1.0 and 0.0 <= cfg.test_fraction < 1.0):
        raise ValueError("val_fraction and test_fraction must be in [0, 1)")


def resample(stream: Stream, grid: np.ndarray, frequency: float,
             max_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Average ``stream`` into bins of width ``1/frequency`` centred on ``grid``.

    Empty bins are linearly interpolated; they are valid only if a sample lies within ``max_gap_s``.
    Returns ``(x (K, C), valid (K,))``.
    """
    half = 0.5 / frequency
    edges = np.searchsorted(stream.t, np.append(grid - half, grid[-1] + half))
    counts = np.diff(edges)
    base = stream.x[0]
    csum = np.vstack([np.zeros((1, stream.x.shape[1])), np.cumsum(stream.x - base, axis=0)])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[edges[1:]] - csum[edges[:-1]]) / counts[:, None] + base
    empty = counts == 0
    valid = ~empty
    if empty.any():
        te = grid[empty]
        for j in range(stream.x.shape[1]):
            out[empty, j] = np.interp(te, stream.t, stream.x[:, j])
        pos = np.clip(np.searchsorted(stream.t, te), 1, len(stream.t) - 1)
        nearest = np.minimum(np.abs(stream.t[pos] - te), np.abs(te - stream.t[pos - 1]))
        valid[empty] = nearest <= max_gap_s
    return out, valid


def calibration_period(session: Session, t0: float, cfg: PreprocessConfig) -> tuple[float, float, str]:
    """``(start, end, source)`` of the session's calibration period, from its first frame ``t0``: the
    rest before the first ``LEVEL_STARTED`` if it lasts ``calibration_min_s``, else the first
    ``calibration_s`` seconds."""
    events = session.events
    starts = events["t"].to_numpy()[events["event_type"].to_numpy() == "LEVEL_STARTED"]
    first = float(starts.min()) if len(starts) else np.inf
    if first - t0 >= max(cfg.calibration_min_s, 1.0 / cfg.frequency):
        return t0, first, "before the first level"
    return t0, t0 + cfg.calibration_s, f"first {cfg.calibration_s:g} s"


def session_frames(session: Session, cfg: PreprocessConfig) -> Frames:
    """Put the session's modalities on one grid over the time all of them cover, with labels,
    the calibration period and the derived channels of ``cfg.features``."""
    chosen = {"bio": cfg.bio_channels, "body": cfg.body_channels}
    streams = [session.streams[MODALITY_SENSOR[m]].select(chosen[m]) for m in cfg.modalities]
    t0, t1 = max(s.t[0] for s in streams), min(s.t[-1] for s in streams)
    if t1 - t0 < cfg.seq_len:
        paths = " and ".join(s.path for s in streams)
        raise XRoomError(paths, f"streams overlap for {max(t1 - t0, 0):.1f} s, less than one window")
    # frames at whole multiples of 1/frequency, so that runs with other modalities share frame times
    grid = np.arange(np.ceil(t0 * cfg.frequency), np.floor(t1 * cfg.frequency) + 1) / cfg.frequency
    parts = [resample(s, grid, cfg.frequency, cfg.max_gap_s) for s in streams]
    valid = np.logical_and.reduce([p[1] for p in parts])
    start, end, source = calibration_period(session, grid[0], cfg)
    calibration = valid & (grid >= start) & (grid < end)
    if calibration.sum() < 2:
        raise XRoomError(session.events.attrs.get("path", streams[0].path),
                         f"calibration period ({source}) has {int(calibration.sum())} valid frames")
    derived = [derive_channels(p[0], list(s.channels), list(cfg.features), cfg.frequency, calibration,
                               cfg.tonic_s) for p, s in zip(parts, streams)]
    interval = np.full(len(grid), -1, dtype=np.int64)
    for i, iv in enumerate(session.intervals):
        interval[np.searchsorted(grid, iv.start, "left"):np.searchsorted(grid, iv.end, "right")] = i
    period = {"start_s": round(float(start - grid[0]), 3), "end_s": round(float(min(end, grid[-1]) - grid[0]), 3),
              "source": source}
    return Frames(session.participant, session.session, grid, np.concatenate([d[0] for d in derived], axis=1),
                  valid, interval, [iv.label for iv in session.intervals], [n for d in derived for n in d[1]],
                  [len(d[1]) for d in derived], calibration, period)


def window_starts(key: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Start frames of windows lying inside runs of equal, non-negative ``key``."""
    change = np.flatnonzero(np.diff(key)) + 1
    run_start = np.concatenate([[0], change])
    run_end = np.concatenate([change, [len(key)]])
    keep = (key[run_start] >= 0) & (run_end - run_start >= length)
    starts = [np.arange(s, e - length + 1, hop) for s, e in zip(run_start[keep], run_end[keep])]
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def split_participants(participants: list[str], cfg: PreprocessConfig, seed: int) -> dict[str, list[str]]:
    """Disjoint participant lists per split: explicit lists, else a seeded draw, else all in train."""
    people = sorted(set(participants), key=participant_key)
    if cfg.val_participants or cfg.test_participants:
        val, test = list(cfg.val_participants), list(cfg.test_participants)
        unknown = [p for p in val + test if p not in people]
        if unknown:
            raise ValueError(f"val/test participants {unknown} have no usable session; have {people}")
        if set(val) & set(test):
            raise ValueError(f"participants {sorted(set(val) & set(test))} are in both val and test")
    elif cfg.create_splits:
        order = [people[i] for i in np.random.default_rng(seed).permutation(len(people))]
        n_test = max(1, round(cfg.test_fraction * len(people))) if cfg.test_fraction > 0 else 0
        n_val = max(1, round(cfg.val_fraction * len(people))) if cfg.val_fraction > 0 else 0
        test, val = order[:n_test], order[n_test:n_test + n_val]
    else:
        val, test = [], []
    train = [p for p in people if p not in val and p not in test]
    if not train:
        raise ValueError(f"{len(people)} participants leave none for training (val={val}, test={test})")
    return {"train": train, "val": sorted(val, key=participant_key),
            "test": sorted(test, key=participant_key)}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def session_stats(session: Session, scaler: str) -> dict:
    """One row of ``stats_biomeasurements.csv`` (lengths in seconds, entries as wall-clock times)."""
    t = session.streams["SHIMMER"].t
    ev = session.events["t"].to_numpy()
    lengths = dict.fromkeys(LABELS, 0.0)
    labelled = np.zeros(len(t), dtype=bool)
    for iv in session.intervals:
        lo, hi = np.searchsorted(t, iv.start, "left"), np.searchsorted(t, iv.end, "right")
        labelled[lo:hi] = True
        lengths[iv.label] += max(0.0, min(iv.end, t[-1]) - max(iv.start, t[0]))
    duration = float(t[-1] - t[0])
    return {
        "subject": session.participant, "session": session.session,
        "sensor_session_length": round(duration, 3), "progress_event_length": round(float(ev[-1] - ev[0]), 3),
        "avg_actual_frequency": round(len(t) / duration, 3) if duration > 0 else 0.0,
        "progress_event_first_entry": _iso(ev[0]), "progress_event_last_entry": _iso(ev[-1]),
        "sensor_first_entry": _iso(t[0]), "sensor_last_entry": _iso(t[-1]),
        "labeled_sensor_data_pct": round(float(labelled.mean()), 4),
        "num_labeled_intervals_seconds": len(session.intervals),
        "length_labeled_intervals": round(sum(lengths.values()), 3),
        **{f"length_seconds_{k}": round(v, 3) for k, v in lengths.items()},
        "scaler": protocol(scaler)["name"],
    }


def write_csv_atomic(df: pd.DataFrame, target: str | os.PathLike, header: bool = True) -> None:
    """``df.to_csv`` (no index) to ``target`` through a temporary file in the same folder."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, header=header)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish(stage: Path, target: Path) -> None:
    """Move every entry of the staging folder ``stage`` into ``target``, replacing what is there."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(stage.iterdir()):
        dest = target / entry.name
        if entry.is_dir() and dest.exists():
            old = target / f".{entry.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(entry, dest)
            shutil.rmtree(old)
        else:
            os.replace(entry, dest)
    stage.rmdir()


def _write_windows(frames: Frames, x: np.ndarray, key: np.ndarray, length: int, hop: int, folder: Path,
                   labelled: bool, window_norm: str) -> list[dict]:
    rows = []
    for k, s in enumerate(window_starts(key, length, hop)):
        row = {"participant": frames.participant, "session": frames.session,
               "start_time": round(float(frames.t[s]), 3)}
        if labelled:
            name = frames.labels[key[s]]
            fname = f"{frames.participant}_{frames.session}_{k:05d}_emotion_{LABEL_CODES[name]}.npy"
            row = {"files": fname, "labels": LABELS.index(name), "label_name": name, **row}
        else:
            fname = f"{frames.participant}_{frames.session}_{k:05d}.npy"
            row = {"files": fname, **row}
        np.save(folder / fname, normalise_window(x[s:s + length], window_norm).astype(np.float32))
        rows.append(row)
    return rows


def preprocess(dataset: DatasetConfig, cfg: PreprocessConfig, seed: int = 0,
               log: Callable[[str], None] = print) -> PreprocessResult:
    """Read, label, resample, split, scale and window every session; write the output layout.

    Sessions with a bad file or without labels are skipped and returned in ``skipped``; a run
    without any usable session raises :class:`LayoutError`.
    """
    check_config(cfg)
    sensors = [MODALITY_SENSOR[m] for m in cfg.modalities]
    frames: list[Frames] = []
    stats: list[dict] = []
    skipped: list[Skipped] = []
    for files in discover_sessions(dataset.root):
        try:
            session = load_session(files, sensors, cfg.threshold_s, tuple(cfg.borders), cfg.unix_offset_hours)
            frames.append(session_frames(session, cfg))
        except XRoomError as err:
            skipped.append(Skipped(files.participant, files.session, err.path, err.reason))
            log(f"skipping {skipped[-1]}")
            continue
        if "bio" in cfg.modalities and cfg.get_stats:
            stats.append(session_stats(session, cfg.scaler))
    if not frames:
        raise LayoutError(f"{dataset.root}: no usable session ({len(skipped)} skipped):\n"
                          + "\n".join(map(str, skipped)))
    splits = split_participants([f.participant for f in frames], cfg, seed)
    split_of = {p: name for name, people in splits.items() for p in people}
    scaler = None
    if cfg.scaler == "train":
        scaler = Scaler.fit([f.x[f.valid] for f in frames if split_of[f.participant] == "train"],
                            cfg.process, splits["train"])
    scalers = [scaler or Scaler.fit([f.x[f.calibration if cfg.scaler == "calibration" else f.valid]],
                                    cfg.process, [f.participant]) for f in frames]
    out_dir = Path(dataset.output_dir) / dataset.name / modality_name(cfg.modalities)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".preprocess."))
    try:
        rows = _stage_windows(frames, cfg, scalers, split_of, stage)
        for name, table in rows.items():
            columns = SSL_COLUMNS if name.startswith("ssl_") else SPLIT_COLUMNS
            write_csv_atomic(pd.DataFrame(table, columns=list(columns)), stage / f"{name}.csv")
        if stats:
            stats_df = pd.DataFrame(stats, columns=list(STATS_COLUMNS))
            write_csv_atomic(stats_df, stage / "stats_biomeasurements.csv")
        length, hop = window_geometry(cfg)
        meta = {"dataset": asdict(dataset), "preprocess": asdict(cfg), "seed": seed,
                "modality": modality_name(cfg.modalities), "channels": frames[0].channels,
                "channel_groups": frames[0].groups,
                "window_frames": length, "hop_frames": hop, "labels": list(LABELS), "splits": splits,
                "protocol": protocol(cfg.scaler),
                "scaler": scaler.to_dict() if scaler else cfg.scaler,
                "calibration": [{"participant": f.participant, "session": f.session, **f.calibration_period,
                                 **({"center": sc.center.tolist(), "scale": sc.scale.tolist()}
                                    if cfg.scaler == "calibration" else {})}
                                for f, sc in zip(frames, scalers)],
                "counts": {k: len(v) for k, v in rows.items()}, "skipped": [asdict(s) for s in skipped]}
        (stage / "preprocess.json").write_text(json.dumps(meta, indent=2) + "\n")
        publish(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    counts = {k: len(v) for k, v in rows.items()}
    log(f"{out_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " windows")
    return PreprocessResult(out_dir, splits, counts, skipped)


def _stage_windows(frames: list[Frames], cfg: PreprocessConfig, scalers: list[Scaler],
                   split_of: dict[str, str], stage: Path) -> dict[str, list[dict]]:
    length, hop = window_geometry(cfg)
    folder = stage / cfg.process
    folder.mkdir()
    ssl_folder = stage / f"ssl_{cfg.process}"
    if cfg.get_ssl:
        ssl_folder.mkdir()
    rows: dict[str, list[dict]] = {k: [] for k in SPLITS}
    rows.update({f"ssl_{k}": [] for k in SPLITS} if cfg.get_ssl else {})
    for f, own in zip(frames, scalers):
        x = own.apply(f.x)
        split = split_of[f.participant]
        key = np.where(f.valid, f.interval, -1)
        rows[split] += _write_windows(f, x, key, length, hop, folder, True, cfg.window_norm)
        if cfg.get_ssl:
            rows[f"ssl_{split}"] += _write_windows(f, x, np.where(f.valid, 0, -1), length, hop, ssl_folder,
                                                   False, cfg.window_norm)
    return rows


@dataclass
class WindowSet:
    """Windows (or per-window features) of one split, their labels (-1 if none) and the CSV rows."""

    x: np.ndarray
    y: np.ndarray
    table: pd.DataFrame


def split_table(modality_dir: str | os.PathLike, split: str) -> pd.DataFrame:
    """The rows of ``<modality_dir>/<split>.csv`` (files, labels, participant, session, start_time)."""
    csv = Path(modality_dir) / f"{split}.csv"
    if not csv.is_file():
        raise LayoutError(f"{csv}: split file not found; run the preprocess stage first")
    return pd.read_csv(csv, dtype={"session": str, "participant": str})


def load_windows(modality_dir: str | os.PathLike, split: str, folder: str) -> WindowSet:
    """Stack the ``.npy`` files that ``<split>.csv`` lists from ``<modality_dir>/<folder>/``.

    ``split`` is train / val / test (or ssl_train ...); ``folder`` a window folder (standardize,
    ssl_standardize ...) or a handcrafted feature folder (statistical, spectral).
    """
    modality_dir = Path(modality_dir)
    table = split_table(modality_dir, split)
    paths = [modality_dir / folder / f for f in table["files"]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise LayoutError(f"{missing[0]}: listed in {split}.csv but missing ({len(missing)} missing in all)")
    x = np.stack([np.load(p) for p in paths]) if paths else np.zeros((0,), np.float32)
    y = table["labels"].to_numpy(np.int64) if "labels" in table else np.full(len(table), -1, np.int64)
    return WindowSet(x, y, table)


def labelled_intervals(modality_dir: str | os.PathLike, split: str) -> np.ndarray:
    """An id per row of ``<split>.csv``: the labelled interval (one self-report) the window was cut from.

    Windows cut from one run of frames start exactly one hop apart; the next run starts later than
    that, by the frames between the runs plus the remainder of the last window's run (unless the
    hop is the whole window and two runs touch, which then count as one). A run broken by frames
    without data counts as two.
    """
    table = split_table(modality_dir, split)
    meta = read_meta(modality_dir)
    frequency = meta["preprocess"]["frequency"]
    step_s = (meta["hop_frames"] + 0.5) / frequency  # one hop, with half a frame of rounding room
    order = np.lexsort((table["start_time"].to_numpy(), table["session"], table["participant"]))
    t = table.iloc[order]
    new = np.ones(len(t), dtype=bool)
    new[1:] = ((t["participant"].to_numpy()[1:] != t["participant"].to_numpy()[:-1])
               | (t["session"].to_numpy()[1:] != t["session"].to_numpy()[:-1])
               | (t["labels"].to_numpy()[1:] != t["labels"].to_numpy()[:-1])
               | (np.diff(t["start_time"].to_numpy()) > step_s))
    ids = np.empty(len(t), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def read_meta(modality_dir: str | os.PathLike) -> dict:
    """``preprocess.json`` of a window folder (channels, modalities, splits ...)."""
    path = Path(modality_dir) / "preprocess.json"
    if not path.is_file():
        raise LayoutError(f"{path}: not found; run the preprocess stage first")
    return json.loads(path.read_text())


def channel_groups(meta: dict) -> list[int]:
    """Channels per modality, in window order (late fusion gives each group its own encoder)."""
    if "channel_groups" in meta:
        return list(meta["channel_groups"])
    pre = meta["preprocess"]
    return [len(pre[f"{m}_channels"]) for m in pre["modalities"]]


def protocol(scaler: str) -> dict:
    """The evaluation protocol of a scaling: ``name`` (inductive / transductive, and the scaler) and ``rule``."""
    kind, rule = SCALERS[scaler]
    return {"name": kind if kind == scaler else f"{kind} ({scaler})", "rule": rule}
