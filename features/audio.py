"""Audio features on the video frame grid: SSL hidden states, log-mel bands, eGeMAPS descriptors or
VGGish embeddings (:mod:`features.vggish`).

The reader (a worker process) loads the wav, mixes it to mono, resamples it (44.1 -> 16 kHz) and
fits it to the clip's frame count. ``ssl`` runs Wav2Vec2 / HuBERT / WavLM batched in the main
process and averages the chosen hidden-state layers; ``logmel`` and ``egemaps`` are computed in the
reader. Every kind is then averaged onto the frames (``features.align``): one row per video frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from features import vggish
from features.align import align_to_frames
from features.media import fit_to_frames  # noqa: F401 - public here too
from features.runner import Extractor, Job, Reader
from features.video import count_video_frames
from features.weights import resolve_weights, weights_settings
from react.data.audio import load_audio

EGEMAPS_SET = "eGeMAPSv02"


@lru_cache(maxsize=2)
def egemaps_smile(functionals: bool = False) -> Any:
    """The openSMILE eGeMAPSv02 extractor: 25 low-level descriptors per 10 ms, or the 88
    utterance functionals (one per process and level)."""
    import opensmile

    level = opensmile.FeatureLevel.Functionals if functionals else opensmile.FeatureLevel.LowLevelDescriptors
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, EGEMAPS_SET), feature_level=level)


def egemaps_functionals(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 88 eGeMAPSv02 functionals of one mono waveform (float32)."""
    return egemaps_smile(True).process_signal(wave, sample_rate).to_numpy(dtype=np.float32)[0]


def clip_frames(job: Job) -> int:
    """The frames a clip's features must have: ``job.frames``, or the video's own count when 0."""
    if job.frames:
        return job.frames
    if not job.video.exists():
        raise FileNotFoundError(f"{job.video}: frames=0 needs the clip's video to count its frames")
    return count_video_frames(job.video)


class WaveReader(Reader):
    """Yields the clip's fitted waveform as one ``1 x samples`` row, optionally normalised."""

    def __init__(self, cfg: DictConfig):
        a = cfg.audio
        self.fps, self.sample_rate, self.max_shortfall_s = cfg.fps, a.sample_rate, a.max_shortfall_s
        self.normalize = a.normalize

    def waveform(self, job: Job) -> tuple[np.ndarray, int]:
        frames = clip_frames(job)
        wave = load_audio(job.source, self.sample_rate)
        return fit_to_frames(wave, frames, self.fps, self.sample_rate, self.max_shortfall_s), frames

    def __call__(self, job: Job) -> Iterator[torch.Tensor]:
        wave, _ = self.waveform(job)
        if self.normalize:
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        yield torch.from_numpy(wave.astype(np.float32))[None]


class LogMelReader(WaveReader):
    """Log power in ``n_mels`` mel bands (Slaney scale), averaged per video frame."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        from transformers.audio_utils import mel_filter_bank

        a = cfg.audio
        self.n_fft, self.hop = a.n_fft, a.hop_length
        self.filters = torch.from_numpy(mel_filter_bank(
            num_frequency_bins=a.n_fft // 2 + 1, num_mel_filters=a.n_mels, min_frequency=0.0,
            max_frequency=a.sample_rate / 2, sampling_rate=a.sample_rate, norm="slaney",
            mel_scale="slaney")).float()

    def __call__(self, job: Job) -> Iterator[torch.Tensor]:
        wave, frames = self.waveform(job)
        spec = torch.stft(torch.from_numpy(wave), self.n_fft, self.hop, window=torch.hann_window(self.n_fft),
                          center=True, return_complex=True).abs().square()  # freq x T
        logmel = torch.log(torch.clamp(self.filters.T @ spec, min=1e-10)).T  # T x n_mels
        times = torch.arange(len(logmel)) * (self.hop / self.sample_rate)
        yield align_to_frames(logmel, times, frames, self.fps)


class VggishReader(WaveReader):
    """VGGish log-mel examples of the clip (:mod:`features.vggish`), in chunks."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.hop_s = cfg.audio.vggish_hop_s

    def __call__(self, job: Job) -> Iterator[torch.Tensor]:
        wave, frames = self.waveform(job)
        examples = vggish.clip_examples(wave, frames, self.fps, self.sample_rate, self.hop_s)
        yield from examples.split(vggish.CHUNK)


class EgemapsReader(WaveReader):
    """The 25 eGeMAPS low-level descriptors (openSMILE, 10 ms steps), averaged per video frame."""

    def __call__(self, job: Job) -> Iterator[torch.Tensor]:
        wave, frames = self.waveform(job)
        table = egemaps_smile().process_signal(wave, self.sample_rate)
        start = table.index.get_level_values("start").total_seconds().to_numpy()
        end = table.index.get_level_values("end").total_seconds().to_numpy()
        values = torch.tensor(table.to_numpy(dtype=np.float32))
        yield align_to_frames(values, torch.from_numpy((start + end) / 2), frames, self.fps)


def ssl_frame_times(model: nn.Module, num_rows: int, sample_rate: int) -> torch.Tensor:
    """Centre time (s) of each output row of a Wav2Vec2-style conv feature encoder."""
    stride, field = 1, 1
    for kernel, step in zip(model.config.conv_kernel, model.config.conv_stride):
        field += (kernel - 1) * stride
        stride *= step
    return (torch.arange(num_rows, dtype=torch.float64) * stride + (field - 1) / 2) / sample_rate


class AudioExtractor(Extractor):
    """Any audio kind; ``ssl`` encodes batches of clips with the SSL model, the others pass through."""

    def __init__(self, cfg: DictConfig, model: nn.Module | None = None):
        a = cfg.audio
        self.cfg = cfg
        self.settings = self.describe(cfg)
        readers = {"ssl": WaveReader, "logmel": LogMelReader, "egemaps": EgemapsReader,
                   "vggish": VggishReader}
        self.reader = readers[a.kind](cfg)
        self.batch_size = a.batch_size
        self.model = model

    def load(self) -> None:
        a = self.cfg.audio
        if a.kind == "vggish":
            self.model = (self.model or vggish.build(self.cfg)).eval().to(self.cfg.device)
        if a.kind != "ssl":
            return
        if self.model is None:
            self.model = build_ssl(self.cfg)
        self.model.eval().to(self.cfg.device)
        depth = self.model.config.num_hidden_layers + 1
        bad = [i for i in a.layers if not -depth <= i < depth]
        if bad:
            raise ValueError(f"audio.layers {bad} out of range: the model has {depth} hidden states "
                             f"(0 = feature projection, {depth - 1} = last layer)")

    @staticmethod
    def describe(cfg: DictConfig) -> dict[str, Any]:
        """What the sidecar records and a rerun must match."""
        a = cfg.audio
        common = {"type": "audio", "kind": a.kind, "sample_rate": a.sample_rate, "fps": cfg.fps,
                  "frames": cfg.frames}
        if a.kind == "ssl":
            return {**common, "backbone": a.backbone, "arch": OmegaConf.to_container(a.arch),
                    **weights_settings(a.weights, a.random_init, "audio", cfg.seed),
                    "layers": list(a.layers), "normalize": a.normalize}
        if a.kind == "vggish":
            return vggish.describe(cfg, common)
        if a.kind == "logmel":
            return {**common, "backbone": "logmel", "n_mels": a.n_mels, "n_fft": a.n_fft,
                    "hop_length": a.hop_length}
        import opensmile

        return {**common, "backbone": f"opensmile-{EGEMAPS_SET}-lld", "opensmile": opensmile.__version__}

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        if self.cfg.audio.kind == "vggish":
            return self.model(batch)
        if self.cfg.audio.kind != "ssl":
            return batch
        states = self.model(batch, output_hidden_states=True).hidden_states
        return torch.stack([states[i] for i in self.cfg.audio.layers]).mean(0)

    def finish(self, job: Job, rows: torch.Tensor) -> torch.Tensor:
        if self.cfg.audio.kind == "vggish":
            return vggish.finish(self.cfg, clip_frames(job), rows)
        if self.cfg.audio.kind != "ssl":
            return rows
        hidden = rows[0]
        times = ssl_frame_times(self.model, len(hidden), self.cfg.audio.sample_rate)
        return align_to_frames(hidden, times, clip_frames(job), self.cfg.fps)


def build_ssl(cfg: DictConfig) -> nn.Module:
    """The SSL encoder through the project's one loader (:mod:`react.pretrained`)."""
    from react.pretrained import pretrained_ssl_encoder

    a = cfg.audio
    weights = resolve_weights(a.weights, a.random_init, "audio")
    torch.manual_seed(cfg.seed)
    arch = OmegaConf.to_container(a.arch, resolve=True)
    return pretrained_ssl_encoder(a.backbone, weights, a.random_init, **arch)
