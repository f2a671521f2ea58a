"""The dyadic REACT windows dataset: speaker features in, appropriate listener reactions out.

Every input clip of a split (both directions of each dyad, or the speakers only, see
:func:`react.reaction.data.layouts.input_clips`) is cut into windows of ``num_frames`` frames every
``stride`` frames (plus a last window flush with the clip's end when the stride does not land
there). An item is one window: the speaker's video and audio features (audio linearly resampled to
the video frame count when the counts differ), the speaker's and the real listener's facial
attributes, and the window of every appropriate real reaction, i.e. the listener reactions ``L[j]``
with ``M[k, j] = 1`` (:func:`react.reaction.data.layouts.read_appropriateness`: the matrix file of REACT
2023/2024, the session rule of MARS):

- ``pair``: only the real listener's reaction;
- ``nearest`` / ``all``: the appropriate set, real listener first; when training a random subset of
  at most ``max_neighbours`` (the real listener always kept, unless ``keep_listener`` is off: then
  a uniform sample of the whole set, as the official REGNN's ``random.sample``), when evaluating
  all of them.

Clips may differ in length (MARS, 30 fps). Windows of a clip stay inside it and its real
listener's reaction; an appropriate reaction that ends before a window does is left out of that
window's set; a clip shorter than one window gives no training window. Generation
(:meth:`clip_conditions`) covers every clip whole: a clip shorter than a window gets one window whose
missing frames repeat its last frame. Facial attributes live in memory as one ``(sum T, 25)``
tensor (windows are gathered by indexing); features are memory-mapped once per clip (only the
pages of a window are read).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from react.reaction.data import layouts
from react.reaction.data import mars_layout as M
from react.reaction.data import react_layout as L

PATTERNS = ("nearest", "pair", "all")


@dataclass
class FeatureAugment:
    """Training-only feature augmentation: gaussian noise, then feature dropout (0 disables each)."""

    noise_std: float = 0.0
    feature_dropout: float = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        if self.feature_dropout > 0:
            x = F.dropout(x, self.feature_dropout, training=True)
        return x


def window_starts(total: int, num_frames: int, stride: int) -> torch.Tensor:
    """Start frames covering ``total`` frames; the last window ends exactly at ``total``."""
    if num_frames > total or num_frames <= 0 or stride <= 0:
        raise ValueError(f"cannot cut windows of {num_frames} frames every {stride} from {total} frames")
    starts = list(range(0, total - num_frames + 1, stride))
    if starts[-1] + num_frames < total:
        starts.append(total - num_frames)
    return torch.tensor(starts)


def resample_index(frames: torch.Tensor, src: int, dst: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear-interpolation taps to read ``dst``-rate frame indices from a ``src``-frame sequence."""
    pos = ((frames.float() + 0.5) * src / dst - 0.5).clamp(0, src - 1)
    lo = pos.floor().long()
    return lo, (lo + 1).clamp(max=src - 1), (pos - lo).unsqueeze(-1)


class FeatureStore:
    """Per-clip feature tensors, loaded lazily (memory-mapped) and checked once (shape, NaN/inf).

    ``dim``: the feature width (``None``: the first file read sets it); ``min_frames``: the rows
    every clip needs, or a clip -> rows mapping (clips of any length)."""

    def __init__(self, root: str | os.PathLike, split: str, kind: str, dim: int | None,
                 min_frames: int | Mapping[str, int]):
        self.root, self.split, self.kind, self.dim, self.min_frames = Path(root), split, kind, dim, min_frames
        self._cache: dict[str, torch.Tensor] = {}

    def path(self, clip: str) -> Path:
        return L.feature_path(self.root, self.split, self.kind, clip)

    def __getitem__(self, clip: str) -> torch.Tensor:
        if clip not in self._cache:
            path = self.path(clip)
            if not path.is_file():
                raise L.LayoutError(f"{path}: {self.kind} features not found (run feature extraction)")
            try:
                feats = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
            except Exception as err:  # a corrupt file raises many kinds of errors
                raise L.LayoutError(f"{path}: cannot read features: {err}") from None
            if not isinstance(feats, torch.Tensor) or feats.ndim != 2:
                shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
                raise L.LayoutError(f"{path}: expected a (frames, dim) tensor, got {shape}")
            need = self.min_frames if isinstance(self.min_frames, int) else self.min_frames.get(clip, 1)
            self.dim = feats.shape[1] if self.dim is None else self.dim
            if feats.shape[1] != self.dim or feats.shape[0] < need:
                raise L.LayoutError(f"{path}: expected at least {need} frames x {self.dim} "
                                    f"(the model's {self.kind}_dim), got {tuple(feats.shape)}")
            if not torch.isfinite(feats).all():
                raise L.LayoutError(f"{path}: contains NaN or inf")
            self._cache[clip] = feats
        return self._cache[clip]

    def read(self, clip: str, rows: torch.Tensor) -> torch.Tensor:
        """Rows ``rows`` (any shape) as float32."""
        return self[clip][rows].float()


class DyadicWindows(Dataset):
    """Windows of a REACT split; ``training`` turns on neighbour subsampling and augmentation.

    With ``targets=False`` no facial attributes or matrix are read: only :meth:`clip_conditions`
    (generation). ``layout``: ``auto`` (detected), ``react`` or ``mars`` (:mod:`react.reaction.data.layouts`).
    """

    def __init__(self, data_root: str | os.PathLike, split: str, *, video_dim: int, audio_dim: int,
                 features_root: str | os.PathLike | None = None, num_frames: int = 50, stride: int = 25,
                 pattern: str = "all", max_neighbours: int = 10, training: bool = False,
                 augment: FeatureAugment | None = None, clips: list[int] | None = None, targets: bool = True,
                 layout: str = "auto", keep_listener: bool = True):
        if pattern not in PATTERNS:
            raise ValueError(f"neighbour pattern must be one of {', '.join(PATTERNS)}, got '{pattern}'")
        if max_neighbours < 1:
            raise ValueError(f"max_neighbours must be >= 1, got {max_neighbours}")
        if num_frames <= 0 or stride <= 0:
            raise ValueError(f"num_frames and stride must be > 0, got {num_frames} and {stride}")
        self.split = layouts.read_split(data_root, split, layout)
        self.pattern, self.max_neighbours, self.training = pattern, max_neighbours, training
        self.keep_listener = keep_listener
        self.augment = augment if training and augment is not None else None
        self.num_frames, self.stride = num_frames, stride
        self.targets = targets
        self.clips = list(range(len(self.split))) if clips is None else list(clips)
        features_root = features_root or data_root
        any_length = self.split.layout != "react"  # MARS: each clip needs its own frames (set below)
        need: int | dict[str, int] = {} if any_length else L.NUM_FRAMES
        self.video = FeatureStore(features_root, split, "video", video_dim, need)
        self.audio = FeatureStore(features_root, split, "audio", audio_dim, 1)
        self._flat: torch.Tensor | None = None
        if targets:
            emotions = [torch.from_numpy(e) for e in layouts.read_emotions(self.split)]
            self.lengths = torch.tensor([len(e) for e in emotions])
            self._flat = torch.cat(emotions)
            self.neighbours, self.counts = self._neighbour_table(layouts.read_appropriateness(self.split))
        else:
            self.lengths = torch.tensor([self._length_without_targets(c) for c in range(len(self.split))])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])
        if any_length:
            self.video.min_frames = dict(zip(self.split.clips, self.lengths.tolist()))
        self.items = self._window_table() if targets else torch.zeros(0, 2, dtype=torch.long)

    def _length_without_targets(self, clip: int) -> int:
        """Frames of a clip when its attributes are not loaded: 750 in REACT 2023/2024; in MARS the
        rows of its facial-attributes file when there is one, else of its video features."""
        if self.split.layout == "react":
            return L.NUM_FRAMES
        path = layouts.emotion_path(self.split, self.split.clips[clip])
        return M.frame_count(path) if path.is_file() else int(self.video[self.split.clips[clip]].shape[0])

    def _window_table(self) -> torch.Tensor:
        """``(windows, 2)`` rows ``(clip, start)`` of every input clip in order; a window stays inside
        its clip and the clip's real listener reaction (clips shorter than a window give none)."""
        rows = []
        for clip in self.clips:
            usable = int(min(self.lengths[clip], self.lengths[self.split.listener_index(clip)]))
            if usable >= self.num_frames:
                starts = window_starts(usable, self.num_frames, self.stride)
                rows.append(torch.stack([torch.full_like(starts, clip), starts], 1))
        return torch.cat(rows) if rows else torch.zeros(0, 2, dtype=torch.long)

    def clip_starts(self, clip: int) -> torch.Tensor:
        """Window starts covering the whole of clip ``clip`` (one window when it is shorter)."""
        return window_starts(max(int(self.lengths[clip]), self.num_frames), self.num_frames, self.stride)

    @property
    def emotions(self) -> torch.Tensor | list[torch.Tensor]:
        """Facial attributes of every clip: ``(2N, T, 25)`` when all clips have T frames, else a list."""
        if self._flat is None:
            raise RuntimeError("this DyadicWindows was built with targets=False: it holds no attributes")
        if bool((self.lengths == self.lengths[0]).all()):
            return self._flat.view(len(self.lengths), int(self.lengths[0]), -1)
        return list(self._flat.split(self.lengths.tolist()))

    def check_features(self, shown: int = 5) -> None:
        """Open every clip's video and audio features once and raise one :class:`LayoutError`
        listing the problems (the first ``shown`` and a count) before any work starts."""
        problems = []
        for clip in (self.split.clips[c] for c in self.clips):
            for store in (self.video, self.audio):
                try:
                    store[clip]
                except L.LayoutError as err:
                    problems.append(str(err))
        if problems:
            more = f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else ""
            raise L.LayoutError(f"{len(problems)} feature file problem(s) in split '{self.split.name}':\n  "
                                + "\n  ".join(problems[:shown]) + more)

    def _neighbour_table(self, matrix) -> tuple[torch.Tensor, torch.Tensor]:
        """``(2N, Kmax)`` indices of appropriate reactions (clip index of each reaction), real first."""
        n = len(self.split)
        listener = torch.tensor([self.split.listener_index(j) for j in range(n)])
        rows = []
        for k in range(n):
            others = [j for j in matrix[k].nonzero()[0].tolist() if j != k]
            rows.append(listener[[k] + ([] if self.pattern == "pair" else others)])
        counts = torch.tensor([len(r) for r in rows])
        table = torch.zeros(n, int(counts.max()), dtype=torch.long)
        for k, r in enumerate(rows):
            table[k, : len(r)] = r
        return table, counts

    def __len__(self) -> int:
        return len(self.items)

    def frame_rows(self, clip: int, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Video and audio features of video-frame indices ``frames`` (any shape) of clip ``clip``;
        frames past the clip's end read its last frame."""
        path = self.split.clips[clip]
        frames = frames.clamp(max=int(self.lengths[clip]) - 1)
        video = self.video.read(path, frames)
        n_video, n_audio = self.video[path].shape[0], self.audio[path].shape[0]
        if n_audio == n_video:
            return video, self.audio.read(path, frames)
        lo, hi, w = resample_index(frames, n_audio, n_video)
        return video, self.audio.read(path, lo) * (1 - w) + self.audio.read(path, hi) * w

    def windows_of(self, clips: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Facial attributes of frames ``frames`` ``(T,)`` of each of ``clips`` ``(K,)``: ``(K, T, 25)``."""
        return self._flat[self.offsets[clips][:, None] + frames]

    def reaction_indices(self, clip: int, end: int = 0) -> torch.Tensor:
        """Clip indices of the appropriate reactions used for ``clip`` (subsampled when training);
        ``end``: only reactions at least that long (those that cover the window)."""
        idx = self.neighbours[clip, : self.counts[clip]]
        if end:
            idx = idx[self.lengths[idx] >= end]
        if self.training and len(idx) > self.max_neighbours and not self.keep_listener:
            idx = idx[torch.randperm(len(idx))[: self.max_neighbours]]
        elif self.training and len(idx) > self.max_neighbours:
            keep = torch.randperm(len(idx) - 1)[: self.max_neighbours - 1] + 1
            idx = torch.cat([idx[:1], idx[keep]])
        return idx

    def __getitem__(self, i: int) -> dict:
        if not self.targets:
            raise RuntimeError("this DyadicWindows was built with targets=False: only clip_conditions() works")
        clip, start = (int(v) for v in self.items[i])
        frames = torch.arange(start, start + self.num_frames)
        video, audio = self.frame_rows(clip, frames)
        if self.augment is not None:
            video, audio = self.augment(video), self.augment(audio)
        reactions = self.reaction_indices(clip, start + self.num_frames)
        who = torch.cat([torch.tensor([clip, self.split.listener_index(clip)]), reactions])
        speaker, listener, reactions = self.windows_of(who, frames).split([1, 1, len(reactions)])
        return {"video": video, "audio": audio, "speaker": speaker[0], "listener": listener[0],
                "reactions": reactions, "clip": clip, "start": start, "index": i}

    def clip_conditions(self, clip: int, inputs: tuple[str, ...], starts: torch.Tensor | None = None
                        ) -> dict[str, torch.Tensor]:
        """The conditions ``inputs`` (``video``, ``audio``, ``speaker``) of the windows of one clip
        starting at ``starts`` (default :meth:`clip_starts`), each ``(W, T, dim)``; ``speaker``: the
        clip's own facial attributes (read from its file when the attributes were not loaded),
        frames past its end repeating its last frame."""
        starts = self.clip_starts(clip) if starts is None else starts
        frames = starts[:, None] + torch.arange(self.num_frames)
        out: dict[str, torch.Tensor] = {}
        if "video" in inputs or "audio" in inputs:
            out["video"], out["audio"] = self.frame_rows(clip, frames)
        if "speaker" in inputs:
            rows = frames.clamp(max=int(self.lengths[clip]) - 1)
            if self._flat is not None:
                out["speaker"] = self._flat[self.offsets[clip] + rows]
            else:
                own = torch.from_numpy(layouts.read_emotion(self.split, self.split.clips[clip]))
                out["speaker"] = own[rows]
        return {name: out[name] for name in inputs}


def collate_windows(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack window items; reaction sets are padded to the largest one with a ``mask`` ``(B, K)``."""
    k = max(len(it["reactions"]) for it in items)
    reactions = torch.zeros(len(items), k, *items[0]["reactions"].shape[1:])
    mask = torch.zeros(len(items), k, dtype=torch.bool)
    for b, it in enumerate(items):
        reactions[b, : len(it["reactions"])] = it["reactions"]
        mask[b, : len(it["reactions"])] = True
    batch = {key: torch.stack([it[key] for it in items]) for key in ("video", "audio", "speaker", "listener")}
    batch.update({key: torch.tensor([it[key] for it in items]) for key in ("clip", "start", "index")})
    return {**batch, "reactions": reactions, "mask": mask}
