"""The dyadic REACT windows dataset: speaker features in, appropriate listener reactions out.

Every clip of a split (both directions of each dyad, :mod:`react.data.react_layout`) is cut into
windows of ``num_frames`` frames every ``stride`` frames (plus a last window flush with the clip's
end when the stride does not land there). An item is one window: the speaker's video and audio
features (audio linearly resampled to the video frame count when the counts differ), the speaker's
and the real listener's Emotion, and the window of every appropriate real reaction, i.e. the
listener reactions ``L[j]`` with ``M[k, j] = 1`` in ``neighbour_emotion_<split>.npy``:

- ``pair``: only the real listener's reaction;
- ``nearest`` / ``all``: the appropriate set, real listener first; when training a random subset of
  at most ``max_neighbours`` (the real listener always kept), when evaluating all of them.

Emotions live in memory as one ``(2N, 750, 25)`` tensor and neighbour windows are gathered by
tensor indexing. Features are memory-mapped once per clip (only the pages of a window are read).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from react.data import react_layout as L

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
    """Per-clip feature tensors, loaded lazily (memory-mapped) and checked once (shape, NaN/inf)."""

    def __init__(self, root: str | os.PathLike, split: str, kind: str, dim: int, min_frames: int):
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
            if feats.shape[1] != self.dim or feats.shape[0] < self.min_frames:
                raise L.LayoutError(f"{path}: expected at least {self.min_frames} frames x {self.dim} "
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

    With ``targets=False`` no Emotion CSV or matrix is read: only :meth:`clip_windows` (generation).
    """

    def __init__(self, data_root: str | os.PathLike, split: str, *, video_dim: int, audio_dim: int,
                 features_root: str | os.PathLike | None = None, num_frames: int = 50, stride: int = 25,
                 pattern: str = "all", max_neighbours: int = 10, training: bool = False,
                 augment: FeatureAugment | None = None, clips: list[int] | None = None, targets: bool = True):
        if pattern not in PATTERNS:
            raise ValueError(f"neighbour pattern must be one of {', '.join(PATTERNS)}, got '{pattern}'")
        if max_neighbours < 1:
            raise ValueError(f"max_neighbours must be >= 1, got {max_neighbours}")
        self.split = L.read_split(data_root, split)
        self.pattern, self.max_neighbours, self.training = pattern, max_neighbours, training
        self.augment = augment if training and augment is not None else None
        self.num_frames = num_frames
        self.targets = targets
        self.emotions = torch.from_numpy(L.read_emotions(self.split)) if targets else None  # (2N, 750, 25)
        self.starts = window_starts(L.NUM_FRAMES, num_frames, stride)
        self.clips = list(range(len(self.split))) if clips is None else list(clips)
        features_root = features_root or data_root
        self.video = FeatureStore(features_root, split, "video", video_dim, L.NUM_FRAMES)
        self.audio = FeatureStore(features_root, split, "audio", audio_dim, 1)
        if targets:
            self.neighbours, self.counts = self._neighbour_table(L.read_appropriateness(self.split))

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
        return len(self.clips) * len(self.starts)

    def frame_rows(self, clip: int, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Video and audio features of video-frame indices ``frames`` (any shape) of clip ``clip``."""
        path = self.split.clips[clip]
        video = self.video.read(path, frames)
        n_video, n_audio = self.video[path].shape[0], self.audio[path].shape[0]
        if n_audio == n_video:
            return video, self.audio.read(path, frames)
        lo, hi, w = resample_index(frames, n_audio, n_video)
        return video, self.audio.read(path, lo) * (1 - w) + self.audio.read(path, hi) * w

    def reaction_indices(self, clip: int) -> torch.Tensor:
        """Clip indices of the appropriate reactions used for ``clip`` (subsampled when training)."""
        idx = self.neighbours[clip, : self.counts[clip]]
        if self.training and len(idx) > self.max_neighbours:
            keep = torch.randperm(len(idx) - 1)[: self.max_neighbours - 1] + 1
            idx = torch.cat([idx[:1], idx[keep]])
        return idx

    def __getitem__(self, i: int) -> dict:
        if not self.targets:
            raise RuntimeError("this DyadicWindows was built with targets=False: only clip_windows() works")
        clip = self.clips[i // len(self.starts)]
        start = int(self.starts[i % len(self.starts)])
        frames = torch.arange(start, start + self.num_frames)
        video, audio = self.frame_rows(clip, frames)
        if self.augment is not None:
            video, audio = self.augment(video), self.augment(audio)
        window = slice(start, start + self.num_frames)
        return {"video": video, "audio": audio, "speaker": self.emotions[clip, window],
                "listener": self.emotions[self.split.listener_index(clip), window],
                "reactions": self.emotions[self.reaction_indices(clip), window],
                "clip": clip, "start": start, "index": i}

    def clip_windows(self, clip: int) -> tuple[torch.Tensor, torch.Tensor]:
        """All windows of one clip at once: video ``(W, T, dv)`` and audio ``(W, T, da)``."""
        return self.frame_rows(clip, self.starts[:, None] + torch.arange(self.num_frames))


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
