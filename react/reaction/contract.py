"""The generator contract: what a reaction model offers the rest of the framework.

Every reaction model (REGNN, TransVAE, BeLFusion, ...) is an ``nn.Module`` with the attributes and
methods of :class:`ReactionGenerator`. Generation, stitching, the sampling sweep, the online mode,
deployment (ONNX), inference on raw clips and the evaluation read a model only through them, so a
model written against this page gets all of those.

A model works on windows of ``frames`` frames. Its conditions are named tensors, each
``(W, frames, dim)`` for ``W`` windows:

``video``    the speaker's per-frame video features;
``audio``    the speaker's per-frame audio features;
``speaker``  the speaker's own facial attributes (the 25 REACT attributes per frame);
``past``     ``(W, S, feedback, nodes)``: the last ``feedback`` frames this model generated for the
             same sample before the window (zeros at the start of a clip); only for ``feedback > 0``.

Sampling is a pure function of the conditions and an explicit ``noise`` tensor: the model draws
noise with :meth:`ReactionGenerator.draw_noise` (on the CPU, from a ``torch.Generator``), and
:meth:`ReactionGenerator.generate` maps conditions + noise to reactions. Deployment exports
``generate`` with ``noise`` as a graph input, so a deployed model, a test and a resumed run give the
same reactions for the same seed.

``causal`` models produce frame ``t`` from condition frames ``<= t`` only; they run in the online
mode. Models with ``feedback > 0`` read their own past output: generation runs their windows in
order, ``frames`` apart (no overlap), feeding each window the previous windows' last frames.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

CONDITIONS = ("video", "audio", "speaker")  # the inputs a model may read (besides ``past``)


@runtime_checkable
class ReactionGenerator(Protocol):
    """A reaction model, as generation, deployment, online mode and evaluation see it."""

    frames: int  # window length (frames in and out)
    nodes: int  # attributes per output frame (25 in REACT)
    inputs: tuple[str, ...]  # which of CONDITIONS the model reads, in the order deployment feeds them
    causal: bool  # frame t depends on condition frames <= t only (online mode possible)
    feedback: int  # past generated frames the model reads (0: none)
    settings: str  # every construction setting (repr of the model config), for generation stamps

    def noise_shape(self, windows: int, samples: int) -> tuple[int, ...]:
        """Shape of the noise :meth:`generate` takes for ``windows`` windows x ``samples`` samples;
        it starts with ``(windows, samples)``."""

    def draw_noise(self, windows: int, samples: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise of :meth:`noise_shape`, drawn on the CPU from ``generator``, already at the model's
        own scale (e.g. REGNN's ``noise_std`` or its official max rescaling)."""

    def generate(self, conditions: dict[str, torch.Tensor], noise: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
        """Reactions ``(W, S, frames, nodes)`` to ``W`` windows, one per noise sample; deterministic
        given ``noise``. ``scale`` multiplies the noise (more diverse, less accurate). Eval mode,
        no gradients needed."""

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The model's own training loss on a batch of windows (the conditions, ``reactions``
        ``(B, K, frames, nodes)`` the appropriate real listener reactions and ``mask`` ``(B, K)``
        the real ones among padding) and its named parts, for logging."""


def sample(model: ReactionGenerator, conditions: dict[str, torch.Tensor], samples: int,
           generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """``samples`` reactions per window ``(W, samples, frames, nodes)``: fresh noise through
    :meth:`ReactionGenerator.generate`."""
    windows = next(iter(conditions.values())).shape[0]
    noise = model.draw_noise(windows, samples, generator)
    return model.generate(conditions, noise.to(next(iter(conditions.values())).device), scale)


def training_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:meth:`ReactionGenerator.training_loss` of ``model``, also when ``model`` is wrapped for
    distributed training: the call then goes through the wrapper's ``forward`` (which prepares the
    gradient synchronisation), the inner model's ``forward`` standing in for its loss for that one
    call (restored before the loss runs, so the loss may call the model itself)."""
    inner = getattr(model, "module", model)
    if inner is model:
        return model.training_loss(batch)
    saved = inner.__dict__.get("forward")  # e.g. a mixed-precision wrapper set on the instance

    def restore() -> None:
        if saved is None:
            inner.__dict__.pop("forward", None)
        else:
            inner.forward = saved

    def loss_instead(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        restore()
        return inner.training_loss(batch)

    inner.forward = loss_instead  # an instance attribute hides the class's forward
    try:
        return model(batch)
    finally:
        restore()
