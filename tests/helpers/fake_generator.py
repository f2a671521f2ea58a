"""A fake reaction generator written only against the generator contract (react.reaction.contract):
a learnt gain on the speaker's own attributes, plus a tenth of its last generated frame, plus noise;
causal, with feedback. :func:`registered` makes it the task ``fake`` while a test runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from react.reaction.models import GENERATORS, Generator
from react.tasks import TASKS

FEEDBACK = 2


@dataclass
class FakeConfig:
    gain: float = 0.5
    noise: float = 0.1


class FakeGenerator(nn.Module):
    inputs = ("speaker",)
    causal = True
    feedback = FEEDBACK

    def __init__(self, cfg: FakeConfig, frames: int):
        super().__init__()
        self.frames, self.nodes, self.settings, self.noise = frames, 25, repr(cfg), cfg.noise
        self.gain = nn.Parameter(torch.tensor(float(cfg.gain)))

    def noise_shape(self, windows, samples):
        return (windows, samples, self.frames, self.nodes)

    def draw_noise(self, windows, samples, generator=None):
        return self.noise * torch.randn(self.noise_shape(windows, samples), generator=generator)

    def generate(self, conditions, noise, scale=1.0):
        last = conditions["past"][:, :, -1:]  # (W, S, 1, 25): the last frame generated before the window
        return self.gain * conditions["speaker"][:, None] + 0.1 * last + scale * noise

    def training_loss(self, batch):
        err = (self.gain * batch["speaker"][:, None] - batch["reactions"]).pow(2).mean((2, 3))  # (B, K)
        loss = (err * batch["mask"]).sum() / batch["mask"].sum()
        return loss, {"mse": loss}


@contextmanager
def registered(model: str = "FakeGenerator", name: str = "fake") -> Iterator[None]:
    """``model`` (a class of this module) as the generator and task ``name`` inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(GENERATORS, name, Generator(__name__, model, "FakeConfig"))
        patch.setitem(TASKS, name, "react.reaction.task")
        yield


class NonCausalFake(FakeGenerator):
    """The fake with feedback but not causal: no online mode."""

    causal = False


class VideoFake(FakeGenerator):
    """The fake reading the speaker's video features instead of their attributes (their first 25 dims)."""

    inputs = ("video",)

    def generate(self, conditions, noise, scale=1.0):
        own = {"speaker": conditions["video"][..., :25], "past": conditions["past"]}
        return super().generate(own, noise, scale)
