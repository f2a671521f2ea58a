"""Resumable batch extraction over many clips, with reading overlapped with the forward pass.

Worker processes (a ``DataLoader`` over an iterable of clips) read each clip into payload chunks
(decoded frames, a waveform); the main process stacks chunks of consecutive clips into batches of
``batch_size`` rows, runs the model, splits the rows back per clip and, once a clip is complete,
writes its features and sidecar (temporary name, then rename). Clips that are already up to date
are skipped; a clip that fails is logged, the others go on, and all failures are listed at the end.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from features.sidecar import file_stamp, is_up_to_date, write_sidecar
from react.utils.io import save_tensor
from react.utils.logging import get_logger
from react.utils.progress import progress

log = get_logger(__name__)


@dataclass(frozen=True)
class Job:
    """One clip to extract: where its media is and where its features go."""

    clip: str
    source: Path  # the file (or png folder) the reader opens
    target: Path  # <out_dir>/<split>/{Video,Audio}_features/<clip>.pth
    video: Path  # the clip's video, whose frame count sets the grid when frames == 0
    frames: int  # frames to produce; 0 = as many as the video has
    data_dir: Path

    def inputs(self) -> dict[str, list[int]]:
        """Stamps of the media this clip's features depend on (see ``features.sidecar.file_stamp``)."""
        stamps = {"source": file_stamp(self.source)}
        if self.frames == 0 and self.video != self.source:  # the video's frame count sets the grid
            stamps["video"] = file_stamp(self.video)
        return stamps


class Reader(ABC):
    """Runs in a worker: turns one clip into payload chunks (rows stacked along dim 0)."""

    @abstractmethod
    def __call__(self, job: Job) -> Iterator[torch.Tensor]: ...


class Extractor(ABC):
    """The model side: settings recorded in sidecars, a reader, batched encoding, per-clip finish."""

    settings: dict[str, Any]
    reader: Reader
    batch_size: int

    def load(self) -> None:  # noqa: B027 - extractors without a model need nothing here
        """Build the model, once, before the first clip that needs it (a no-op rerun never does)."""

    @abstractmethod
    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """Features for a batch of payload rows; the output has one entry per input row."""

    @abstractmethod
    def finish(self, job: Job, rows: torch.Tensor) -> torch.Tensor:
        """The clip's encoded rows -> its final float32 ``frames x dim`` features."""


@dataclass
class Report:
    """What one run did."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class _ClipStream(IterableDataset):
    """Yields ``(job index, chunk | None, last, error | None)``; workers share the clips round-robin."""

    def __init__(self, jobs: list[Job], reader: Reader):
        self.jobs, self.reader = jobs, reader

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor | None, bool, str | None]]:
        info = get_worker_info()
        indices = range(len(self.jobs)) if info is None else range(info.id, len(self.jobs), info.num_workers)
        for index in indices:
            job = self.jobs[index]
            try:
                for chunk in self.reader(job):
                    yield index, chunk, False, None
            except Exception as err:  # noqa: BLE001 - any failure of one clip is reported, others go on
                yield index, None, True, f"{job.source}: {type(err).__name__}: {err}"
                continue
            yield index, None, True, None


def _identity(item: Any) -> Any:
    return item


def pending_jobs(jobs: list[Job], settings: dict[str, Any]) -> tuple[list[Job], list[Job]]:
    """Split ``jobs`` into (to do, already up to date with these settings)."""
    todo, fresh = [], []
    for job in jobs:
        (fresh if is_up_to_date(job.target, settings, job.inputs()) else todo).append(job)
    return todo, fresh


class _Batcher:
    """Stacks chunks into batches of at most ``batch_size`` rows and hands the results back per clip."""

    def __init__(self, extractor: Extractor, device: torch.device):
        self.extractor, self.device = extractor, device
        self.chunks: list[tuple[int, torch.Tensor]] = []
        self.rows = 0

    def add(self, index: int, chunk: torch.Tensor, parts: dict[int, list[torch.Tensor]]) -> None:
        if self.chunks and (self.rows + len(chunk) > self.extractor.batch_size
                            or chunk.shape[1:] != self.chunks[0][1].shape[1:]):
            self.flush(parts)
        self.chunks.append((index, chunk))
        self.rows += len(chunk)
        if self.rows >= self.extractor.batch_size:
            self.flush(parts)

    def drop(self, index: int) -> None:
        kept = [(i, c) for i, c in self.chunks if i != index]
        self.chunks, self.rows = kept, sum(len(c) for _, c in kept)

    def holds(self, index: int) -> bool:
        return any(i == index for i, _ in self.chunks)

    def flush(self, parts: dict[int, list[torch.Tensor]]) -> None:
        if not self.chunks:
            return
        batch = torch.cat([c for _, c in self.chunks]).to(self.device, non_blocking=True)
        with torch.inference_mode():
            out = self.extractor.encode(batch).float().cpu()
        start = 0
        for index, chunk in self.chunks:
            parts[index].append(out[start:start + len(chunk)])
            start += len(chunk)
        self.chunks, self.rows = [], 0


def run_jobs(jobs: list[Job], extractor: Extractor, workers: int = 1, device: str = "cpu",
             desc: str = "features") -> Report:
    """Extract every job not yet up to date; never raises for a single clip's failure."""
    report = Report()
    todo, fresh = pending_jobs(jobs, extractor.settings)
    report.skipped = [j.clip for j in fresh]
    if fresh:
        log.info("%s: %d of %d clips already up to date, skipped", desc, len(fresh), len(jobs))
    stale = [j.clip for j in todo if j.target.exists()]
    if stale:
        log.warning("%s: %d clips have features from other settings or changed media (or no sidecar); "
                    "re-extracting them", desc, len(stale))
    if not todo:
        return report
    extractor.load()
    loader = DataLoader(_ClipStream(todo, extractor.reader), batch_size=None, num_workers=workers,
                        collate_fn=_identity, pin_memory=device.startswith("cuda"),
                        prefetch_factor=4 if workers > 0 else None, persistent_workers=False)
    batcher = _Batcher(extractor, torch.device(device))
    parts: dict[int, list[torch.Tensor]] = {}
    closing: dict[int, None] = {}  # insertion-ordered set of clips whose last chunk arrived
    start = time.perf_counter()
    with progress(total=len(todo), desc=desc, unit="clip") as bar:

        def close(index: int, error: str | None = None) -> None:
            """Save a complete clip (or record why it failed) and advance the progress bar."""
            job, rows = todo[index], parts.pop(index, [])
            batcher.drop(index)
            if error is None:
                try:
                    _save(job, extractor, rows)
                    report.done.append(job.clip)
                except Exception as err:  # noqa: BLE001 - reported with the clip, the run goes on
                    error = f"{job.source}: {type(err).__name__}: {err}"
            if error is not None:
                report.failed[job.clip] = error
                log.error("FAILED %s: %s", job.clip, error)
            bar.update(1)
            bar.set_postfix(failed=len(report.failed))

        for index, chunk, last, error in loader:
            parts.setdefault(index, [])
            if error is not None:
                close(index, error)
                continue
            if chunk is not None:
                batcher.add(index, chunk, parts)
            if last:
                closing[index] = None
            for done in [i for i in closing if not batcher.holds(i)]:
                del closing[done]
                close(done)
        batcher.flush(parts)
        for done in closing:
            close(done)
    report.seconds = time.perf_counter() - start
    return report


def _save(job: Job, extractor: Extractor, rows: list[torch.Tensor]) -> None:
    if not rows:
        raise ValueError("no frames were read")
    features = extractor.finish(job, torch.cat(rows)).to(torch.float32).contiguous().clone()
    if features.ndim != 2 or (job.frames and features.shape[0] != job.frames):
        raise ValueError(f"features have shape {tuple(features.shape)}, expected ({job.frames or 'T'}, dim)")
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or inf")
    save_tensor(features, job.target)
    write_sidecar(job.target, extractor.settings, tuple(features.shape), _relative(job.source, job.data_dir),
                  job.inputs())


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
