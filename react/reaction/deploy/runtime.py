"""Run a deploy folder without torch: raw speaker clip -> features -> reactions (numpy + onnxruntime).

A *backend* holds the three networks of ``network_info.json`` behind numpy calls
(:class:`DeployBackend` here; ``react.reaction.deploy.torch_backend.TorchBackend`` runs a training checkpoint
the same way). Everything else is shared by both: decoding, windows, noise, overlap-add, outputs.
Windows and overlap-add follow :mod:`react.reaction.generation` (a test keeps them equal).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from features.align import align_to_frames
from features.media import fit_to_frames, frames_at, resize_and_crop
from react.data.audio import load_audio
from react.reaction.data.react_layout import EMOTION_COLUMNS, LayoutError, constrained_attributes
from react.utils.io import atomic_path
from react.utils.pth import save_pth

INFO = "network_info.json"
NETWORKS = ("generator", "video", "audio")


class DeployError(ValueError):
    """A deploy folder or an input clip that cannot be used (message names the file)."""


# what a bad deploy folder or input clip raises; commands print these as one line and exit 2
INPUT_ERRORS = (FileNotFoundError, DeployError, LayoutError, ValueError)


class Backend(Protocol):
    """The three networks as numpy functions, and the description they were exported with."""

    info: dict[str, Any]

    def video(self, frames: np.ndarray) -> np.ndarray:
        """uint8 cropped frames ``(B, crop, crop, 3)`` -> features ``(B, video_dim)``."""

    def audio(self, wave: np.ndarray) -> np.ndarray:
        """float32 waveforms ``(B, samples)`` -> hidden rows ``(B, rows, audio_dim)``."""

    def generate(self, *arrays: np.ndarray) -> np.ndarray:
        """The generator's inputs in ``info["networks"]["generator"]["inputs"]`` order (the model's
        conditions ``(W, T, dim)``, ``past`` with feedback, noise ``(W, S, *noise_shape)``) ->
        reactions ``(W, S, T, nodes)``."""


def read_info(folder: str | os.PathLike) -> dict[str, Any]:
    """``network_info.json`` of a deploy folder, with every network file it names present."""
    folder = Path(folder)
    path = folder / INFO
    if not path.is_file():
        raise DeployError(f"{path}: not found (is {folder} a deploy folder? run the deploy stage)")
    try:
        info = json.loads(path.read_text())
        files = {name: folder / info["networks"][name]["file"] for name in NETWORKS}
    except ValueError as err:
        raise DeployError(f"{path}: not valid JSON ({err}); export the folder again (deploy stage)") from None
    except (KeyError, TypeError) as err:
        raise DeployError(f"{path}: no network entry {err}; export the folder again (deploy stage)") from None
    for file in files.values():
        if not file.is_file():
            raise DeployError(f"{file}: network file named in {path} not found")
    return info


class DeployBackend:
    """The deploy folder's networks: ONNX on onnxruntime (CPU unless ``providers`` says otherwise);
    a TorchScript fallback network needs torch, imported only then."""

    def __init__(self, folder: str | os.PathLike, threads: int = 0, providers: list[str] | None = None):
        self.folder, self.info = Path(folder), read_info(folder)
        self.runners = {
            name: self._runner(net, threads, providers) for name, net in self.info["networks"].items()
        }

    def _runner(
        self, net: dict[str, Any], threads: int, providers: list[str] | None
    ) -> Callable[..., np.ndarray]:
        path = self.folder / net["file"]
        if net["format"] == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            try:
                session = ort.InferenceSession(
                    str(path), options, providers=providers or ["CPUExecutionProvider"]
                )
            except Exception as err:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...)
                reason = str(err).splitlines()[0].rsplit(":", 1)[-1].strip()
                raise DeployError(
                    f"{path}: not a loadable ONNX model ({reason}); export the folder again (deploy stage)"
                ) from None
            names = list(net["inputs"])
            return lambda *arrays: session.run(None, dict(zip(names, arrays)))[0]
        try:
            import torch
        except ImportError:
            raise DeployError(
                f"{path}: a TorchScript network (ONNX export failed: {net.get('onnx_error')}) needs torch"
            ) from None
        try:
            module = torch.jit.load(str(path))
        except (RuntimeError, ValueError) as err:
            raise DeployError(f"{path}: not a loadable TorchScript module ({str(err).splitlines()[0]}); "
                              "export the folder again (deploy stage)") from None
        return lambda *arrays: module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in arrays)).numpy()

    def run(self, name: str, *arrays: np.ndarray) -> np.ndarray:
        """Network ``name`` on its inputs, in the order ``network_info.json`` lists them."""
        return self.runners[name](*arrays)

    def video(self, frames: np.ndarray) -> np.ndarray:
        return self.run("video", np.ascontiguousarray(frames, dtype=np.uint8))

    def audio(self, wave: np.ndarray) -> np.ndarray:
        return self.run("audio", np.ascontiguousarray(wave, dtype=np.float32))

    def generate(self, *arrays: np.ndarray) -> np.ndarray:
        return self.run("generator", *(x.astype(np.float32) for x in arrays))


def window_starts(total: int, window: int, stride: int) -> np.ndarray:
    """Start frames covering ``total >= window`` frames; the last window ends exactly at ``total``."""
    starts = list(range(0, total - window + 1, stride))
    if starts[-1] + window < total:
        starts.append(total - window)
    return np.asarray(starts)


def taper(window: int, floor: float = 1e-3) -> np.ndarray:
    """Raised-sine weights ``sin^2(pi (t + 0.5) / T)`` (as :func:`react.reaction.generation.taper`)."""
    t = np.arange(window, dtype=np.float64)
    return np.maximum(np.sin(np.pi * (t + 0.5) / window) ** 2, floor).astype(np.float32)


def blend(windows: np.ndarray, starts: np.ndarray, total: int) -> np.ndarray:
    """Overlap-add ``(S, W, T, D)`` windows into ``(S, total, D)`` with the taper."""
    weight = taper(windows.shape[2])
    out = np.zeros((windows.shape[0], total, windows.shape[3]), dtype=np.float64)
    norm = np.zeros(total)
    for w, start in enumerate(starts):
        out[:, start : start + len(weight)] += windows[:, w] * weight[:, None]
        norm[start : start + len(weight)] += weight
    return (out / norm[:, None]).astype(np.float32)


def scale_noise(z: np.ndarray, noise: dict[str, float]) -> np.ndarray:
    """Standard-normal ``(W, S, ...)`` -> the model's noise, by the law ``network_info.json``
    records (:func:`react.reaction.deploy.networks.noise_law`): ``std * z``, clipped first with
    ``clip``, or REGNN's official rescaling with ``max``."""
    if noise["max"] > 0:
        return z * (noise["max"] / np.abs(z).max(axis=(0, 2, 3), keepdims=True))
    if noise["clip"] > 0:
        z = np.clip(z, -noise["clip"], noise["clip"])
    return noise["std"] * z


def draw_noise(
    info: dict[str, Any], windows: int, samples: int, seed: int | tuple[int, ...]
) -> np.ndarray:
    """The model's noise ``(windows, samples, *noise_shape)`` from ``seed``: the same for every backend
    (folders exported before ``noise_shape`` was recorded: REGNN's ``(nodes, window)``)."""
    shape = info.get("noise_shape", [info["nodes"], info["window"]])
    z = np.random.default_rng(seed).standard_normal((windows, samples, *shape))
    return scale_noise(z, info["noise"]).astype(np.float32)


def video_features(backend: Backend, path: str | os.PathLike, max_frames: int = 0) -> np.ndarray:
    """Per-frame features ``(N, video_dim)`` of every frame on the deployment's frame grid (a clip
    of another frame rate is resampled to it; at most ``max_frames`` if > 0)."""
    v = backend.info["networks"]["video"]
    rows, chunk = [], []
    for frame in frames_at(Path(path), backend.info["fps"]):
        chunk.append(resize_and_crop(frame, v["resize"], v["crop"]))
        if len(chunk) == v["batch_size"]:
            rows.append(backend.video(np.stack(chunk)))
            chunk = []
        if max_frames and len(chunk) + sum(map(len, rows)) == max_frames:
            break
    if chunk:
        rows.append(backend.video(np.stack(chunk)))
    if not rows:
        raise DeployError(f"{path}: no video frames decoded")
    return np.concatenate(rows)


def audio_rows(backend: Backend, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden rows ``(B, rows, da)`` of waveforms ``(B, samples)`` and their centre times (s)."""
    a = backend.info["networks"]["audio"]
    if a["normalize"]:
        wave = (wave - wave.mean(-1, keepdims=True)) / np.sqrt(wave.var(-1, keepdims=True) + 1e-7)
    hidden = backend.audio(wave.astype(np.float32))
    times = (np.arange(hidden.shape[1]) * a["row_stride"] + a["row_offset"]) / a["sample_rate"]
    return hidden, times


def audio_features(backend: Backend, path: str | os.PathLike, frames: int) -> np.ndarray:
    """Per-frame features ``(frames, audio_dim)`` of a whole clip (as ``features.extract``)."""
    a, fps = backend.info["networks"]["audio"], backend.info["fps"]
    wave = load_audio(path, a["sample_rate"])
    try:
        wave = fit_to_frames(wave, frames, fps, a["sample_rate"], a["max_shortfall_s"])
    except ValueError as err:
        raise DeployError(f"{path}: {err}") from None
    hidden, times = audio_rows(backend, wave[None])
    return align_to_frames(hidden[0], times, frames, fps)


def clip_features(
    backend: Backend, video: str | os.PathLike, audio: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Video and audio features of one raw clip of any length, on the video's frame grid."""
    for path in (video, audio):
        if not Path(path).exists():
            raise DeployError(f"{path}: file not found")
    v = video_features(backend, video)
    return v, audio_features(backend, audio, len(v))


def check_raw_clip_inputs(info: dict[str, Any], speaker: bool = False) -> None:
    """Refuse a model that reads more than a raw clip gives (its video and audio), unless the
    speaker's facial attributes are given (``speaker``)."""
    if "speaker" in info.get("inputs", ()) and not speaker:
        raise DeployError(
            f"model '{info.get('model')}' reads the speaker's facial attributes, which raw clips do not "
            "give; pass them with --speaker-attributes CSV (an Emotion CSV: a header, 25 columns per frame)"
        )


def attribute_rows(rows: np.ndarray, start: int, stop: int, path: str | os.PathLike) -> np.ndarray:
    """Rows ``start:stop`` of the speaker's facial attributes ``rows`` (read from ``path``) for those
    video frames; one missing last row repeats the last one (a REACT clip has 751 video frames and
    750 rows of attributes)."""
    if stop > len(rows) + 1:
        raise DeployError(f"{path}: {len(rows)} rows of facial attributes, but the clip has at least "
                          f"{stop} frames")
    return rows[np.minimum(np.arange(start, stop), len(rows) - 1)]


def generate(
    backend: Backend, video: np.ndarray, audio: np.ndarray, samples: int, seed: int, batch: int = 16,
    speaker: np.ndarray | None = None,
) -> np.ndarray:
    """``(samples, N, nodes)`` reactions to features ``(N, d)`` of any length ``N >= 1`` (and the
    speaker's facial attributes ``(N, 25)`` for a model that reads them).

    Windows every ``stride`` frames, overlap-added; a clip shorter than a window is padded with its
    last frame and the padding's reactions are dropped. A model with feedback runs its windows in
    order, ``window`` frames apart (the last one padded with the clip's last frame), each fed the
    last ``feedback`` frames generated before it as ``past``, window ``w``'s noise drawn from the
    seed ``(seed, w)`` (as :class:`react.reaction.online.CausalReactor` draws it, so the online
    mode of a causal model gives the same reactions).
    """
    info = backend.info
    features = {"video": video, "audio": audio, **({} if speaker is None else {"speaker": speaker})}
    check_raw_clip_inputs(info, "speaker" in features)
    conditions = [features[name] for name in info.get("inputs", ("video", "audio"))]
    n, window, feedback = len(video), info["window"], info.get("feedback", 0)
    if feedback:
        starts = np.arange(0, max(n, window), window)
        index = np.minimum(starts[:, None] + np.arange(window), n - 1)
        past = np.zeros((1, samples, feedback, info["nodes"]), dtype=np.float32)
        out = []
        for w in range(len(starts)):
            noise = draw_noise(info, 1, samples, (seed, w))
            out.append(backend.generate(*(c[index[w : w + 1]] for c in conditions), past, noise))
            past = np.concatenate([past, out[-1]], 2)[:, :, -feedback:]
        return np.concatenate(out, 2)[0, :, :n]
    if n < window:
        conditions = [np.concatenate([c, np.repeat(c[-1:], window - n, 0)]) for c in conditions]
    starts = window_starts(max(n, window), window, info["stride"])
    noise = draw_noise(info, len(starts), samples, seed)
    index = starts[:, None] + np.arange(window)
    out = [
        backend.generate(*(c[index[i : i + batch]] for c in conditions), noise[i : i + batch])
        for i in range(0, len(starts), batch)
    ]
    return blend(np.concatenate(out).transpose(1, 0, 2, 3), starts, max(n, window))[:, :n]


@dataclass
class Result:
    """What :func:`write_results` wrote."""

    pth: list[Path]
    csv: list[Path]
    constrained: list[Path]


def _write_csv(values: np.ndarray, target: Path) -> Path:
    with atomic_path(target) as tmp:
        np.savetxt(tmp, values, delimiter=",", fmt="%.6f", header=",".join(EMOTION_COLUMNS), comments="")
    return target


def write_results(reactions: np.ndarray, out: str | os.PathLike) -> Result:
    """Per sample: the raw output as ``result-<k>.pth`` (float32 ``(N, 25)``, torch-readable: what the
    evaluation scores) and ``result-<k>.csv``, and its constrained form
    (:func:`~react.reaction.data.react_layout.constrained_attributes`) as ``result-<k>-constrained.csv``."""
    out = Path(out)
    result = Result([], [], [])
    for k, sample in enumerate(reactions):
        save_pth(sample, out / f"result-{k}.pth")
        result.pth.append(out / f"result-{k}.pth")
        result.csv.append(_write_csv(sample, out / f"result-{k}.csv"))
        constrained = _write_csv(constrained_attributes(sample), out / f"result-{k}-constrained.csv")
        result.constrained.append(constrained)
    return result
