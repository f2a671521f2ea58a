"""Online (causal) reaction generation, REACT task 2: each output frame uses only the speaker's
past and present frames, streamed frame by frame or in chunks.

:class:`CausalFeatures` turns raw frames and audio into per-frame features causally: the video
backbone sees one frame; the audio encoder sees the last ``context_s`` seconds ending with the
frame (``(t + 0.5) / fps``). :class:`CausalReactor` keeps the last ``window`` frames of features
and, for every new frame, runs the generator on the window that ends with it (the first frames
are padded with the first one) and keeps that window's last frame. Each sample's latent noise is
drawn once and reused at every step, so a sample is one coherent reaction over time. A chunk of
``n`` frames is ``n`` windows in one call: chunking changes speed, never the outputs.

    react infer --deploy DIR --video speaker.mp4 --audio speaker.wav --out-dir OUT --online [--chunk 5]
    react online --checkpoint RUN --split test [--pred-dir DIR]   # a dataset split, scored
 Any source ``av``
opens works as ``--video`` (a file, a device such as ``/dev/video0``, a stream URL); for a live
source, feed :meth:`CausalFeatures.push` and :meth:`CausalReactor.push` from your own capture loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from features.align import align_to_frames
from features.media import frames_at, resize_and_crop
from react.data.audio import load_audio
from react.reaction.deploy.runtime import Backend, audio_rows, draw_noise
from react.utils.cli import add_pred_dir, add_split


class CausalFeatures:
    """Raw frames and audio samples in, per-frame features out, never looking ahead."""

    def __init__(self, backend: Backend, context_s: float = 1.0):
        self.backend, info = backend, backend.info
        self.fps, self.v, self.a = info["fps"], info["networks"]["video"], info["networks"]["audio"]
        self.rate = self.a["sample_rate"]
        self.context = max(1, round(context_s * self.fps))  # frames of audio context
        self.wave = np.zeros(0, dtype=np.float32)
        self.frames = 0

    def push(self, frames: list[np.ndarray], wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB frames ``(H, W, 3)`` and the audio samples that arrived with them -> features
        ``(n, video_dim)``, ``(n, audio_dim)``. Audio not yet arrived counts as silence."""
        self.wave = np.concatenate([self.wave, np.asarray(wave, dtype=np.float32)])
        crops = np.stack([resize_and_crop(f, self.v["resize"], self.v["crop"]) for f in frames])
        video = self.backend.video(crops)
        span = round(self.context * self.rate / self.fps)
        segments = np.zeros((len(frames), span), dtype=np.float32)
        for i in range(len(frames)):
            end = round((self.frames + i + 0.5) * self.rate / self.fps)
            seg = self.wave[max(0, end - span) : end]
            segments[i, span - len(seg) :] = seg
        hidden, times = audio_rows(self.backend, segments)
        # segment frame j is centred (j + 0.5) / fps after the segment's start
        audio = np.stack(
            [align_to_frames(h, times - 0.5 / self.fps, self.context, self.fps)[-1] for h in hidden]
        )
        self.frames += len(frames)
        return video, audio


class CausalReactor:
    """Per-frame features in, ``samples`` reaction frames out, from the past and present only."""

    def __init__(self, backend: Backend, samples: int | None = None, seed: int = 0):
        self.backend, info = backend, backend.info
        self.window = info["window"]
        self.samples = samples or info["samples"]
        self.noise = draw_noise(info, 1, self.samples, seed)
        self.video: np.ndarray | None = None
        self.audio: np.ndarray | None = None

    def push(self, video: np.ndarray, audio: np.ndarray) -> np.ndarray:
        """Features of ``n`` new frames -> their reactions ``(samples, n, nodes)``."""
        n = len(video)
        if self.video is None:  # before the first frame: as if the first frame had lasted a window
            self.video = np.repeat(video[:1], self.window - 1, 0)
            self.audio = np.repeat(audio[:1], self.window - 1, 0)
        history_v = np.concatenate([self.video, video])
        history_a = np.concatenate([self.audio, audio])
        index = np.arange(n)[:, None] + np.arange(self.window)  # window i ends with new frame i
        out = self.backend.generate(history_v[index], history_a[index], np.repeat(self.noise, n, 0))
        self.video, self.audio = history_v[-(self.window - 1) :], history_a[-(self.window - 1) :]
        return out[:, :, -1].transpose(1, 0, 2)


def chunks(
    video: str | os.PathLike, audio: str | os.PathLike, sample_rate: int, fps: float, size: int
) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
    """A recorded clip as a live source: ``size`` frames at a time (on the ``fps`` grid) with the
    audio of their span."""
    wave = load_audio(audio, sample_rate)
    frames: list[np.ndarray] = []
    sent = count = 0
    for frame in frames_at(Path(video), fps):
        frames.append(frame)
        count += 1
        if len(frames) == size:
            end = round((count + 0.5) * sample_rate / fps)
            yield frames, wave[sent:end]
            frames, sent = [], max(sent, end)
    if frames:
        yield frames, wave[sent : round((count + 0.5) * sample_rate / fps)]


def stream_clip(
    backend: Backend,
    video: str | os.PathLike,
    audio: str | os.PathLike,
    samples: int | None = None,
    seed: int = 0,
    chunk: int = 1,
) -> tuple[np.ndarray, dict[str, float]]:
    """Stream a recorded clip through the causal pipeline; ``(samples, frames, nodes)`` and timings
    (``ms_per_frame``: features and generation, decoding excluded)."""
    for path in (video, audio):
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: file not found")
    feats, reactor = CausalFeatures(backend), CausalReactor(backend, samples, seed)
    out, busy = [], 0.0
    for frames, wave in chunks(video, audio, feats.rate, feats.fps, chunk):
        started = time.perf_counter()
        out.append(reactor.push(*feats.push(frames, wave)))
        busy += time.perf_counter() - started
    reactions = np.concatenate(out, axis=1)
    return reactions, {"online_s": busy, "ms_per_frame": 1000 * busy / reactions.shape[1]}


METRICS = "metrics.json"  # the file name evaluation.py --out and react.reaction.viz report use


def default_pred_dir(checkpoint: str | os.PathLike) -> Path:
    """``<run>/online`` beside the checkpoint's run."""
    from react.engine.checkpoint import run_dir_of

    return run_dir_of(checkpoint) / "online"


def score_split(
    checkpoint: str | os.PathLike,
    split: str,
    pred_dir: str | os.PathLike | None = None,
    samples: int | None = None,
    seed: int = 0,
    chunk: int = 25,
) -> dict:
    """Causal reactions to every clip of a dataset split from its stored features (with a PyTorch
    checkpoint), written as ``<pred_dir>/<split>/<clip>/result-<k>.pth`` (default ``pred_dir``:
    :func:`default_pred_dir`) and scored with the evaluation's metrics into
    ``<pred_dir>/metrics.json``. The stored audio features come from whole-clip encoding; the
    causal audio path is :class:`CausalFeatures`."""
    import torch

    from react.engine import load_checkpoint
    from react.reaction.data import react_layout as L
    from react.reaction.deploy.graph import ReactionGenerator
    from react.utils.io import save_json, save_tensor
    from react.utils.logging import get_logger
    from react.utils.progress import progress

    pred_dir = Path(pred_dir) if pred_dir else default_pred_dir(checkpoint)

    task, model, cfg = load_checkpoint(checkpoint, task="regnn")
    generator = ReactionGenerator(model, model.inverse_iters, model.inverse_tol)
    samples = samples or cfg.generate.samples

    class Generator:  # the feature-level part of a backend: the generator alone
        info = {
            "window": model.frames,
            "nodes": model.nodes,
            "samples": samples,
            "noise": {"std": model.noise_std, "clip": model.noise_clip, "max": model.noise_max},
        }

        def generate(self, video: np.ndarray, audio: np.ndarray, noise: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return generator(*(torch.from_numpy(x) for x in (video, audio, noise))).numpy()

    dataset = task.dataset(split)
    dataset.check_features()
    preds = []
    log = get_logger(__name__)
    log.info("online generation of %d clips x %d samples of split %s -> %s", len(dataset.clips), samples,
             split, pred_dir)
    for clip in progress(dataset.clips, desc="online", unit="clip"):
        video, audio = (x.numpy() for x in dataset.frame_rows(clip, torch.arange(L.NUM_FRAMES)))
        reactor = CausalReactor(Generator(), samples, seed)
        pred = np.concatenate(
            [reactor.push(video[i : i + chunk], audio[i : i + chunk]) for i in range(0, L.NUM_FRAMES, chunk)],
            axis=1,
        )
        for k in range(samples):
            save_tensor(
                torch.from_numpy(pred[k].copy()),
                L.prediction_path(pred_dir, split, dataset.split.clips[clip], k),
            )
        preds.append(pred)
    log.info("scoring %d clips with the evaluation's metrics", len(preds))
    metrics = task.score(dataset, torch.from_numpy(np.stack(preds)))
    record = {"mode": "online", "split": split, "checkpoint": str(Path(checkpoint).resolve()),
              "pred_dir": str(pred_dir.resolve()), **metrics}
    save_json(record, pred_dir / METRICS)
    log.info("metrics -> %s", pred_dir / METRICS)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react online", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="REGNN run dir, checkpoint dir or state.pt")
    add_split(parser)
    add_pred_dir(parser, help="where reactions and metrics.json go (default: <run>/online)")
    parser.add_argument("--samples", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=25, help="frames per step (outputs do not depend on it)")
    args = parser.parse_args(argv)
    from react.engine import CheckpointError
    from react.errors import LayoutError, user_message
    from react.utils.logging import setup_logging

    setup_logging()
    try:
        metrics = score_split(args.checkpoint, args.split, args.pred_dir, args.samples, args.seed, args.chunk)
    except (FileNotFoundError, CheckpointError, LayoutError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={metrics[k]:.4g}" for k in ("FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
