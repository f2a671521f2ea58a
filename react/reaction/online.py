"""Online (causal) reaction generation, REACT task 2: each output frame uses only the speaker's
past and present frames, streamed frame by frame or in chunks, for any generator of the contract
(:mod:`react.reaction.contract`) through a backend's ``generate``.

:class:`CausalFeatures` turns raw frames and audio into per-frame features causally: the video
backbone sees one frame; the audio encoder sees the last ``context_s`` seconds ending with the
frame (``(t + 0.5) / fps``). :class:`CausalReactor` keeps the last ``window`` frames of features
and, for every new frame, runs the generator on the window that ends with it (the first frames
are padded with the first one) and keeps that window's last frame. Each sample's latent noise is
drawn once and reused at every step, so a sample is one coherent reaction over time. A model
with feedback (causal) runs its windows in order instead, each frame emitted from the partly
filled window (:class:`CausalReactor`). A chunk of ``n`` frames is ``n`` windows in one call:
chunking changes speed, never the outputs.

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
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from features.align import align_to_frames
from features.media import frames_at, resize_and_crop
from react.data.audio import load_audio
from react.reaction.deploy.runtime import Backend, DeployError, audio_rows, draw_noise
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


def check_online(info: dict) -> None:
    """Refuse a model (described by a backend's ``info``) that has no online mode: one that reads its
    own past output but is not causal."""
    if info.get("feedback", 0) and not info.get("causal", False):
        raise DeployError(f"model '{info.get('model')}' reads its own past output but is not causal: it "
                          "has no online mode")


class CausalReactor:
    """Per-frame conditions in, ``samples`` reaction frames out, from the past and present only.

    A model without feedback: for every new frame, the window that ends with it (the first frames
    padded with the first one), its last frame kept; one noise draw for every window. A model with
    ``feedback`` (it must be ``causal``): its windows ``window`` frames apart, in order, each fed the
    last ``feedback`` frames emitted before it as ``past``; frame ``t`` is emitted as soon as it
    arrives, from the partly filled window padded with frame ``t`` (a causal model's frames ``<= t``
    do not depend on the padding), so the output is that of the windows run whole. ``noise``: one row
    per window, ``(windows, samples, *noise_shape)`` (default: drawn by :func:`draw_noise` from
    ``seed``; with feedback, window ``w`` from the seed ``(seed, w)``).
    """

    def __init__(self, backend: Backend, samples: int | None = None, seed: int = 0,
                 noise: np.ndarray | None = None):
        self.backend, self.info = backend, backend.info
        check_online(self.info)
        self.window, self.feedback = self.info["window"], self.info.get("feedback", 0)
        self.samples = samples or self.info["samples"]
        self.seed, self.noise = seed, noise
        self.history: list[np.ndarray] | None = None  # no feedback: the last window - 1 frames
        self.current: list[np.ndarray] | None = None  # feedback: the frames of the open window
        self.emitted: list[np.ndarray] = []  # feedback: its reactions so far, (samples, nodes) each
        self.past = np.zeros((1, self.samples, self.feedback, self.info["nodes"]), dtype=np.float32)
        self.windows = 0  # windows completed

    def _noise(self, window: int) -> np.ndarray:
        if self.noise is not None:
            return self.noise[window if self.feedback else 0][None]
        return draw_noise(self.info, 1, self.samples, (self.seed, window) if self.feedback else self.seed)

    def push(self, *conditions: np.ndarray) -> np.ndarray:
        """Conditions (the model's ``inputs``, in order) of ``n`` new frames -> their reactions
        ``(samples, n, nodes)``."""
        if self.feedback:
            return self._push_feedback(conditions)
        n = len(conditions[0])
        if self.history is None:  # before the first frame: as if the first frame had lasted a window
            self.history = [np.repeat(c[:1], self.window - 1, 0) for c in conditions]
        history = [np.concatenate([h, c]) for h, c in zip(self.history, conditions)]
        index = np.arange(n)[:, None] + np.arange(self.window)  # window i ends with new frame i
        noise = np.repeat(self._noise(0), n, 0)
        out = self.backend.generate(*(h[index] for h in history), noise)
        self.history = [h[-(self.window - 1) :] for h in history]
        return out[:, :, -1].transpose(1, 0, 2)

    def _push_feedback(self, conditions: tuple[np.ndarray, ...]) -> np.ndarray:
        out, i, n = [], 0, len(conditions[0])
        while i < n:
            if self.current is None:
                self.current = [c[:0] for c in conditions]
            filled = len(self.current[0])
            take = min(n - i, self.window - filled)  # new frames that fit the open window
            self.current = [np.concatenate([w, c[i : i + take]]) for w, c in zip(self.current, conditions)]
            ends = np.arange(filled, filled + take)  # each new frame: the window so far, padded with it
            index = np.minimum(np.arange(self.window)[None], ends[:, None])
            reactions = self.backend.generate(
                *(w[index] for w in self.current),
                np.repeat(self.past, take, 0),
                np.repeat(self._noise(self.windows), take, 0),
            )  # (take, samples, window, nodes)
            frames = reactions[np.arange(take), :, ends]  # (take, samples, nodes)
            self.emitted.extend(frames)
            out.append(frames.transpose(1, 0, 2))
            i += take
            if filled + take == self.window:  # the window is complete: its frames become the past
                whole = np.stack(self.emitted, 1)[None]  # (1, samples, window, nodes)
                self.past = np.concatenate([self.past, whole], 2)[:, :, -self.feedback :]
                self.current, self.emitted, self.windows = None, [], self.windows + 1
        return np.concatenate(out, axis=1)


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
    speaker: Callable[[int, int], np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Stream a recorded clip through the causal pipeline; ``(samples, frames, nodes)`` and timings
    (``ms_per_frame``: features and generation, decoding excluded). ``speaker(start, stop)``: the
    speaker's facial attributes of those frames, for a model that reads them."""
    for path in (video, audio):
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: file not found")
    feats, reactor = CausalFeatures(backend), CausalReactor(backend, samples, seed)
    inputs = backend.info.get("inputs", ["video", "audio"])
    out, busy, done = [], 0.0, 0
    for frames, wave in chunks(video, audio, feats.rate, feats.fps, chunk):
        started = time.perf_counter()
        features = dict(zip(("video", "audio"), feats.push(frames, wave)))
        if speaker is not None:
            features["speaker"] = speaker(done, done + len(frames))
        done += len(frames)
        out.append(reactor.push(*(features[name] for name in inputs)))
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
    """Causal reactions to every clip of a dataset split from its stored features (with the PyTorch
    checkpoint of any generator), written as ``<pred_dir>/<split>/<clip>/result-<k>.pth`` (default
    ``pred_dir``: :func:`default_pred_dir`) and scored with the evaluation's metrics into
    ``<pred_dir>/metrics.json``. The stored audio features come from whole-clip encoding; the
    causal audio path is :class:`CausalFeatures`. A model with feedback takes the noise of offline
    generation (:func:`react.reaction.generation.generate_clip`, the clip's seed), so its online
    reactions are its offline ones."""
    import torch

    from react.reaction.data import react_layout as L
    from react.reaction.deploy.networks import TorchBackend, generator_networks
    from react.reaction.generation import clip_seed
    from react.reaction.loading import load_for_generation
    from react.utils.io import save_json, save_tensor
    from react.utils.logging import get_logger
    from react.utils.progress import progress

    pred_dir = Path(pred_dir) if pred_dir else default_pred_dir(checkpoint)
    task, model, cfg = load_for_generation(str(checkpoint), {})
    samples = samples or cfg.generate.samples
    backend = TorchBackend(generator_networks(model, cfg, samples))
    check_online(backend.info)
    dataset = task.dataset(split)
    dataset.check_features()
    preds = []
    log = get_logger(__name__)
    log.info("online generation of %d clips x %d samples of split %s -> %s", len(dataset.clips), samples,
             split, pred_dir)
    for clip in progress(dataset.clips, desc="online", unit="clip"):
        name, total = dataset.split.clips[clip], int(dataset.lengths[clip])
        starts = torch.arange(0, max(total, dataset.num_frames), dataset.num_frames)
        conditions = dataset.clip_conditions(clip, model.inputs, starts)  # (W, frames, dim) each
        rows = [c.flatten(0, 1)[:total].numpy() for c in conditions.values()]
        noise = None
        if model.feedback:
            generator = torch.Generator().manual_seed(clip_seed(seed, name))
            noise = model.draw_noise(len(starts), samples, generator).numpy()
        reactor = CausalReactor(backend, samples, seed, noise)
        pred = np.concatenate(
            [reactor.push(*(r[i : i + chunk] for r in rows)) for i in range(0, total, chunk)], axis=1
        )
        for k in range(samples):
            save_tensor(torch.from_numpy(pred[k].copy()), L.prediction_path(pred_dir, split, name, k))
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
    parser.add_argument("--checkpoint", required=True,
                        help="a generator's run dir, checkpoint dir or state.pt")
    add_split(parser)
    add_pred_dir(parser, help="where reactions and metrics.json go (default: <run>/online)")
    parser.add_argument("--samples", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=25, help="frames per step (outputs do not depend on it)")
    args = parser.parse_args(argv)
    from react.config import ConfigError
    from react.engine import CheckpointError
    from react.errors import LayoutError, user_message
    from react.utils.logging import setup_logging

    setup_logging()
    try:
        metrics = score_split(args.checkpoint, args.split, args.pred_dir, args.samples, args.seed, args.chunk)
    except (FileNotFoundError, CheckpointError, ConfigError, LayoutError, DeployError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={metrics[k]:.4g}" for k in ("FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
