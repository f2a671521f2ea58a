"""Check a REACT data set for missing, extra, misnamed or malformed files.

    react data check --data-dir DATA_DIR [--release 2023|2024|2025] [--lines 10] [--workers 4]

REACT 2023/2024 (docs/data.md; both releases share one layout, video clips may be mp4 files or
png folders) and REACT 2025/2026 (MARS, section 1b). Exit status: 0 when the data set is complete,
1 when problems were found, 2 when DATA_DIR does not exist. The report is meant to be pasted into
a bug report as is: versions, contents, problem counts per kind and the first lines of each kind.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from react.reaction.data import layouts, matrices
from react.reaction.data import mars_layout as M
from react.reaction.data import react_layout as L
from react.errors import LayoutError
from react.utils.cli import add_data_dir
from react.utils.progress import progress

RELEASES = ("2023", "2024", "2025")
KINDS = {
    "missing": "files or folders that are not there",
    "extra": "files or folders the layout does not have",
    "misnamed": "files under a wrong name (the expected name is missing)",
    "frame_count": "videos or png folders with the wrong number of frames",
    "row_count": "Emotion / facial-attribute files with the wrong number of rows",
    "shape": "files with the wrong number of columns or dimensions",
    "nan": "files with NaN or inf values",
    "format": "unreadable files, wrong sample rate or frame size",
    "matrix": "appropriateness matrices of the wrong size, values or order",
    "unpaired": "clips without a partner (or paired with a clip of another dyad)",
    "split": "malformed split lists, clips listed twice or in two splits",
}
FACE3D_DIM = 58
EXPECTED_PATH = {"Video_files": L.video_path, "Audio_files": L.audio_path, "Emotion": L.emotion_path,
                 "3D_FV_files": L.face3d_path}  # one per L.MEDIA_FOLDERS
MARS_VIDEO_SIZE = {"video-face-crop": (384, 384), "video-raw": (1920, 1080)}

Finding = tuple[str, str]  # (kind, message)


@dataclass
class Report:
    """What a check found: problems by kind, warnings (not failures) and facts about the data."""

    data_dir: Path
    release: str
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    warnings: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    files_checked: int = 0

    def add(self, kind: str, message: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown problem kind {kind!r}")
        self.problems[kind].append(message)

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def render(self, lines: int = 10) -> str:
        """The paste-able summary with at most ``lines`` lines per kind of problem."""
        total = sum(len(v) for v in self.problems.values())
        counts = ", ".join(f"{k} {len(self.problems[k])}" for k in KINDS if self.problems.get(k))
        out = ["REACT data check",
               f"  data dir : {self.data_dir.resolve()}",
               f"  release  : {self.release}",
               f"  versions : {_versions()}"]
        out += [f"  {fact}" for fact in self.facts]
        out.append(f"  checked  : {self.files_checked} files")
        out.append("RESULT: COMPLETE (exit 0)" if self.ok else
                   f"RESULT: INCOMPLETE (exit 1) - {total} problem(s): {counts}")
        for kind in KINDS:
            found = self.problems.get(kind, [])
            if found:
                out += ["", f"{kind} ({len(found)}): {KINDS[kind]}"]
                out += [f"  {m}" for m in found[:lines]]
                if len(found) > lines:
                    out.append(f"  ... and {len(found) - lines} more")
        if self.warnings:
            out += ["", f"warnings ({len(self.warnings)}, not counted as problems):"]
            out += [f"  {m}" for m in self.warnings[:lines]]
            if len(self.warnings) > lines:
                out.append(f"  ... and {len(self.warnings) - lines} more")
        return "\n".join(out)


def _versions() -> str:
    names = ("react", "numpy", "pandas", "av", "soundfile")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return f"python {platform.python_version()}, " + ", ".join(found) + f", {platform.platform()}"


# ---------------------------------------------------------------------------- file inspection


def video_frames(path: Path) -> tuple[int, int, int, int]:
    """``(frames, stored, width, height)`` of a video: the frames its header declares (the stored
    ones when it declares none) and the frames whose data the file holds (packets read, none decoded:
    a truncated file holds fewer than its header declares)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stored = sum(1 for packet in container.demux(stream) if packet.size)
        return stream.frames or stored, stored, stream.codec_context.width, stream.codec_context.height


def _check_video(path: Path, rel: str, frames: int | None, size: tuple[int, int]) -> list[Finding]:
    try:
        count, stored, width, height = video_frames(path)
    except Exception as err:  # noqa: BLE001 - any decoder failure is one finding
        return [("format", f"{rel}: not a readable video ({type(err).__name__}: {err})")]
    found = []
    if stored < count:
        found.append(("format", f"{rel}: truncated: its header declares {count} frames, the file holds {stored}"))
    if frames is not None and count != frames:
        found.append(("frame_count", f"{rel}: {count} frames, expected {frames}"))
    if (width, height) != size:
        found.append(("format", f"{rel}: {width}x{height} frames, expected {size[0]}x{size[1]}"))
    return found


def _check_png_folder(path: Path, rel: str) -> list[Finding]:
    count = sum(1 for f in path.iterdir() if f.suffix.lower() == ".png")
    if count != L.NUM_VIDEO_FRAMES:
        return [("frame_count", f"{rel}/: {count} png frames, expected {L.NUM_VIDEO_FRAMES}")]
    return []


def _check_audio(path: Path, rel: str, rate: int | None) -> list[Finding]:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as err:  # noqa: BLE001
        return [("format", f"{rel}: not a readable audio file ({err})")]
    if rate is not None and info.samplerate != rate:
        return [("format", f"{rel}: {info.samplerate} Hz, expected {rate} Hz")]
    return []


def _check_table(values: np.ndarray, rel: str, columns: int, rows: int | None) -> list[Finding]:
    if values.ndim != 2 or values.shape[1] != columns:
        return [("shape", f"{rel}: shape {values.shape}, expected (T, {columns})")]
    found = []
    if (rows is not None and values.shape[0] != rows) or values.shape[0] == 0:
        found.append(("row_count", f"{rel}: {values.shape[0]} rows, expected {rows or 'at least 1'}"))
    bad = int((~np.isfinite(values)).sum())
    if bad:
        found.append(("nan", f"{rel}: {bad} NaN/inf value(s)"))
    return found


def _check_emotion_csv(path: Path, rel: str) -> list[Finding]:
    import pandas as pd

    try:
        values = pd.read_csv(path, header=None, skiprows=1).to_numpy(dtype=np.float64)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        return [("format", f"{rel}: not a numeric CSV with a header row ({str(err).splitlines()[0]})")]
    return _check_table(values, rel, L.EMOTION_DIM, L.NUM_FRAMES)


def _check_npy(path: Path, rel: str, columns: int, rows: int | None) -> list[Finding]:
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        return [("format", f"{rel}: not a readable .npy array ({err})")]
    if not np.issubdtype(values.dtype, np.number):
        return [("format", f"{rel}: {values.dtype} array, expected numbers")]
    return _check_table(np.asarray(values, dtype=np.float64), rel, columns, rows)


# ---------------------------------------------------------------------------- names


def _loose(name: str) -> str:
    """A name with case, separators, leading zeros and the extension ignored (to spot misnaming)."""
    stem = re.sub(r"\.[A-Za-z0-9]{1,4}$", "", name).lower()
    return "/".join(re.sub(r"[\s_\-]+", "", re.sub(r"\b0+(\d)", r"\1", p)) for p in stem.split("/"))


def _resolve_names(report: Report, missing: list[str], extra: list[str],
                   key: Callable[[str], str] = _loose) -> None:
    """Report extras that match a missing name loosely as misnamed, the rest as missing / extra."""
    spare: dict[str, list[str]] = defaultdict(list)
    for e in extra:
        spare[key(e)].append(e)
    for m in missing:
        candidates = spare.get(key(m))
        if candidates:
            report.add("misnamed", f"{candidates.pop(0)}: expected {m}")
        else:
            report.add("missing", m)
    for left in spare.values():
        for e in left:
            report.add("extra", e)


def _emotion_key(rel: str) -> str:
    """Loose name of ``<split>/Emotion/<clip>.csv`` with the P1/P2 renaming applied (a common slip)."""
    split, folder, clip = rel.split("/", 2)
    return _loose(f"{split}/{folder}/{L.emotion_clip_path(clip)}")


def _walk(root: Path, units: set[Path]) -> list[Path]:
    """Files under ``root``; directories in ``units`` (png folders) count as one entry."""
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for d in list(dirs):
            if here / d in units:
                dirs.remove(d)
                found.append(here / d)
        found += [here / f for f in files]
    return found


def _run_checks(report: Report, jobs: list[Callable[[], list[Finding]]], workers: int) -> None:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for findings in progress(pool.map(lambda job: job(), jobs), total=len(jobs), desc="checking files",
                                 unit="file"):
            for kind, message in findings:
                report.add(kind, message)
    report.files_checked += len(jobs)


# ---------------------------------------------------------------------------- REACT 2023 / 2024


def _read_split(data_dir: Path, name: str, report: Report) -> tuple[L.Split | None, bool]:
    """The split's well-formed rows (malformed ones reported) and whether every row was well-formed."""
    path = data_dir / f"{name}.csv"
    if not path.is_file():
        report.add("missing", path.name)
        return None, False
    try:
        split = L.read_split(data_dir, name)
    except LayoutError as err:
        report.add("split", str(err).replace(str(data_dir) + os.sep, ""))
        return None, False
    rows = [ln for ln in path.read_text().splitlines() if ln.strip()][1:]  # as read_split reads them
    bad = set()
    for row, line in enumerate(rows):
        parts = line.split(",")
        if len(parts) != 3 or not parts[1].strip():
            report.add("split", f"{path.name} row {row}: expected index,speaker_path,listener_path, "
                                f"got {line!r}")
            bad.add(row)
    if bad:
        keep = [i for i in range(len(rows)) if i not in bad]
        split = L.Split(split.data_dir, name, tuple(split.speakers[i] for i in keep),
                        tuple(split.listeners[i] for i in keep))
    return split, not bad


def _check_pairs(split: L.Split, seen: dict[str, str], report: Report) -> None:
    for row, (speaker, listener) in enumerate(zip(split.speakers, split.listeners)):
        for clip in (speaker, listener):
            if clip in seen:
                report.add("split", f"{split.name}.csv row {row}: {clip} is also listed in {seen[clip]}.csv")
            seen.setdefault(clip, split.name)
        try:
            key = L.dyad_key(speaker)
            other = L.dyad_key(listener) if listener else None
        except LayoutError as err:
            report.add("split", f"{split.name}.csv row {row}: {err}")
            continue
        if other != key or speaker == listener:
            report.add("unpaired", f"{split.name}.csv row {row}: {speaker} is paired with {listener!r}, "
                                   "not the other person of its dyad")


def _content_check(path: Path, rel: str, folder: str) -> Callable[[], list[Finding]]:
    if folder == "Video_files":
        if path.is_dir():
            return lambda: _check_png_folder(path, rel)
        return lambda: _check_video(path, rel, L.NUM_VIDEO_FRAMES, (L.VIDEO_SIZE, L.VIDEO_SIZE))
    if folder == "Audio_files":
        return lambda: _check_audio(path, rel, L.AUDIO_SAMPLE_RATE)
    if folder == "Emotion":
        return lambda: _check_emotion_csv(path, rel)
    return lambda: _check_npy(path, rel, FACE3D_DIM, None)


def _check_split_files(data_dir: Path, split: L.Split, report: Report, workers: int) -> None:
    rel = lambda p: p.relative_to(data_dir).as_posix()  # noqa: E731
    jobs = []
    clips = list(dict.fromkeys(c for c in split.clips if c))
    for folder in L.MEDIA_FOLDERS:
        root = data_dir / split.name / folder
        if folder == "3D_FV_files" and not root.is_dir():
            report.warnings.append(f"{rel(root)}/: not present (optional: 3DMM coefficients for rendering)")
            continue
        expected = {EXPECTED_PATH[folder](data_dir, split.name, clip) for clip in clips}
        units = {p for p in expected if p.is_dir()}
        present = set(_walk(root, units)) if root.is_dir() else set()
        missing = sorted(rel(p) for p in expected - present)
        extra = sorted(rel(p) for p in present - expected)
        _resolve_names(report, missing, extra, _emotion_key if folder == "Emotion" else _loose)
        jobs += [_content_check(p, rel(p), folder) for p in sorted(expected & present)]
        if folder == "Video_files" and units:
            report.facts.append(f"video    : {split.name} has {len(units)} png folder(s), "
                                f"{len(expected & present) - len(units)} mp4 file(s)")
    _run_checks(report, jobs, workers)


def _check_matrix(data_dir: Path, split: L.Split, report: Report) -> np.ndarray | None:
    path = L.appropriateness_path(data_dir, split.name)
    if not path.is_file():
        report.add("missing", path.name)
        return None
    try:
        L.read_appropriateness(split)
        raw = np.load(path, allow_pickle=False)
    except LayoutError as err:
        report.add("matrix", str(err).replace(str(data_dir) + os.sep, ""))
        return None
    report.files_checked += 1
    if not np.isin(raw, (0, 1)).all():
        report.add("matrix", f"{path.name}: values other than 0 and 1")
        return None
    matrix = raw.astype(bool)
    off = int((~matrix.diagonal()).sum())
    if off:
        report.add("matrix", f"{path.name}: {off} clip(s) without their real listener on the diagonal; "
                             f"the matrix order does not match {split.name}.csv")
    if not (matrix == matrix.T).all():
        report.warnings.append(f"{path.name}: not symmetric")
    return matrix


def _check_dataset_matrix(data_dir: Path, neighbours: dict[str, tuple[L.Split, np.ndarray]],
                          report: Report) -> None:
    matrix_path, index_path = data_dir / L.DATASET_MATRIX, data_dir / L.DATA_INDICES
    if not matrix_path.is_file() and not index_path.is_file():
        report.warnings.append(f"{L.DATASET_MATRIX} and {L.DATA_INDICES}: not present (optional; "
                               "`react data matrices assemble` writes them)")
        return
    try:
        index = matrices.read_index(index_path)
        wide = matrices.load_matrix(matrix_path, len(index))
        report.files_checked += 2
        for name, (split, matrix) in neighbours.items():
            differ = int((matrices.cut(wide, index, split) != matrix).sum())
            if differ:
                report.add("matrix", f"{L.appropriateness_path(data_dir, name).name}: {differ} entries "
                                     f"differ from its cut of {L.DATASET_MATRIX} (order or version mismatch)")
    except LayoutError as err:
        kind = "missing" if "not found" in str(err) else "matrix"
        report.add(kind, str(err).replace(str(data_dir) + os.sep, ""))


def check_react(data_dir: Path, report: Report, workers: int) -> None:
    """The REACT 2023/2024 layout: split lists, pairs, media and Emotion files, matrices."""
    seen: dict[str, str] = {}
    neighbours = {}
    for name in L.SPLITS:
        split, well_formed = _read_split(data_dir, name, report)
        if split is None:
            continue
        report.facts.append(f"split    : {name} {len(split.speakers)} rows ({len(split)} clips)")
        _check_pairs(split, seen, report)
        _check_split_files(data_dir, split, report, workers)
        matrix = _check_matrix(data_dir, split, report) if well_formed else None
        if matrix is not None:
            neighbours[name] = (split, matrix)
    _check_dataset_matrix(data_dir, neighbours, report)


# ---------------------------------------------------------------------------- REACT 2025 (MARS)


def _session_key(rel: str) -> str:
    """Loose name of a session folder: ``Session_03`` and ``session3`` compare equal."""
    return re.sub(r"session(\d+)$", lambda m: f"session{int(m.group(1))}", _loose(rel))


def _check_folder_names(report: Report, parent: Path, data_dir: Path, allowed: tuple[str, ...],
                        required: tuple[str, ...], pattern: re.Pattern | None = None) -> list[str]:
    """Sub-folders of ``parent`` named as ``allowed`` (or matching ``pattern``); the rest reported."""
    entries = sorted(parent.iterdir()) if parent.is_dir() else []
    good = [e.name for e in entries
            if e.is_dir() and (e.name in allowed or (pattern is not None and pattern.fullmatch(e.name)))]
    rel = parent.relative_to(data_dir).as_posix()
    others = [f"{rel}/{e.name}" for e in entries if e.name not in good]
    missing = [f"{rel}/{n}" for n in required if n not in good]
    if pattern is not None:  # a folder whose loose name is a session name was meant to be one
        missing += [f"{rel}/{_session_key(e.name)}" for e in entries
                    if e.is_dir() and e.name not in good and pattern.fullmatch(_session_key(e.name))]
    _resolve_names(report, missing, others, _loose if pattern is None else _session_key)
    return good


def _mars_files(data_dir: Path, split: str, modality: str, role: str, report: Report) -> set[M.Clip]:
    """Clips of one role folder; files with a wrong extension or place are reported."""
    root = data_dir / split / modality / role
    sessions = _check_folder_names(report, root, data_dir, (), (), M.SESSION_RE)
    ext = M.MODALITIES[modality]
    clips = set(M.list_clips(data_dir, split, role, modality))
    for session in sessions:
        for entry in sorted((root / session).iterdir()):
            if entry.is_file() and entry.name.endswith(ext):
                continue
            rel = entry.relative_to(data_dir).as_posix()
            stem = re.sub(r"\.[^.]*$", "", entry.name)
            if entry.is_file() and M.Clip(session, stem) not in clips:
                report.add("misnamed", f"{rel}: expected the extension {ext}")
            else:
                report.add("extra", rel)
    return clips


def check_mars(data_dir: Path, report: Report, workers: int) -> None:
    """The REACT 2025/2026 layout: folders, speaker/listener pairs, facial-attribute arrays."""
    sessions: dict[str, str] = {}
    for split in L.SPLITS:
        if not (data_dir / split).is_dir():
            report.add("missing", f"{split}/")
            continue
        folders = _check_folder_names(report, data_dir / split, data_dir,
                                      (*M.MODALITIES, *L.FEATURE_FOLDERS.values()), (M.FACIAL_ATTRIBUTES,))
        modalities = [f for f in folders if f in M.MODALITIES]  # feature extraction's folders are allowed
        clips: dict[str, dict[str, set[M.Clip]]] = {}
        for modality in modalities:
            roles = _check_folder_names(report, data_dir / split / modality, data_dir, M.ROLES, M.ROLES)
            clips[modality] = {r: _mars_files(data_dir, split, modality, r, report) if r in roles else set()
                               for r in M.ROLES}
        everyone = {r: set().union(*(c[r] for c in clips.values())) for r in M.ROLES}
        for clip in sorted(everyone["speaker"] ^ everyone["listener"]):
            role = "speaker" if clip in everyone["speaker"] else "listener"
            report.add("unpaired", f"{split}: {role} {clip.session}/{clip.stem} has no "
                                   f"{'listener' if role == 'speaker' else 'speaker'} with the same name")
        for modality, by_role in clips.items():
            for role in M.ROLES:
                for clip in sorted(everyone[role] - by_role[role]):
                    path = M.clip_path(data_dir, split, modality, role, clip)
                    report.add("missing", path.relative_to(data_dir).as_posix())
        for clip in everyone["speaker"] | everyone["listener"]:
            if sessions.setdefault(clip.session, split) != split:
                report.add("split", f"{clip.session} is in both {sessions[clip.session]}/ and {split}/")
                sessions[clip.session] = split
        n_pairs = len(everyone["speaker"] & everyone["listener"])
        report.facts.append(f"split    : {split} {n_pairs} speaker/listener pairs in "
                            f"{len({c.session for c in everyone['speaker'] | everyone['listener']})} "
                            f"session(s); modalities: {', '.join(modalities)}")
        _check_mars_contents(data_dir, split, clips, report, workers)


def _check_mars_contents(data_dir: Path, split: str, clips: dict[str, dict[str, set[M.Clip]]],
                         report: Report, workers: int) -> None:
    jobs, lengths = [], {}

    def attributes(path: Path, rel: str) -> list[Finding]:
        found = _check_npy(path, rel, L.EMOTION_DIM, None)
        if not found:
            lengths[path] = np.load(path, mmap_mode="r").shape[0]
        return found

    for modality, by_role in clips.items():
        for role, found in by_role.items():
            for clip in sorted(found):
                path = M.clip_path(data_dir, split, modality, role, clip)
                rel = path.relative_to(data_dir).as_posix()
                if modality == M.FACIAL_ATTRIBUTES:
                    jobs.append(lambda p=path, r=rel: attributes(p, r))
                elif modality == "coefficients":
                    jobs.append(lambda p=path, r=rel: _check_npy(p, r, M.COEFFICIENT_DIM, None))
                elif modality in MARS_VIDEO_SIZE:
                    size = MARS_VIDEO_SIZE[modality]
                    jobs.append(lambda p=path, r=rel, s=size: _check_video(p, r, None, s))
                elif modality == "audio":
                    jobs.append(lambda p=path, r=rel: _check_audio(p, r, None))
    _run_checks(report, jobs, workers)
    attrs = clips.get(M.FACIAL_ATTRIBUTES, {})
    for clip in sorted(attrs.get("speaker", set()) & attrs.get("listener", set())):
        a, b = (lengths.get(M.clip_path(data_dir, split, M.FACIAL_ATTRIBUTES, r, clip)) for r in M.ROLES)
        if a is not None and b is not None and a != b:
            report.warnings.append(f"{split}: {clip.session}/{clip.stem}: speaker has {a} frames, "
                                   f"listener {b}")


# ---------------------------------------------------------------------------- entry points


def detect_release(data_dir: Path) -> str:
    """``2024`` when split CSVs are there, ``2025`` for MARS split folders, else ``2024``."""
    return "2025" if layouts.detect(data_dir) == "mars" else "2024"


def check(data_dir: str | os.PathLike, release: str | None = None, workers: int = 4) -> Report:
    """Check the data set under ``data_dir``; ``release`` is detected when ``None``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: no such directory")
    detected = release is None
    release = release or detect_release(data_dir)
    layout = "MARS layout" if release == "2025" else "REACT 2023/2024 layout"
    report = Report(data_dir, f"{release} ({layout}{', detected' if detected else ''})")
    (check_mars if release == "2025" else check_react)(data_dir, report, workers)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react data check", description=__doc__.split("\n")[0])
    add_data_dir(parser, required=True, type=Path, help="dataset root to check")
    parser.add_argument("--release", choices=RELEASES, help="default: detected from the layout")
    parser.add_argument("--lines", type=int, default=10, help="lines shown per kind of problem")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="threads reading files")
    args = parser.parse_args(argv)
    try:
        report = check(args.data_dir, args.release, args.workers)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.render(args.lines))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
