"""Magic XRoom sessions (docs/tools.md): file discovery, the three readers, label intervals.

``<root>/P<n>/data_collection_<SESSION>_{SHIMMER,VR,PROGRESS_EVENT}_.csv``. Every timestamp is
converted to one time base: seconds on the recording PC's wall clock (C# ``DateTime.Now`` ticks,
100 ns since 0001-01-01). Older Shimmer files hold Unix milliseconds (UTC), which lag that clock by
``unix_offset_hours`` (1 h in the reference recordings). Files may have a header row or not.

Anything a session cannot be used with raises :class:`XRoomError` naming the file and the reason;
callers skip that session and list it at the end.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from react.errors import LayoutError

LABELS = ("BORED", "ENGAGED", "FRUSTRATED")
LABEL_CODES = {"BORED": "01", "ENGAGED": "02", "FRUSTRATED": "03"}
SENSORS = ("SHIMMER", "VR", "PROGRESS_EVENT")
SHIMMER_CHANNELS = ("accel_x", "accel_y", "accel_z", "gsr", "ppg", "hr")
VR_CHANNELS = tuple(f"{part}_{axis}" for part in ("head", "lcontroller", "rcontroller")
                    for axis in ("posX", "posY", "posZ", "rotX", "rotY", "rotZ", "rotW"))
VR_V1_TYPOS = {"lcontroller_pposY": "lcontroller_posY", "rcontroller_pposY": "rcontroller_posY"}
LEVEL_END_EVENTS = ("LEVEL_COMPLETED", "LEVEL_FAILED")
REPORT_EVENTS = (*LABELS, "SKIP", "FEEDBACK_RECEIVED")

TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000  # C# ticks of 1970-01-01 00:00
_FILE_RE = re.compile(r"^data_collection_(\d+)_(SHIMMER|VR|PROGRESS_EVENT)_\.csv$")
# Columns per file kind: (required in a header, optional, header-less column layouts).
_LAYOUTS = {
    "SHIMMER": (("timestamp", *SHIMMER_CHANNELS), ("int_timestamp", "updated_timestamp"),
                (("timestamp", "int_timestamp", *SHIMMER_CHANNELS), ("timestamp", *SHIMMER_CHANNELS))),
    "VR": (("timestamp", *VR_CHANNELS), ("updated_timestamp",), (("timestamp", *VR_CHANNELS),)),
    "PROGRESS_EVENT": (("timestamp", "event_type", "info"), ("updated_timestamp",),
                       (("timestamp", "event_type", "info"),
                        ("timestamp", "event_type", "info", "updated_timestamp"))),
}


class XRoomError(LayoutError):
    """A session file that is missing or unusable; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class SessionFiles:
    """The files of one recording session (a sensor missing from the folder is absent here)."""

    participant: str
    session: str
    files: dict[str, Path]

    def path(self, sensor: str) -> Path:
        """The file of ``sensor``; :class:`XRoomError` if the session has none."""
        if sensor not in self.files:
            folder = next(iter(self.files.values())).parent
            raise XRoomError(folder / f"data_collection_{self.session}_{sensor}_.csv", "file missing")
        return self.files[sensor]


@dataclass
class Stream:
    """A sensor stream: strictly increasing times ``t`` (s) and samples ``x`` (n, channels)."""

    path: str
    t: np.ndarray
    x: np.ndarray
    channels: tuple[str, ...]

    def select(self, channels: tuple[str, ...] | list[str]) -> Stream:
        """The stream restricted to ``channels`` (in that order)."""
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise XRoomError(self.path, f"no channel(s) {', '.join(missing)}; has {', '.join(self.channels)}")
        idx = [self.channels.index(c) for c in channels]
        return Stream(self.path, self.t, self.x[:, idx], tuple(channels))


@dataclass(frozen=True)
class Interval:
    """A labelled stretch of a session, in the common time base (s)."""

    start: float
    end: float
    label: str


def participant_key(name: str) -> tuple:
    """Natural sort key: ``P2`` before ``P10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def discover_sessions(root: str | os.PathLike) -> list[SessionFiles]:
    """All sessions under ``root``, ordered by participant (natural order) then session id."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: dataset folder not found")
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: participant_key(p.name)):
        for f in sorted(folder.iterdir()):
            m = _FILE_RE.match(f.name)
            if m:
                found.setdefault((folder.name, m.group(1)), {})[m.group(2)] = f
    if not found:
        raise LayoutError(f"{root}: no data_collection_<SESSION>_<SENSOR>_.csv files in participant folders")
    return [SessionFiles(p, s, files) for (p, s), files in
            sorted(found.items(), key=lambda kv: (participant_key(kv[0][0]), kv[0][1]))]


def to_seconds(stamps: np.ndarray, path: str | os.PathLike, unix_offset_hours: float = 1.0) -> np.ndarray:
    """C# ticks or Unix milliseconds -> seconds in the common (wall-clock) time base. Unix
    milliseconds may have a fractional part (Shimmer software writes calibrated timestamps so);
    ticks are whole numbers (a column of ticks that pandas read as floats is rounded to them)."""
    stamps = np.asarray(stamps)
    if stamps.dtype.kind not in "iuf":
        raise XRoomError(path, "timestamps are not numbers (C# ticks or Unix milliseconds)")
    if stamps.dtype.kind == "f" and len(stamps) and stamps.min() > 10**17:
        stamps = np.round(stamps).astype(np.int64)
    if len(stamps) and stamps.min() > 10**17:  # ticks: ~6.4e17 for current dates
        return (stamps - TICKS_AT_UNIX_EPOCH) / 1e7
    if len(stamps) and 10**11 < stamps.min() and stamps.max() < 10**14:  # Unix ms: 1973-5138
        return stamps / 1e3 + 3600.0 * unix_offset_hours
    raise XRoomError(path, "timestamps are neither C# ticks nor Unix milliseconds")


def _read_table(path: Path, kind: str) -> pd.DataFrame:
    """Read one CSV with or without its header row; check the columns against ``kind``."""
    required, optional, layouts = _LAYOUTS[kind]
    if not path.is_file():
        raise XRoomError(path, "file missing")
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip()
    if not first:
        raise XRoomError(path, "file is empty")
    fields = first.split(",")
    has_header = not re.fullmatch(r"-?\d+(\.\d*)?", fields[0].strip())
    try:
        if has_header:
            df = pd.read_csv(path, skipinitialspace=True)
        else:
            layout = next((lay for lay in layouts if len(lay) == len(fields)), None)
            if layout is None:
                counts = " or ".join(str(len(lay)) for lay in layouts)
                raise XRoomError(path, f"no header row and {len(fields)} columns; expected {counts}")
            df = pd.read_csv(path, header=None, names=list(layout), skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise XRoomError(path, f"malformed CSV: {str(err).strip()}") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.rename(columns=VR_V1_TYPOS) if kind == "VR" else df
    unknown = [c for c in df.columns if c not in required and c not in optional]
    if unknown:
        raise XRoomError(path, f"unknown column(s) {', '.join(unknown)}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise XRoomError(path, f"missing column(s) {', '.join(missing)}")
    if df.empty:
        raise XRoomError(path, "no data rows")
    return df


def _numeric(df: pd.DataFrame, columns: tuple[str, ...], path: Path) -> np.ndarray:
    """The ``columns`` as float64; names the first bad value."""
    out = np.empty((len(df), len(columns)))
    for j, col in enumerate(columns):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            row = bad[0]
            raise XRoomError(path, f"column {col}, data row {row + 1}: not a number ({df[col].iloc[row]!r})")
        out[:, j] = values
    return out


def _times(df: pd.DataFrame, path: Path, unix_offset_hours: float, strict: bool) -> np.ndarray:
    stamps = pd.to_numeric(df["timestamp"], errors="coerce")
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise XRoomError(path, f"column timestamp, data row {row + 1}: not a number "
                               f"({df['timestamp'].iloc[row]!r})")
    t = to_seconds(stamps.to_numpy(), path, unix_offset_hours)
    step = np.diff(t)
    if strict and (step == 0).any():
        row = int(np.flatnonzero(step == 0)[0]) + 2
        raise XRoomError(path, f"duplicate timestamp at data row {row}")
    if (step < 0).any():
        row = int(np.flatnonzero(step < 0)[0]) + 2
        raise XRoomError(path, f"timestamps go backwards at data row {row}")
    return t


def read_shimmer(path: str | os.PathLike, unix_offset_hours: float = 1.0) -> Stream:
    """A ``SHIMMER`` file: accel_x/y/z, gsr, ppg, hr over strictly increasing times."""
    path = Path(path)
    df = _read_table(path, "SHIMMER")
    t = _times(df, path, unix_offset_hours, strict=True)
    return Stream(str(path), t, _numeric(df, SHIMMER_CHANNELS, path), SHIMMER_CHANNELS)


def read_vr(path: str | os.PathLike, unix_offset_hours: float = 1.0) -> Stream:
    """A ``VR`` file: position and rotation quaternion of head and both controllers (21 channels)."""
    path = Path(path)
    df = _read_table(path, "VR")
    t = _times(df, path, unix_offset_hours, strict=True)
    return Stream(str(path), t, _numeric(df, VR_CHANNELS, path), VR_CHANNELS)


def read_events(path: str | os.PathLike, unix_offset_hours: float = 1.0) -> pd.DataFrame:
    """A ``PROGRESS_EVENT`` file as columns ``t`` (s), ``event_type``, ``info``, in time order.

    Events may share a timestamp (a scenario ends as the next one starts); they may not go back.
    """
    path = Path(path)
    df = _read_table(path, "PROGRESS_EVENT")
    t = _times(df, path, unix_offset_hours, strict=False)
    kinds = df["event_type"].astype(str).str.strip()
    events = pd.DataFrame({"t": t, "event_type": kinds.to_numpy(), "info": df["info"].to_numpy()})
    events.attrs["path"] = str(path)
    return events


def _feedback_label(info: object, borders: tuple[float, float], path: str) -> str:
    """A FEEDBACK_RECEIVED value in [0, 1] cut at ``borders``: below the first BORED, from the
    second on FRUSTRATED, between ENGAGED."""
    try:
        value = float(info)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise XRoomError(path, f"FEEDBACK_RECEIVED value {info!r} is not a number in [0, 1]")
    return LABELS[int(np.searchsorted(borders, value, side="right"))]


def label_intervals(events: pd.DataFrame, threshold_s: float = 10.0,
                    borders: tuple[float, float] = (0.4, 0.6)) -> list[Interval]:
    """Labelled intervals from a session's events.

    A self-report (BORED / ENGAGED / FRUSTRATED, or FEEDBACK_RECEIVED cut at ``borders``) labels
    the last finished level when it comes less than ``threshold_s`` after that level's end; the
    levels finished since the previous report that follow each other with gaps under the threshold
    are merged into that level's interval. SKIP labels nothing; every report consumes the finished
    levels before it. Other event types are ignored.
    """
    if len(borders) != 2 or not 0.0 <= borders[0] <= borders[1] <= 1.0:
        raise ValueError(f"borders must be two increasing values in [0, 1], got {list(borders)}")
    path = events.attrs.get("path", "events")
    intervals: list[Interval] = []
    finished: list[tuple[float, float]] = []
    start: float | None = None
    for t, kind, info in zip(events["t"].to_numpy(), events["event_type"], events["info"]):
        if kind == "LEVEL_STARTED":
            start = float(t)
        elif kind in LEVEL_END_EVENTS and start is not None:
            finished.append((start, float(t)))
            start = None
        elif kind in REPORT_EVENTS:
            label = _feedback_label(info, borders, path) if kind == "FEEDBACK_RECEIVED" else kind
            if finished:
                s, e = finished[-1]
                for prev_s, prev_e in reversed(finished[:-1]):
                    if s - prev_e >= threshold_s:
                        break
                    s = prev_s
                if label != "SKIP" and 0.0 <= t - e < threshold_s:
                    intervals.append(Interval(s, e, label))
            finished = []
    return intervals


@dataclass
class Session:
    """One session read and labelled: its sensor streams by kind and its labelled intervals."""

    participant: str
    session: str
    streams: dict[str, Stream]
    events: pd.DataFrame
    intervals: list[Interval]


READERS = {"SHIMMER": read_shimmer, "VR": read_vr}


def load_session(files: SessionFiles, sensors: tuple[str, ...] | list[str], threshold_s: float = 10.0,
                 borders: tuple[float, float] = (0.4, 0.6), unix_offset_hours: float = 1.0) -> Session:
    """Read the events and the ``sensors`` files (SHIMMER, VR) of a session and label it.

    Raises :class:`XRoomError` for a missing or bad file, or a session without any label.
    """
    events_path = files.path("PROGRESS_EVENT")
    events = read_events(events_path, unix_offset_hours)
    intervals = label_intervals(events, threshold_s, tuple(borders))
    if not intervals:
        raise XRoomError(events_path, f"no labels: no self-report within {threshold_s:g} s after a "
                                      "finished level")
    streams = {s: READERS[s](files.path(s), unix_offset_hours) for s in sensors}
    return Session(files.participant, files.session, streams, events, intervals)
