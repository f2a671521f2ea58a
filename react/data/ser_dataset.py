"""Speech-emotion training items: utterances -> waveforms, labels and sex, and their batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from react.data.augment import WaveAugment
from react.data.ser_corpus import SEXES, AudioCache, Utterance

IGNORE = -100  # label of an unknown sex


class SERDataset(Dataset):
    """Utterances -> ``{"wave", "label", "sex"}`` (+ ``"norm"``, the actor's speaker statistics,
    when ``norms`` maps actors to them); with ``augment`` (training) random crops of
    ``crop_seconds`` and waveform augmentation, else the whole clean file."""

    def __init__(self, utterances: list[Utterance], classes: tuple[str, ...], audio: AudioCache,
                 augment: WaveAugment | None = None, crop_seconds: float = 0.0,
                 norms: dict[str, np.ndarray] | None = None):
        self.utterances = utterances
        self.norms = norms
        self.class_index = {c: i for i, c in enumerate(classes)}
        self.audio = audio
        self.augment = augment
        self.crop = int(crop_seconds * audio.sample_rate) if augment is not None else 0

    def __len__(self) -> int:
        return len(self.utterances)

    def labels(self) -> np.ndarray:
        return np.array([self.class_index[u.emotion] for u in self.utterances])

    def waves(self) -> list[np.ndarray]:
        """Every utterance's whole, clean waveform (evaluation)."""
        return [self.audio(u.path) for u in self.utterances]

    def speaker_norms(self) -> list[np.ndarray] | None:
        """Every utterance's speaker statistics (evaluation), or None without them."""
        return None if self.norms is None else [self.norms[u.actor] for u in self.utterances]

    def __getitem__(self, i: int) -> dict[str, Any]:
        u = self.utterances[i]
        wave = torch.from_numpy(self.audio(u.path))
        if self.augment is not None:
            wave = self.augment(wave)
        if self.crop and wave.numel() > self.crop:
            start = int(torch.randint(wave.numel() - self.crop + 1, ()))
            wave = wave[start:start + self.crop]
        sex = SEXES.index(u.sex) if u.sex in SEXES else IGNORE
        item = {"wave": wave, "label": self.class_index[u.emotion], "sex": sex}
        if self.norms is not None:
            item["norm"] = torch.from_numpy(self.norms[u.actor])
        return item


def pad_batch(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D waves to ``(B, L_max)`` with a ``(B, L_max)`` validity mask."""
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for row, w in zip(batch, waves):
        row[: w.numel()] = w
    return batch, torch.arange(batch.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    wave, mask = pad_batch([it["wave"] for it in items])
    batch = {"wave": wave, "mask": mask, "label": torch.tensor([it["label"] for it in items]),
             "sex": torch.tensor([it["sex"] for it in items])}
    if "norm" in items[0]:
        batch["norm"] = torch.stack([it["norm"] for it in items])
    return batch
