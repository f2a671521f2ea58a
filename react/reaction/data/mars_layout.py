"""The REACT 2025/2026 layout (MARS dataset, docs/data.md): the one place that knows its paths.

``<data_dir>/<split>/<modality>/<role>/session<K>/<stem>.<ext>``: the splits are folders (no
CSVs), a speaker clip and its listener share session and stem, and every opposite-role clip of
the same session is an appropriate reaction. Facial attributes are ``(T, 25)`` ``.npy`` arrays at
30 fps in the REACT 2023/2024 column order; ``T`` varies from clip to clip.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from react.reaction.data.react_layout import EMOTION_DIM, LayoutError, Split, load_npy

FPS = 30
ROLES = ("speaker", "listener")
FACIAL_ATTRIBUTES = "facial-attributes"
MODALITIES = {  # folder -> file extension
    "video-raw": ".mp4",
    "video-face-crop": ".mp4",
    FACIAL_ATTRIBUTES: ".npy",
    "coefficients": ".npy",
    "audio": ".wav",
    "audio-features": ".npy",
    "video-features": ".pth",
    "eeg_processed": ".csv",
}
COEFFICIENT_DIM = 58
SESSION_RE = re.compile(r"session(\d+)")


@dataclass(frozen=True, order=True)
class Clip:
    """One recording of a session, named by session folder and file stem (role-independent)."""

    session: str
    stem: str


@dataclass(frozen=True)
class Pairing:
    """Speaker/listener clips of one split and modality, matched by session and stem."""

    pairs: tuple[Clip, ...]
    speaker_only: tuple[Clip, ...]
    listener_only: tuple[Clip, ...]


def clip_path(data_dir: str | os.PathLike, split: str, modality: str, role: str, clip: Clip) -> Path:
    """``<data_dir>/<split>/<modality>/<role>/<session>/<stem><ext>``."""
    if modality not in MODALITIES:
        raise LayoutError(f"{modality!r}: unknown modality, expected one of {sorted(MODALITIES)}")
    if role not in ROLES:
        raise LayoutError(f"{role!r}: role must be one of {ROLES}")
    return Path(data_dir) / split / modality / role / clip.session / f"{clip.stem}{MODALITIES[modality]}"


def list_clips(data_dir: str | os.PathLike, split: str, role: str,
               modality: str = FACIAL_ATTRIBUTES) -> list[Clip]:
    """The clips of one role in sorted order: files ``session<K>/<stem><ext>`` (other names ignored)."""
    root = Path(data_dir) / split / modality / role
    ext = MODALITIES[modality]
    if not root.is_dir():
        return []
    return sorted(Clip(f.parent.name, f.name[: -len(ext)]) for f in root.glob(f"session*/*{ext}")
                  if SESSION_RE.fullmatch(f.parent.name) and f.is_file())


def pair_clips(data_dir: str | os.PathLike, split: str, modality: str = FACIAL_ATTRIBUTES) -> Pairing:
    """Match speaker and listener clips of a split by session and stem."""
    speakers = set(list_clips(data_dir, split, "speaker", modality))
    listeners = set(list_clips(data_dir, split, "listener", modality))
    return Pairing(tuple(sorted(speakers & listeners)), tuple(sorted(speakers - listeners)),
                   tuple(sorted(listeners - speakers)))


def appropriate_listeners(pairs: tuple[Clip, ...] | list[Clip]) -> dict[Clip, list[Clip]]:
    """Appropriate reactions of each speaker clip: its own listener first, then the session's others."""
    by_session: dict[str, list[Clip]] = defaultdict(list)
    for clip in sorted(pairs):
        by_session[clip.session].append(clip)
    return {clip: [clip] + [c for c in by_session[clip.session] if c != clip] for clip in pairs}


def read_facial_attributes(path: str | os.PathLike) -> np.ndarray:
    """A facial-attributes ``.npy`` as float32 ``(T, 25)``, checked finite and non-empty."""
    path = Path(path)
    values = load_npy(path, "facial-attributes file")
    if values.ndim != 2 or values.shape[1] != EMOTION_DIM or values.shape[0] == 0:
        raise LayoutError(f"{path}: expected shape (T, {EMOTION_DIM}) with T > 0, got {values.shape}")
    if not np.issubdtype(values.dtype, np.number):
        raise LayoutError(f"{path}: expected a numeric array, got {values.dtype}")
    values = values.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        raise LayoutError(f"{path}: contains {int((~np.isfinite(values)).sum())} NaN/inf value(s)")
    return values


def clip_id(role: str, clip: Clip) -> str:
    """The id of one role's clip in a :class:`~react.reaction.data.react_layout.Split`: ``<role>/<session>/<stem>``,
    also its path under a modality folder and under a prediction folder."""
    return f"{role}/{clip.session}/{clip.stem}"


def parse_clip_id(clip: str) -> tuple[str, Clip]:
    """``<role>/<session>/<stem>`` -> ``(role, Clip)``; :class:`LayoutError` for anything else."""
    parts = clip.split("/")
    if len(parts) != 3 or parts[0] not in ROLES or not SESSION_RE.fullmatch(parts[1]) or not parts[2]:
        raise LayoutError(f"{clip!r}: not a MARS clip id <speaker|listener>/session<K>/<stem>")
    return parts[0], Clip(parts[1], parts[2])


def file_path(data_dir: str | os.PathLike, split: str, modality: str, clip: str) -> Path:
    """The ``modality`` file of clip id ``clip`` (see :func:`clip_id`)."""
    role, parsed = parse_clip_id(clip)
    return clip_path(data_dir, split, modality, role, parsed)


def read_split(data_dir: str | os.PathLike, split: str, shown: int = 5) -> Split:
    """The clips of a split with facial attributes, speakers then their listeners (same order), as
    a :class:`~react.reaction.data.react_layout.Split` (``listener_index`` pairs them as for REACT 2023/2024).
    A clip without its partner is a :class:`LayoutError` listing the first ``shown``."""
    root = Path(data_dir) / split / FACIAL_ATTRIBUTES
    pairing = pair_clips(data_dir, split)
    alone = ([clip_id("speaker", c) for c in pairing.speaker_only]
             + [clip_id("listener", c) for c in pairing.listener_only])
    if alone:
        more = f" ... and {len(alone) - shown} more" if len(alone) > shown else ""
        raise LayoutError(f"{root}: {len(alone)} clip(s) without a partner of the other role, e.g. "
                          f"{', '.join(alone[:shown])}{more} (react data check lists them)")
    if not pairing.pairs:
        raise LayoutError(f"{root}: no speaker/listener clip pairs found (expected "
                          f"<role>/session<K>/<stem>{MODALITIES[FACIAL_ATTRIBUTES]})")
    return Split(Path(data_dir), split, tuple(clip_id("speaker", c) for c in pairing.pairs),
                 tuple(clip_id("listener", c) for c in pairing.pairs), layout="mars")


def attributes_path(split: Split, clip: str) -> Path:
    return file_path(split.data_dir, split.name, FACIAL_ATTRIBUTES, clip)


def read_emotions(split: Split) -> list[np.ndarray]:
    """The facial attributes of every clip of ``split`` in its order, float32 ``(T_i, 25)`` each."""
    return [read_facial_attributes(attributes_path(split, clip)) for clip in split.clips]


def appropriateness(split: Split) -> np.ndarray:
    """``M[k, j]``: the reaction to clip ``j`` suits clip ``k`` (the session rule of the release:
    every opposite-role clip of the session). In the 2N order the reaction to clip ``j`` is its
    partner, so ``M[k, j]`` holds when ``j`` has ``k``'s role and session."""
    keys = [parse_clip_id(clip) for clip in split.clips]
    role = np.array([r for r, _ in keys])
    session = np.array([c.session for _, c in keys])
    return (role[:, None] == role[None]) & (session[:, None] == session[None])


def frame_count(path: str | os.PathLike) -> int:
    """Rows of a facial-attributes ``.npy``, read from its header (the values are not loaded)."""
    try:
        values = np.load(Path(path), mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise LayoutError(f"{path}: not a readable .npy facial-attributes file: {err}") from None
    if values.ndim != 2 or values.shape[0] == 0:
        raise LayoutError(f"{path}: expected shape (T, {EMOTION_DIM}) with T > 0, got {values.shape}")
    return int(values.shape[0])
